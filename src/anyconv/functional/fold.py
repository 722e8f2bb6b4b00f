"""``unfold`` (im2col) and ``fold`` (col2im) for any number of spatial dims.

Same layout as ``torch.nn.functional.unfold``/``fold`` (which serve 2 spatial dims only):
columns ``(B, C * prod(kernel), L)`` with the channel outermost, then the kernel offsets in
row-major order; ``L`` output positions in row-major order. ``fold`` sums overlapping values;
it is the adjoint of ``unfold``, and each is the other's gradient.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..core import shapes as _shapes
from ..core.args import int_tuple, padding_arg
from ..core.errors import value_error
from ..core.padding import pad
from ..core.spec import COMPLEX_DTYPES, FLOAT_DTYPES, check_spans, check_tensor, resolve_padding, unit_steps
from ..core.types import IntOrSeq, PaddingArg
from ..core.windows import windows

_DTYPES = FLOAT_DTYPES + COMPLEX_DTYPES


@dataclass(frozen=True)
class FoldSpec:
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    spatial: tuple[int, ...]  # the (unpadded) image size
    blocks: tuple[int, ...]  # output positions per dim


def _spec(op: str, n: int, spatial: Sequence[int], kernel_size: Any, dilation: Any, padding: Any, stride: Any) -> FoldSpec:
    k = int_tuple(op, "kernel_size", kernel_size, n)
    d = int_tuple(op, "dilation", dilation, n)
    s = int_tuple(op, "stride", stride, n)
    p = resolve_padding(op, padding_arg(op, padding, n), spatial, k, s, d)
    check_spans(op, "padding", padding, [i + b + a for i, (b, a) in zip(spatial, p)])
    blocks = tuple(
        _shapes.conv_output_size(i, kk, ss, dd, b, a) for i, kk, ss, dd, (b, a) in zip(spatial, k, s, d, p)
    )
    if any(b < 1 for b in blocks):
        value_error(
            op,
            "kernel_size",
            kernel_size,
            f"a dilated kernel no larger than the padded input {tuple(i + b + a for i, (b, a) in zip(spatial, p))}",
        )
    s, d = unit_steps(s, d, k, [i + b + a for i, (b, a) in zip(spatial, p)])
    return FoldSpec(k, s, d, p, tuple(spatial), blocks)


def _unfold_raw(x: torch.Tensor, spec: FoldSpec) -> torch.Tensor:
    n = len(spec.kernel)
    b, c = x.shape[:2]
    win = windows(pad(x, spec.padding), spec.kernel, spec.stride, spec.dilation)  # (B, C, *o, *k)
    perm = (0, 1, *range(2 + n, 2 + 2 * n), *range(2, 2 + n))
    return win.permute(perm).reshape(b, c * _shapes.prod(spec.kernel), _shapes.prod(spec.blocks))


def _fold_raw(cols: torch.Tensor, spec: FoldSpec) -> torch.Tensor:
    n = len(spec.kernel)
    b = cols.shape[0]
    kk = _shapes.prod(spec.kernel)
    c = cols.shape[1] // kk
    cols = cols.reshape(b, c, *spec.kernel, *spec.blocks)  # (B, C, *k, *o)
    padded = [i + pb + pa for i, (pb, pa) in zip(spec.spatial, spec.padding)]
    out = cols.new_zeros((b, c, *padded))
    for q in itertools.product(*(range(k) for k in spec.kernel)):
        target = tuple(
            slice(qi * d, qi * d + (o - 1) * s + 1, s)
            for qi, d, o, s in zip(q, spec.dilation, spec.blocks, spec.stride)
        )
        dst = (slice(None), slice(None), *target)
        src: tuple[slice | int, ...] = (slice(None), slice(None), *q)
        out[dst].add_(cols[src])
    return pad(out, [(-pb, -pa) for pb, pa in spec.padding]) if n else out


class _Unfold(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, spec: FoldSpec) -> torch.Tensor:  # type: ignore[override]
        ctx.spec = spec
        return _unfold_raw(x, spec)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        return _Fold.apply(g, ctx.spec), None


class _Fold(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, cols: torch.Tensor, spec: FoldSpec) -> torch.Tensor:  # type: ignore[override]
        ctx.spec = spec
        return _fold_raw(cols, spec)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        return _Unfold.apply(g, ctx.spec), None


def unfold(
    input: torch.Tensor,
    kernel_size: IntOrSeq,
    dilation: IntOrSeq = 1,
    padding: PaddingArg = 0,
    stride: IntOrSeq = 1,
) -> torch.Tensor:
    """Extract sliding blocks (im2col) from an N-d input, in torch's layout.

    ``N = len(kernel_size)`` when a sequence is given, else ``input.dim() - 2``, except that a 3-d
    input with an int ``kernel_size`` is one unbatched 2-d image, as torch reads it (give a sequence,
    e.g. ``[k]``, for a batch of 1-d signals).

    Shape:
        ``(B, C, *spatial) -> (B, C * prod(kernel_size), L)``, ``L = prod(o_i)`` with
        ``o_i = floor((in_i + before_i + after_i - dilation_i * (k_i - 1) - 1) / stride_i) + 1``;
        unbatched ``(C, *spatial) -> (C * prod(kernel_size), L)``.

    Examples:
        >>> import torch, anyconv.functional as AF
        >>> AF.unfold(torch.arange(4.0).reshape(1, 1, 4), [2]).tolist()
        [[[0.0, 1.0, 2.0], [1.0, 2.0, 3.0]]]
        >>> AF.unfold(torch.randn(2, 3, 4, 4, 4), 2, stride=2).shape
        torch.Size([2, 24, 8])
        >>> AF.unfold(torch.randn(3, 4, 4), 2).shape  # (C, H, W): one image, as torch
        torch.Size([12, 9])
    """
    op = "unfold"
    check_tensor(op, "input", input, _DTYPES)
    if isinstance(kernel_size, Sequence):
        n = len(kernel_size)
    else:
        n = 2 if input.dim() == 3 else input.dim() - 2  # (torch: a 3-d input is one unbatched image)
    if isinstance(kernel_size, Sequence) and n < 1:
        value_error(op, "kernel_size", kernel_size, "a positive int or a non-empty sequence of positive ints")
    if n < 1 or input.dim() not in (n + 1, n + 2):
        value_error(op, "input", input, f"a (B, C, *spatial) or (C, *spatial) tensor for {max(n, 1)} spatial dims")
    if any(v < 1 for v in input.shape[-n:]):
        value_error(op, "input", input, "spatial sizes >= 1")
    batched = input.dim() == n + 2
    x = input if batched else input.unsqueeze(0)
    spec = _spec(op, n, x.shape[2:], kernel_size, dilation, padding, stride)
    out = _Unfold.apply(x, spec)
    return out if batched else out.squeeze(0)


def fold(
    input: torch.Tensor,
    output_size: IntOrSeq,
    kernel_size: IntOrSeq,
    dilation: IntOrSeq = 1,
    padding: PaddingArg = 0,
    stride: IntOrSeq = 1,
) -> torch.Tensor:
    """Combine sliding blocks into an N-d tensor (col2im), summing overlaps; torch's layout.

    ``N = len(output_size)`` (or ``len(kernel_size)``) when a sequence is given, else 2.

    Shape:
        ``(B, C * prod(kernel_size), L) -> (B, C, *output_size)`` where ``L`` must equal the
        number of blocks ``prod(o_i)`` (formula as in :func:`unfold`); unbatched
        ``(C * prod(kernel_size), L) -> (C, *output_size)``.

    Examples:
        >>> import torch, anyconv.functional as AF
        >>> AF.fold(torch.ones(1, 2, 3), [4], [2]).tolist()
        [[[1.0, 2.0, 2.0, 1.0]]]
    """
    op = "fold"
    check_tensor(op, "input", input, _DTYPES)
    n_from: tuple[str, Any] = ("output_size", output_size)
    if isinstance(output_size, Sequence):
        n = len(output_size)
    elif isinstance(kernel_size, Sequence):
        n, n_from = len(kernel_size), ("kernel_size", kernel_size)
    else:
        n = 2
    if n < 1:
        value_error(op, n_from[0], n_from[1], "a positive int or a non-empty sequence of positive ints")
    size = int_tuple(op, "output_size", output_size, n)
    if input.dim() not in (2, 3):
        value_error(op, "input", input, "a (B, C * prod(kernel_size), L) or (C * prod(kernel_size), L) tensor")
    batched = input.dim() == 3
    cols = input if batched else input.unsqueeze(0)
    spec = _spec(op, n, size, kernel_size, dilation, padding, stride)
    kk = _shapes.prod(spec.kernel)
    if cols.shape[1] % kk != 0 or cols.shape[1] == 0:
        value_error(op, "input", input, f"dim {input.dim() - 2} divisible by prod(kernel_size) = {kk}")
    if cols.shape[2] != _shapes.prod(spec.blocks):
        value_error(
            op,
            "input",
            input,
            f"{_shapes.prod(spec.blocks)} blocks in its last dim ({' x '.join(map(str, spec.blocks))} for "
            f"output_size={size})",
        )
    out = _Fold.apply(cols, spec)
    return out if batched else out.squeeze(0)
