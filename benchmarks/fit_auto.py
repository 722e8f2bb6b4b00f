"""Fit ``auto``'s cost model: time every algorithm on the core calls of the speed suite.

For every case of :mod:`anyconv.bench.suite` (plus a few tiny calls), the core correlations
of its forward and backward passes are collected (:func:`anyconv.algorithms.choose.core_calls`),
every algorithm that supports a call is timed (best of ``--repeats``, one thread, float32),
and each algorithm's coefficients in ``anyconv.algorithms.auto.features`` are fitted by
non-negative least squares on relative error (rows weighted by 1 / time). Prints the
coefficients to paste into ``auto.COEFFICIENTS``, the fit error, and how often the fitted
model picks the measured-fastest algorithm (and the time lost when it does not).

    OMP_NUM_THREADS=1 python benchmarks/fit_auto.py --out benchmarks/results/fit_auto.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import numpy as np
import torch
from scipy.optimize import nnls

from anyconv import algorithms
from anyconv.algorithms import auto, matrix
from anyconv.algorithms.choose import core_calls
from anyconv.bench.suite import CASES, Case

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
    args = ap.parse_args()
    torch.set_num_threads(1)
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
    rows: dict[str, list[tuple[tuple[float, ...], float]]] = {n: [] for n in algorithms.names()}
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
            key = f"{label}{list(xs)}{list(ws)}{spec}"
            if key in old and name not in args.update and name in old[key]:
                t = old[key][name]
            else:
                t = best_time(lambda mod=mod, x=x, w=w, spec=spec: mod.forward(x, w, spec), args.repeats)
            times[name] = t
            rows[name].append((auto.features(name, x, w, spec), t))
        table.append((label, xs, ws, spec, times))
        print(label, {k: round(v, 3) for k, v in times.items()}, flush=True)
    coef = {}
    for name, data in rows.items():
        a = np.array([f for f, _ in data], dtype=float)
        tt = np.array([v for _, v in data], dtype=float)
        scale = a.max(axis=0)
        scale[scale == 0] = 1
        sol, _ = nnls((a / scale) / tt[:, None], np.ones_like(tt))
        coef[name] = tuple(float(v) for v in sol / scale)
        rel = np.abs((a @ np.array(coef[name])) / tt - 1)
        print(f"{name:10s} coef {coef[name]}  rel. error median {np.median(rel):.2f} max {rel.max():.2f}"
              f" ({len(tt)} calls)")
    auto.COEFFICIENTS.update(coef)
    auto.clear_cache()
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


if __name__ == "__main__":
    main()
