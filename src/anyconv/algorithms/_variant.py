"""Helpers shared by the variant modules (see ``variants.py``): shapes and cost features."""

from __future__ import annotations

import torch

from ..core.shapes import prod
from ..core.spec import CorrSpec


def out_spatial(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> tuple[int, ...]:
    """The forward correlation's output size."""
    return tuple(spec.output_spatial(x.shape[2:], w.shape[2:]))


def grad_standin(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor:
    """A one-element stand-in of the output gradient ``(B, O, *o)``."""
    return torch.zeros((), dtype=x.dtype, device=x.device).expand((x.shape[0], w.shape[0], *out_spatial(x, w, spec)))


def features(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, calls: float = 1.0) -> dict[str, float]:
    """``{"calls", "macs", "elements"}``: tensor-op calls, multiply-adds of the correlation, and the
    elements of its operands and result (shapes only: meta tensors work)."""
    out = prod(out_spatial(x, w, spec))
    macs = float(x.shape[0] * out * w.shape[0] * w.shape[1] * prod(w.shape[2:]))
    return {"calls": calls, "macs": macs, "elements": float(x.numel() + w.numel() + x.shape[0] * w.shape[0] * out)}


def strided(spec: CorrSpec) -> str | None:
    """None for a strided call, else why a polyphase variant does not serve it."""
    return None if any(s > 1 for s in spec.stride) else "stride 1 (no phases to split)"
