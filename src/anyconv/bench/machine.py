"""The machine a benchmark runs on: CPU model, ISA, threads, load, and its own measured float32 peak.

No machine is assumed: the peak that ``%peak`` columns are relative to is measured here, as
the rate of a float32 ``torch.matmul`` (oneDNN/MKL's GEMM, near the FMA units' peak) at one
thread and at every thread count the benchmark uses.

Examples:
    >>> from anyconv.bench.machine import isa, matmul_gflops
    >>> isinstance(isa(), str) and matmul_gflops(size=64, repeats=1) > 0
    True
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Iterable
from typing import Any

import torch

# CPU flags worth naming in a benchmark's header, in this order (Linux ``/proc/cpuinfo`` names).
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "neon", "asimd", "sve")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; else the processor's or machine's name)."""
    from ..algorithms import _native_build

    return _native_build.cpu_model()


def isa() -> str:
    """The vector extensions the CPU reports, from :data:`ISA_FLAGS` (``"none"`` if none)."""
    from ..algorithms import _native_build

    flags = set(_native_build.cpu_features().split())
    return " ".join(f for f in ISA_FLAGS if f in flags) or "none"


# torch's thread count when this module was first imported: the user's default (torch's physical
# cores unless OMP_NUM_THREADS or an earlier torch.set_num_threads said otherwise).
_DEFAULT_THREADS = max(1, torch.get_num_threads())


def all_threads() -> int:
    """The thread count a user gets by default (torch's, as it was when this module was imported)."""
    return _DEFAULT_THREADS


def load_average() -> float | None:
    """The 1-minute load average, where the OS reports it."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def matmul_gflops(size: int = 1024, repeats: int = 10, threads: int | None = None) -> float:
    """Float32 ``torch.matmul`` rate on ``size``-square matrices, best of ``repeats``, in GFLOP/s.

    Args:
        size: the matrices' side (1024: large enough for the GEMM to run at its peak).
        repeats: timed calls after a warm-up call; the fastest counts.
        threads: torch threads for the measurement (restored after); ``None``: torch's current.
    """
    saved = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        a, b = torch.randn(size, size), torch.randn(size, size)
        torch.matmul(a, b)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch.matmul(a, b)
            best = min(best, time.perf_counter() - t0)
    finally:
        torch.set_num_threads(saved)
    return 2 * size**3 / best / 1e9


def measured_peaks(threads: Iterable[int]) -> dict[int, float]:
    """:func:`matmul_gflops` at 1 thread and at each count in ``threads`` (sorted, deduplicated)."""
    return {t: matmul_gflops(threads=t) for t in sorted({1, *threads})}


def describe(peaks: dict[int, float]) -> str:
    """One header line: CPU model, architecture and ISA, then the measured peak per thread count."""
    rates = ", ".join(f"{v:.0f} GFLOP/s at {t} thread{'s' if t > 1 else ''}" for t, v in sorted(peaks.items()))
    return (f"cpu: {cpu_model()} ({platform.machine()}; {isa()}), {os.cpu_count()} logical CPU(s), "
            f"torch default {all_threads()} thread(s)\n"
            f"measured peak (float32 torch.matmul 1024^3): {rates}")


def info(peaks: dict[int, float]) -> dict[str, Any]:
    """The machine and versions as a JSON-ready dict (for result files)."""
    from .. import __version__

    return {
        "cpu": cpu_model(), "isa": isa(), "machine": platform.machine(), "cpu_count": os.cpu_count(),
        "default_threads": all_threads(), "peak_gflops": {str(t): v for t, v in sorted(peaks.items())},
        "torch": torch.__version__, "anyconv": __version__, "python": platform.python_version(),
        "dtype": "float32", "load_average": load_average(),
    }
