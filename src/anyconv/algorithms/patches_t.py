"""Variant ``patches_t`` of ``corr_t`` (strided calls, ``auto`` only): kernel equal to the stride, dilation 1 (non-overlapping windows): one 1x1 correlation and one interleaving copy (``polyphase.patches``)."""

from __future__ import annotations

from typing import Any

import torch

from ..core.spec import CorrSpec
from . import polyphase
from ._variant import features, strided

NAME = "patches_t"
OP = "corr_t"
ERROR_GROWTH = 0.0  # the registry's sums, rearranged
COMPUTE_DTYPE = None


def supports(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, algorithm: str = "auto") -> str | None:
    """None when it serves the input gradient of ``corr(x, w)``."""
    why = strided(spec)
    if why is not None:
        return why
    if not (all(k == st for k, st in zip(w.shape[2:], spec.stride)) and all(d == 1 for d in spec.dilation)):
        return "the kernel differs from the stride, or a dilation above 1"
    return None


def cost_features(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> dict[str, float]:
    """Shapes only."""
    return features(x, w, spec)  # one 1x1 correlation (in chunks) and one rearrangement


def serve(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, g: torch.Tensor | None, bias: torch.Tensor | None,
          plan: Any = None) -> torch.Tensor:
    """The input gradient ``(B, C, *L)`` (its sub-calls: ``auto``'s choice each)."""
    return polyphase.patches(g, w, spec, x.shape[2:], "auto", False).contiguous()  # type: ignore[arg-type]
