"""``anyconv bench``: time anyconv against torch on the speed suite, or on whole models (``--models``)."""

from __future__ import annotations

import argparse
from typing import Any

# Imported with the parser, before `--threads` is applied: it records torch's default thread count.
from ..bench import machine
from ._grammar import CommandError, add_threads, flag_error

EPILOG = """examples:
  anyconv bench --quick                       a subset covering every group (about a minute)
  anyconv bench long1d large_dw --threads 2   two groups, forward and forward+backward
  anyconv bench resnet18.conv3x3_56 --mode forward --repeats 10 --out bench.json
  anyconv bench --models --quick              whole models, inference and a training step
  anyconv bench --models resnet18,lenet5 --threads 1 --json models.json

First: the CPU model, its ISA, and its measured float32 peak (the FMA units' rate, by the native
library's loop; without it, a torch.matmul) at 1 thread and at the thread counts used, which the
%peak column is relative to, and torch.matmul's rate beside it.

Suite, per case: torch ms and anyconv ms (minimum over interleaved repeats; the anyconv median
too), ratio anyconv/torch (lower is better), the algorithm auto chose for the forward call,
GFLOP/s and fraction of the measured peak (or --peak-gflops), the peak extra memory of one call
(torch/anyconv, MiB); then the geometric mean of the ratio per group, threads and load.
Groups: resnet18 vgg dilated conv1d depthwise pointwise grouped first conv3d transposed
large_dw long1d.

--models: the zoo's models with torch's layers against anyconv.nn.convert of them (the same
weights), inference and one training step (forward, cross-entropy, backward, SGD step),
interleaved, at 1 thread and at torch's default thread count (or at --threads); per model the
input used, min and median ms, the ratio, the peak extra memory of a training step, then the
geometric means. Models: resnet18 resnet50 mobilenet_v2 vgg11 unet cifar_cnn mnist1d_cnn lenet5
mobilenet_v2.small (64x64, batch 2: small calls)."""


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "bench",
        help="benchmark anyconv against torch (speed suite, or whole models)",
        description="Run the speed suite or the zoo's models (float32, CPU) and print a table.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("cases", nargs="*", metavar="GROUP|CASE", help="groups or group.case names (default: all)")
    p.add_argument("--models", nargs="?", const="all", default=None, metavar="NAMES",
                   help="whole models instead of the suite: all (default) or a comma-separated list")
    add_threads(p)
    p.add_argument("--quick", action="store_true", help="the quick subset (suite) or smaller inputs (models)")
    p.add_argument("--mode", choices=("forward", "backward", "both"), default="both",
                   help="suite: forward, forward+backward, or both (default)")
    p.add_argument("--repeats", type=int, default=5, help="interleaved repeats per case (default 5)")
    p.add_argument("--peak-gflops", type=float, default=None,
                   help="the fp32 peak for the %%peak column (default: the peak measured at the start, "
                        "on the threads used)")
    p.add_argument("--out", default=None, help="also write the rows as JSON (.json) or CSV (.csv)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the machine and the rows as JSON")
    p.add_argument("--list", action="store_true", help="list the cases (or models) and exit")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    if args.repeats < 1:
        flag_error("--repeats", args.repeats, "a positive int")
    if args.peak_gflops is not None and not args.peak_gflops > 0:
        flag_error("--peak-gflops", args.peak_gflops, "a positive number")
    if args.models is not None:
        if args.cases:
            raise CommandError(f"`--models` times whole models, not suite cases; got both --models and "
                               f"{' '.join(args.cases)}")
        if args.out and not args.out.endswith(".json"):
            flag_error("--out", args.out, "a .json path with --models (or use --json PATH)")
        return _run_models(args)
    return _run_suite(args)


def _write_json(path: str | None, info: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    if path:
        import json

        with open(path, "w") as f:
            json.dump({"info": info, "rows": rows}, f, indent=1)


def _run_models(args: argparse.Namespace) -> int:
    from ..bench.models import format_model_rows, measure_model, select_models

    try:
        cases = select_models(args.models)
    except ValueError as e:
        raise CommandError(str(e).removeprefix("bench: ")) from None
    if args.list:
        for c in cases:
            print(f"{c.label:19s} {c.model:13s} input {'x'.join(map(str, c.input))} "
                  f"(--quick {'x'.join(map(str, c.quick))})")
        return 0
    threads = [args.threads] if args.threads is not None else sorted({1, machine.all_threads()})
    load_before = machine.load_average()
    peaks = machine.measured_peaks(threads)
    print(machine.describe(peaks))
    print(f"models at {' and '.join(map(str, threads))} thread(s), {args.repeats} interleaved repeats, "
          f"{'--quick inputs' if args.quick else 'default inputs'}", flush=True)
    info = {**machine.info(peaks), "threads": threads, "repeats": args.repeats, "quick": args.quick,
            "load_before": load_before, "complete": False}
    rows: list[dict[str, Any]] = []
    for t in threads:
        for case in cases:
            for r in measure_model(case, t, args.repeats, quick=args.quick):
                rows.append(r)
                print(f"  {r['model']:19s} {t} thread(s) {r['mode']:9s} ratio {r['ratio']:5.2f}", flush=True)
            _write_json(args.json or args.out, info, rows)  # rows so far survive an interrupted run
    print()
    print(format_model_rows(rows))
    end = machine.measured_peaks(threads)  # again: a change of machine load shows as a change of peak
    info.update(peak_gflops_end={str(t): v for t, v in end.items()}, load_after=machine.load_average(),
                complete=True)
    print(f"\nmeasured peak again at the end: {', '.join(f'{v:.0f} GFLOP/s at {t}' for t, v in end.items())}; "
          f"torch {info['torch']}, anyconv {info['anyconv']}, load average {load_before} -> {info['load_after']}")
    _write_json(args.json or args.out, info, rows)
    return 0


def _run_suite(args: argparse.Namespace) -> int:
    import torch

    from ..bench.runner import format_rows, measure
    from ..bench.suite import select

    cases = select(args.cases, quick=args.quick)
    if args.list:
        for c in cases:
            print(f"{c.key:34s} {c.op:15s} x{c.input} w{c.weight} {c.kwargs}")
        return 0
    modes = ("forward", "backward") if args.mode == "both" else (args.mode,)
    threads = torch.get_num_threads()
    load_before = machine.load_average()
    peaks = machine.measured_peaks([threads, machine.all_threads()])
    peak = args.peak_gflops if args.peak_gflops is not None else peaks[threads]
    print(machine.describe(peaks))
    print(f"suite on {threads} thread(s); %peak column relative to {peak:.1f} GFLOP/s"
          + (" (the measured peak at that thread count)" if args.peak_gflops is None else " (--peak-gflops)"))
    rows = []
    for case in cases:
        for mode in modes:
            rows.append(measure(case, mode, args.repeats, peak))
            r = rows[-1]
            r["measured_peak_fraction"] = r["gflops"] / peaks[threads]
            print(f"  {r['case']:34s} {mode:8s} ratio {r['ratio']:6.2f} ({r['algorithm']})", flush=True)
    load_after = machine.load_average()
    print()
    print(format_rows(rows))
    info = {**machine.info(peaks), "threads": threads, "load_before": load_before, "load_after": load_after,
            "measured_peak_gflops": peaks[threads], "peak_used_gflops": peak}
    print(f"\nthreads {threads}, load average {load_before} -> {load_after}, torch {torch.__version__}")
    if args.out and args.out.endswith(".csv"):
        import csv

        flat = {k: str(v) for k, v in info.items()}
        with open(args.out, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]) + list(flat))
            writer.writeheader()
            for r in rows:
                writer.writerow({**r, **flat})
    else:
        _write_json(args.out, info, rows)
    _write_json(args.json, info, rows)
    return 0
