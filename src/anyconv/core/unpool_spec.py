"""The front door for max unpooling and fractional max pooling.

Raw user arguments go in; a frozen :class:`UnpoolSpec` or :class:`FractionalSpec` comes out,
with per-dim tuples and the output spatial sizes computed by :mod:`.shapes`. Only
``shape``/``dim()``/``dtype``/``device`` are read, never tensor data, so the shape calculator
calls these with meta tensors; the two checks that need data (index range, sample range) are
in the ops themselves and skipped on meta tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from . import shapes as _shapes
from .args import as_int, boolean, int_tuple, is_sequence, padding_arg
from .errors import type_error, value_error
from .pool_spec import AdaptiveSpec, check_float_input, spatial_dims
from .spec import FLOAT_DTYPES, check_input_rank, check_same_kind, check_tensor
from .types import Pairs


@dataclass(frozen=True)
class UnpoolSpec:
    """A validated max unpooling call: input ``(B, C, *in)`` scattered into ``(B, C, *out)``."""

    op: str
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: Pairs
    batched: bool
    in_spatial: tuple[int, ...]
    out_spatial: tuple[int, ...]

    @property
    def n(self) -> int:
        return len(self.kernel)


@dataclass(frozen=True)
class FractionalSpec(AdaptiveSpec):
    """A validated fractional max pooling call (windows of ``kernel`` at pseudo-random starts)."""

    kernel: tuple[int, ...] = ()


def _broadcast(value: Any, n: int | None) -> Any:
    """torch's form for a fixed N: a one-element sequence stands for every dim."""
    if n is not None and n > 1 and is_sequence(value) and len(value) == 1:
        return tuple(value) * n
    return value


def _unpool_output(op: str, output_size: Any, default: tuple[int, ...], s: tuple[int, ...],
                   batched: bool) -> tuple[int, ...]:
    nd = len(default)
    lengths = (nd, nd + 2) if batched else (nd, nd + 1, nd + 2)
    expected = f"None or a sequence of {' or '.join(map(str, lengths))} ints"
    if output_size is None:
        return default
    if not (is_sequence(output_size) or isinstance(output_size, torch.Size)):
        type_error(op, "output_size", output_size, expected)
    if len(output_size) not in lengths:
        value_error(op, "output_size", output_size, expected)
    out = tuple(as_int(op, "output_size", v, expected) for v in output_size)[-nd:]
    for d in range(nd):
        lo, hi = default[d] - s[d], default[d] + s[d]
        if not (max(lo, 0) < out[d] < hi):
            value_error(op, "output_size", output_size,
                        f"spatial sizes >= 1 with {lo} < size < {hi} in dim {d} (default {default[d]}, "
                        f"stride {s[d]})")
    return out


def unpool_spec(op: str, input: Any, indices: Any, kernel_size: Any, stride: Any = None, padding: Any = 0,
                output_size: Any = None, *, n: int | None = None) -> UnpoolSpec:
    """Validate a max unpooling call and resolve it into an :class:`UnpoolSpec`.

    ``n`` is fixed by an alias (``max_unpool2d``: 2); ``None`` takes it from ``kernel_size``
    (a sequence) or ``input.dim() - 2``. ``stride`` of ``None``, ``()`` or ``[]`` means
    ``kernel_size``; ``padding`` is an int, N ints or N ``(before, after)`` pairs.

    Shape:
        ``out = (in - 1) * stride + kernel - before - after`` unless ``output_size`` (N
        spatial sizes, or N + 2 with batch and channels, as torch) picks one strictly between
        ``out - stride`` and ``out + stride``.

    Raises:
        ValueError, TypeError: naming the parameter.

    Examples:
        >>> import torch
        >>> x = torch.empty(1, 3, 4, 4, device="meta")
        >>> unpool_spec("max_unpool", x, x.long(), 2).out_spatial
        (8, 8)
        >>> unpool_spec("max_unpool2d", x, x.long(), 3, 2, 1, output_size=(1, 3, 8, 8)).out_spatial
        (8, 8)
    """
    check_float_input(op, input)
    if not isinstance(indices, torch.Tensor) or indices.dtype != torch.int64:
        type_error(op, "indices", indices, "an int64 tensor (as returned by max_pool(..., return_indices=True))")
    nd = spatial_dims(op, input, kernel_size, "kernel_size", n)
    batched = check_input_rank(op, input, nd)
    if indices.shape != input.shape:
        value_error(op, "indices", indices, f"a tensor of the input's shape {tuple(input.shape)}")
    if indices.device != input.device:
        value_error(op, "indices", indices, f"on the input's device {input.device}")
    kernel_size, stride, padding = (_broadcast(v, n) for v in (kernel_size, stride, padding))
    k = int_tuple(op, "kernel_size", kernel_size, nd)
    no_stride = stride is None or (is_sequence(stride) and len(stride) == 0)
    s = k if no_stride else int_tuple(op, "stride", stride, nd)
    pad = padding_arg(op, padding, nd, strings=())
    assert not isinstance(pad, str)
    in_sp = tuple(int(v) for v in input.shape[-nd:])
    default = tuple(_shapes.unpool_output_size(i, k[d], s[d], *pad[d]) for d, i in enumerate(in_sp))
    if output_size is None and any(o < 1 for o in default):
        value_error(op, "padding", padding, f"padding that leaves an output size >= 1 in every dim (default "
                    f"output {default} = (in - 1) * stride + kernel - before - after)")
    out = _unpool_output(op, output_size, default, s, batched)
    return UnpoolSpec(op, k, s, pad, batched, in_sp, out)


def _ratio(op: str, output_ratio: Any, nd: int) -> tuple[float, ...]:
    expected = f"a number or a sequence of {nd} numbers, each strictly between 0 and 1"
    values = output_ratio if is_sequence(output_ratio) else (output_ratio,) * nd
    if len(values) != nd:
        value_error(op, "output_ratio", output_ratio, expected)
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            type_error(op, "output_ratio", output_ratio, expected)
        if math.isnan(v) or not 0 < v < 1:
            value_error(op, "output_ratio", output_ratio, expected)
        out.append(float(v))
    return tuple(out)


def _samples(op: str, x: torch.Tensor, samples: Any, batched: bool, nd: int) -> None:
    if samples is None:
        return
    b = int(x.shape[0]) if batched else 1
    c = int(x.shape[-nd - 1])
    if not isinstance(samples, torch.Tensor):
        check_tensor(op, "_random_samples", samples, FLOAT_DTYPES)
    check_same_kind(op, x, "_random_samples", samples)
    if tuple(samples.shape) != (b, c, nd):
        value_error(op, "_random_samples", samples, f"a tensor of shape (B, C, N) = {(b, c, nd)}")


def fractional_spec(op: str, input: Any, kernel_size: Any, output_size: Any = None, output_ratio: Any = None,
                    return_indices: Any = False, _random_samples: Any = None, *,
                    n: int | None = None) -> FractionalSpec:
    """Validate a fractional max pooling call and resolve it into a :class:`FractionalSpec`.

    Exactly one of ``output_size`` (an int or N ints) and ``output_ratio`` (a number or N
    numbers in ``(0, 1)``, giving ``int(in * ratio)``) is given; every dim needs
    ``out + kernel - 1 <= in``. ``_random_samples``, when given, is a ``(B, C, N)`` tensor of
    the input's dtype and device (``B = 1`` for an unbatched input).

    Raises:
        ValueError, TypeError: naming the parameter.

    Examples:
        >>> import torch
        >>> fractional_spec("fractional_max_pool", torch.empty(2, 3, 10, 7, device="meta"), 2,
        ...                 output_ratio=(0.5, 0.75)).out_spatial
        (5, 5)
    """
    check_float_input(op, input)
    nd = spatial_dims(op, input, kernel_size, "kernel_size", n)
    batched = check_input_rank(op, input, nd)
    kernel_size, output_size, output_ratio = (_broadcast(v, n) for v in (kernel_size, output_size, output_ratio))
    k = int_tuple(op, "kernel_size", kernel_size, nd)
    in_sp = tuple(int(v) for v in input.shape[-nd:])
    if output_size is None and output_ratio is None:
        value_error(op, "output_size", None, "given when output_ratio is None (exactly one of the two)")
    if output_size is not None and output_ratio is not None:
        value_error(op, "output_ratio", output_ratio, "None when output_size is given (exactly one of the two)")
    if output_size is not None:
        out = int_tuple(op, "output_size", output_size, nd)
    else:
        ratios = _ratio(op, output_ratio, nd)
        out = tuple(_shapes.fractional_output_size(i, r) for i, r in zip(in_sp, ratios))
        if any(o < 1 for o in out):
            value_error(op, "output_ratio", output_ratio, f"a ratio giving output sizes >= 1 (int(in * ratio) = {out})")
    for d in range(nd):
        if out[d] + k[d] - 1 > in_sp[d]:
            value_error(op, "kernel_size", kernel_size, f"a kernel with output + kernel - 1 <= input in every dim "
                        f"(dim {d}: {out[d]} + {k[d]} - 1 > {in_sp[d]})")
    ri = boolean(op, "return_indices", return_indices)
    _samples(op, input, _random_samples, batched, nd)
    return FractionalSpec(op, batched, in_sp, out, ri, k)


def check_index_range(op: str, name: str, t: torch.Tensor, lo: float, hi: float, expected: str,
                      closed: bool = False) -> None:
    """Data check (skipped on meta tensors): every value of ``t`` in ``[lo, hi)`` (``[lo, hi]`` if closed)."""
    if t.device.type == "meta" or t.numel() == 0:
        return
    mn, mx = (float(v) for v in torch.aminmax(t.detach()))
    if mn < lo or (mx > hi if closed else mx >= hi) or math.isnan(mn) or math.isnan(mx):
        value_error(op, name, t, expected + f" (found values in [{mn:g}, {mx:g}])")

