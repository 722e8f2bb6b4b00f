"""A cache for the front door: validated conv-family specs keyed on plain call arguments.

Validation is pure: the spec of a call depends only on the op name, the tensors' shapes, dtypes
and devices and the plain arguments, so an identical call (the layers of a model, step after
step) skips it. Only successful calls are stored, so every error is raised as before. Specs are
frozen, so the cache (a :class:`~anyconv.core.cache.BoundedCache`) is shared by every thread.
"""

from __future__ import annotations

from typing import Any

import torch

from .cache import BoundedCache

SPEC_CACHE_SIZE = 1024
SPEC_CACHE: BoundedCache[tuple[object, ...], Any] = BoundedCache(SPEC_CACHE_SIZE)


def _freeze(v: Any) -> Any:
    """``v`` as a hashable key if it is None, an exact int, or a tuple/list of exact ints, of
    ``(before, after)`` tuples/lists of exact ints, or a str; else ``_UNCACHEABLE``.

    Exact types only: ``True == 1`` and ``hash(True) == hash(1)``, but ``stride=True`` must still
    raise, so a bool (or a numpy int, a tensor...) is never looked up; lists become tuples
    (validation treats every sequence alike, so they resolve to the same spec).
    """
    t = type(v)
    if t is int or t is str or v is None:
        return v
    if t is tuple or t is list:
        out = []
        for e in v:
            te = type(e)
            if te is int:
                out.append(e)
            elif (te is tuple or te is list) and all(type(a) is int for a in e):
                out.append(tuple(e))
            else:
                return _UNCACHEABLE
        return (t is list, *out)
    return _UNCACHEABLE


_UNCACHEABLE = object()


def call_key(
    op: str, x: Any, w: Any, bias: Any, sized: tuple[Any, ...], ints: tuple[Any, ...], strings: tuple[Any, ...],
    flip: Any,
) -> tuple[object, ...] | None:
    """A cache key for a conv-family call, or ``None`` when it must go through full validation.

    A spec is a pure function of the op name, the tensors' shapes, dtypes and devices and the
    plain arguments; a key is only made when the arguments have exact plain types, so a hit
    means an identical call validated before (errors are never cached).
    """
    if not (isinstance(x, torch.Tensor) and isinstance(w, torch.Tensor)) or type(flip) is not bool:
        return None
    if torch.compiler.is_compiling():
        return None  # traced (torch.compile/export): validation is traced once, shapes may be symbolic
    if bias is None:
        b: object = None
    elif isinstance(bias, torch.Tensor):
        b = (bias.shape, bias.dtype, bias.device)
    else:
        return None
    frozen = tuple(_freeze(v) for v in sized)
    if any(f is _UNCACHEABLE for f in frozen):
        return None
    if any(type(v) is not int for v in ints) or any(type(v) is not str for v in strings):
        return None
    return (op, x.shape, x.dtype, x.device, w.shape, w.dtype, w.device, b, frozen, ints, strings, flip)


def pool_key(op: str, x: Any, plain: tuple[Any, ...], flags: tuple[Any, ...]) -> tuple[object, ...] | None:
    """A cache key for a pooling call (``plain``: kernel_size, stride, padding, dilation; ``flags``:
    the bool/int/float options), or ``None`` when it must go through full validation."""
    if not isinstance(x, torch.Tensor) or torch.compiler.is_compiling():
        return None
    frozen = tuple(_freeze(v) for v in plain)
    if any(f is _UNCACHEABLE for f in frozen):
        return None
    if any(not (f is None or type(f) in (bool, int, float)) for f in flags):
        return None
    return ("pool", op, x.shape, x.dtype, x.device, frozen, tuple((type(f), f) for f in flags))


def remember(key: tuple[object, ...], spec: Any) -> None:
    SPEC_CACHE.put(key, spec)
