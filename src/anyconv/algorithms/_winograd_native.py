"""``winograd``'s 2-D transforms in the native library (``native_c/winograd.c``), chunk by chunk.

The Python transforms (Kronecker matrices applied to a permuted copy of the tiles) cost several
times the products on ResNet layers: a dense ``(36, 36)`` matrix per tile where the separable form
needs ``2 x 6 x 6`` per row, and two permuting copies. The C transforms read the input rows in place
(padding included), apply ``B^T`` to whole rows and ``B`` across tiles, and write the transformed
tiles straight into the ``(a^2, C, tiles)`` layout of the batched product; the output transform
writes ``A^T M A`` straight into ``y``, cropped. The ``a^2`` planes of both (the transformed tiles and the
products) lie an odd number of cache lines apart (:func:`plane`): a tile's ``a^2`` values are read or
written together, and at a power-of-two distance (64 channels of 256 tiles: 64 KiB) they all fall into
one cache set (the output transform ran 0.45 ms instead of 0.27 on ResNet's 64-channel 3x3 layer). Used for float32/float64 CPU calls in 2-D when the
library is there (:func:`serves`); otherwise ``winograd`` keeps its tensor-op transforms.

Example:
    >>> import torch
    >>> from anyconv.algorithms.winograd import matrices
    >>> x = torch.arange(36.0, dtype=torch.float64).reshape(1, 1, 6, 6)
    >>> at, _, bt = matrices(4)
    >>> v = transform_in(x, (slice(0, 1), slice(0, 1), slice(0, 1)), 4, bt, ((0, 0), (0, 0)))
    >>> torch.allclose(v.reshape(6, 6), bt @ x[0, 0] @ bt.T)
    True
    >>> y = torch.empty(1, 1, 4, 4, dtype=torch.float64)
    >>> transform_out(products(36, 1, 1, torch.float64).copy_(v), (slice(0, 1),) * 3, 4, at, y, 1, 1, 0)
    >>> torch.allclose(y[0, 0], at @ v.reshape(6, 6) @ at.T)
    True
"""

from __future__ import annotations

import ctypes

import torch

from ..core import scratch
from . import _native_abi as abi

MAX_TILE_COLUMNS = 64  # tiles per row the C transforms take (8 vectors of float64)


def serves(x: torch.Tensor, n: int, tiles: list[int], m: int) -> bool:
    """Whether the native transforms compute this call's tiles (2-D, F(2), F(4) or F(6), float32/float64
    on the CPU, at most :data:`MAX_TILE_COLUMNS` tiles per row; one vector's worth on a build without
    AVX-512)."""
    if not (n == 2 and m in (2, 4, 6) and x.dtype in abi.DTYPES and x.device.type == "cpu" and tiles[-1] <= MAX_TILE_COLUMNS
            and abi.library() is not None):
        return False
    # without AVX-512 the 64-byte vectors are emulated, and rows of more than one vector of tiles go through
    # the stack (U-Net's 128-pixel rows: 12 ms by the AVX2 build's transforms, 3.6 by the tensor ops)
    return abi.lanes_built() or tiles[-1] <= 64 // x.element_size()


def _args(m: int, c: int, t: tuple[slice, ...], threads: int) -> abi.WinoArgs:
    args = abi.WinoArgs()
    args.m, args.a, args.c = m, m + 2, c
    args.b0, args.b1 = t[0].start, t[0].stop
    args.ty0, args.ty1, args.tx0, args.tx1 = t[1].start, t[1].stop, t[2].start, t[2].stop
    args.threads = threads
    return args


def _run(kernel: str, args: abi.WinoArgs, dtype: torch.dtype, *tensors: torch.Tensor) -> None:
    lib = abi.library()
    assert lib is not None
    fn = getattr(lib, f"{kernel}_{abi.DTYPES[dtype]}")
    if fn(ctypes.addressof(args), *(t.data_ptr() for t in tensors)) != 0:
        raise MemoryError(f"winograd: the native {kernel} transform could not allocate its row buffers")


def transform_in(x: torch.Tensor, t: tuple[slice, ...], m: int, bt: torch.Tensor,
                 padding: tuple[tuple[int, int], ...], rows_apart: bool = False,
                 slot: str = "winograd.tiles") -> torch.Tensor:
    """``V = B^T d B`` of the chunk ``t`` (sample, tile-row and tile-column slices) of ``x (B, C, H, W)``
    padded by ``padding``: ``(a^2, C, tiles)``, tiles in (sample, row, column) order (kept scratch: valid
    until this thread's next call for ``slot``). ``rows_apart``: each channel's row of tiles
    :func:`line_stride` apart, for a product that reads V transposed (a column of channels per tile)."""
    b, c, h, w = x.shape
    p = (t[0].stop - t[0].start) * (t[1].stop - t[1].start) * (t[2].stop - t[2].start)
    a = m + 2
    v = _planes(slot, a * a, c, p, x.dtype, 0, line_stride(p, x.dtype) if rows_apart else p)
    args = _args(m, c, t, abi.call_threads(c * p * a * a * 12))
    args.plane, args.rs = v.stride(0), v.stride(1)
    args.h, args.w, args.ph, args.pw = h, w, padding[0][0], padding[1][0]
    args.xs[:] = list(x.stride())
    _run("wino_in", args, x.dtype, x, bt.to(x.dtype).contiguous(), v)
    return v


SLACK = 16  # elements after the products that the output transform may read (a vector's worth)


def line_stride(n: int, dtype: torch.dtype) -> int:
    """``n`` elements rounded up to whole cache lines, an odd number of them (rows or planes a power of two
    apart would share one cache set when read across).

    >>> line_stride(2048, torch.float32), line_stride(20, torch.float32)
    (2064, 48)
    """
    line = max(1, 64 // torch.empty((), dtype=dtype).element_size())
    lines = -(-n // line)
    return (lines + 1 - lines % 2) * line


def plane(rows: int, p: int, dtype: torch.dtype) -> int:
    """Elements from one ``a^2`` coordinate's plane of ``rows x p`` to the next (:func:`line_stride`)."""
    return line_stride(rows * p, dtype)


def _planes(slot: str, a2: int, rows: int, p: int, dtype: torch.dtype, slack: int, rs: int | None = None) -> torch.Tensor:
    """An empty ``(a2, rows, p)`` tensor with rows ``rs`` (default ``p``) apart, :func:`plane`'s distance
    between planes and ``slack`` more elements of the same storage after the last: this thread's kept
    scratch ``slot`` (``core.scratch``)."""
    rs = p if rs is None else rs
    step = plane(rows, rs, dtype)
    buf = scratch.buffer(slot, a2 * step + slack, dtype)
    return buf.as_strided((a2, rows, p), (step, rs, 1))


def products(a2: int, rows: int, p: int, dtype: torch.dtype) -> torch.Tensor:
    """An empty ``(a2, rows, p)`` tensor for the products (:func:`plane` apart) with :data:`SLACK` elements
    after it (the output transform reads each tile row as whole vectors); kept scratch, valid until this
    thread's next call."""
    return _planes("winograd.products", a2, rows, p, dtype, SLACK)


def transform_out(mm: torch.Tensor, t: tuple[slice, ...], m: int, at: torch.Tensor, y: torch.Tensor,
                  oc: int, og: int, o0: int) -> None:
    """``y[b, g og + o0 + k, tiles of t] = A^T M A`` for the products ``mm (a^2, G oc, tiles)``
    (row ``g oc + k``, made by :func:`products`), cropped to ``y``'s size."""
    rows, p = mm.shape[1], mm.shape[2]
    a = m + 2
    args = _args(m, rows, t, abi.call_threads(rows * p * a * a * 10))
    args.oh, args.ow = y.shape[2], y.shape[3]
    args.ys[:] = list(y.stride())
    args.oc, args.og, args.o0 = oc, og, o0
    args.plane = mm.stride(0)
    end = mm.storage_offset() + (mm.shape[0] - 1) * mm.stride(0) + rows * p + SLACK
    assert (mm.stride(2) == 1 and mm.stride(1) == p and mm.stride(0) >= rows * p
            and mm.untyped_storage().nbytes() >= end * mm.element_size())
    _run("wino_out", args, mm.dtype, mm, at.to(mm.dtype).contiguous(), y)
