"""``torch.jit.trace`` support: plain Python shape arithmetic with the tracer's recording paused."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from torch import _C

T = TypeVar("T")


def untraced(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` with ``torch.jit.trace``'s recording paused.

    Traced, ``x.shape[i]`` is a tensor; a public function's argument checks, shape arithmetic and
    index maps read plain ints here, and the operators get int lists (the trace is specialised to
    the traced shapes, which its check confirms), with no ``TracerWarning``.
    """
    state = _C._get_tracing_state()
    if state is None:
        return fn(*args)
    _C._set_tracing_state(None)  # type: ignore[attr-defined]
    try:
        return fn(*args)
    finally:
        _C._set_tracing_state(state)  # type: ignore[attr-defined]
