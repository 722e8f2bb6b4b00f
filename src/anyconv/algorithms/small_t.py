"""Variant ``small_t`` of ``corr_t``: a gradient call's input gradient as ``w^T @ gy`` plus col2im.

Served for the input gradient of a call that ``small`` serves (its plan), or whenever the column
gradient is smaller than the weight (``algorithms._small_gemm.col2im_pays``): no flipped weight copy.
"""

from __future__ import annotations

from typing import Any

import torch

from ..core.spec import CorrSpec
from . import _small_gemm as _small
from ._variant import features, grad_standin

NAME = "small_t"
OP = "corr_t"
ERROR_GROWTH = 0.0
COMPUTE_DTYPE = None
ALGORITHM = "im2col"  # the registry algorithm whose computation it is (choose_algorithm reports it)
DERIVED_ONLY = True  # conv_transpose's own forward keeps its other ways
CHECKS_W = False  # its products are the real (gradient, weight) pairs: NaN/Inf land as torch's


def supports(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, algorithm: str = "auto") -> str | None:
    """None for a small call, or when the column gradient is smaller than the weight."""
    if x.numel() == 0 or w.numel() == 0:
        return "an empty operand"
    if _small.plan(x, w, spec) is not None or _small.col2im_pays(x, w, grad_standin(x, w, spec), spec):
        return None
    return "neither a small call nor one whose column gradient is smaller than its weight"


def prepare(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> Any:
    """The small call's plan, or None (``col2im_pays``: the general col2im plan)."""
    return _small.plan(x, w, spec)


def cost_features(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> dict[str, float]:
    """Shapes only."""
    return features(x, w, spec)


def serve(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, g: torch.Tensor | None, bias: torch.Tensor | None,
          plan: Any) -> torch.Tensor:
    """The input gradient ``(B, C, *L)`` of ``corr(x, w)`` for ``g``."""
    return _small.backward(x, w, g, spec, True, False, p=plan)[0]  # type: ignore[arg-type,return-value]
