"""``anyconv bench``: time anyconv against torch on the speed suite (or a named part of it)."""

from __future__ import annotations

import argparse
from typing import Any

EPILOG = """examples:
  anyconv bench --quick                       a subset covering every group (about a minute)
  anyconv bench long1d large_dw --threads 2   two groups, forward and forward+backward
  anyconv bench resnet18.conv3x3_56 --mode forward --repeats 10 --out bench.json

Per case: torch ms and anyconv ms (minimum over interleaved repeats; the anyconv median too),
ratio anyconv/torch (lower is better), the algorithm auto chose for the forward call, GFLOP/s
and fraction of --peak-gflops and of the torch.matmul rate measured at the start, and the peak extra memory of one call (torch/anyconv, MiB);
then the geometric mean of the ratio per group, with the thread count and the machine load.
Groups: resnet18 vgg dilated conv1d depthwise pointwise grouped first conv3d transposed
large_dw long1d."""


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "bench",
        help="benchmark anyconv against torch (speed suite)",
        description="Run the speed suite (float32, CPU) and print a table per case and group.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("cases", nargs="*", metavar="GROUP|CASE", help="groups or group.case names (default: all)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's current)")
    p.add_argument("--quick", action="store_true", help="only the quick subset")
    p.add_argument("--mode", choices=("forward", "backward", "both"), default="both",
                   help="forward, forward+backward, or both (default)")
    p.add_argument("--repeats", type=int, default=5, help="interleaved repeats per case (default 5)")
    p.add_argument("--peak-gflops", type=float, default=None,
                   help="the machine's fp32 peak for the %%peak column (default: the torch.matmul rate "
                        "measured at the start, on the threads used)")
    p.add_argument("--out", default=None, help="also write the rows as JSON (.json) or CSV (.csv)")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import json
    import platform

    import torch

    from .. import __version__
    from ..bench_runner import format_rows, gemm_gflops, load_average, measure
    from ..bench_suite import select
    from ..cli import CommandError

    cases = select(args.cases, quick=args.quick)
    if args.list:
        for c in cases:
            print(f"{c.key:34s} {c.op:15s} x{c.input} w{c.weight} {c.kwargs}")
        return 0
    if args.threads is not None:
        if args.threads < 1:
            raise CommandError(f"`--threads` must be a positive int; got --threads={args.threads}")
        torch.set_num_threads(args.threads)
    if args.repeats < 1:
        raise CommandError(f"`--repeats` must be a positive int; got --repeats={args.repeats}")
    if args.peak_gflops is not None and not args.peak_gflops > 0:
        raise CommandError(f"`--peak-gflops` must be a positive number; got --peak-gflops={args.peak_gflops}")
    modes = ("forward", "backward") if args.mode == "both" else (args.mode,)
    load_before = load_average()
    from ..algorithms import _native_build

    gemm = gemm_gflops()
    peak = args.peak_gflops if args.peak_gflops is not None else gemm
    flags = set(_native_build.cpu_features().split())
    isa = " ".join(f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags) or "none"
    print(f"cpu: {_native_build.cpu_model()} ({platform.machine()}; {isa}), {torch.get_num_threads()} thread(s)")
    print(f"torch.matmul float32 1024^3: {gemm:.1f} GFLOP/s on {torch.get_num_threads()} thread(s); "
          f"%peak column relative to {peak:.1f} GFLOP/s" + (" (that rate)" if args.peak_gflops is None else ""))
    rows = []
    for case in cases:
        for mode in modes:
            rows.append(measure(case, mode, args.repeats, peak))
            r = rows[-1]
            r["gemm_fraction"] = r["gflops"] / gemm
            print(f"  {r['case']:34s} {mode:8s} ratio {r['ratio']:6.2f} ({r['algorithm']})", flush=True)
    load_after = load_average()
    print()
    print(format_rows(rows))
    info = {
        "anyconv": __version__, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "machine": platform.machine(), "processor": platform.processor(), "python": platform.python_version(),
        "load_before": load_before, "load_after": load_after, "dtype": "float32",
        "matmul_gflops": gemm, "peak_gflops": peak, "cpu": _native_build.cpu_model(), "isa": isa,
    }
    print(f"\nthreads {info['threads']}, load average {load_before} -> {load_after}, torch {torch.__version__}")
    if args.out:
        if args.out.endswith(".csv"):
            import csv

            with open(args.out, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]) + list(info))
                writer.writeheader()
                for r in rows:
                    writer.writerow({**r, **info})
        else:
            with open(args.out, "w") as f:
                json.dump({"info": info, "rows": rows}, f, indent=1)
    return 0
