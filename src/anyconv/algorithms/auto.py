"""``auto``: choose an algorithm for a call and say why.

Rules, in order (the speed issue replaces the second with a measured cost model):

1. correctness guards: only algorithms whose ``supports`` accepts the call are candidates;
2. ``im2col`` (one GEMM per group over column tiles) is preferred to ``direct`` (einsum over
   the window view), which is kept as the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._spec import CorrSpec
from . import get

PREFERENCE = ("im2col", "direct")


@dataclass(frozen=True)
class Choice:
    """The algorithm chosen for a call and the reasons."""

    name: str
    reason: str
    rejected: dict[str, str]


def choose(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> Choice:
    """Choose the first algorithm in ``PREFERENCE`` that supports the call."""
    rejected: dict[str, str] = {}
    for name in PREFERENCE:
        reason = get(name).supports(x, w, spec)
        if reason is None:
            return Choice(name, f"{name}: first supported algorithm in {PREFERENCE}", rejected)
        rejected[name] = reason
    raise ValueError(f"anyconv: no algorithm can serve this call: {rejected}")
