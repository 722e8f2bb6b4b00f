"""``native``'s strided copy: ``dst.copy_(src)`` through the C loop (``native_c/copy.c``) where torch's
copy is slow.

Torch's copy runs a permutation whose destination rows are a few elements long (``polyphase``'s
interleave of the phases of a kernel == stride transposed layer: rows of 2) at ~2 ns per element; the C
loop reads the source in runs instead (interleaved A/B, 1 thread: 0.47 vs 0.7-1.0 ms for the 2x2x2
transposed layer's 0.5M elements). Callers fall back to torch's copy when the library is not there.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

import torch

from ._native_abi import COPY_MAX_DIMS, CopyGeom, library, threads

# strided copies through the C loop: at least this many elements (below, torch's copy costs less than
# the call's Python), elements of 4 or 8 bytes, at most COPY_MAX_DIMS dims once merged (the C source's)
COPY_MIN_ELEMENTS = 32768
COPY_GRAIN = 65536  # elements per thread at least

__all__ = ["COPY_GRAIN", "COPY_MAX_DIMS", "COPY_MIN_ELEMENTS", "contiguous", "copy_", "copy_order"]


def copy_order(shape: Sequence[int], dst: Sequence[int], src: Sequence[int]) -> list[tuple[int, int, int]]:
    """The copy's loop nest as ``(extent, dst stride, src stride)`` per dim, outermost first: dims of
    extent 1 dropped, the others in the destination's order (largest stride first), neighbours that
    walk both tensors evenly merged, and, when the destination's innermost dim is short with a
    non-unit source stride, the longest dim with a unit source stride made the inner loop instead
    (then the source is read in runs: an interleaving copy).

    >>> copy_order((2, 3, 4), (12, 4, 1), (12, 4, 1))  # contiguous: one run
    [(24, 1, 1)]
    >>> copy_order((16, 2), (2, 1), (1, 16))  # interleave two rows of 16: read the rows
    [(2, 1, 16), (16, 2, 1)]
    """
    dims = sorted(((n, d, s) for n, d, s in zip(shape, dst, src) if n != 1), key=lambda t: (-abs(t[1]), -abs(t[2])))
    merged: list[tuple[int, int, int]] = []
    for n, d, s in dims:
        if merged and merged[-1][1] == d * n and merged[-1][2] == s * n:
            m = merged.pop()
            n, d, s = m[0] * n, d, s
        merged.append((n, d, s))
    if len(merged) > 1 and merged[-1][2] != 1 and merged[-1][0] < 16:
        unit = [i for i, t in enumerate(merged) if t[2] == 1 and t[0] > merged[-1][0]]
        if unit:
            merged.append(merged.pop(max(unit, key=lambda i: merged[i][0])))
    return merged or [(1, 1, 1)]


def copy_(dst: torch.Tensor, src: torch.Tensor) -> bool:
    """``dst.copy_(src)`` through the C loop when it applies (CPU tensors of one dtype and shape, 4- or
    8-byte elements, no autograd, large enough, the library built); returns whether it copied (if not,
    the caller copies with torch). Torch's copy runs a permutation whose destination rows are a few
    elements long at ~2 ns per element; this loop reads the source in runs (see :func:`copy_order`).
    """
    if (src.device.type != "cpu" or dst.device.type != "cpu" or src.dtype != dst.dtype or src.shape != dst.shape
            or dst.element_size() not in (4, 8) or dst.numel() < COPY_MIN_ELEMENTS
            or (torch.is_grad_enabled() and (src.requires_grad or dst.requires_grad))):
        return False
    order = copy_order(dst.shape, dst.stride(), src.stride())
    if len(order) > COPY_MAX_DIMS or (src.is_conj() or src.is_neg()):
        return False
    lib = library()
    if lib is None:
        return False
    pad = [0] * (COPY_MAX_DIMS - len(order))
    dims = ctypes.c_int64 * COPY_MAX_DIMS
    geom = CopyGeom(len(order), dst.element_size(), max(1, min(threads(), dst.numel() // COPY_GRAIN)),
                    dims(*(t[0] for t in order), *pad), dims(*(t[1] for t in order), *pad),
                    dims(*(t[2] for t in order), *pad))
    return lib.copy_strided(ctypes.addressof(geom), dst.data_ptr(), src.data_ptr()) == 0


def contiguous(t: torch.Tensor) -> torch.Tensor:
    """``t.contiguous()``, copied by :func:`copy_` when it applies."""
    if t.is_contiguous():
        return t
    out = torch.empty(t.shape, dtype=t.dtype, device=t.device)
    if copy_(out, t):
        return out
    return out.copy_(t)
