"""Variant ``native_t`` of ``corr_t`` (strided calls, ``auto`` only): the C kernel's one-pass
transposed correlation (``native.corr_t``) for one output channel per group (depthwise layers),
where the phases would each be a "GEMM" of one channel."""

from __future__ import annotations

from typing import Any

import torch

from ..core.spec import CorrSpec
from . import native
from ._variant import features, grad_standin, strided

NAME = "native_t"
OP = "corr_t"
ERROR_GROWTH = 0.0  # the direct sums
COMPUTE_DTYPE = native.COMPUTE.get  # half precisions in float32


def supports(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, algorithm: str = "auto") -> str | None:
    """``native.transposed_reason`` on the call (strided only)."""
    return strided(spec) or native.transposed_reason(grad_standin(x, w, spec), w, spec, tuple(x.shape[2:]))


def cost_features(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> dict[str, float]:
    """Shapes only."""
    return features(x, w, spec)


def serve(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, g: torch.Tensor | None, bias: torch.Tensor | None,
          plan: Any = None) -> torch.Tensor:
    """The input gradient ``(B, C, *L)``."""
    return native.corr_t(g, w, spec, tuple(x.shape[2:])).contiguous()  # type: ignore[arg-type]
