"""``anyconv doctor``: what anyconv can use on this machine, and why not where it cannot."""

from __future__ import annotations

import argparse
import subprocess
from typing import Any

EPILOG = """\
example:
  anyconv doctor            versions, CPU, native kernel cache and build, what `auto` can use

The native kernel (a C library compiled on first use) is loaded only from a private cache
directory and only after its owner, mode, size and SHA-256 are checked; this command shows
which directory, compiler, flags and file that is, and the reason when native is off.
"""

# CPU features that decide which of native's forms are built (x86-64 names)
FEATURES = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "amx_tile")


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("doctor", help="what anyconv can use here: CPU, native kernel cache, algorithms",
                              description="Print versions, CPU features, the native kernel's cache directory, "
                                          "compiler and verified build, and the algorithms `auto` can use.",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=run)
    return p


def _compiler_version(cmd: list[str]) -> str:
    try:
        done = subprocess.run([*cmd, "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as e:
        return f"not usable ({e})"
    lines = done.stdout.strip().splitlines()
    return lines[0] if done.returncode == 0 and lines else f"not usable (exit {done.returncode})"


def report() -> list[str]:
    """The lines ``anyconv doctor`` prints."""
    import platform

    import torch

    from .. import __version__
    from ..algorithms import _native_build as nb
    from ..algorithms import names, native

    flags = set(nb.cpu_features().split())
    have = [f for f in FEATURES if f in flags] or ["(none of " + ", ".join(FEATURES) + ")"]
    lines = [f"anyconv {__version__}, torch {torch.__version__}, Python {platform.python_version()}",
             f"cpu: {nb.cpu_model()} ({platform.machine()}), {torch.get_num_threads()} torch threads; "
             f"features: {' '.join(have)}"]
    why = native.unavailable()
    info = native.build_info()
    if info is None:
        cmd = nb.compiler()
        directory, note = nb.cache_directory()
        lines += [f"native cache: {directory}" + (f" (passed over: {note})" if note else ""),
                  f"compiler: {' '.join(cmd)} -> {_compiler_version(cmd)}",
                  f"flags: {' '.join(nb.flags())}"]
    else:
        lines += [f"native cache: {info.directory} (private: owned by this user, writable by nobody else)"
                  + (f"; passed over: {info.directory_note}" if info.directory_note else ""),
                  f"compiler: {' '.join(info.compiler)} -> {_compiler_version(info.compiler)}",
                  f"flags: {' '.join(info.flags)}",
                  f"build: {info.path} ({info.size} bytes, sha256 {info.sha256[:16]}..., verified before loading)",
                  "         " + (f"compiled in this process in {info.compiled_seconds:.1f} s"
                                 if info.compiled_seconds is not None else "loaded from the cache")
                  + (f"; the cached file {info.rebuilt_because.split(' ', 1)[1]}, so it was rebuilt"
                     if info.rebuilt_because else "")
                  + (f"; waited {info.waited_seconds:.1f} s for another process's build"
                     if info.waited_seconds >= 0.1 else "")]
        lib = native.library()
        lanes = lib is not None and bool(lib.lanes_form_f32())
        lines.append(f"native forms: rows, dots{', lanes (AVX-512, depthwise float32)' if lanes else ''}")
    lines.append(f"native: {'available' if why is None else 'unavailable: ' + why}")
    usable = [n for n in names() if n != "native" or why is None]
    lines.append(f"auto chooses among: {', '.join(usable)}")
    return lines


def run(args: argparse.Namespace) -> int:
    print("\n".join(report()))
    return 0
