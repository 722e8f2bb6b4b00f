"""Run :mod:`anyconv.bench.suite` cases against torch: interleaved timing, memory, chosen algorithm.

Timing: after a warm-up call of each, the torch call and the anyconv call alternate
``repeats`` times in the same process (so machine load hits both alike); the minimum and the
median of each are kept. ``mode`` is ``"forward"`` or ``"backward"`` (forward plus the
backward pass for the input and weight gradients).

Peak extra memory: the peak of torch's CPU allocator during one call, from the profiler's
allocation events (see :func:`peak_extra_bytes`); for whole training steps, the growth of the
process's resident set (:func:`peak_rss_bytes`, Linux).
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from .suite import Case


def tensors(case: Case, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Input and weight (float32, normal, weight scaled by fan-in) for a case."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(case.input, generator=gen)
    w = torch.randn(case.weight, generator=gen)
    fan = max(1, math.prod(case.weight[1:]))
    return x, w / math.sqrt(fan)


def torch_call(case: Case) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """torch's own kernel for the case (``padding="causal"`` as an explicit left pad)."""
    import torch.nn.functional as F

    n = len(case.weight) - 2
    kw = dict(case.kwargs)
    if case.op == "conv_transpose":
        tfn: Callable[..., torch.Tensor] = {1: F.conv_transpose1d, 2: F.conv_transpose2d,
                                            3: F.conv_transpose3d}[n]
        return lambda x, w: tfn(x, w, **kw)
    fn: Callable[..., torch.Tensor] = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[n]
    if kw.get("padding") == "causal":
        d = kw.get("dilation", 1)
        left = [(k - 1) * d for k in case.weight[2:]]
        kw["padding"] = 0
        flat = [v for p in reversed(left) for v in (p, 0)]
        return lambda x, w: fn(F.pad(x, flat), w, **kw)
    return lambda x, w: fn(x, w, **kw)


def anyconv_call(case: Case, algorithm: str = "auto") -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """anyconv's functional op for the case."""
    import anyconv.functional as AF

    fn = AF.conv_transpose if case.op == "conv_transpose" else AF.conv
    return lambda x, w: fn(x, w, algorithm=algorithm, **case.kwargs)


def step(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor, w: torch.Tensor,
         mode: str) -> Callable[[], Any]:
    """A zero-argument call: forward only, or forward plus backward to ``x`` and ``w``."""
    if mode == "forward":
        return lambda: fn(x, w)
    xg, wg = x.clone().requires_grad_(True), w.clone().requires_grad_(True)

    def run() -> None:
        y = fn(xg, wg)
        y.backward(torch.ones_like(y))
        xg.grad = wg.grad = None

    return run


def interleaved(calls: list[Callable[[], Any]], repeats: int) -> list[tuple[float, float]]:
    """``(min_ms, median_ms)`` per call, the calls alternating ``repeats`` times after a warm-up."""
    for c in calls:
        c()
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(repeats):
        for i, c in enumerate(calls):
            t0 = time.perf_counter()
            c()
            times[i].append((time.perf_counter() - t0) * 1e3)
    return [(min(t), statistics.median(t)) for t in times]


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """File descriptor 2 pointed at /dev/null for the block: the profiler's C++ side writes a
    ``USDT: ... profiler_start/stop`` line there for every profiled call (no setting turns it off)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_extra_bytes(call: Callable[[], Any]) -> int | None:
    """Peak of torch's CPU allocator above its level at the start, during one call.

    From the allocation events of ``torch.profiler`` (``profile_memory=True``): tensor storage
    only (outputs and gradients alive at the peak included; library-internal scratch that
    bypasses torch's allocator is not seen). ``None`` if the profiler is unavailable.
    """
    try:
        from torch.profiler import ProfilerActivity, profile

        with _stderr_silenced(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            call()
        events = sorted(
            (e.start_ns(), e.nbytes())
            for e in prof.profiler.kineto_results.events()  # type: ignore[union-attr]
            if e.name() == "[memory]"
        )
    except (RuntimeError, AttributeError):
        return None
    current = peak = 0
    for _, nbytes in events:
        current += nbytes
        peak = max(peak, current)
    return peak


def _status_kib(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), ``None`` where there is none."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def peak_rss_bytes(call: Callable[[], Any]) -> int | None:
    """Peak growth of the resident set during one call, in bytes; ``None`` where not measurable.

    Linux: after ``gc.collect()`` and glibc's ``malloc_trim(0)`` hand freed memory back, writing
    ``5`` to ``/proc/self/clear_refs`` resets the high-water mark ``VmHWM`` to the current
    ``VmRSS``; ``VmHWM`` after the call minus ``VmRSS`` before is everything the call touched at
    its peak (tensors, BLAS/oneDNN and native scratch, allocator slack), which torch's allocator
    statistics and ``tracemalloc`` do not see whole.
    """
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return None
    before = _status_kib("VmRSS")
    result = call()
    peak = _status_kib("VmHWM")
    del result
    if before is None or peak is None:
        return None
    return max(0, peak - before) * 1024


def measure(case: Case, mode: str, repeats: int, peak_gflops: float) -> dict[str, Any]:
    """One row of results for a case."""
    from ..algorithms.auto import choose
    from ..tools.choose import core_call

    x, w = tensors(case)
    t_call = step(torch_call(case), x, w, mode)
    a_call = step(anyconv_call(case), x, w, mode)
    (t_min, t_med), (a_min, a_med) = interleaved([t_call, a_call], repeats)
    mem_t, mem_a = peak_extra_bytes(t_call), peak_extra_bytes(a_call)
    xc, wc, spec = core_call(case.op, x, w, **case.kwargs)
    chosen = choose(xc, wc, spec).name
    flops = case.flops() * (3 if mode == "backward" else 1)
    gflops = flops / (a_min * 1e6) if a_min > 0 else float("nan")
    return {
        "case": case.key, "group": case.group, "mode": mode,
        "torch_ms_min": t_min, "torch_ms_median": t_med,
        "anyconv_ms_min": a_min, "anyconv_ms_median": a_med,
        "ratio": a_min / t_min if t_min > 0 else float("nan"),
        "algorithm": chosen, "gflops": gflops, "peak_fraction": gflops / peak_gflops,
        "torch_peak_mib": None if mem_t is None else mem_t / 2**20,
        "anyconv_peak_mib": None if mem_a is None else mem_a / 2**20,
    }


def geomean(values: list[float]) -> float:
    """Geometric mean of positive values (``nan`` for none)."""
    vals = [v for v in values if v > 0 and math.isfinite(v)]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else float("nan")


def format_rows(rows: list[dict[str, Any]]) -> str:
    """The per-case table and the per-group geometric means."""
    def mib(v: float | None) -> str:
        return "   n/a" if v is None else f"{v:6.1f}"

    head = (f"{'case':34s} {'mode':8s} {'torch ms':>9s} {'anyconv ms':>10s} {'(median)':>9s} "
            f"{'ratio':>6s} {'algorithm':10s} {'GFLOP/s':>8s} {'%peak':>6s} {'%gemm':>6s} {'MiB t/a':>13s}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['case']:34s} {r['mode']:8s} {r['torch_ms_min']:9.3f} {r['anyconv_ms_min']:10.3f} "
            f"{r['anyconv_ms_median']:9.3f} {r['ratio']:6.2f} {r['algorithm']:10s} {r['gflops']:8.1f} "
            f"{100 * r['peak_fraction']:5.1f}% {100 * r.get('gemm_fraction', float('nan')):5.1f}% "
            f"{mib(r['torch_peak_mib'])}/{mib(r['anyconv_peak_mib'])}"
        )
    lines.append("")
    lines.append("geometric mean of ratio (anyconv / torch, min times) per group:")
    by: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        by.setdefault((r["group"], r["mode"]), []).append(r["ratio"])
        by.setdefault(("ALL", r["mode"]), []).append(r["ratio"])
    for (g, m), vals in by.items():
        lines.append(f"  {g:12s} {m:8s} {geomean(vals):6.3f}  ({len(vals)} cases)")
    return "\n".join(lines)
