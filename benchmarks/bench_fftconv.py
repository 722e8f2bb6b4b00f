"""anyconv vs the public ``fft-conv-pytorch`` package on the large-kernel cases (issue 4's target).

``pip install fft-conv-pytorch`` (benchmark-only dependency). Times torch, anyconv (auto) and
``fft_conv_pytorch.fft_conv`` on the ``large_dw`` and ``long1d`` suite cases, forward and
forward+backward, interleaved in one process (minimum of ``--repeats``), one thread.

    OMP_NUM_THREADS=1 python benchmarks/bench_fftconv.py
"""

from __future__ import annotations

import argparse

import torch
from fft_conv_pytorch import fft_conv

from anyconv.bench.runner import anyconv_call, interleaved, step, tensors, torch_call
from anyconv.bench.suite import select


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    for case in select(["large_dw", "long1d"]):
        x, w = tensors(case)
        kw = dict(case.kwargs)

        def theirs(a: torch.Tensor, b: torch.Tensor, kw: dict = kw) -> torch.Tensor:  # type: ignore[type-arg]
            return fft_conv(a, b, padding=kw.get("padding", 0), groups=kw.get("groups", 1))

        for mode in ("forward", "backward"):
            calls = [step(torch_call(case), x, w, mode), step(anyconv_call(case), x, w, mode),
                     step(theirs, x, w, mode)]
            (t, _), (a, _), (f, _) = interleaved(calls, args.repeats)
            err = (theirs(x, w) - torch_call(case)(x, w)).abs().max().item()
            print(f"{case.key:28s} {mode:8s} torch {t:9.2f} ms  anyconv {a:8.2f} ms ({a / t:5.3f})  "
                  f"fft-conv-pytorch {f:9.2f} ms ({f / t:6.3f}; max err {err:.1e})", flush=True)


if __name__ == "__main__":
    main()
