"""Variant ``native_w`` of ``corr_w``: the weight gradient's swapped correlation by ``native`` straight
from the batch/channel-swapped view ``x5 (Cg, G, B, *L)`` (``native.forward_grouped``), where
flattening it to ``(Cg, G*B, *L)`` would copy the input (a batch and groups both above 1) and
``native`` is the algorithm the flattened call gets (``auto``'s choice, or named)."""

from __future__ import annotations

from typing import Any

import torch

from ..core.spec import CorrSpec
from . import native
from ._variant import features, grad_standin

NAME = "native_w"
OP = "corr_w"
NAMED = ("native",)  # also serves algorithm="native": the same kernel without the copy
ERROR_GROWTH = 0.0
COMPUTE_DTYPE = native.COMPUTE.get
ALGORITHM = "native"  # the registry algorithm whose kernel it is (choose_algorithm reports it)


def _swapped(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> tuple[torch.Tensor, torch.Tensor, CorrSpec]:
    from ._adjoints import flat, swapped_call

    x5, g2, sub = swapped_call(torch.zeros((), dtype=x.dtype, device=x.device).expand(x.shape),
                               grad_standin(x, w, spec), spec, tuple(w.shape[2:]))
    return flat(x5), g2, sub


def supports(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, algorithm: str = "auto") -> str | None:
    """None when the flattened view would copy and ``native`` serves the swapped call."""
    if x.device.type != "cpu" or x.numel() == 0 or w.numel() == 0:
        return "non-empty CPU tensors"
    if x.shape[0] == 1 or spec.groups == 1:
        return "the flattened swapped view needs no copy (batch 1 or one group)"
    if algorithm == "native":
        return native.supports(*_swapped(x, w, spec))
    from .auto import choose

    name = choose(*_swapped(x, w, spec), values=False).name
    return None if name == "native" else f"auto's choice for the swapped call is {name}"


def hazard(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, algorithm: str = "auto") -> bool:
    """Whether non-finite values would be misplaced (``auto`` only: then the registry route serves)."""
    from .auto import choose

    return algorithm not in NAMED and bool(choose(*_swapped(x, w, spec), values=False).hazard)


def cost_features(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> dict[str, float]:
    """Shapes only."""
    return features(x, w, spec)


def serve(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, g: torch.Tensor | None, bias: torch.Tensor | None,
          plan: Any = None) -> torch.Tensor:
    """The weight gradient ``(O, C/G, *k)``."""
    from ._adjoints import swapped_call, weight_layout

    x5, g2, sub = swapped_call(x, g, spec, tuple(w.shape[2:]))  # type: ignore[arg-type]
    return weight_layout(native.forward_grouped(x5, g2, sub))
