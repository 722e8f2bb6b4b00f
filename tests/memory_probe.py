"""Peak memory of one anyconv call above its inputs and outputs, measured as the process sees it.

Run as a script in a fresh process (``python tests/memory_probe.py < cases.json``): it reads a JSON
list of cases and prints one JSON line per case with the call's peak resident memory above its
inputs and outputs, for the forward call and (``"backward": true``) for the backward pass.

Why the process's resident set and not ``torch.profiler``'s allocator peak: the profiler sees only
torch's CPU allocator, not what BLAS packs into or what the C kernels (``native``) ``malloc``; the
kernel counts every page the call touches. The peak is the kernel's high-water mark (``VmHWM``),
reset before each measured call by writing ``5`` to ``/proc/self/clear_refs``. The call is made
once before (a warm-up of the same size: lazily loaded code, BLAS's own buffers and anyconv's
caches are then in the baseline, as in any long-running program), and glibc is told to hand every
block above 128 KiB back to the kernel when freed (``MALLOC_MMAP_THRESHOLD_``, set by
:func:`measure` for the child), so that freed buffers of the warm-up are not reused unseen.

A case is ``{"op": "conv" | "conv_transpose", "x": shape, "w": shape, "kwargs": {...},
"algorithm": name, "limit": bytes or null (the default), "backward": bool}``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from typing import Any

MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072", "OMP_NUM_THREADS": "1"}


def _status() -> dict[str, int]:
    text = open("/proc/self/status").read()
    return {k: int(re.search(k + r":\s+(\d+) kB", text).group(1)) * 1024  # type: ignore[union-attr]
            for k in ("VmRSS", "VmHWM")}


def _reset_peak() -> int:
    """Reset the high-water mark to the current resident set; return that baseline in bytes."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status()["VmRSS"]


def _nbytes(*ts: Any) -> int:
    return sum(t.numel() * t.element_size() for t in ts if t is not None)


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    import torch

    import anyconv
    import anyconv.functional as AF

    torch.manual_seed(0)
    op = AF.conv if case["op"] == "conv" else AF.conv_transpose
    backward = bool(case.get("backward"))
    x = torch.randn(case["x"], requires_grad=backward)
    w = torch.randn(case["w"], requires_grad=backward)
    kwargs = dict(case.get("kwargs", {}))
    limit = case.get("limit")
    res: dict[str, Any] = {"in_mib": _nbytes(x, w) / 2**20}
    try:
        with anyconv.workspace_limit(limit) if limit else contextlib.nullcontext():
            for measured in (False, True):  # a warm-up call of the same size, then the measured one
                x.grad = w.grad = None
                base = _reset_peak()
                y = op(x, w, algorithm=case["algorithm"], **kwargs)
                peak = _status()["VmHWM"]
                if measured:
                    res["out_mib"] = _nbytes(y) / 2**20
                    res["fwd_mib"] = (peak - base - _nbytes(y)) / 2**20
                if backward:
                    gy = torch.randn_like(y)
                    base = _reset_peak()
                    y.backward(gy)
                    peak = _status()["VmHWM"]
                    if measured:
                        # the gradients are the backward pass's outputs
                        res["bwd_mib"] = (peak - base - _nbytes(x.grad, w.grad)) / 2**20
                del y
    except ValueError as e:
        res["refused"] = str(e)
    return res


def measure(cases: list[dict[str, Any]], timeout: float = 600) -> list[dict[str, Any]]:
    """Run ``cases`` in one fresh process (1 thread, the malloc settings above); their results."""
    env = {**os.environ, **MALLOC_ENV}
    proc = subprocess.run([sys.executable, __file__], input=json.dumps(cases), capture_output=True,
                          text=True, env=env, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"memory probe failed:\n{proc.stderr[-4000:]}")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def main() -> None:
    import torch

    torch.set_num_threads(1)
    for case in json.load(sys.stdin):
        print(json.dumps({**case, **run_case(case)}), flush=True)


if __name__ == "__main__":
    main()
