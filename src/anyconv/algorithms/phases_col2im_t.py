"""Variant ``phases_col2im_t`` of ``corr_t`` (strided calls, ``auto`` only): small kernels (at most polyphase.COL2IM_MAX_TAPS taps) with more than one gradient channel per group: one 1x1 correlation per chunk, each tap's columns added where they land (``polyphase.col2im``)."""

from __future__ import annotations

from typing import Any

import torch

from ..core.shapes import prod
from ..core.spec import CorrSpec
from . import polyphase
from ._variant import features, strided

NAME = "phases_col2im_t"
OP = "corr_t"
ERROR_GROWTH = 0.0  # the registry's sums, rearranged
COMPUTE_DTYPE = None


def supports(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, algorithm: str = "auto") -> str | None:
    """None when it serves the input gradient of ``corr(x, w)``."""
    why = strided(spec)
    if why is not None:
        return why
    if not (w.shape[0] > spec.groups and prod(w.shape[2:]) <= polyphase.COL2IM_MAX_TAPS):
        return f"one gradient channel per group, or more than {polyphase.COL2IM_MAX_TAPS} taps"
    return None


def cost_features(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> dict[str, float]:
    """Shapes only."""
    return features(x, w, spec)  # one 1x1 correlation (in chunks) and one rearrangement


def serve(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, g: torch.Tensor | None, bias: torch.Tensor | None,
          plan: Any = None) -> torch.Tensor:
    """The input gradient ``(B, C, *L)`` (its sub-calls: ``auto``'s choice each)."""
    return polyphase.col2im(g, w, spec, x.shape[2:], "auto", False).contiguous()  # type: ignore[arg-type]
