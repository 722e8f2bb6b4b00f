"""Variant ``phases_t`` of ``corr_t`` (strided calls, ``auto`` only): the polyphase split: prod(stride) stride-1 correlations through the registry, no work on stuffed zeros (``polyphase.corr_t``)."""

from __future__ import annotations

from typing import Any

import torch

from ..core.shapes import prod
from ..core.spec import CorrSpec
from . import polyphase
from ._variant import features, strided

NAME = "phases_t"
OP = "corr_t"
ERROR_GROWTH = 0.0  # the registry's sums, rearranged
COMPUTE_DTYPE = None


def supports(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, algorithm: str = "auto") -> str | None:
    """None when it serves the input gradient of ``corr(x, w)``."""
    why = strided(spec)
    if why is not None:
        return why
    return None


def cost_features(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> dict[str, float]:
    """Shapes only."""
    return features(x, w, spec, float(prod(spec.stride)))  # one stride-1 correlation per phase


def serve(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, g: torch.Tensor | None, bias: torch.Tensor | None,
          plan: Any = None) -> torch.Tensor:
    """The input gradient ``(B, C, *L)`` (its sub-calls: ``auto``'s choice each)."""
    return polyphase.corr_t(g, w, spec, x.shape[2:], "auto", False).contiguous()  # type: ignore[arg-type]
