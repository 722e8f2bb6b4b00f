"""Receptive field of every layer of a model: size, jump (effective stride) and start per dim.

The model is run once on shapes only (``meta`` tensors, see ``tools/_trace.py``); conv,
transposed-conv and pooling layers (torch's and anyconv's, any N, every padding form and
asymmetric padding) are resolved through the ops' own front door, and the field follows
every tensor, through residual additions and concatenations too. The rules are in
``tools/_fields.py``; tests check them against the gradient of one output unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import torch

from ..core.errors import type_error, value_error
from ._trace import trace


def _num(v: Fraction) -> int | float:
    return int(v) if v.denominator == 1 else float(v)


@dataclass(frozen=True)
class LayerField:
    """Receptive field of one layer's output, per spatial dim.

    Output unit ``j`` (along a dim) sees model-input positions
    ``start + j * jump`` to ``start + j * jump + size - 1``. ``size``, ``jump`` and ``start``
    are ``None`` after a layer that mixes all positions (flatten, linear).
    """

    name: str
    type: str
    output_shape: tuple[int, ...]
    size: tuple[int | float, ...] | None
    jump: tuple[int | float, ...] | None
    start: tuple[int | float, ...] | None

    def __str__(self) -> str:
        def show(t: tuple[int | float, ...] | None) -> str:
            return "-" if t is None else "x".join(f"{v:g}" for v in t)

        return f"{self.name} ({self.type}): size {show(self.size)}, jump {show(self.jump)}, start {show(self.start)}"


def receptive_field(model: torch.nn.Module, input_shape: Sequence[int]) -> list[LayerField]:
    """Per-layer receptive field (size, jump, start per spatial dim) of ``model`` on ``input_shape``.

    ``size_l = size_{l-1} + (k_l - 1) d_l jump_{l-1}``, ``jump_l = jump_{l-1} s_l``,
    ``start_l = start_{l-1} - p_l jump_{l-1}`` for conv and pooling (``p`` padding before);
    transposed convs divide the jump by their stride, adaptive pooling multiplies it by
    ``in / out``; see ``anyconv.tools._fields`` for the exact rules.

    Args:
        model: a torch or anyconv model.
        input_shape: ``(B, C, *spatial)``.

    Returns:
        One :class:`LayerField` per leaf-module call, in execution order.

    Examples:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.MaxPool2d(2), torch.nn.Conv2d(8, 8, 3, padding=1))
        >>> for f in receptive_field(net, (1, 3, 32, 32)):
        ...     print(f.name, f.size, f.jump, f.start)
        0 (3, 3) (1, 1) (0, 0)
        1 (4, 4) (2, 2) (0, 0)
        2 (8, 8) (2, 2) (-2, -2)
    """
    fn = "receptive_field"
    if not isinstance(model, torch.nn.Module):
        type_error(fn, "model", model, "a torch.nn.Module")
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence):
        type_error(fn, "input_shape", input_shape, "a sequence (B, C, *spatial) of positive ints")
    if len(input_shape) < 3 or any(not isinstance(v, int) or v < 1 for v in input_shape):
        value_error(fn, "input_shape", input_shape, "a sequence (B, C, *spatial) of positive ints")
    out = []
    for c in trace(model, input_shape, fn=fn, param="input_shape"):
        if not c.leaf:
            continue
        f = c.field
        out.append(LayerField(
            c.name, type(c.module).__name__, c.output_shape,
            None if f is None else tuple(_num(v) for v in f.size),
            None if f is None else tuple(_num(v) for v in f.jump),
            None if f is None else tuple(_num(v) for v in f.start),
        ))
    return out
