"""What the proposed polyphase transposed correlation would gain (see docs/speed.md).

``algorithms/_adjoints.corr_t_raw`` computes every strided transposed correlation (the
forward of ``conv_transpose`` and the input gradient of a strided ``conv``) as a stride-1
correlation of a zero-stuffed input. ``anyconv.algorithms.polyphase.corr_t`` computes the same
result as ``prod(stride)`` small stride-1 correlations. This script times the strided suite
cases three ways, interleaved in one process: torch, anyconv as is, and anyconv with
``corr_t_raw`` replaced by the polyphase version (a monkeypatch, for measurement only).

    OMP_NUM_THREADS=1 python benchmarks/bench_polyphase.py
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

import anyconv.algorithms._adjoints as autograd_rules
from anyconv.algorithms.polyphase import corr_t
from anyconv.bench.runner import anyconv_call, geomean, interleaved, step, tensors, torch_call
from anyconv.bench.suite import CASES

STRIDED = [c for c in CASES if any(v > 1 for v in ([c.kwargs.get("stride", 1)]
                                                    if isinstance(c.kwargs.get("stride", 1), int)
                                                    else c.kwargs["stride"]))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    original = autograd_rules.corr_t_raw
    ratios: dict[str, list[float]] = {"forward": [], "backward": []}
    for case in STRIDED:
        x, w = tensors(case)
        for mode in ("forward", "backward"):
            fn = anyconv_call(case)
            plain = step(fn, x, w, mode)
            second = step(fn, x, w, mode)

            def patched(plain_step: Any = second) -> Any:
                autograd_rules.corr_t_raw = corr_t  # type: ignore[assignment]
                try:
                    return plain_step()
                finally:
                    autograd_rules.corr_t_raw = original

            (t, _), (a, _), (p, _) = interleaved([step(torch_call(case), x, w, mode), plain, patched],
                                                 args.repeats)
            ratios[mode].append(p / t)
            print(f"{case.key:30s} {mode:8s} torch {t:9.3f} ms  anyconv {a:9.3f} ms ({a / t:5.2f})  "
                  f"with polyphase {p:9.3f} ms ({p / t:5.2f})", flush=True)
    for mode, r in ratios.items():
        print(f"geometric mean with polyphase, {mode}: {geomean(r):.3f} ({len(r)} cases)")


if __name__ == "__main__":
    main()
