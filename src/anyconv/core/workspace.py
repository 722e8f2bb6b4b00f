"""The workspace limit: a bound on the memory one convolution call takes beyond its inputs and outputs.

The default is 256 MiB. Every algorithm splits its work into tiles so that its scratch buffers
(im2col columns, window copies, the padded slice each tile reads, FFT blocks and spectra,
Winograd transforms, kn2row's tap products, the C kernels' buffers) stay within the scratch
budget, half the limit, the other half being headroom; an algorithm whose smallest tile does not
fit refuses the call with a ``ValueError`` naming why (``auto`` then chooses another). A call's
peak memory above its inputs and outputs is at most the limit plus only these, where they apply
(measured for every algorithm under 16 MiB, 64 MiB and the default in
``tests/test_memory_bound.py``):

* ``padding_mode`` other than ``"zeros"``: one padded copy of the input (in a backward pass, also
  its gradient and one copy of it);
* ``conv_transpose``: its uncropped result when ``padding`` crops it, and with ``stride > 1`` and
  a named algorithm, the zero-stuffed input (``(in - 1) * stride + 1`` per dim; ``auto`` splits
  by phases instead and makes none);
* a backward pass: one copy each of the input and of the output gradient (the weight gradient's
  batch/channel swap), the uncropped one for ``conv_transpose``.

Tiles of ``direct`` and ``im2col`` never go below one output position: a weight gradient whose
kernel is about as large as the input (a depthwise layer's, by ``direct``) reads windows of one
position that alone may exceed a small budget, and takes them whole.

Two levels, so that threads and asyncio tasks never see each other's settings:

* :func:`set_workspace_limit` sets the **process-wide default**, what every thread and task
  sees when no ``workspace_limit`` block is active in it;
* :func:`workspace_limit` is a **per-context override** (a :class:`contextvars.ContextVar`):
  it governs only the thread or task that entered it (and the tasks that task creates inside
  the block, which copy its context), and its exit restores exactly what that context saw
  before, however blocks in other threads interleave.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

from .args import as_int
from .errors import value_error

DEFAULT_WORKSPACE_LIMIT = 256 * 2**20
_default = DEFAULT_WORKSPACE_LIMIT
_override: contextvars.ContextVar[int | None] = contextvars.ContextVar("anyconv_workspace_limit", default=None)


def get_workspace_limit() -> int:
    """The workspace limit in bytes in this context: the innermost active
    :func:`workspace_limit` block's, else the process-wide default (:func:`set_workspace_limit`).

    >>> with workspace_limit(2**20):
    ...     get_workspace_limit()
    1048576
    >>> get_workspace_limit() == DEFAULT_WORKSPACE_LIMIT
    True
    """
    limit = _override.get()
    return _default if limit is None else limit


def scratch_budget() -> int:
    """Bytes one algorithm may use for its tiled scratch buffers: half the workspace limit.

    The other half is headroom for what surrounds the tiles (a tile's padded input slice, the
    rearranged copies of a backward pass, transform outputs), so that the whole call stays
    within the limit.
    """
    return get_workspace_limit() // 2


def chunk_limit(fixed: int, unit: int, chunk_bytes: int, min_units: int) -> int:
    """Scratch bytes for one chunk of ``unit``-byte work items: about ``chunk_bytes`` (cache-sized
    chunks, less peak memory), at least ``min_units`` items (so the products stay wide), never
    above the scratch budget left after ``fixed`` bytes, and at least one item.

    >>> chunk_limit(0, 100, 1000, 4), chunk_limit(0, 100, 1000, 40), chunk_limit(0, 100, 10, 0)
    (1000, 4000, 100)
    """
    return max(min(scratch_budget() - fixed, max(chunk_bytes, min_units * unit)), unit)


def _checked(op: str, nbytes: int) -> int:
    value = as_int(op, "nbytes", nbytes, "an int number of bytes >= 2**20")
    if value < 2**20:
        value_error(op, "nbytes", nbytes, "an int number of bytes >= 2**20")
    return value


def set_workspace_limit(nbytes: int) -> None:
    """Set the process-wide default workspace limit in bytes (at least 1 MiB).

    Every thread and asyncio task sees it wherever no :func:`workspace_limit` block is active;
    inside such a block the block's limit still governs (use the block for a per-thread or
    per-task limit).

    >>> set_workspace_limit(64 * 2**20); get_workspace_limit()
    67108864
    >>> set_workspace_limit(DEFAULT_WORKSPACE_LIMIT)
    """
    global _default
    _default = _checked("set_workspace_limit", nbytes)


@contextlib.contextmanager
def workspace_limit(nbytes: int) -> Iterator[None]:
    """Context manager that sets the workspace limit (at least 1 MiB) for the duration of a block,
    in this context only.

    The limit is a :class:`contextvars.ContextVar` override: other threads and asyncio tasks keep
    seeing their own limit (or the process-wide default of :func:`set_workspace_limit`), blocks in
    different threads may overlap in any order, and leaving the block restores what this context
    saw before it. A new thread starts with the default; a task created inside the block inherits it.

    >>> with workspace_limit(8 * 2**20):
    ...     scratch_budget()
    4194304
    """
    token = _override.set(_checked("workspace_limit", nbytes))
    try:
        yield
    finally:
        _override.reset(token)
