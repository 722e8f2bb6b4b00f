"""Shared benchmark helpers: threads, machine info, interleaved timing, peak extra memory, output files.

Use from a script in ``benchmarks/`` (``sys.path`` holds the script's folder)::

    from _util import interleaved, machine_info, peak_extra_memory, set_threads, write_results

    set_threads(1)
    t = interleaved({"anyconv": f_ours, "torch": f_torch}, rounds=5)   # {name: Timing}
    ratio = t["anyconv"].median / t["torch"].median
    mem = peak_extra_memory(f_ours)                                     # Memory(rss, allocated)
    write_results(rows, "benchmarks/results/core", machine_info())      # .csv + .json

Timing: ``torch.utils.benchmark.Timer.blocked_autorange`` (warm-up, then blocks of runs for at
least ``min_run_time`` seconds; the block median is one sample). The functions are measured in
turn, round after round, with the order rotated each round, so that a change of machine load
hits all of them alike; ``Timing`` keeps the minimum and the median of the per-round samples.

Peak extra memory, two measures of one call made after a warm-up call:

- ``rss``: the process's resident-set high-water mark (``VmHWM``) is reset to the current
  resident set by writing ``5`` to ``/proc/self/clear_refs`` (Linux >= 4.0), after
  ``gc.collect()`` and glibc's ``malloc_trim(0)`` return cached free memory to the system;
  ``VmHWM - VmRSS`` after the call is everything the call touched at its peak: tensors,
  BLAS/oneDNN scratch, allocator slack. ``None`` where the kernel refuses.
- ``allocated``: the peak of the running sum of torch's CPU allocator events recorded by
  ``torch.profiler`` (``profile_memory=True``): tensor storage only, exact, noise-free.

Both include the call's outputs (and, for a backward pass, the gradients) that are alive at
its peak.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.utils.benchmark as tbench

MiB = 2**20


def set_threads(n: int) -> int:
    """Use ``n`` intra-op threads (also for torch's interop pool where still allowed); return ``n``."""
    torch.set_num_threads(n)
    os.environ["OMP_NUM_THREADS"] = str(n)
    return n


def load_average() -> tuple[float, float, float] | None:
    """``os.getloadavg()`` (1, 5, 15 minutes) or ``None`` where unavailable."""
    try:
        return os.getloadavg()
    except OSError:
        return None


def machine_info() -> dict[str, Any]:
    """Versions, CPU, thread count and load, for the header of a result file."""
    import anyconv

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "anyconv": anyconv.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "load_average": load_average(),
        "device": "cpu",
        "workspace_limit": anyconv.get_workspace_limit(),
    }


@dataclass(frozen=True)
class Timing:
    """Seconds per call: the minimum and the median of the per-round samples."""

    min: float
    median: float
    samples: tuple[float, ...]


def interleaved(
    fns: dict[str, Callable[[], Any]], rounds: int = 5, min_run_time: float = 0.2
) -> dict[str, Timing]:
    """Time every function in ``fns`` in turn, ``rounds`` times, in one process (see module doc)."""
    names = list(fns)
    for name in names:  # warm-up: first-call costs (allocation, lazy init) stay out of the samples
        fns[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            timer = tbench.Timer(stmt="fn()", globals={"fn": fns[name]}, num_threads=torch.get_num_threads())
            samples[name].append(timer.blocked_autorange(min_run_time=min_run_time).median)
    return {n: Timing(min(s), statistics.median(s), tuple(s)) for n, s in samples.items()}


@dataclass(frozen=True)
class Memory:
    """Peak extra bytes of one call: resident set (``None`` if unmeasurable) and torch allocator."""

    rss: int | None
    allocated: int


def peak_rss_extra(fn: Callable[[], Any]) -> int | None:
    """Peak resident-set growth (bytes) during one call of ``fn`` (Linux ``clear_refs``), else None."""
    from anyconv.bench.runner import peak_rss_bytes

    return peak_rss_bytes(fn)


def peak_allocated_extra(fn: Callable[[], Any]) -> int:
    """Peak of torch's CPU allocator (bytes above the start) during one call, from profiler events."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn()
    del result
    events = sorted(
        (e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"
    )
    current = peak = 0
    for _, nbytes in events:
        current += nbytes
        peak = max(peak, current)
    return peak


def peak_extra_memory(fn: Callable[[], Any]) -> Memory:
    """Both peak measures of one call of ``fn`` after a warm-up call (see the module doc)."""
    fn()
    rss = peak_rss_extra(fn)
    return Memory(rss, peak_allocated_extra(fn))


def mib(nbytes: float | None) -> str:
    """Bytes as a short MiB string (``-`` for None)."""
    return "-" if nbytes is None else f"{nbytes / MiB:.1f}"


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table of ``rows`` (dicts) with the given ``columns``, right-aligned."""
    cells = [[str(c) for c in columns]] + [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_results(rows: Sequence[dict[str, Any]], base: str, meta: dict[str, Any]) -> list[str]:
    """Write ``base.csv`` (rows) and ``base.json`` (``meta`` plus rows); return the two paths."""
    os.makedirs(os.path.dirname(os.path.abspath(base)), exist_ok=True)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(base + ".csv", "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)
    with open(base + ".json", "w") as f:
        json.dump({"meta": meta, "argv": sys.argv, "rows": list(rows)}, f, indent=1)
    return [base + ".csv", base + ".json"]
