"""Measured choices: ``anyconv.set_autotune(True)``, like ``torch.backends.cudnn.benchmark``.

With autotune on, the first call of each (shapes, dtype, device, spec, threads and the rest of
``auto.state()``) times the cost model's few best candidates instead of trusting the prediction:
at most :data:`MAX_CANDIDATES`, only those predicted within :data:`WITHIN` times the best, each run
once to warm up and once timed, on fresh random operands of the call's shapes (so a stand-in or
non-finite input measures like any other), stopping after :data:`MAX_SECONDS` (the model's pick is
always timed first). The fastest is kept for the process in a bounded cache (:data:`CACHE_SIZE`
entries, least recently used forgotten) and ``explain_algorithm`` says "measured".

Never under ``torch.compile``/``torch.export`` (fake tensors, or while Dynamo compiles),
``explain_algorithm``'s trace, on ``meta`` tensors or any other tensor subclass: there the model's
choice serves. (Under ``torch.jit.trace`` the op's kernel runs eagerly on the example inputs with the
recording paused: a measurement there is an eager one, and the trace records only the anyconv op,
which chooses each time it runs.) Timings vary from run to run,
so two processes can choose differently (each result is still deterministic for its algorithm).
Thread-safe: the cache takes its lock to store; two threads that miss together both measure and the
first result stored is the one every thread uses.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch

from ..core.cache import BoundedCache
from ..core.spec import CorrSpec
from . import get, tracing

Choice = Any  # auto's Choice (not imported: auto imports this module)

MAX_CANDIDATES = 3
WITHIN = 4.0
MAX_SECONDS = 2.0
CACHE_SIZE = 1024
_STATE = {"on": False}
_MEASURED: BoundedCache[tuple[object, ...], Choice] = BoundedCache(CACHE_SIZE)


def set_autotune(enabled: bool) -> None:
    """Time ``auto``'s best candidates on the first call of each shape and keep the fastest (``True``),
    or choose by the cost model alone (``False``, the default).

    Raises:
        TypeError: ``enabled`` is not a bool.

    Examples:
        >>> import torch, anyconv
        >>> anyconv.set_autotune(True)
        >>> y = anyconv.functional.conv(torch.randn(1, 4, 16, 16), torch.randn(8, 4, 3, 3), padding=1)
        >>> anyconv.set_autotune(False)
    """
    if not isinstance(enabled, bool):
        raise TypeError(f"set_autotune: `enabled` must be a bool; got enabled={enabled!r}")
    _STATE["on"] = enabled


def enabled() -> bool:
    """Whether autotune is on."""
    return _STATE["on"]


def clear() -> None:
    """Forget the measured choices."""
    _MEASURED.clear()


def _compiling() -> bool:
    fn = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    return bool(fn()) if fn is not None else False


def measurable(x: torch.Tensor, w: torch.Tensor) -> bool:
    """Whether a call on ``x`` and ``w`` may be timed: plain tensors with data, not traced or compiled."""
    if type(x) not in (torch.Tensor, torch.nn.Parameter) or type(w) not in (torch.Tensor, torch.nn.Parameter):
        return False  # fake tensors and other subclasses
    if x.is_meta or w.is_meta or tracing() or torch.jit.is_tracing() or _compiling():
        return False
    wrapped = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    return not (wrapped is not None and (wrapped(x) or wrapped(w)))


def _operand(t: torch.Tensor) -> torch.Tensor:
    """Random data of ``t``'s shape, dtype and device, from a generator of its own (the user's random
    stream is left as it was)."""
    gen = torch.Generator(device=t.device).manual_seed(0)
    return torch.randn(t.shape, dtype=t.dtype, device=t.device, generator=gen)


def time_ms(fn: Callable[[], object], device_type: str) -> float:
    """Milliseconds of one run of ``fn`` after one warm-up run (synchronised on CUDA)."""
    sync = torch.cuda.synchronize if device_type == "cuda" else (lambda: None)
    fn()
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return (time.perf_counter() - t0) * 1e3


def _measure(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, choice: Choice,
             hazard: Callable[[str, torch.Tensor, torch.Tensor, CorrSpec], str]) -> Choice:
    ranked = sorted(choice.estimates, key=lambda n: (choice.estimates[n], n))
    best_predicted = choice.estimates[ranked[0]]
    pool = [n for n in ranked[:MAX_CANDIDATES] if choice.estimates[n] <= WITHIN * best_predicted]
    xr, wr = _operand(x), _operand(w)
    times: dict[str, float] = {}
    start = time.perf_counter()
    with torch.no_grad():
        for name in pool:
            if times and time.perf_counter() - start > MAX_SECONDS:
                break
            algo = get(name)
            times[name] = time_ms(lambda algo=algo: algo.forward(xr, wr, spec), x.device.type)  # type: ignore[misc]
    best = min(times, key=lambda n: (times[n], n))
    timed = ", ".join(f"{n} {t:.3g} ms" for n, t in sorted(times.items(), key=lambda kv: kv[1]))
    reason = (f"{best}: measured fastest (autotune) of {len(times)} timed candidate(s): {timed}; "
              f"the model predicted {choice.name} ({choice.estimates[choice.name]:.3g} ms)")
    return replace(choice, name=best, reason=reason, hazard=hazard(best, x, w, spec), measured=times)


def measured(key: tuple[object, ...], x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, choice: Choice,
             hazard: Callable[[str, torch.Tensor, torch.Tensor, CorrSpec], str]) -> Choice:
    """The measured choice for ``key`` (``auto``'s cache key), timing ``choice``'s candidates on a miss."""
    hit = _MEASURED.get(key)
    if hit is None:
        hit = _MEASURED.get_or_make(key, lambda: _measure(x, w, spec, choice, hazard))
    return hit
