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

import torch

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


def _buffered(x: torch.Tensor, spec: PoolSpec, dtype: torch.dtype, pad_value: float,
              reduce: Callable[[torch.Tensor, int, int], None]) -> bool:
    """Run ``reduce(buf, lo, hi)`` for every chunk of planes ``[lo, hi)``; False if not bufferable."""
    boxes = [(all(sl.stop - sl.start == o for sl, o in zip(ob, spec.out_spatial)), ob, ib)
             for _, (ob, ib) in offset_boxes(spec)]
    chunk = _chunk_planes(spec, len(boxes), torch.empty((), dtype=dtype).element_size())
    if chunk is None:
        return False
    xf = _planes(x)
    planes = xf.shape[0]
    buf = torch.empty((len(boxes), min(chunk, planes), *spec.out_spatial), dtype=dtype, device=x.device)
    for lo in range(0, planes, chunk):
        hi = min(lo + chunk, planes)
        b = buf[:, : hi - lo]
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
        assert idx is not None
        qs = [q for q, _ in offset_boxes(spec)]
        k = len(qs)
        step = [d * s for d, s in zip(spec.dilation, instrides(spec.in_spatial))]
        table = [0] * (k + 1)  # code (k - position) -> flat offset of that kernel element
        for pos, q in enumerate(qs):
            table[k - pos] = sum(a * b for a, b in zip(q, step))
        lut = torch.tensor(table, dtype=torch.int64, device=x.device)
        code_t = torch.uint8 if k < 256 else torch.int32
        weights = torch.arange(k, 0, -1, device=x.device).to(code_t).reshape(k, *([1] * (1 + spec.n)))
        base = window_base(spec, x.device)
        idf = idx.view(-1, *spec.out_spatial)

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
