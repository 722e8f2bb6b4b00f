"""Variant ``small`` of ``corr``: a small call's im2col GEMM with little Python around it.

A call whose registry choice is im2col or native and whose columns are small
(``algorithms._small_gemm``: the layers of small models) is one column gather and one GEMM, the bias
added while the output is reordered, instead of the registry's general chain plus a bias add.
"""

from __future__ import annotations

from typing import Any

import torch

from ..core.spec import CorrSpec
from . import _small_gemm as _small
from ._variant import features

NAME = "small"
OP = "corr"
ERROR_GROWTH = 0.0  # im2col's sums
COMPUTE_DTYPE = None
ALGORITHM = "im2col"  # the registry algorithm whose computation it is (choose_algorithm reports it)


def supports(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, algorithm: str = "auto") -> str | None:
    """None when the call is small and ``auto``'s registry choice is im2col or native."""
    return None if _small.plan(x, w, spec) is not None else (
        "not a small call (columns up to 2^18 elements, kernel above 1 tap, zero padding) "
        "whose registry choice is im2col or native")


def prepare(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> Any:
    """The call's plan (kept in the route)."""
    return _small.plan(x, w, spec)


def cost_features(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> dict[str, float]:
    """Shapes only."""
    return features(x, w, spec)


def serve(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, g: torch.Tensor | None, bias: torch.Tensor | None,
          plan: Any) -> torch.Tensor:
    """``corr(x, w) + bias``."""
    return _small.forward(x, w, bias, plan)
