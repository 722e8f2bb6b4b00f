"""``padding_for``: the padding that gives a wanted output size, found through the ops' formulas.

For each spatial dim the candidate total paddings are tried in order with the ops' own
integer formulas (:mod:`anyconv.core.shapes`), split ``(total // 2, total - total // 2)``; the
answer is then run through the op's front door (:func:`anyconv.tools.shapes.explain_shape`).
No inverse formula is written down, so nothing here can drift from the ops.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core import shapes as _shapes
from ..core.args import int_tuple
from ..core.errors import type_error, value_error
from .shapes import KINDS, ShapeInfo, _shape, explain_shape, parse_op


def _dim_size(kind: str, info: ShapeInfo, dim: int, total: int, ceil_mode: bool,
              output_padding: int) -> int | None:
    """Output size of spatial dim ``dim`` with ``total`` padding split (total // 2, rest), or None if invalid."""
    i = info.input_shape[len(info.input_shape) - len(info.kernel) + dim]
    k, s, d = info.kernel[dim], info.stride[dim], info.dilation[dim]
    pb, pa = total // 2, total - total // 2
    if kind == "conv_transpose":
        return _shapes.conv_transpose_output_size(i, k, s, d, pb, pa, output_padding)
    if kind == "pool":
        o = _shapes.pool_output_size(i, k, s, d, pb, pa, ceil_mode)
        return o if o >= 1 and _shapes.pool_empty_window(i, k, s, d, pb, o) is None else None
    return _shapes.conv_output_size(i, k, s, d, pb, pa)


def padding_for(
    op: str, input_shape: Sequence[int], output_shape: Sequence[int], **params: Any
) -> tuple[tuple[int, int], ...]:
    """The ``(before, after)`` padding per spatial dim that makes ``op`` produce ``output_shape``.

    Among the paddings that give the wanted size, a symmetric one (even total) is preferred,
    the smallest such; otherwise the smallest total with the extra element at the end
    (``before = total // 2``). For ``conv_transpose`` the pairs are the crop (its
    ``padding``). The answer is checked by running it through the op's front door.

    Args:
        op: as in :func:`output_shape` (adaptive pooling has no padding).
        input_shape: the input shape.
        output_shape: the wanted full output shape, or its N spatial sizes only.
        **params: the op's other keyword arguments (not ``padding``).

    Raises:
        ValueError: when no padding gives the wanted size (the message says which sizes can).

    Examples:
        >>> padding_for("conv2d", (1, 3, 32, 32), (32, 32), kernel_size=5)
        ((2, 2), (2, 2))
        >>> padding_for("conv2d", (1, 3, 32, 32), (1, 3, 16, 16), kernel_size=5, stride=2)
        ((2, 2), (2, 2))
        >>> padding_for("conv1d", (1, 1, 10), (10,), kernel_size=4)
        ((1, 2),)
    """
    fn = "padding_for"
    if "padding" in params:
        type_error(fn, "padding", params["padding"], "left out (padding_for computes it)")
    base, _ = parse_op(op)
    kind = KINDS[base]
    if kind == "adaptive":
        value_error(fn, "op", op, "an op with padding (adaptive pooling has none)")
    info = explain_shape(op, input_shape, padding=0, **params)
    n = len(info.kernel)
    want = _shape(fn, "output_shape", output_shape)
    if len(want) not in (n, len(info.output_shape)):
        value_error(fn, "output_shape", output_shape, f"{n} spatial sizes or a full shape of {len(info.output_shape)} dims")
    want = want[-n:]
    ceil_mode = bool(params.get("ceil_mode", False))
    outpad = [0] * n
    if kind == "conv_transpose":
        outpad = list(int_tuple(op, "output_padding", params.get("output_padding", 0), n, minimum=0))
    pairs = []
    for dim in range(n):
        o0 = _dim_size(kind, info, dim, 0, ceil_mode, outpad[dim])
        span = info.stride[dim] * (want[dim] + 2) + _shapes.effective_kernel(info.kernel[dim], info.dilation[dim])
        limit = (o0 or 0) if kind == "conv_transpose" else span
        fits = [t for t in range(0, max(limit, 0) + 1) if _dim_size(kind, info, dim, t, ceil_mode, outpad[dim]) == want[dim]]
        if not fits:
            reach = f"at most {o0}" if kind == "conv_transpose" else f"at least {o0}"
            value_error(fn, "output_shape", output_shape,
                        f"a size reachable by padding in spatial dim {dim} ({reach} for input "
                        f"{info.input_shape[len(info.input_shape) - n + dim]}, kernel {info.kernel[dim]}, "
                        f"stride {info.stride[dim]}, dilation {info.dilation[dim]})")
        even = [t for t in fits if t % 2 == 0]
        total = even[0] if even else fits[0]
        pairs.append((total // 2, total - total // 2))
    check = explain_shape(op, input_shape, padding=tuple(pairs), **params)
    if check.output_shape[-n:] != want:  # pragma: no cover - would be a bug in this search
        raise RuntimeError(f"padding_for: {pairs} gives {check.output_shape}, not {want}")
    return tuple(pairs)
