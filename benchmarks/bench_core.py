"""Core benchmark (not a test): anyconv's ``algorithm="auto"`` against torch's own kernels.

ResNet-style 2-D layers, a depthwise layer, a Conv3d layer and one layer whose full im2col
buffer would exceed 1 GiB; forward and forward+backward (grads of input, weight and bias),
float32, CPU. anyconv and torch are timed interleaved in one process (``_util.interleaved``);
the table gives the medians, the ratio ours/torch (< 1: anyconv faster) and the peak extra
memory of one call of each (``_util.peak_extra_memory``: resident-set high-water mark and
torch-allocator peak; both include the call's result, ``result_MiB``: the output, or with
backward the three gradients; the scratch is the peak minus the result).

    python benchmarks/bench_core.py --quick              # batch 1, 2 rounds: a few minutes on 1 thread
    python benchmarks/bench_core.py                      # the full table (batch 8)
    python benchmarks/bench_core.py --threads 4 --cases big_im2col --out benchmarks/results/core
    python benchmarks/bench_core.py --quick --cases big_im2col --workspace 64   # scratch follows the limit
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from _util import (
    MiB,
    format_table,
    interleaved,
    load_average,
    machine_info,
    mib,
    peak_extra_memory,
    set_threads,
    write_results,
)

import anyconv
import anyconv.functional as AF


@dataclass(frozen=True)
class Case:
    """One layer: input ``(B, C, *spatial)`` with ``batch`` replaced per mode, weight, conv kwargs."""

    name: str
    input: tuple[int, ...]
    weight: tuple[int, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    fixed_batch: bool = False  # keep input[0] in --quick and full runs alike
    algorithm: str = "auto"

    def shape(self, batch: int) -> tuple[int, ...]:
        return self.input if self.fixed_batch else (batch, *self.input[1:])


CASES = (
    Case("resnet_stem_7x7_s2", (8, 3, 224, 224), (64, 3, 7, 7), {"stride": 2, "padding": 3}),
    Case("resnet_3x3_64_56", (8, 64, 56, 56), (64, 64, 3, 3), {"padding": 1}),
    Case("resnet_3x3_s2_64to128", (8, 64, 56, 56), (128, 64, 3, 3), {"stride": 2, "padding": 1}),
    Case("resnet_1x1_s2_proj", (8, 64, 56, 56), (128, 64, 1, 1), {"stride": 2}),
    Case("resnet_3x3_256_14", (8, 256, 14, 14), (256, 256, 3, 3), {"padding": 1}),
    Case("depthwise_3x3_144_56", (8, 144, 56, 56), (144, 1, 3, 3), {"padding": 1, "groups": 144}),
    Case("conv3d_3x3x3_32to64", (2, 32, 8, 28, 28), (64, 32, 3, 3, 3), {"padding": 1}),
    # full im2col: 32 * 49 * 448 * 448 * 4 B = 1.18 GiB; the workspace limit is 256 MiB
    Case("big_im2col_7x7_32to8_448", (1, 32, 448, 448), (8, 32, 7, 7), {"padding": 3}, fixed_batch=True),
    Case("big_im2col_7x7_32to8_448@im2col", (1, 32, 448, 448), (8, 32, 7, 7), {"padding": 3}, fixed_batch=True,
         algorithm="im2col"),
)


def full_im2col_bytes(x: tuple[int, ...], w: tuple[int, ...], kwargs: dict[str, Any]) -> int:
    """Bytes of the whole im2col buffer ``(B, C * prod(k), prod(out))`` in float32."""
    out = anyconv.tools.output_shape("conv", x, weight_shape=w, **kwargs)
    return x[0] * x[1] * math.prod(w[2:]) * math.prod(out[2:]) * 4


def torch_conv(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, kwargs: dict[str, Any]) -> torch.Tensor:
    fn = {3: F.conv1d, 4: F.conv2d, 5: F.conv3d}[w.dim()]
    return fn(x, w, b, **kwargs)




def calls(case: Case, batch: int, backward: bool) -> dict[str, Callable[[], Any]]:
    """Zero-argument calls of anyconv (``case.algorithm``) and torch on the same tensors."""
    def ours(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, kwargs: dict[str, Any]) -> torch.Tensor:
        return AF.conv(x, w, b, **kwargs, algorithm=case.algorithm)

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(case.shape(batch), generator=gen)
    w = torch.randn(case.weight, generator=gen) / math.sqrt(math.prod(case.weight[1:]))
    b = torch.randn(case.weight[0], generator=gen)
    if not backward:

        def forward(f: Callable[..., torch.Tensor]) -> Callable[[], Any]:
            return lambda: f(x, w, b, case.kwargs)

        return {"anyconv": forward(ours), "torch": forward(torch_conv)}
    xs, ws, bs = (t.clone().requires_grad_(True) for t in (x, w, b))
    g = torch.randn(torch_conv(x, w, b, case.kwargs).shape, generator=gen)

    def step(f: Callable[..., torch.Tensor]) -> Callable[[], Any]:
        def run() -> tuple[torch.Tensor | None, ...]:
            for t in (xs, ws, bs):
                t.grad = None
            f(xs, ws, bs, case.kwargs).backward(g)
            return xs.grad, ws.grad, bs.grad

        return run

    return {"anyconv": step(ours), "torch": step(torch_conv)}


def chosen(case: Case, batch: int) -> str:
    if case.algorithm != "auto":
        return f"({case.algorithm})"
    try:
        x = torch.empty(case.shape(batch))
        w = torch.empty(case.weight)
        return str(anyconv.choose_algorithm(x, w, **case.kwargs))
    except Exception as e:  # the chooser is informative only; never stop the benchmark for it
        return f"? ({type(e).__name__})"


def result_bytes(result: Any) -> int:
    """Bytes of the tensors a call returns (its output, or the gradients for fwd+bwd)."""
    items = result if isinstance(result, tuple) else (result,)
    return sum(t.numel() * t.element_size() for t in items if isinstance(t, torch.Tensor))


def run_case(case: Case, mode: str, batch: int, rounds: int, min_run_time: float, memory: bool) -> dict[str, Any]:
    fns = calls(case, batch, backward=mode == "fwd+bwd")
    t = interleaved(fns, rounds=rounds, min_run_time=min_run_time)
    row: dict[str, Any] = {
        "case": case.name,
        "mode": mode,
        "input": "x".join(map(str, case.shape(batch))),
        "auto": chosen(case, batch),
        "ours_ms": round(t["anyconv"].median * 1e3, 2),
        "torch_ms": round(t["torch"].median * 1e3, 2),
        "ratio": round(t["anyconv"].median / t["torch"].median, 2),
        "ours_min_ms": round(t["anyconv"].min * 1e3, 2),
        "torch_min_ms": round(t["torch"].min * 1e3, 2),
        "full_im2col_MiB": mib(full_im2col_bytes(case.shape(batch), case.weight, case.kwargs)),
        "result_MiB": mib(result_bytes(fns["torch"]())),
    }
    if memory:
        for name in ("anyconv", "torch"):
            m = peak_extra_memory(fns[name])
            key = "ours" if name == "anyconv" else "torch"
            row[f"{key}_rss_MiB"] = mib(m.rss)
            row[f"{key}_alloc_MiB"] = mib(m.allocated)
    return row


COLUMNS = ("case", "mode", "input", "auto", "ours_ms", "torch_ms", "ratio", "ours_rss_MiB", "torch_rss_MiB",
           "ours_alloc_MiB", "torch_alloc_MiB", "result_MiB", "full_im2col_MiB")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="batch 1, 2 rounds, short timing blocks")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5, --quick 2)")
    p.add_argument("--cases", default="", help="comma-separated case names or name prefixes (default: all)")
    p.add_argument("--modes", default="fwd,fwd+bwd", help="fwd, fwd+bwd or both (default)")
    p.add_argument("--workspace", type=float, default=None, help="anyconv workspace limit in MiB (default 256)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument("--out", default=None, help="write OUT.csv and OUT.json (e.g. benchmarks/results/core)")
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error("--threads must be >= 1")
    set_threads(args.threads)
    if args.workspace is not None:
        anyconv.set_workspace_limit(int(args.workspace * MiB))
    batch = 1 if args.quick else 8
    rounds = args.rounds or (2 if args.quick else 5)
    min_run_time = 0.05 if args.quick else 0.2
    wanted = [c for c in args.cases.split(",") if c]
    cases = [c for c in CASES if not wanted or any(c.name.startswith(w) for w in wanted)]
    modes = [m for m in args.modes.split(",") if m]
    if not cases or any(m not in ("fwd", "fwd+bwd") for m in modes):
        p.error(f"no such case or mode; cases: {', '.join(c.name for c in CASES)}; modes: fwd, fwd+bwd")
    meta = machine_info()
    print(f"anyconv {meta['anyconv']} vs torch {meta['torch']}, float32 CPU, {meta['threads']} thread(s), "
          f"load average {meta['load_average']}, workspace limit {mib(meta['workspace_limit'])} MiB, "
          f"{'quick' if args.quick else 'full'} run ({rounds} rounds)", flush=True)
    rows = []
    for case in cases:
        for mode in modes:
            rows.append(run_case(case, mode, batch, rounds, min_run_time, not args.no_memory))
            r = rows[-1]
            print(f"  {r['case']:<26} {r['mode']:<8} ours {r['ours_ms']:>9} ms  torch {r['torch_ms']:>9} ms  "
                  f"ratio {r['ratio']:>5}  peak MiB ours/torch {r.get('ours_rss_MiB', '-')}/{r.get('torch_rss_MiB', '-')}",
                  flush=True)
    print()
    print(format_table(rows, [c for c in COLUMNS if any(c in r for r in rows)]))
    ratios = [r["ratio"] for r in rows]
    print(f"\ngeometric mean ratio ours/torch: {math.exp(sum(map(math.log, ratios)) / len(ratios)):.2f}; "
          f"load average at the end {load_average()}; MiB = {MiB} bytes")
    if args.out:
        print("wrote", ", ".join(write_results(rows, args.out, meta)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
