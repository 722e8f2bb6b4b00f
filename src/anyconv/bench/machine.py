"""The machine a benchmark runs on: CPU model, ISA, threads, load, and its own measured float32 peak.

No machine is assumed: the peak that ``%peak`` columns are relative to is measured here, at one
thread and at every thread count the benchmark uses, as the rate of the FMA units themselves
(:func:`fma_gflops`: the native library's loop of independent float32 multiply-adds in the build's
widest vectors, no memory traffic); without the native library, as the rate of a float32
``torch.matmul`` (:func:`matmul_gflops`), which the header line prints too: a BLAS can run well
below the FMA peak (MKL on AMD CPUs takes its AVX2 path: about 40% of an AVX-512 machine's peak).

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


def fma_gflops(threads: int = 1, rounds: int = 2_000_000, repeats: int = 5) -> float | None:
    """The FMA units' float32 rate on ``threads`` threads, best of ``repeats``, in GFLOP/s (the native
    library's ``fma_flops_f32``: ``rounds`` of 24 independent vector multiply-adds per thread); None
    without the native library."""
    from ..algorithms import _native_abi

    lib = _native_abi.library()
    if lib is None:
        return None
    best = 0.0
    for _ in range(repeats + 1):  # (the first call wakes the threads and the clocks)
        t0 = time.perf_counter()
        flops = lib.fma_flops_f32(rounds, threads)
        best = max(best, flops / (time.perf_counter() - t0) / 1e9)
    return best


def measured_peaks(threads: Iterable[int]) -> dict[int, float]:
    """The peak at 1 thread and at each count in ``threads`` (sorted, deduplicated): :func:`fma_gflops`,
    else :func:`matmul_gflops`."""
    out = {}
    for t in sorted({1, *threads}):
        fma = fma_gflops(t)
        out[t] = fma if fma is not None else matmul_gflops(threads=t)
    return out


def describe(peaks: dict[int, float]) -> str:
    """The header: CPU model, architecture and ISA, the measured peak per thread count, and the float32
    ``torch.matmul`` rate at the same counts (how far the BLAS is from that peak)."""
    def rates(values: dict[int, float]) -> str:
        return ", ".join(f"{v:.0f} GFLOP/s at {t} thread{'s' if t > 1 else ''}" for t, v in sorted(values.items()))

    from ..algorithms import _native_abi

    how = "FMA units, native loop" if _native_abi.library() is not None else "torch.matmul 1024^3"
    mm = {t: matmul_gflops(threads=t, repeats=3) for t in peaks}
    return (f"cpu: {cpu_model()} ({platform.machine()}; {isa()}), {os.cpu_count()} logical CPU(s), "
            f"torch default {all_threads()} thread(s)\n"
            f"measured peak (float32, {how}): {rates(peaks)}\n"
            f"float32 torch.matmul 1024^3: {rates(mm)}")


def info(peaks: dict[int, float]) -> dict[str, Any]:
    """The machine and versions as a JSON-ready dict (for result files)."""
    from .. import __version__

    return {
        "cpu": cpu_model(), "isa": isa(), "machine": platform.machine(), "cpu_count": os.cpu_count(),
        "default_threads": all_threads(), "peak_gflops": {str(t): v for t, v in sorted(peaks.items())},
        "torch": torch.__version__, "anyconv": __version__, "python": platform.python_version(),
        "dtype": "float32", "load_average": load_average(),
    }
