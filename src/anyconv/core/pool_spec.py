"""The front door for pooling: every pooling call is validated and resolved here.

Raw user arguments go in; a frozen :class:`PoolSpec` (or :class:`AdaptiveSpec`) comes out,
with per-dim kernel/stride/dilation tuples, explicit ``(before, after)`` padding pairs
('valid', 'same', 'same_lower' and 'causal' resolved), ``ceil_mode`` applied and the output
spatial sizes computed. Only ``input.shape``/``dim()``/``dtype`` are read, never tensor data,
so a shape calculator can call these functions with meta tensors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from . import shapes as _shapes
from .args import as_int, boolean, int_tuple, is_sequence, padding_arg, torch_form
from .errors import type_error, value_error
from .spec import FLOAT_DTYPES, check_input_rank, check_tensor, resolve_padding
from .spec_cache import SPEC_CACHE, pool_key
from .tracing import untraced
from .types import Pairs


@dataclass(frozen=True)
class PoolSpec:
    """A validated sliding-window pooling call (max, avg or lp).

    Window ``p`` (per dim) reads input positions ``p * stride - before + q * dilation`` for
    ``q < kernel``; positions outside ``[0, in)`` are padding.
    """

    op: str
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: Pairs
    ceil_mode: bool
    batched: bool
    in_spatial: tuple[int, ...]
    out_spatial: tuple[int, ...]
    return_indices: bool = False
    count_include_pad: bool = True
    divisor_override: int | None = None
    norm_type: float | None = None

    @property
    def n(self) -> int:
        return len(self.kernel)


@dataclass(frozen=True)
class AdaptiveSpec:
    """A validated adaptive pooling call: output cell ``j`` of a dim of size ``i`` pools
    ``[floor(j * i / o), ceil((j + 1) * i / o))``."""

    op: str
    batched: bool
    in_spatial: tuple[int, ...]
    out_spatial: tuple[int, ...]
    return_indices: bool = False

    @property
    def n(self) -> int:
        return len(self.out_spatial)


def check_float_input(op: str, input: Any) -> None:
    if not (isinstance(input, torch.Tensor) and input.dtype in FLOAT_DTYPES):
        check_tensor(op, "input", input, FLOAT_DTYPES)


def spatial_dims(op: str, input: Any, value: Any, name: str, n: int | None) -> int:
    """N: fixed by an alias, else the length of a sequence ``value``, else ``input.dim() - 2``."""
    if n is not None:
        return n
    if is_sequence(value):
        if len(value) < 1:
            value_error(op, name, value, "an int or a non-empty sequence of ints")
        return len(value)
    if input.dim() < 3:
        value_error(op, "input", input, "a batched (B, C, *spatial) tensor of at least 3 dims "
                    f"when `{name}` is an int (pass a sequence to set the number of spatial dims)")
    return int(input.dim() - 2)


def _divisor(op: str, value: Any) -> int | None:
    """``None`` or a non-zero int (a negative divisor flips the sign, as torch)."""
    if value is None:
        return None
    d = as_int(op, "divisor_override", value, "None or a non-zero int")
    if d == 0:
        value_error(op, "divisor_override", value, "None or a non-zero int")
    return d


def _check_nonempty(op: str, input: torch.Tensor, batched: bool) -> None:
    """torch's rule: only the batch dim of a pooling input may be 0 (channels may not)."""
    dims = input.shape[1:] if batched else input.shape
    if any(v == 0 for v in dims):
        value_error(op, "input", input, "sizes >= 1 in every dim but the batch dim")


def _norm(op: str, value: Any) -> float:
    expected = "a non-zero number (inf and -inf included)"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        type_error(op, "norm_type", value, expected)
    if math.isnan(value) or value == 0:
        value_error(op, "norm_type", value, expected)
    return float(value)


def pool_spec(
    op: str,
    input: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: Any = False,
    *,
    n: int | None = None,
    return_indices: Any = False,
    count_include_pad: Any = True,
    divisor_override: Any = None,
    norm_type: Any = None,
) -> PoolSpec:
    """Validate a max/avg/lp pooling call and resolve it into a :class:`PoolSpec`.

    ``n`` is the number of spatial dims fixed by an alias (``max_pool2d``: 2); ``None`` takes
    it from ``kernel_size`` (a sequence) or ``input.dim() - 2``; with ``n`` fixed a one-element
    sequence is broadcast to every dim, as torch. ``stride`` of ``None``, ``()`` or ``[]`` means
    ``kernel_size``. ``norm_type`` is checked only when not ``None`` (lp pooling).

    Shape:
        ``out = floor_or_ceil((in + before + after - (k - 1) * dilation - 1) / stride) + 1``,
        a ``ceil_mode`` window starting in the end padding dropped.

    Raises:
        ValueError, TypeError: naming the parameter; also when a window covers padding only.

    Examples:
        >>> import torch
        >>> s = pool_spec("max_pool", torch.empty(1, 3, 7, 7, device="meta"), 3, 2, "same")
        >>> s.padding, s.out_spatial
        (((1, 1), (1, 1)), (4, 4))
    """
    key = pool_key(op, input, (kernel_size, stride, padding, dilation),
                   (ceil_mode, n, return_indices, count_include_pad, divisor_override, norm_type))
    spec = SPEC_CACHE.get(key) if key is not None else None
    if spec is None:
        # traced (torch.jit.trace): shapes read as plain ints, no TracerWarning (see _tracing)
        spec = untraced(_pool_spec, op, input, kernel_size, stride, padding, dilation, ceil_mode, n,
                        return_indices, count_include_pad, divisor_override, norm_type)
        if key is not None:
            SPEC_CACHE.put(key, spec)
    return spec  # type: ignore[no-any-return]


def _pool_spec(op: str, input: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: Any,
               n: int | None, return_indices: Any, count_include_pad: Any, divisor_override: Any,
               norm_type: Any) -> PoolSpec:
    check_float_input(op, input)
    if norm_type is not None:
        norm: float | None = _norm(op, norm_type)
    else:
        norm = None
    nd = spatial_dims(op, input, kernel_size, "kernel_size", n)
    batched = check_input_rank(op, input, nd)
    _check_nonempty(op, input, batched)
    if n is not None:  # N fixed by a torch-named alias or module: torch's one-element forms
        kernel_size, stride, padding, dilation = (torch_form(v, n) for v in (kernel_size, stride, padding, dilation))
    k = int_tuple(op, "kernel_size", kernel_size, nd)
    no_stride = stride is None or (is_sequence(stride) and len(stride) == 0)
    s = k if no_stride else int_tuple(op, "stride", stride, nd)
    pad = padding_arg(op, padding, nd)
    d = int_tuple(op, "dilation", dilation, nd)
    cm = boolean(op, "ceil_mode", ceil_mode)
    ri = boolean(op, "return_indices", return_indices)
    cip = boolean(op, "count_include_pad", count_include_pad)
    div = _divisor(op, divisor_override)
    in_sp = tuple(int(v) for v in input.shape[-nd:])
    pairs = resolve_padding(op, pad, in_sp, k, s, d)
    out = []
    for i in range(nd):
        (pb, pa), eff = pairs[i], _shapes.effective_kernel(k[i], d[i])
        o = _shapes.pool_output_size(in_sp[i], k[i], s[i], d[i], pb, pa, cm)
        if o < 1:
            value_error(op, "kernel_size", kernel_size,
                        f"a dilated kernel ((k - 1) * dilation + 1 = {eff}) no larger than the "
                        f"padded input ({in_sp[i] + pb + pa}) in spatial dim {i}")
        j = _shapes.pool_empty_window(in_sp[i], k[i], s[i], d[i], pb, o)
        if j is not None:
            value_error(op, "padding", padding,
                        f"padding that leaves every window at least one input element (window {j} "
                        f"of spatial dim {i} covers padding only)")
        out.append(o)
    return PoolSpec(op, k, s, d, pairs, cm, batched, in_sp, tuple(out), ri, cip, div, norm)


def adaptive_spec(
    op: str, input: Any, output_size: Any, *, n: int | None = None, return_indices: Any = False
) -> AdaptiveSpec:
    """Validate an adaptive pooling call and resolve it into an :class:`AdaptiveSpec`.

    ``output_size`` is an int or a sequence of N ints or ``None`` (``None`` keeps that input size).

    Examples:
        >>> import torch
        >>> adaptive_spec("adaptive_avg_pool", torch.empty(2, 3, 9, 5, device="meta"), (4, None)).out_spatial
        (4, 5)
    """
    return untraced(_adaptive_spec, op, input, output_size, n, return_indices)


def _adaptive_spec(op: str, input: Any, output_size: Any, n: int | None, return_indices: Any) -> AdaptiveSpec:
    check_float_input(op, input)
    if isinstance(output_size, (str, bytes)) or output_size is None or not (
        is_sequence(output_size) or hasattr(output_size, "__index__")
    ):
        type_error(op, "output_size", output_size, "a positive int or a sequence of N positive ints or None")
    nd = spatial_dims(op, input, output_size, "output_size", n)
    batched = check_input_rank(op, input, nd)
    in_sp = tuple(int(v) for v in input.shape[-nd:])
    expected = f"a positive int or a sequence of {nd} positive ints or None"
    values: Sequence[Any] = output_size if is_sequence(output_size) else (output_size,) * nd
    if len(values) != nd:
        value_error(op, "output_size", output_size, expected)
    out = []
    for i, v in enumerate(values):
        if v is None:
            out.append(in_sp[i])
            continue
        o = as_int(op, "output_size", v, expected)
        if o < 1:
            value_error(op, "output_size", output_size, expected)
        out.append(o)
    ri = boolean(op, "return_indices", return_indices)
    return AdaptiveSpec(op, batched, in_sp, tuple(out), ri)
