"""Variant ``small_w`` of ``corr_w``: a small call's weight gradient as ``gy @ cols^T``."""

from __future__ import annotations

from typing import Any

import torch

from ..core.spec import CorrSpec
from . import _small_gemm as _small
from ._variant import features

NAME = "small_w"
OP = "corr_w"
ERROR_GROWTH = 0.0
COMPUTE_DTYPE = None
ALGORITHM = "im2col"  # the registry algorithm whose computation it is (choose_algorithm reports it)


def supports(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, algorithm: str = "auto") -> str | None:
    """None for a call that ``small`` serves."""
    if x.numel() == 0 or w.numel() == 0:
        return "an empty operand"
    return None if _small.plan(x, w, spec) is not None else "not a small call (see the small variant)"


def prepare(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> Any:
    """The call's plan."""
    return _small.plan(x, w, spec)


def cost_features(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> dict[str, float]:
    """Shapes only."""
    return features(x, w, spec)


def serve(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, g: torch.Tensor | None, bias: torch.Tensor | None,
          plan: Any) -> torch.Tensor:
    """The weight gradient ``(O, C/G, *k)``."""
    dw = _small.backward(x, w, g, spec, False, True, p=plan)[1]  # type: ignore[arg-type]
    return dw.contiguous()  # type: ignore[union-attr]
