"""Pooling benchmark: anyconv vs torch on ResNet-sized inputs, forward and forward+backward.

The issue's bar (issue 3): max_pool2d 3x3 s2 p1 on 112x112, avg_pool2d 2x2 on 56x56 and
adaptive_avg_pool2d 7x7 -> 1 (batch 32, 64 channels, float32), forward and forward+backward:
geometric mean of the time ratio ours/torch <= 1.5, and extra workspace <= 2x the output.
One more adaptive case (15x15 -> 4x4, windows that do not tile the input) is reported too.

Timing: ``_util.interleaved`` (torch.utils.benchmark blocked_autorange, ours and torch's
measured in turn, order rotated each round) on 1 thread by default; min and median per call;
ratio of medians. Memory: ``_util.peak_allocated_extra`` (the peak of torch's CPU allocator
events during one call) minus the bytes the call returns (its output, indices, ``x.grad``),
divided by the output's bytes. For forward+backward that includes the ``ones_like`` gradient
the benchmark feeds to ``backward`` (1x the output) and the saved int64 indices of max pooling
(2x the output of float32), for torch as for us.

    python benchmarks/bench_pooling.py                       # all cases, 1 thread
    python benchmarks/bench_pooling.py --quick               # batch 4, 2 rounds
    python benchmarks/bench_pooling.py --out benchmarks/results/pooling
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from _util import format_table, interleaved, machine_info, peak_allocated_extra, set_threads, write_results

import anyconv.functional as AF

# name -> (input shape without batch, anyconv fn, torch fn, part of the bar)
CASES: dict[str, tuple[tuple[int, ...], Callable[..., Any], Callable[..., Any], bool]] = {
    "max_pool2d 3x3 s2 p1 112x112": ((64, 112, 112), lambda x: AF.max_pool2d(x, 3, 2, 1),
                                     lambda x: F.max_pool2d(x, 3, 2, 1), True),
    "avg_pool2d 2x2 56x56": ((64, 56, 56), lambda x: AF.avg_pool2d(x, 2), lambda x: F.avg_pool2d(x, 2), True),
    "adaptive_avg_pool2d 7x7->1": ((64, 7, 7), lambda x: AF.adaptive_avg_pool2d(x, 1),
                                   lambda x: F.adaptive_avg_pool2d(x, 1), True),
    "adaptive_avg_pool2d 15x15->4x4": ((64, 15, 15), lambda x: AF.adaptive_avg_pool2d(x, 4),
                                       lambda x: F.adaptive_avg_pool2d(x, 4), False),
}


def _call(fn: Callable[..., Any], x: torch.Tensor, backward: bool) -> Callable[[], tuple[torch.Tensor, ...]]:
    """A no-argument call returning what it leaves allocated (output, and x.grad for backward)."""

    def run() -> tuple[torch.Tensor, ...]:
        if not backward:
            with torch.no_grad():
                return (fn(x),)
        x.grad = None
        y = fn(x)
        y.backward(torch.ones_like(y))
        return y, x.grad  # type: ignore[return-value]

    return run


def _bytes(ts: tuple[torch.Tensor, ...]) -> int:
    return sum(t.numel() * t.element_size() for t in ts)


def measure(name: str, backward: bool, batch: int, rounds: int, memory: bool) -> dict[str, Any]:
    shape, ours, ref, bar = CASES[name]
    torch.manual_seed(0)
    x = torch.randn((batch, *shape), requires_grad=backward)
    calls = {"anyconv": _call(ours, x, backward), "torch": _call(ref, x, backward)}
    t = interleaved(calls, rounds=rounds)
    row: dict[str, Any] = {"case": name, "pass": "fwd+bwd" if backward else "fwd", "bar": bar}
    for label, timing in t.items():
        row[f"{label}_min_ms"] = round(1e3 * timing.min, 3)
        row[f"{label}_median_ms"] = round(1e3 * timing.median, 3)
    row["ratio"] = round(t["anyconv"].median / t["torch"].median, 3)
    if memory:
        for label, run in calls.items():
            out = run()
            y_bytes = out[0].numel() * out[0].element_size()
            keep = _bytes(out)
            del out
            x.grad = None  # freed before the profiled call, not inside it
            row[f"{label}_extra_mem_x_out"] = round((peak_allocated_extra(run) - keep) / y_bytes, 2)
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--quick", action="store_true", help="batch 4, 2 rounds: a cheap check that it runs")
    p.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--out", default=None, help="write OUT.csv and OUT.json")
    args = p.parse_args(argv)
    if args.quick:
        args.batch, args.rounds = 4, 2
    set_threads(args.threads)
    rows = [measure(name, bw, args.batch, args.rounds, not args.no_memory)
            for name in args.cases for bw in (False, True)]
    cols = ["case", "pass", "anyconv_min_ms", "anyconv_median_ms", "torch_min_ms", "torch_median_ms", "ratio"]
    if not args.no_memory:
        cols += ["anyconv_extra_mem_x_out", "torch_extra_mem_x_out"]
    print(f"torch {torch.__version__}, threads={args.threads}, batch={args.batch}, float32, cpu")
    print(format_table(rows, cols))
    for label, sel in (("issue bar (first three cases)", [r for r in rows if r["bar"]]), ("all rows", rows)):
        if sel:
            gm = math.exp(sum(math.log(r["ratio"]) for r in sel) / len(sel))
            print(f"geometric mean ratio ours/torch, {label}: {gm:.3f}")
    if args.out:
        print("wrote", *write_results(rows, args.out, machine_info()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
