"""One bounded, thread-safe cache for the per-call caches (specs, plans, algorithm choices).

Every cache in the package holds values that are pure functions of their keys (a validated spec,
a call's plan, an algorithm choice, an index tensor that is only read), so a value built twice
is the same value, and a value once stored is never changed.

Why the read path takes no lock: a hit is one ``dict.get`` on the underlying ``OrderedDict``.
CPython's dict lookups are safe while another thread inserts or deletes (under the GIL each is
one C call; a lookup whose key comparison runs Python code restarts if the table changed under
it; free-threaded builds lock the dict per operation), so a reader sees either no entry or a
whole one. Writers (insert, LRU reorder, eviction, ``clear``) hold the lock, so they never
interleave with each other. A value is published only after it is fully built, and values are
treated as immutable, so no thread can observe a half-built or half-updated one.

Eviction is least recently used. To keep a hit at one lookup, a hit refreshes its entry's
recency only while the cache is at least half full (below that no eviction is near, and the
entries of a working set that keeps being hit are refreshed long before the cache fills); under
contention a reader skips the refresh rather than wait for the lock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar, overload

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
D = TypeVar("D")

_MISSING = object()


class BoundedCache(Generic[K, V]):
    """A thread-safe mapping of at most ``maxsize`` entries (least recently used evicted first),
    optionally also bounded by the total ``weight`` of its values (e.g. bytes of tensors).

    Values must be immutable (or never mutated once stored): readers take no lock.

    Args:
        maxsize: the most entries kept (``>= 1``).
        max_weight: the most total weight kept (``None``: no such bound); the newest entry is
            always kept, even when it alone weighs more.
        weight: a value's weight (required with ``max_weight``).

    Examples:
        >>> cache: BoundedCache[str, int] = BoundedCache(2)
        >>> cache.get_or_make("a", lambda: 1), cache.get_or_make("a", lambda: 99)
        (1, 1)
        >>> cache.put("b", 2); cache.get("a"); cache.put("c", 3)  # "a" used after "b": "b" goes
        1
        >>> len(cache), cache.get("b"), cache.get("c"), cache.get("b", -1)
        (2, None, 3, -1)
        >>> cache.clear(); len(cache)
        0
    """

    __slots__ = ("maxsize", "max_weight", "_weight", "_total", "_data", "_lock", "_refresh_at")

    def __init__(self, maxsize: int, *, max_weight: int | None = None, weight: Callable[[V], int] | None = None):
        if maxsize < 1:
            raise ValueError(f"BoundedCache: `maxsize` must be an int >= 1; got maxsize={maxsize!r}")
        if (max_weight is None) != (weight is None):
            raise ValueError("BoundedCache: `max_weight` and `weight` must be given together")
        self.maxsize = maxsize
        self.max_weight = max_weight
        self._weight = weight
        self._total = 0
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        self._refresh_at = maxsize // 2

    @overload
    def get(self, key: K) -> V | None: ...

    @overload
    def get(self, key: K, default: D) -> V | D: ...

    def get(self, key: K, default: object = None) -> object:
        """The value stored under ``key``, else ``default`` (a lock-free lookup, see the module)."""
        value = self._data.get(key, _MISSING)
        if value is _MISSING:
            return default
        if len(self._data) > self._refresh_at:
            self._touch(key)
        return value

    def get_or_make(self, key: K, make: Callable[[], V]) -> V:
        """The value under ``key``; on a miss ``make()`` builds it (outside the lock, so ``make``
        may use this cache too) and the first value stored under ``key`` wins: every thread gets
        that same object."""
        value = self.get(key, _MISSING)
        if value is not _MISSING:
            return value  # type: ignore[return-value]
        return self._store(key, make(), replace=False)

    def put(self, key: K, value: V) -> None:
        """Store ``value`` under ``key`` (replacing any), evicting the least recently used past the bounds."""
        self._store(key, value, replace=True)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._data.clear()
            self._total = 0

    def __len__(self) -> int:
        return len(self._data)

    def values(self) -> list[V]:
        """A snapshot of the stored values."""
        with self._lock:
            return list(self._data.values())

    def _touch(self, key: K) -> None:
        if self._lock.acquire(False):  # busy: skip the refresh rather than make a reader wait
            try:
                if key in self._data:
                    self._data.move_to_end(key)
            finally:
                self._lock.release()

    def _store(self, key: K, value: V, replace: bool) -> V:
        data, weigh = self._data, self._weight
        with self._lock:
            old = data.get(key, _MISSING)
            if old is not _MISSING:
                if not replace:
                    data.move_to_end(key)
                    return old  # type: ignore[return-value]
                if weigh is not None:
                    self._total -= weigh(old)  # type: ignore[arg-type]
            data[key] = value
            data.move_to_end(key)
            if weigh is not None:
                self._total += weigh(value)
            while len(data) > self.maxsize or (
                self.max_weight is not None and self._total > self.max_weight and len(data) > 1
            ):
                _, gone = data.popitem(last=False)
                if weigh is not None:
                    self._total -= weigh(gone)
        return value
