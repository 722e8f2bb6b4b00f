"""The fast path of max and sum pooling: cache-sized window buffers, one reduction per chunk.

Elementwise ops whose operand is a strided slice with a non-unit innermost stride (every
kernel offset of a strided pooling) run an order of magnitude slower than on contiguous
data, and an op per kernel offset streams the whole output through memory each time. So
the channel planes ``(B * C)`` are processed in chunks sized to stay in cache
(``CHUNK_BYTES``); per chunk the ``K`` kernel offsets that read any input are copied into a
contiguous buffer ``(K, planes, *out)`` (copies handle strided sources well; border offsets
are pre-filled with the padding value), and one vectorised reduction over the buffer's first
dim gives the chunk's result: ``amax`` (max) or ``sum`` (in scan order).

Max indices: with ``m = amax``, ``code = amax((buf == m) * (K - k))`` picks the *first*
offset holding the maximum (torch's tie rule), mapped to the flat input position by a lookup
table plus the window base. Two cases are left to the exact running kernel of
``_pool_kernels``: a NaN maximum (torch picks the last NaN) and, cheaply patched here, an
all ``-inf`` window (torch points at its first input element).

Workspace: the buffer and its masks, at most ``CHUNK_BYTES`` per thread plus a mask of a
quarter of that, independent of the input size; a plane whose buffer would exceed ``MAX_PLANE_BYTES`` goes
to the running kernel (workspace O(output)).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..core.cache import BoundedCache
from ..core.pool_spec import PoolSpec
from ..core.shapes import prod
from ..core.workspace import get_workspace_limit
from ._pool_kernels import (
    first_inside_index,
    instrides,
    max_pool_running,
    offset_boxes,
    window_base,
    window_sum_running,
)

CHUNK_BYTES = 1 << 20  # a chunk's window buffer per thread (fits in L2 on common CPUs)
MAX_PLANE_BYTES = 8 << 20  # larger per-plane buffers use the running kernel
SMALL_PAD_ELEMENTS = 1 << 16  # inputs up to this size are padded once and read by one strided copy


def _chunk_planes(spec: PoolSpec, k: int, element_size: int) -> int | None:
    per_plane = k * prod(spec.out_spatial) * element_size
    if per_plane > min(MAX_PLANE_BYTES, get_workspace_limit()):
        return None
    # one cache-sized block per thread: the ops inside a chunk are parallelised by torch
    return max(1, min(CHUNK_BYTES * torch.get_num_threads(), get_workspace_limit()) // per_plane)


def _planes(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, *in)`` as ``(B * C, *in)`` (a view when possible)."""
    try:
        return x.view(-1, *x.shape[2:])
    except RuntimeError:
        return x.reshape(-1, *x.shape[2:])


@dataclass(frozen=True)
class _Plan:
    """What a pooling geometry needs before any data (cached per spec: a layer's repeated calls)."""

    boxes: tuple[tuple[bool, tuple[slice, ...], tuple[slice, ...]], ...]  # (covers the output, out box, in slice)
    table: tuple[int, ...]  # max indices: code (k - position) -> flat input offset of that kernel element


def _make_plan(spec: PoolSpec) -> _Plan:
    pairs = list(offset_boxes(spec))
    k = len(pairs)
    step = [d * s for d, s in zip(spec.dilation, instrides(spec.in_spatial))]
    table = [0] * (k + 1)
    for pos, (q, _) in enumerate(pairs):
        table[k - pos] = sum(a * b for a, b in zip(q, step))
    boxes = tuple((all(sl.stop - sl.start == o for sl, o in zip(ob, spec.out_spatial)), ob, ib)
                  for _, (ob, ib) in pairs)
    return _Plan(boxes, tuple(table))


_PLANS: BoundedCache[PoolSpec, _Plan] = BoundedCache(256)
# index tensors of a geometry on a device (read-only once made), bounded by their bytes
_TENSORS: BoundedCache[tuple[object, ...], tuple[torch.Tensor, ...]] = BoundedCache(
    256, max_weight=32 << 20, weight=lambda ts: sum(t.numel() * t.element_size() for t in ts))


def _plan(spec: PoolSpec) -> _Plan:
    return _PLANS.get_or_make(spec, lambda: _make_plan(spec))


def _index_tensors(spec: PoolSpec, plan: _Plan, device: torch.device) -> tuple[torch.Tensor, ...]:
    """``(lut, weights, base)`` of the max indices: the offset table, the codes ``k..1`` of the
    kernel positions and every window's flat base position."""
    def make() -> tuple[torch.Tensor, ...]:
        k = len(plan.boxes)
        code_t = torch.uint8 if k < 256 else torch.int32
        weights = torch.arange(k, 0, -1, device=device).to(code_t).reshape(k, *([1] * (1 + spec.n)))
        return torch.tensor(plan.table, dtype=torch.int64, device=device), weights, window_base(spec, device)

    return _TENSORS.get_or_make((spec, device), make)


def _strided_source(xf: torch.Tensor, spec: PoolSpec, pad_value: float) -> torch.Tensor | None:
    """Every window element of every plane as one strided view ``(*kernel, planes, *out)`` of the
    (padded) input, when every kernel offset reads some input (so the buffer holds exactly the
    offsets of :func:`offset_boxes`, in its order) and padding the input costs little: one copy
    then fills a chunk's buffer instead of one fill and one copy per offset. Else ``None``."""
    if len(_plan(spec).boxes) != prod(spec.kernel):
        return None
    pads: list[int] = []
    for i, o, k, s, d, (pb, _) in zip(spec.in_spatial, spec.out_spatial, spec.kernel, spec.stride, spec.dilation,
                                      spec.padding):
        pads[:0] = [pb, (o - 1) * s + (k - 1) * d + 1 - pb - i]  # F.pad lists the last dim first
    if any(v > 0 for v in pads) and xf.numel() > SMALL_PAD_ELEMENTS:
        return None
    xp = torch.nn.functional.pad(xf, pads, value=pad_value) if any(pads) else xf
    st = xp.stride()
    sizes = (*spec.kernel, xp.shape[0], *spec.out_spatial)
    strides = (*(d * st[1 + i] for i, d in enumerate(spec.dilation)), st[0],
               *(s * st[1 + i] for i, s in enumerate(spec.stride)))
    return xp.as_strided(sizes, strides, xp.storage_offset())


def _buffered(x: torch.Tensor, spec: PoolSpec, dtype: torch.dtype, pad_value: float,
              reduce: Callable[[torch.Tensor, int, int], None]) -> bool:
    """Run ``reduce(buf, lo, hi)`` for every chunk of planes ``[lo, hi)``; False if not bufferable."""
    boxes = _plan(spec).boxes
    k = len(boxes)
    chunk = _chunk_planes(spec, k, dtype.itemsize)
    if chunk is None:
        return False
    xf = _planes(x)
    planes = xf.shape[0]
    whole = _strided_source(xf, spec, pad_value)
    buf = torch.empty((k, min(chunk, planes), *spec.out_spatial), dtype=dtype, device=x.device)
    for lo in range(0, planes, chunk):
        hi = min(lo + chunk, planes)
        b = buf[:, : hi - lo]
        if whole is not None:  # (*kernel, planes, *out) -> (K, planes, *out)
            b.view(*spec.kernel, hi - lo, *spec.out_spatial).copy_(whole[(slice(None),) * spec.n + (slice(lo, hi),)])
        else:
            for t, (full, ob, ib) in enumerate(boxes):
                bq = b[t]
                if not full:
                    bq.fill_(pad_value)
                bq[(slice(None),) + ob].copy_(xf[(slice(lo, hi),) + ib])
        reduce(b, lo, hi)
    return True


def max_pool_raw(x: torch.Tensor, spec: PoolSpec, need_indices: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Max pooling of a batched ``(B, C, *in)`` tensor: values and (if asked) torch-layout indices."""
    shape = (*x.shape[:2], *spec.out_spatial)
    vals = torch.empty(shape, dtype=x.dtype, device=x.device)
    vf = vals.view(-1, *spec.out_spatial)
    idx = torch.empty(shape, dtype=torch.int64, device=x.device) if need_indices else None
    if need_indices:
        lut, weights, base = _index_tensors(spec, _plan(spec), x.device)
        code_t = weights.dtype
        idf = idx.view(-1, *spec.out_spatial)  # type: ignore[union-attr]

    def reduce(b: torch.Tensor, lo: int, hi: int) -> None:
        m = vf[lo:hi]
        torch.amax(b, 0, out=m)
        if need_indices:
            hits = torch.eq(b, m)
            code = (hits.view(torch.uint8) if code_t == torch.uint8 else hits.to(code_t)).mul_(weights).amax(0)
            torch.add(torch.take(lut, code.long()), base, out=idf[lo:hi])

    if not _buffered(x, spec, x.dtype, float("-inf"), reduce):
        return max_pool_running(x, spec, need_indices)
    if need_indices:
        assert idx is not None
        if x.is_floating_point() and bool(torch.isnan(vals).any()):
            return max_pool_running(x, spec, True)
        empty = vals == float("-inf")
        if bool(empty.any()):
            idx = torch.where(empty, first_inside_index(spec, x.device), idx)
    return vals, idx


def window_sum(x: torch.Tensor, spec: PoolSpec, acc_dtype: torch.dtype) -> torch.Tensor:
    """Sum over each window's input elements in scan order, accumulated in ``acc_dtype``."""
    out = torch.empty((*x.shape[:2], *spec.out_spatial), dtype=acc_dtype, device=x.device)
    of = out.view(-1, *spec.out_spatial)

    def reduce(b: torch.Tensor, lo: int, hi: int) -> None:
        torch.sum(b, 0, out=of[lo:hi])

    if not _buffered(x, spec, acc_dtype, 0.0, reduce):
        return window_sum_running(x, spec, acc_dtype)
    return out
