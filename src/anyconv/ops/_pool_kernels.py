"""Pooling kernels without autograd: loops over kernel offsets with running max / sum.

For every kernel offset ``q`` (``prod(kernel)`` of them) the outputs whose window element
``q`` lies inside the input form a box (``_shapes.pool_offset_range`` per dim), and the
input elements they read form a strided slice of the *unpadded* input. Each kernel step is
one elementwise update of that output box with that slice: no padded copy of the input, no
window copy, workspace O(output) (a boolean mask and a small integer offset code for max).

Max pooling keeps a running maximum and, when indices are needed, the flat input offset of
the kernel element that holds it (``sum_d q_d * dilation_d * instride_d``, a scalar per step),
updated where ``v > max`` (first maximum wins) or ``v`` is NaN (the last NaN wins), which is
torch's CPU rule; a window whose values are all ``-inf`` points at its first input element,
as in torch. The flat index is the window's base position plus that offset.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator, Sequence

import torch

from ..core import shapes as _shapes
from ..core.pool_spec import PoolSpec
from ..core.tracing import untraced

Box = tuple[tuple[slice, ...], tuple[slice, ...]]  # (output box, input slice) over spatial dims


def instrides(in_spatial: Sequence[int]) -> list[int]:
    st, acc = [], 1
    for v in reversed(in_spatial):
        st.append(acc)
        acc *= v
    return st[::-1]


def offset_boxes(spec: PoolSpec) -> Iterator[tuple[tuple[int, ...], Box]]:
    """``(q, (output box, input slice))`` for every kernel offset ``q`` that reads any input."""
    per_dim: list[list[tuple[int, slice, slice] | None]] = []
    for i, o, k, s, d, (pb, _) in zip(
        spec.in_spatial, spec.out_spatial, spec.kernel, spec.stride, spec.dilation, spec.padding
    ):
        row: list[tuple[int, slice, slice] | None] = []
        for q in range(k):
            lo, hi = _shapes.pool_offset_range(i, s, d, pb, o, q)
            if hi <= lo:
                row.append(None)
                continue
            start = lo * s - pb + q * d
            row.append((q, slice(lo, hi), slice(start, start + (hi - lo - 1) * s + 1, s)))
        per_dim.append(row)
    for combo in itertools.product(*per_dim):
        if any(c is None for c in combo):
            continue
        yield (
            tuple(c[0] for c in combo),  # type: ignore[index]
            (tuple(c[1] for c in combo), tuple(c[2] for c in combo)),  # type: ignore[index]
        )


def _code_dtype(limit: int) -> torch.dtype:
    if limit < 2**15:
        return torch.int16
    return torch.int32 if limit < 2**31 else torch.int64


def max_pool_running(x: torch.Tensor, spec: PoolSpec, need_indices: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Max pooling of a batched ``(B, C, *in)`` tensor: values ``(B, C, *out)`` and, if asked,
    torch-layout indices (flat position in each channel's unpadded input)."""
    lead = (slice(None), slice(None))
    out = x.new_full((*x.shape[:2], *spec.out_spatial), float("-inf"))
    boxes = list(offset_boxes(spec))
    if not need_indices:
        for _, (ob, ib) in boxes:
            o = out[lead + ob]
            torch.maximum(o, x[lead + ib], out=o)
        return out, None
    st = instrides(spec.in_spatial)
    step = [d * s for d, s in zip(spec.dilation, st)]
    code_t = _code_dtype(sum((k - 1) * d for k, d in zip(spec.kernel, step)) + 1)
    code = (first_inside_index(spec, x.device) - window_base(spec, x.device)).to(code_t).expand(out.shape).clone()
    has_nan = x.is_floating_point() and bool(torch.isnan(x).any())
    for q, (ob, ib) in boxes:
        o, v = out[lead + ob], x[lead + ib]
        upd = v > o
        if has_nan:
            upd |= torch.isnan(v)
        code[lead + ob].masked_fill_(upd, sum(a * b for a, b in zip(q, step)))
        torch.maximum(o, v, out=o)
    return out, code.to(torch.int64) + window_base(spec, x.device)


def _starts(spec: PoolSpec, dim: int) -> torch.Tensor:
    """``j * s - before`` for every output position ``j`` of spatial dim ``dim`` (int64, CPU)."""
    return torch.arange(spec.out_spatial[dim]) * spec.stride[dim] - spec.padding[dim][0]


def _on_axis(t: torch.Tensor, dim: int, n: int, device: torch.device) -> torch.Tensor:
    shape = [1] * n
    shape[dim] = t.numel()
    return t.reshape(shape).to(device)


def window_base(spec: PoolSpec, device: torch.device) -> torch.Tensor:
    """Flat position of every window's first element ``sum_d (j_d * s_d - before_d) * instride_d``
    (negative or past the end for windows starting in the padding), shaped ``out_spatial``."""
    n, st = spec.n, instrides(spec.in_spatial)
    total = torch.zeros(spec.out_spatial, dtype=torch.int64, device=device)
    for dim in range(n):
        total += _on_axis(_starts(spec, dim) * st[dim], dim, n, device)
    return total


def first_inside_index(spec: PoolSpec, device: torch.device) -> torch.Tensor:
    """Flat position of every window's first input element (where torch starts its argmax):
    element ``q0 = ceil(max(0, before - j * s) / d)`` per dim (``_shapes.pool_first_inside``)."""
    n, st = spec.n, instrides(spec.in_spatial)
    total = torch.zeros(spec.out_spatial, dtype=torch.int64, device=device)
    for dim in range(n):
        start, d = _starts(spec, dim), spec.dilation[dim]
        q0 = (torch.clamp(-start, min=0) + d - 1) // d
        total += _on_axis((start + q0 * d) * st[dim], dim, n, device)
    return total


def window_sum_running(x: torch.Tensor, spec: PoolSpec, acc_dtype: torch.dtype) -> torch.Tensor:
    """Sum over each window's input elements (padding adds nothing): ``(B, C, *in) -> (B, C, *out)``.

    Accumulates in ``acc_dtype`` (float32 for half types) in window scan order.
    """
    lead = (slice(None), slice(None))
    shape = (*x.shape[:2], *spec.out_spatial)
    boxes = list(offset_boxes(spec))
    full = next((b for b in boxes if all(sl.stop - sl.start == o for sl, o in zip(b[1][0], spec.out_spatial))), None)
    if full is not None and full is boxes[0]:
        acc = x[lead + full[1][1]].to(acc_dtype, copy=True)
        rest = boxes[1:]
    else:
        acc = torch.zeros(shape, dtype=acc_dtype, device=x.device)
        rest = boxes
    for _, (ob, ib) in rest:
        acc[lead + ob].add_(x[lead + ib])
    return acc


def window_sum_t(g: torch.Tensor, spec: PoolSpec) -> torch.Tensor:
    """Adjoint of :func:`window_sum`: spread each output back over its window's input elements.

    ``(B, C, *out) -> (B, C, *in)``. When windows do not overlap (``stride >= (k - 1) * d + 1``
    in every dim) every input element gets at most one term, so the adds become plain copies,
    which handle the strided destinations much faster.
    """
    lead = (slice(None), slice(None))
    gi = g.new_zeros((*g.shape[:2], *spec.in_spatial))
    disjoint = all(s >= _shapes.effective_kernel(k, d) for s, k, d in zip(spec.stride, spec.kernel, spec.dilation))
    for _, (ob, ib) in offset_boxes(spec):
        if disjoint:
            gi[lead + ib] = g[lead + ob]
        else:
            gi[lead + ib].add_(g[lead + ob])
    return gi


def window_counts(spec: PoolSpec, include_pad: bool, device: torch.device, dtype: torch.dtype) -> torch.Tensor | float:
    """The avg-pool divisor for every output position (a float when it is the same everywhere).

    Per dim, window ``j`` counts the ``q < k`` with ``lo <= j * s - before + q * d < hi``
    (``[lo, hi)`` the padded input, or the input without ``include_pad``:
    ``_shapes.pool_window_count``), in plain ints (cached per geometry), so that tracing
    (compile, export, jit.trace) sees a constant; a box window's count is the product over dims.
    """
    per_dim = _counts(spec.in_spatial, spec.kernel, spec.stride, spec.dilation, spec.padding, spec.out_spatial,
                      include_pad)
    if all(min(c) == max(c) for c in per_dim):
        return float(_shapes.prod([c[0] for c in per_dim]))
    return untraced(_count_tensor, per_dim, device, dtype)  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=256)
def _counts(in_spatial: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...], dilation: tuple[int, ...],
            padding: tuple[tuple[int, int], ...], out_spatial: tuple[int, ...], include_pad: bool
            ) -> tuple[tuple[int, ...], ...]:
    return tuple(
        tuple(_shapes.pool_window_count(i, k, s, d, pb, pa, j, include_pad) for j in range(o))
        for i, k, s, d, (pb, pa), o in zip(in_spatial, kernel, stride, dilation, padding, out_spatial))


def _count_tensor(per_dim: tuple[tuple[int, ...], ...], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    n = len(per_dim)
    total: torch.Tensor | None = None
    for dim, c in enumerate(per_dim):
        t = _on_axis(torch.tensor(c, dtype=dtype), dim, n, device)
        total = t if total is None else total * t
    assert total is not None
    return total


def scatter_at(g: torch.Tensor, idx: torch.Tensor, in_spatial: Sequence[int]) -> torch.Tensor:
    """``(B, C, *out)`` values added at flat indices into zeros ``(B, C, *in_spatial)``."""
    b, c = g.shape[:2]
    flat = g.new_zeros((b, c, _shapes.prod(in_spatial)))
    flat.scatter_add_(2, idx.flatten(2), g.flatten(2))  # (flatten: a batch of 0 has no -1 to infer)
    return flat.reshape(b, c, *in_spatial)


def gather_at(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``(B, C, *in)`` read at flat indices ``(B, C, *out)``: the adjoint of :func:`scatter_at`."""
    b, c = x.shape[:2]
    return x.flatten(2).gather(2, idx.flatten(2)).reshape(idx.shape)
