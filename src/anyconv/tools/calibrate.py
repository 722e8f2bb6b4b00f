"""Calibrating ``auto`` on this machine (``anyconv tune``): measure, time a probe set, fit, compare.

1. The machine's float32 FMA rate (a square ``torch.matmul``) and memory bandwidth (a large copy),
   at torch's current thread count: printed, and stored in the profile's ``fitted_on``.
2. The **probe set**: the core correlations (forward, input gradient, weight gradient, and a strided
   transposed call's sub-calls) of a few standard layers, small and mid-sized (:data:`PROBES`;
   ``quick``: :data:`QUICK`), cheapest first. Every candidate ``auto`` considers for a call is timed
   (one warm-up, best of ``repeats``) on random float32 data until the time budget is spent.
3. Each algorithm's coefficients are fitted (:func:`anyconv.algorithms.fit.fit_algorithm`: NNLS on
   relative error, or the shipped default scaled to this machine when the probe set is too small
   for a full fit; an algorithm the probe set never timed gets the shipped default times the median
   scale of the others).
4. The regret of ``auto`` on the probe set (pick's time / fastest time) with the shipped default
   and with the new coefficients (in-sample for the latter: the calls it was fitted on).
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from .. import __version__
from ..algorithms import _gemm, auto, fit, get, matrix
from ..algorithms import profile as _profile
from ..algorithms.autotune import time_ms
from ..core.spec import CorrSpec

# (label, op, input shape, weight shape, keyword arguments)
Probe = tuple[str, str, tuple[int, ...], tuple[int, ...], dict[str, Any]]
PROBES: tuple[Probe, ...] = (
    ("c2d_small", "conv", (2, 8, 16, 16), (16, 8, 3, 3), {"padding": 1}),
    ("dw_small", "conv", (2, 16, 16, 16), (16, 1, 3, 3), {"padding": 1, "groups": 16}),
    ("c1d_small", "conv", (4, 8, 64), (8, 8, 5), {"padding": 2}),
    ("pw_small", "conv", (2, 16, 8, 8), (32, 16, 1, 1), {}),
    ("s2_small", "conv", (2, 8, 16, 16), (16, 8, 3, 3), {"stride": 2, "padding": 1}),
    ("convT_small", "conv_transpose", (2, 8, 8, 8), (8, 4, 4, 4), {"stride": 2, "padding": 1}),
    ("c2d_mid", "conv", (4, 32, 28, 28), (32, 32, 3, 3), {"padding": 1}),
    ("dw_mid", "conv", (4, 64, 28, 28), (64, 1, 3, 3), {"padding": 1, "groups": 64}),
    ("pw_mid", "conv", (4, 64, 14, 14), (128, 64, 1, 1), {}),
    ("s2_mid", "conv", (4, 32, 28, 28), (64, 32, 3, 3), {"stride": 2, "padding": 1}),
    ("c1d_mid", "conv", (4, 16, 512), (16, 16, 7), {"padding": 3}),
    ("stem_mid", "conv", (2, 3, 64, 64), (16, 3, 7, 7), {"stride": 2, "padding": 3}),
    ("grouped_mid", "conv", (4, 64, 14, 14), (64, 8, 3, 3), {"padding": 1, "groups": 8}),
    ("c3d_mid", "conv", (2, 8, 10, 10, 10), (8, 8, 3, 3, 3), {"padding": 1}),
    ("long1d_mid", "conv", (1, 4, 4096), (4, 4, 127), {"padding": 63}),
    ("dw7_mid", "conv", (2, 64, 28, 28), (64, 1, 7, 7), {"padding": 3, "groups": 64}),
)
QUICK = ("c2d_small", "dw_small", "c1d_small", "pw_small", "s2_small", "convT_small", "c2d_mid", "dw_mid")
MATRIX_MAX_NNZ = 2_000_000  # building bigger operators takes seconds


@dataclass
class Timed:
    """One probe call: its label, operands' shapes, spec, and measured ms per timed candidate."""

    label: str
    x_shape: tuple[int, ...]
    w_shape: tuple[int, ...]
    spec: CorrSpec
    times: dict[str, float] = field(default_factory=dict)
    complete: bool = False  # every candidate timed (used for the regret)


@dataclass
class Result:
    """What :func:`tune` measured and fitted (``anyconv tune`` prints it and stores ``table``)."""

    fitted_on: dict[str, Any]
    table: dict[str, dict[str, float]]
    how: dict[str, str]  # algorithm -> "nnls" | "scaled" | "not timed"
    errors: dict[str, tuple[float, float, int]]  # algorithm -> (median, max relative error, rows)
    regret_default: tuple[float, float, int]
    regret_new: tuple[float, float, int]
    calls: list[Timed]
    seconds: float


def fma_gflops(size: int = 512, repeats: int = 5) -> float:
    """float32 ``torch.matmul`` GFLOP/s on ``size``-square matrices (best of ``repeats``)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    best = min(time_ms(lambda: torch.matmul(a, b), "cpu") for _ in range(repeats))
    return 2 * size**3 / (best / 1e3) / 1e9


def bandwidth_gbs(mib: int = 64, repeats: int = 3) -> float:
    """Memory bandwidth of a ``mib`` MiB copy in GB/s (bytes read + written, best of ``repeats``)."""
    src = torch.ones(mib * 2**20 // 4)
    dst = torch.empty_like(src)
    best = min(time_ms(lambda: dst.copy_(src), "cpu") for _ in range(repeats))
    return 2 * src.numel() * 4 / (best / 1e3) / 1e9


def probe_calls(quick: bool = False) -> list[Timed]:
    """The probe set's distinct core calls, cheapest (by the shipped default) first."""
    from .choose import core_calls

    seen: dict[tuple[object, ...], Timed] = {}
    for label, op, xs, ws, kw in PROBES:
        if quick and label not in QUICK:
            continue
        for part, xm, wm, spec in core_calls(op, torch.empty(xs), torch.empty(ws), backward=True, **kw):
            key = (tuple(xm.shape), tuple(wm.shape), spec)
            seen.setdefault(key, Timed(f"{label}:{part}", key[0], key[1], spec))
    calls = list(seen.values())
    base = _profile.shipped()

    def cheapest(c: Timed) -> float:
        x, w = _standin(c.x_shape), _standin(c.w_shape)
        return min(auto.estimate_ms(n, x, w, c.spec, base) for n in auto.candidates(x, w, c.spec)[0])

    return sorted(calls, key=cheapest)


def _standin(shape: tuple[int, ...]) -> torch.Tensor:
    """A float32 CPU tensor of ``shape`` with one element of storage (what ``supports`` and the features read)."""
    return torch.zeros(()).expand(shape)


def _best_ms(fn: Any, repeats: int, deadline: float) -> float:
    """One warm-up run, then the best of up to ``repeats`` timed runs (fewer past ``deadline`` or when a run
    takes over 100 ms)."""
    fn()
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        best = min(best, (t1 - t0) * 1e3)
        if t1 > deadline or best > 100:
            break
    return best


def measure(calls: list[Timed], budget: float, repeats: int = 3) -> list[Timed]:
    """Time every candidate of each call (float32, random data) until ``budget`` seconds have passed."""
    deadline = time.perf_counter() + budget
    base = _profile.shipped()
    for c in calls:
        x = torch.randn(c.x_shape)
        w = torch.randn(c.w_shape) / math.sqrt(max(1, math.prod(c.w_shape[1:])))
        names = auto.candidates(x, w, c.spec)[0]
        for name in names:
            left = deadline - time.perf_counter()
            if left <= 0:
                return calls
            if name == "matrix" and matrix.nnz_bound(x, w, c.spec) > MATRIX_MAX_NNZ:
                continue
            if auto.estimate_ms(name, x, w, c.spec, base) > 100 * left:  # predicted to eat a tenth of what is left
                continue
            mod = get(name)
            with torch.no_grad():
                c.times[name] = _best_ms(lambda mod=mod, x=x, w=w, sp=c.spec: mod.forward(x, w, sp), repeats, deadline)
        c.complete = len(c.times) == len(names) and len(names) > 1
    return calls


def _rows(calls: list[Timed]) -> dict[str, list[fit.Row]]:
    rows: dict[str, list[fit.Row]] = {}
    for c in calls:
        x, w = _standin(c.x_shape), _standin(c.w_shape)
        for name, t in c.times.items():
            rows.setdefault(name, []).append((auto.features(name, x, w, c.spec), t))
    return rows


def _regret(calls: list[Timed], table: _profile.Table) -> tuple[float, float, int]:
    prof = _profile.Profile(table, {}, "probe")
    picks = []
    for c in calls:
        if c.complete:
            x, w = _standin(c.x_shape), _standin(c.w_shape)
            est = {n: auto.estimate_ms(n, x, w, c.spec, prof) for n in c.times}
            picks.append((min(est, key=lambda n: (est[n], n)), c.times))
    return fit.regret(picks)


def tune(budget: float = 60.0, quick: bool = False, repeats: int = 3) -> Result:
    """Measure this machine at torch's current thread count, time the probe set within ``budget``
    seconds (peak and bandwidth included) and fit a profile (not stored: see :func:`profile.store`)."""
    from ..algorithms import native

    if native.enabled():
        native.library()  # a first build of the C kernel (a minute) is not part of the budget
    start = time.perf_counter()
    small = quick or budget < 10
    peak, bw = fma_gflops(256 if small else 512), bandwidth_gbs(16 if small else 64)
    calls = measure(probe_calls(quick), budget - (time.perf_counter() - start), repeats)
    rows = _rows(calls)
    base = _profile.shipped().coefficients
    table: dict[str, dict[str, float]] = {}
    how: dict[str, str] = {}
    errors: dict[str, tuple[float, float, int]] = {}
    scales = []
    for name, data in rows.items():
        table[name], how[name] = fit.fit_algorithm(base.get(name), data)
        rel = fit.relative_errors(table[name], data)
        errors[name] = (statistics.median(rel), max(rel), len(data))
        if name in base:
            scales.append(fit.fit_scale(base[name], data))
    s = statistics.median(scales) if scales else 1.0
    for name, coef in base.items():
        if name not in table:
            table[name], how[name] = {k: s * v for k, v in coef.items()}, "not timed (default x median scale)"
    fitted_on = {**_profile.machine_key(), "date": time.strftime("%Y-%m-%d"), "anyconv": __version__,
                 "calls": sum(1 for c in calls if c.times), "peak_gflops": round(peak, 1),
                 "gemm_gflops": round(_gemm.rate(torch.float32), 1), "bandwidth_gbs": round(bw, 1), "budget_s": budget}
    return Result(fitted_on, table, how, errors, _regret(calls, base), _regret(calls, table), calls,
                  time.perf_counter() - start)
