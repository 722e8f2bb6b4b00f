"""``anyconv tune``: fit ``auto``'s cost model on this machine and store it as a profile."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ._grammar import add_threads, apply_threads, flag_error

EPILOG = """examples:
  anyconv tune                          about a minute: measure, time the probe set, store the profile
  anyconv tune --threads 2 --budget 30  the profile for 2 threads, in at most about 30 s
  anyconv tune --quick --print          a small probe set; print the profile instead of storing it

Measures the machine's float32 FMA rate (a matmul) and memory bandwidth, times every algorithm
`auto` considers on a probe set of core calls (forward, input gradient and weight gradient of
small and mid-sized layers) within the time budget, fits each algorithm's coefficients (NNLS on
relative error), and prints the fit error per algorithm and the regret of `auto` (its pick's time /
the fastest, geometric mean and worst) with the shipped default and with the new profile. The
profile is stored in the private cache directory (see `anyconv doctor`), keyed by CPU model, ISA,
thread count and the anyconv and torch versions; `auto` uses it at that thread count from then on
(`explain_algorithm` says which profile it used). ANYCONV_PROFILE=default ignores it."""


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "tune",
        help="calibrate auto's cost model on this machine (a profile per thread count)",
        description="Time the algorithms on a probe set, fit auto's coefficients for this machine and "
                    "thread count, and store them as a profile that auto uses from then on.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_threads(p)
    p.add_argument("--budget", type=float, default=60.0, metavar="SECONDS",
                   help="time bound for the measurements in seconds (default 60)")
    p.add_argument("--quick", action="store_true", help="a smaller probe set (small layers and two mid ones)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per algorithm and call, best kept (default 3)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--out", default=None, metavar="PATH",
                     help="write the profile to PATH instead of the cache (use it with ANYCONV_PROFILE=PATH)")
    out.add_argument("--print", action="store_true", dest="print_only",
                     help="print the profile as JSON instead of storing it")
    p.set_defaults(func=run)
    return p


def _report(res: Any) -> list[str]:
    f = res.fitted_on
    lines = [f"anyconv tune: {f['cpu']} ({f['isa']}), {f['threads']} thread(s), torch {f['torch']}, "
             f"anyconv {f['anyconv']}",
             f"machine: {f['peak_gflops']:.1f} GFLOP/s float32 matmul, {f['bandwidth_gbs']:.1f} GB/s copy",
             f"probe set: {f['calls']} of {len(res.calls)} core calls timed in {res.seconds:.1f} s "
             f"(budget {f['budget_s']:g} s)",
             "fit (relative error of the predicted times on the probe set):",
             f"  {'algorithm':10s} {'median':>7s} {'max':>7s} {'calls':>5s}  coefficients"]
    for name in sorted(res.table):
        if name in res.errors:
            med, worst, n = res.errors[name]
            lines.append(f"  {name:10s} {med:7.2f} {worst:7.2f} {n:5d}  {res.how[name]}")
        else:
            lines.append(f"  {name:10s} {'-':>7s} {'-':>7s} {0:5d}  {res.how[name]}")
    complete = sum(c.complete for c in res.calls)
    lines.append(f"regret of auto (pick's time / fastest) on the {complete} fully timed probe calls "
                 "(geometric mean, worst, fastest picked):")
    for label, (gm, worst, hits) in (("shipped default", res.regret_default),
                                     ("this profile (in-sample)", res.regret_new)):
        lines.append(f"  {label:24s} {gm:6.3f}x {worst:6.2f}x  {hits}/{complete}")
    return lines


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..algorithms import profile
    from ..tools import calibrate

    if not args.budget > 0:
        flag_error("--budget", args.budget, "a positive number of seconds")
    if args.repeats < 1:
        flag_error("--repeats", args.repeats, "a positive int")
    apply_threads(args)
    res = calibrate.tune(budget=args.budget, quick=args.quick, repeats=args.repeats)
    if not any(c.times for c in res.calls):
        flag_error("--budget", args.budget, "long enough to time at least one probe call")
    print("\n".join(_report(res)))
    if args.print_only:
        print(json.dumps({"format": profile.FORMAT, "fitted_on": res.fitted_on, "coefficients": res.table}, indent=1))
        return 0
    path = profile.store(res.table, res.fitted_on, Path(args.out) if args.out else None)
    key = ", ".join(f"{k} {res.fitted_on[k]}" for k in profile.KEY_FIELDS)
    print(f"profile written to {path} (key: {key})")
    return 0
