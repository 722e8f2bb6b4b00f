"""Fit ``auto``'s shipped cost model: time every algorithm on the core calls of the speed suite.

For every case of :mod:`anyconv.bench.suite` (plus a few tiny calls), the core correlations
of its forward and backward passes are collected (:func:`anyconv.tools.choose.core_calls`),
every algorithm that supports a call is timed (best of ``--repeats``, ``--threads``, float32),
and each algorithm's coefficients (one per named feature of its ``cost_features``) are fitted
by non-negative least squares on relative error (:mod:`anyconv.algorithms.fit`). Prints the fit
error and how often the fitted model picks the measured-fastest algorithm (and the time lost when
it does not). ``--write`` stores the coefficients, with the machine they were fitted on, in
``src/anyconv/algorithms/coefficients.json`` (the shipped default; ``anyconv tune`` fits a
profile for the user's own machine the same way on a smaller probe set).

    OMP_NUM_THREADS=1 python benchmarks/fit_auto.py --out benchmarks/results/fit_auto.json --write
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import torch

from anyconv import algorithms
from anyconv.algorithms import auto, fit, matrix, profile
from anyconv.bench.suite import CASES, Case
from anyconv.tools.choose import core_calls

MATRIX_MAX_NNZ = 2_000_000
EXTRA = (
    Case("tiny", "c2d", (2, 3, 8, 8), (4, 3, 3, 3), {"padding": 1}),
    Case("tiny", "c1d", (2, 4, 16), (4, 2, 3), {"groups": 2}),
    Case("tiny", "dw", (1, 8, 12, 12), (8, 1, 5, 5), {"groups": 8}),
    Case("tiny", "c3d", (1, 2, 6, 6, 6), (2, 2, 2, 2, 2), {"stride": 2}),
    Case("mid", "k15_1d", (4, 16, 2048), (16, 16, 15), {"padding": 7}),
    Case("mid", "dw7x7", (2, 96, 28, 28), (96, 1, 7, 7), {"padding": 3, "groups": 96}),
    # MobileNetV2's later depthwise layers: small planes, many channels
    Case("mobile", "dw3x3_960_7", (2, 960, 7, 7), (960, 1, 3, 3), {"padding": 1, "groups": 960}),
    Case("mobile", "dw3x3_s2_576_14", (2, 576, 14, 14), (576, 1, 3, 3), {"stride": 2, "padding": 1, "groups": 576}),
    Case("mobile", "dw3x3_s2_192_28", (2, 192, 28, 28), (192, 1, 3, 3), {"stride": 2, "padding": 1, "groups": 192}),
)


def best_time(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    if first > 0.5:
        return first * 1e3
    best = first
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None)
    ap.add_argument("--update", nargs="*", default=None, metavar="ALGORITHM",
                    help="re-time only these algorithms, reuse the other times from --out")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--write", action="store_true",
                    help=f"store the fitted coefficients in {profile.SHIPPED.name} (the shipped default)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    seen, calls = set(), []
    for case in (*CASES, *EXTRA):
        x = torch.empty(case.input)
        w = torch.empty(case.weight)
        for label, xc, wc, spec in core_calls(case.op, x, w, backward=True, **case.kwargs):
            key = (tuple(xc.shape), tuple(wc.shape), spec)
            if key not in seen:
                seen.add(key)
                calls.append((f"{case.key}:{label}", key))
    old: dict[str, dict[str, float]] = {}
    if args.update is not None and args.out:
        with open(args.out) as f:
            # keyed by label and shapes: a label can name another call after the code changed
            old = {f"{lab}{xs}{ws}{sp}": t for lab, xs, ws, sp, t in json.load(f)["calls"]}
    rows: dict[str, list[fit.Row]] = {n: [] for n in algorithms.names()}
    table = []
    for label, (xs, ws, spec) in calls:
        x = torch.randn(xs)
        w = torch.randn(ws) / math.sqrt(max(1, math.prod(ws[1:])))
        times = {}
        for name in algorithms.names():
            mod = algorithms.get(name)
            if mod.supports(x, w, spec) is not None:
                continue
            if name == "matrix" and matrix.nnz_bound(x, w, spec) > MATRIX_MAX_NNZ:
                continue  # building big operators takes seconds; the model extrapolates
            tag = f"{label}{list(xs)}{list(ws)}{spec}"
            if tag in old and name not in args.update and name in old[tag]:
                t = old[tag][name]
            else:
                t = best_time(lambda mod=mod, x=x, w=w, spec=spec: mod.forward(x, w, spec), args.repeats)
            times[name] = t
            rows[name].append((auto.features(name, x, w, spec), t))
        table.append((label, xs, ws, spec, times))
        print(label, {k: round(v, 3) for k, v in times.items()}, flush=True)
    coef: dict[str, dict[str, float]] = {}
    for name, data in rows.items():
        if not data:
            continue
        coef[name] = fit.fit_nnls(data)
        rel = fit.relative_errors(coef[name], data)
        print(f"{name:10s} coef {coef[name]}  rel. error median {statistics.median(rel):.2f} max {max(rel):.2f}"
              f" ({len(data)} calls)")
    shipped = profile.shipped()
    fitted = {**shipped.coefficients, **coef}  # an algorithm never timed keeps the shipped coefficients
    profile.use(profile.Profile(fitted, {}, "fit_auto"))
    hits, losses = 0, []
    for _label, xs, ws, spec, times in table:
        x, w = torch.empty(xs), torch.empty(ws)
        picked = auto.choose(x, w, spec).name
        fastest = min(times, key=times.__getitem__)
        hits += picked == fastest
        losses.append(times.get(picked, float("nan")) / times[fastest])
    print(f"model picks the fastest on {hits}/{len(table)} calls; time / best: median "
          f"{statistics.median(losses):.2f}, max {max(losses):.2f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"coefficients": coef, "torch": torch.__version__,
                       "calls": [(lab, xs, ws, str(sp), t) for lab, xs, ws, sp, t in table]}, f, indent=1)
    if args.write:
        fitted_on = {**profile.machine_key(args.threads), "date": time.strftime("%Y-%m-%d"), "calls": len(table)}
        doc = {"format": profile.FORMAT, "fitted_on": fitted_on,
               "coefficients": fitted}
        Path(profile.SHIPPED).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {profile.SHIPPED}")


if __name__ == "__main__":
    main()
