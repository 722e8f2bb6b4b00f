"""Timing row: ``anyconv.summary`` of ResNet-50 at 224x224 on the CPU (target: a few seconds).

Run: ``python benchmarks/bench_summary.py [--out results.json]``. Uses ``anyconv.models``'s
resnet50 (falls back to torchvision's, if installed). Reports the median of a few runs, with
the device, dtype and versions, and the totals as a sanity check (25,557,032 parameters and
about 4.09 G mult-adds for the standard ResNet-50 at 224x224).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

import anyconv


def resnet50() -> torch.nn.Module:
    try:
        from anyconv.models import create_model

        return create_model("resnet50")
    except (ImportError, ValueError):
        import torchvision  # type: ignore[import-not-found]

        return torchvision.models.resnet50()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None, help="write the row as JSON here")
    args = parser.parse_args()
    model = resnet50()
    times = []
    for with_algorithms in (False, True):
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            s = anyconv.summary(model, (1, 3, 224, 224), algorithms=with_algorithms)
            str(s)
            times.append((with_algorithms, time.perf_counter() - t0))
    row = {
        "benchmark": "summary resnet50 1x3x224x224",
        "median_s_without_algorithm_column": statistics.median(t for a, t in times if not a),
        "median_s_with_algorithm_column": statistics.median(t for a, t in times if a),
        "total_params": s.total_params,
        "total_mult_adds": s.total_mult_adds,
        "device": "cpu", "dtype": "float32", "threads": torch.get_num_threads(),
        "torch": torch.__version__, "anyconv": anyconv.__version__, "python": platform.python_version(),
    }
    print(json.dumps(row, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(row, f, indent=2)


if __name__ == "__main__":
    main()
