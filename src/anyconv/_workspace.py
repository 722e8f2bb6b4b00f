"""The workspace limit: the most bytes any algorithm may allocate for scratch buffers.

The default is 256 MiB. Algorithms split their work into tiles so that scratch buffers
(im2col columns, window copies, FFT blocks) stay within the limit; outputs themselves are not
scratch and are not counted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ._args import as_int
from ._errors import value_error

DEFAULT_WORKSPACE_LIMIT = 256 * 2**20
_limit = DEFAULT_WORKSPACE_LIMIT


def get_workspace_limit() -> int:
    """The current workspace limit in bytes."""
    return _limit


def scratch_budget() -> int:
    """Bytes one algorithm may use for its tiled scratch buffers: half the workspace limit.

    The other half is headroom for what surrounds the tiles (a tile's padded input slice, the
    rearranged copies of a backward pass, transform outputs), so that the whole call stays
    within the limit.
    """
    return _limit // 2


def chunk_limit(fixed: int, unit: int, chunk_bytes: int, min_units: int) -> int:
    """Scratch bytes for one chunk of ``unit``-byte work items: about ``chunk_bytes`` (cache-sized
    chunks, less peak memory), at least ``min_units`` items (so the products stay wide), never
    above the scratch budget left after ``fixed`` bytes, and at least one item.

    >>> chunk_limit(0, 100, 1000, 4), chunk_limit(0, 100, 1000, 40), chunk_limit(0, 100, 10, 0)
    (1000, 4000, 100)
    """
    return max(min(scratch_budget() - fixed, max(chunk_bytes, min_units * unit)), unit)


def set_workspace_limit(nbytes: int) -> None:
    """Set the workspace limit in bytes (at least 1 MiB).

    >>> set_workspace_limit(64 * 2**20); get_workspace_limit()
    67108864
    >>> set_workspace_limit(DEFAULT_WORKSPACE_LIMIT)
    """
    global _limit
    value = as_int("set_workspace_limit", "nbytes", nbytes, "an int number of bytes >= 2**20")
    if value < 2**20:
        value_error("set_workspace_limit", "nbytes", nbytes, "an int number of bytes >= 2**20")
    _limit = value


@contextlib.contextmanager
def workspace_limit(nbytes: int) -> Iterator[None]:
    """Context manager that sets the workspace limit for the duration of a block."""
    old = _limit
    set_workspace_limit(nbytes)
    try:
        yield
    finally:
        set_workspace_limit(old)
