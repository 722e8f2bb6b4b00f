"""The native library's compiler flags: which instruction set it is built for, and OpenMP.

- **The instruction set** (``$ANYCONV_NATIVE_ISA``): ``native`` (the default) builds for the CPU it
  runs on (``-march=native``: AVX-512 where the CPU has it, else AVX2/FMA, else what it has), and the
  kernels pick their vector widths and register tiles from the compiler's macros (``__AVX512F__``,
  ``__AVX2__``); ``avx2`` builds the AVX2/FMA kernels (``-march=haswell``) on any CPU that has them,
  which is how an AVX-512 machine runs and tests the AVX2 path; ``generic`` builds portable C for the
  machine's baseline (``-march=x86-64`` on x86-64, no ``-march`` elsewhere). A requested ISA the CPU
  lacks falls back to ``native`` (its instructions would stop the process).
- **OpenMP** (``-fopenmp``, unless ``$ANYCONV_NATIVE_OPENMP=0``): the kernels' worker threads are the
  process's OpenMP threads. torch's wheel loads ``libgomp.so.1`` before the library does, and the
  dynamic loader resolves the library's ``libgomp.so.1`` to that same loaded copy: the kernels run on
  torch's own persistent pool instead of starting threads that compete with torch's spinning workers.
  A compiler without OpenMP builds the pthread version (:func:`anyconv.algorithms._native_build.load`
  retries without the flag).

The flags are part of the build key, so each choice is its own cached library.

Example:
    >>> isa_flags("avx2")
    ['-march=haswell', '-mtune=generic']
    >>> isa_flags("native")
    ['-march=native']
"""

from __future__ import annotations

import os
import platform

ISAS = ("native", "avx2", "generic")
OPENMP = "-fopenmp"
_REQUIRES = {"avx2": ("avx2", "fma")}


def isa(features: str = "") -> str:
    """The ISA to build for: ``$ANYCONV_NATIVE_ISA`` if the CPU (its ``features`` flags) has it, else ``native``."""
    want = os.environ.get("ANYCONV_NATIVE_ISA", "native").strip().lower() or "native"
    if want not in ISAS:
        return "native"
    if want in _REQUIRES and features and not all(f in features.split() for f in _REQUIRES[want]):
        return "native"
    return want


def isa_flags(which: str) -> list[str]:
    """The ``-march`` flag of an ISA name of :data:`ISAS` (``generic`` off x86-64: none)."""
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    if which == "avx2":
        return ["-march=haswell", "-mtune=generic"]
    if which == "generic":
        return ["-march=x86-64", "-mtune=generic"] if x86 else []
    return ["-march=native"]


def openmp_flags() -> list[str]:
    """``["-fopenmp"]`` unless ``$ANYCONV_NATIVE_OPENMP=0``."""
    return [] if os.environ.get("ANYCONV_NATIVE_OPENMP", "1") == "0" else [OPENMP]
