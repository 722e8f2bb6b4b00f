"""Padding of the last N dims of a tensor by explicit ``(before, after)`` pairs, any mode.

``zeros``/constant padding uses ``torch.nn.functional.pad`` (a generic tensor op, any N).
``reflect``, ``replicate`` and ``circular`` are gathers along each dim with an index map, so
they work for any N, are differentiable to every order and are deterministic:

- reflect: mirror without repeating the edge, ``... 2 1 | 0 1 2 3 | 2 1 ...``; a padding
  larger than ``size - 1`` keeps reflecting (NumPy's 'reflect'), where torch refuses;
- replicate: repeat the edge element (any padding size);
- circular: wrap around (any padding size, wrapping as often as needed), where torch refuses
  a padding larger than the size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .tracing import untraced

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _index_map(size: int, before: int, after: int, mode: str) -> list[int]:
    idx = range(-before, size + after)
    if mode == "replicate":
        return [min(max(j, 0), size - 1) for j in idx]
    if mode == "circular":
        return [j % size for j in idx]
    # reflect
    if size == 1:
        return [0 for _ in idx]
    period = 2 * (size - 1)
    out = []
    for j in idx:
        m = j % period
        out.append(m if m < size else period - m)
    return out


def pad(
    x: torch.Tensor, pairs: Sequence[tuple[int, int]], mode: str = "zeros", value: float = 0.0
) -> torch.Tensor:
    """Pad (or, for ``zeros`` with negative amounts, crop) the last ``len(pairs)`` dims of ``x``.

    Shape:
        ``(*, L_1, ..., L_N) -> (*, L_1 + b_1 + a_1, ..., L_N + b_N + a_N)``
    """
    if all(b == 0 and a == 0 for b, a in pairs):
        return x
    n = len(pairs)
    if mode == "zeros":
        # extend first, then crop: a crop may exceed the original size when the same dim is
        # also extended on its other side (e.g. ``(-2, +2)`` on a length-1 dim)
        if any(b > 0 or a > 0 for b, a in pairs):
            flat: list[int] = []
            for b, a in reversed(pairs):
                flat += [max(b, 0), max(a, 0)]
            x = F.pad(x, flat, mode="constant", value=value)
        if any(b < 0 or a < 0 for b, a in pairs):
            lead = x.dim() - n
            crop = [slice(None)] * lead + [
                slice(-min(b, 0), x.shape[lead + i] + min(a, 0)) for i, (b, a) in enumerate(pairs)
            ]
            x = x[tuple(crop)]
        return x
    for i, (b, a) in enumerate(pairs):
        if b == 0 and a == 0:
            continue
        dim = x.dim() - n + i
        index = untraced(_index, x, dim, b, a, mode)
        x = x.index_select(dim, index)
    return x


def _index(x: torch.Tensor, dim: int, before: int, after: int, mode: str) -> torch.Tensor:
    """The gather index of padding ``dim`` of ``x`` (made with plain ints, also when traced)."""
    return torch.tensor(_index_map(x.shape[dim], before, after, mode), device=x.device)
