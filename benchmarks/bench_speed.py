"""Speed suite: anyconv vs torch per case (forward, forward+backward) and whole-model training steps.

Cases come from :mod:`anyconv.bench.suite` (shipped with the package; ``anyconv bench`` runs
the same cases with a lighter timer). Here every call is timed with
``torch.utils.benchmark`` (``_util.interleaved``: warm-up, blocked_autorange medians, the
functions alternating round after round) and peak extra memory is measured both as resident
set and as torch allocator peak. Results go to ``benchmarks/results/speed.{csv,json}`` with
machine, load and versions.

    OMP_NUM_THREADS=1 python benchmarks/bench_speed.py --threads 1 [GROUP|CASE ...] [--quick]
    python benchmarks/bench_speed.py --models          # ResNet-18 @ 32x32 and MNIST-1D CNN steps
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import torch
from _util import interleaved, load_average, machine_info, peak_extra_memory, set_threads, write_results

from anyconv.algorithms.auto import choose
from anyconv.bench.runner import anyconv_call, geomean, step, tensors, torch_call
from anyconv.bench.suite import select
from anyconv.tools.choose import core_call


def case_rows(names: list[str], quick: bool, rounds: int, peak: float) -> list[dict[str, Any]]:
    rows = []
    for case in select(names, quick=quick):
        x, w = tensors(case)
        xc, wc, spec = core_call(case.op, x, w, **case.kwargs)
        algo = choose(xc, wc, spec).name
        for mode in ("forward", "backward"):
            t_fn = step(torch_call(case), x, w, mode)
            a_fn = step(anyconv_call(case), x, w, mode)
            t = interleaved({"torch": t_fn, "anyconv": a_fn}, rounds=rounds, min_run_time=0.05)
            mt, ma = peak_extra_memory(t_fn), peak_extra_memory(a_fn)
            flops = case.flops() * (3 if mode == "backward" else 1)
            row: dict[str, Any] = {
                "case": case.key, "group": case.group, "mode": mode, "algorithm": algo,
                "torch_ms_min": 1e3 * t["torch"].min, "torch_ms_median": 1e3 * t["torch"].median,
                "anyconv_ms_min": 1e3 * t["anyconv"].min, "anyconv_ms_median": 1e3 * t["anyconv"].median,
                "ratio_min": t["anyconv"].min / t["torch"].min,
                "ratio_median": t["anyconv"].median / t["torch"].median,
                "gflops": flops / t["anyconv"].min / 1e9,
                "torch_alloc_mib": mt.allocated / 2**20, "anyconv_alloc_mib": ma.allocated / 2**20,
                "torch_rss_mib": None if mt.rss is None else mt.rss / 2**20,
                "anyconv_rss_mib": None if ma.rss is None else ma.rss / 2**20,
            }
            row["peak_fraction"] = row["gflops"] / peak
            rows.append(row)
            print(f"{case.key:34s} {mode:8s} torch {row['torch_ms_min']:9.3f} anyconv {row['anyconv_ms_min']:9.3f}"
                  f" (med {row['anyconv_ms_median']:9.3f}) ratio {row['ratio_min']:6.2f}/{row['ratio_median']:6.2f}"
                  f" {algo:9s} {row['gflops']:7.1f} GFLOP/s  alloc MiB {row['torch_alloc_mib']:7.1f}/"
                  f"{row['anyconv_alloc_mib']:7.1f}", flush=True)
    return rows


def model_rows(rounds: int) -> list[dict[str, Any]]:
    import anyconv

    rows = []
    for name, shape, kw in (("mnist1d_cnn", (32, 1, 40), {}), ("resnet18", (8, 3, 32, 32), {"num_classes": 10})):
        model = anyconv.models.create_model(name, **kw)
        twin = anyconv.models.with_torch_layers(model)
        x = torch.randn(shape)
        target = torch.randint(0, 10, (shape[0],))

        def train_step(m: torch.nn.Module, x: torch.Tensor = x, target: torch.Tensor = target) -> Any:
            opt = torch.optim.SGD(m.parameters(), lr=0.01)

            def run() -> None:
                opt.zero_grad()
                torch.nn.functional.cross_entropy(m(x), target).backward()
                opt.step()

            return run

        t = interleaved({"torch": train_step(twin), "anyconv": train_step(model)}, rounds=rounds)
        row = {"case": f"model.{name}", "group": "model", "mode": "train_step",
               "torch_ms_min": 1e3 * t["torch"].min, "anyconv_ms_min": 1e3 * t["anyconv"].min,
               "torch_ms_median": 1e3 * t["torch"].median, "anyconv_ms_median": 1e3 * t["anyconv"].median,
               "ratio_min": t["anyconv"].min / t["torch"].min,
               "ratio_median": t["anyconv"].median / t["torch"].median}
        rows.append(row)
        print(f"{row['case']:34s} train    torch {row['torch_ms_min']:9.3f} anyconv {row['anyconv_ms_min']:9.3f}"
              f" ratio {row['ratio_min']:6.2f}/{row['ratio_median']:6.2f}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cases", nargs="*")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--peak-gflops", type=float, default=None,
                    help="fp32 peak for the %%peak column (default: the peak measured here, anyconv.bench.machine)")
    ap.add_argument("--models", action="store_true", help="also time whole-model training steps")
    ap.add_argument("--only-models", action="store_true", help="only the whole-model training steps")
    ap.add_argument("--out", default="benchmarks/results/speed")
    args = ap.parse_args()
    set_threads(args.threads)
    if args.peak_gflops is None:
        from anyconv.bench.machine import measured_peaks

        threads = torch.get_num_threads()
        args.peak_gflops = measured_peaks([threads])[threads]
        print(f"measured peak (float32, {threads} thread(s)): {args.peak_gflops:.1f} GFLOP/s")
    load0 = load_average()
    rows = [] if args.only_models else case_rows(args.cases, args.quick, args.rounds, args.peak_gflops)
    if args.models or args.only_models:
        rows += model_rows(args.rounds)
    meta = {**machine_info(), "load_before": load0, "load_after": load_average(), "dtype": "float32"}
    print("\ngeometric mean of anyconv/torch (min; median) per group:")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["group"], r["mode"]), []).append(r)
        groups.setdefault(("ALL", r["mode"]), []).append(r)
    for (g, m), rs in groups.items():
        print(f"  {g:12s} {m:10s} {geomean([r['ratio_min'] for r in rs]):6.3f}; "
              f"{geomean([r['ratio_median'] for r in rs]):6.3f}  ({len(rs)} cases)")
    print(f"threads {args.threads}, load {load0} -> {meta['load_after']}")
    print("wrote", write_results(rows, args.out, meta))
    assert all(math.isfinite(r["ratio_min"]) for r in rows)


if __name__ == "__main__":
    main()
