"""Variant ``col2im_t`` of ``corr_t``: the input gradient for a non-finite weight (a NaN/Inf rule).

Only the products of real (gradient, weight) pairs, as torch's input gradient and transposed
convolution make them (a correlation over the zero-extended gradient would multiply its padding
by the Inf: NaN where torch has a finite value): ``w^T @ g``, then col2im. Chosen by the NaN/Inf
rule of ``variants.serve`` (zero padding, a weight with NaN or Inf), for every algorithm.
"""

from __future__ import annotations

from typing import Any

import torch

from ..core.spec import CorrSpec
from . import _small_gemm as _small
from ._variant import features

NAME = "col2im_t"
OP = "corr_t"
ERROR_GROWTH = 0.0
COMPUTE_DTYPE = None
ALGORITHM = "im2col"  # the registry algorithm whose computation it is (choose_algorithm reports it)


def supports(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, algorithm: str = "auto") -> str | None:
    """Zero padding (no crop)."""
    return None if all(pb >= 0 and pa >= 0 for pb, pa in spec.padding) else "a cropping (negative) padding"


def cost_features(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> dict[str, float]:
    """Shapes only."""
    return features(x, w, spec)


def serve(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, g: torch.Tensor | None, bias: torch.Tensor | None,
          plan: Any = None) -> torch.Tensor:
    """The input gradient ``(B, C, *L)``."""
    dx = _small.backward(x, w, g, spec, True, False)[0]  # type: ignore[arg-type]
    return dx.contiguous()  # type: ignore[union-attr]
