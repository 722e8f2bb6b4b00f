"""Scratch buffers kept between calls, per thread: the page faults of a fresh large buffer, avoided.

A multi-megabyte ``torch.empty`` is a fresh ``mmap`` on Linux (glibc serves large blocks that way and
returns them on free), so every call that fills one pays a page fault per 4 KiB page first. Measured
on Winograd's forward (its transformed tiles and products in fresh tensors against kept ones, 1 thread,
interleaved): a 2 x 32 x 128 x 128 layer to 32 channels 8.3 -> 3.0 ms, 8 x 128 x 28 x 28 to 128 channels
10.8 -> 6.7 ms; small layers (4 x 64 x 32 x 32) the same either way. An algorithm asks :func:`buffer` for its scratch by a slot name instead; each
thread keeps its last buffer per slot, up to :data:`KEEP_BYTES` in all, and hands out views of it.

A view is valid until the same thread asks for the same slot again: only scratch that never leaves
the call (a transform's output consumed by the next step, the products before their output
transform) may live in one, never a result. :func:`clear` drops this thread's buffers.

Example:
    >>> import torch
    >>> a = buffer("example", 1000, torch.float32)
    >>> b = buffer("example", 500, torch.float32)  # the same memory, reused
    >>> a.data_ptr() == b.data_ptr(), b.shape, b.dtype
    (True, torch.Size([500]), torch.float32)
    >>> clear()
"""

from __future__ import annotations

import threading

import torch

KEEP_BYTES = 64 * 2**20  # what one thread keeps between calls, at most (larger requests: plain torch.empty)
ALIGN = 64  # bytes: every buffer starts on a cache line (torch's CPU allocator aligns to 64)

_LOCAL = threading.local()


def _kept() -> dict[str, torch.Tensor]:
    kept = getattr(_LOCAL, "kept", None)
    if kept is None:
        kept = _LOCAL.kept = {}
    return kept  # type: ignore[no-any-return]


def buffer(slot: str, numel: int, dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised 1-D CPU tensor of ``numel`` elements of ``dtype``: a view of this thread's kept
    buffer for ``slot`` (grown when too small), or a fresh tensor when it would exceed :data:`KEEP_BYTES`."""
    size = torch.empty((), dtype=dtype).element_size()
    nbytes = numel * size
    kept = _kept()
    old = kept.get(slot)
    if old is None or old.numel() < nbytes:
        others = sum(t.numel() for name, t in kept.items() if name != slot)
        if nbytes + others > KEEP_BYTES:
            kept.pop(slot, None)  # (too large to keep: this call's own buffer)
            return torch.empty(numel, dtype=dtype)
        old = kept[slot] = torch.empty(-(-nbytes // ALIGN) * ALIGN, dtype=torch.uint8)
    return old[:nbytes].view(dtype)


def clear() -> None:
    """Drop this thread's kept buffers."""
    _kept().clear()


def kept_bytes() -> int:
    """Bytes this thread keeps now."""
    return sum(t.numel() for t in _kept().values())
