"""The native kernels under AddressSanitizer and UndefinedBehaviorSanitizer.

The C library is built once more with ``-fsanitize=address,undefined`` (through ``$CFLAGS``, which
the build appends to its own flags and hashes into the build key: a library of its own) into a
private cache, and the native test files run against it in a child Python started with the
sanitizer runtime preloaded (a Python that is not itself instrumented needs libasan first in the
process). torch's CPU allocator takes tensors' memory from malloc, which ASan surrounds with red
zones: a kernel that reads or writes one element past a tensor, or does anything undefined (a
signed overflow, a misaligned scalar access, a shift too far), aborts the child with a report.

A control shows first that the harness catches both kinds: a tiny library built with the same flags
that reads one float past a malloc'd buffer, and one that overflows a signed int.

``-O1`` rather than the library's ``-O3`` (``$CFLAGS`` comes last): the sanitized build compiles in
about a minute instead of ten; the kernels' vector intrinsics are the same instructions either way.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from anyconv.algorithms import _native_abi

SANITIZE = "-O1 -g0 -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
# the test files that call the C library's kernels (every entry point: corr, corr_t, gemm, gemm_w,
# gemm_x, gemm_xt, dot_w, the Winograd transforms, the strided copy)
NATIVE_TESTS = ("test_native.py", "test_gemm.py", "test_gemm_x.py", "test_gemm_wrap.py", "test_dot_w.py",
                "test_wino_w.py")
TESTS = Path(__file__).parent

pytestmark = pytest.mark.skipif(_native_abi.unavailable() is not None, reason="no native library")


def _runtime() -> str:
    """The compiler's ASan runtime (``cc -print-file-name=libasan.so``)."""
    cc = shlex.split(os.environ.get("CC", "cc"))
    found = subprocess.run([*cc, "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    if not found or not os.path.isabs(found) or not os.path.exists(found):
        pytest.fail(f"the compiler {cc!r} has no ASan runtime (libasan.so): the sanitizer harness cannot run")
    return found


def _env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"CFLAGS": SANITIZE, "ANYCONV_CACHE": str(cache), "LD_PRELOAD": _runtime(),
                "ASAN_OPTIONS": "detect_leaks=0:halt_on_error=1:abort_on_error=0",
                "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
                "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    env.pop("PYTEST_XDIST_WORKER", None)
    return env


CONTROL = r"""
#include <stdlib.h>
float past_the_end(int n) { float *p = malloc(n * sizeof(float)); for (int i = 0; i < n; i++) p[i] = i;
                            float s = p[n]; free(p); return s; }
int overflow(int a) { return a + 2147483647; }
"""


@pytest.mark.parametrize("call, report", [("past_the_end(4)", "heap-buffer-overflow"),
                                          ("overflow(5)", "signed integer overflow")])
def test_the_harness_catches_an_overread_and_undefined_behaviour(tmp_path: Path, call: str, report: str):
    src = tmp_path / "control.c"
    src.write_text(CONTROL)
    lib = tmp_path / "control.so"
    cc = shlex.split(os.environ.get("CC", "cc"))
    subprocess.run([*cc, "-shared", "-fPIC", *SANITIZE.split(), str(src), "-o", str(lib)], check=True)
    fn, arg = call.rstrip(")").split("(")
    code = (f"import ctypes; lib = ctypes.CDLL({str(lib)!r}); lib.{fn}.restype = ctypes.c_float;"
            f"lib.{fn}({arg}); print('not caught')")
    done = subprocess.run([sys.executable, "-c", code], env=_env(tmp_path), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0 and "not caught" not in done.stdout, done.stdout + done.stderr
    assert report in done.stderr, done.stderr[-2000:]


def test_the_native_tests_pass_under_asan_and_ubsan(tmp_path: Path):
    if shutil.which(shlex.split(os.environ.get("CC", "cc"))[0]) is None:
        pytest.fail("no C compiler, but the native library loaded: the harness needs the compiler")
    cache = tmp_path / "cache"
    files = [str(TESTS / f) for f in NATIVE_TESTS]
    # (pyproject's addopts has -q already: a second one would hide the summary line)
    done = subprocess.run([sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", "-p", "no:xdist",
                           *files], env=_env(cache), capture_output=True, text=True, timeout=1800, cwd=TESTS.parent)
    tail = (done.stdout + done.stderr)[-6000:]
    assert done.returncode == 0, tail
    lines = done.stdout.strip().splitlines()
    assert " passed" in lines[-1] and "failed" not in lines[-1] and "error" not in lines[-1], tail
    # the only skips allowed: the AVX-512-only kernel's tests on a machine without AVX-512
    skips = [line for line in lines if line.startswith("SKIPPED")]
    assert all(line.endswith("no native library built for AVX-512") for line in skips), "\n".join(skips)
    assert not skips or not _native_abi.lanes_built(), "\n".join(skips)
    # the child ran the sanitized library: the one it built links the sanitizer runtimes
    built = sorted(cache.glob("anyconv_native_*.so"))
    assert built, f"no library was built into {cache}"
    assert all(b"libasan.so" in p.read_bytes() and b"libubsan.so" in p.read_bytes() for p in built), built
