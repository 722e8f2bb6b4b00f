"""Per-call overhead of small convolutions: anyconv vs torch, 1 thread, interleaved.

Cases (float32, tiny tensors, so Python overhead dominates):

- conv1d: (32, 32, 20) * (32, 32, 3), stride 2, padding 1 (forward, forward+backward);
- conv2d: (8, 16, 8, 8) * (16, 16, 3, 3), padding 1 (forward, forward+backward);
- the MNIST-1D CNN training step (``anyconv.models.mnist1d_cnn``, batch 32, 40 samples:
  zero_grad, forward, cross-entropy, backward, SGD step) with anyconv layers vs torch's.

Timing: ``_util.interleaved`` (torch.utils.benchmark blocked_autorange, order rotated per round);
minimum and median of the per-round medians. Usage::

    python benchmarks/bench_overhead.py [--rounds 7] [--out benchmarks/results/overhead]
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable
from typing import Any

import torch
from _util import interleaved, load_average, machine_info, set_threads, write_results

import anyconv.functional as AF


def _conv_pair(x: torch.Tensor, w: torch.Tensor, backward: bool, **kw: Any) -> dict[str, Callable[[], Any]]:
    n = w.dim() - 2
    tf = (torch.nn.functional.conv1d, torch.nn.functional.conv2d, torch.nn.functional.conv3d)[n - 1]
    b = torch.randn(w.shape[0])
    if backward:
        xr, wr, br = (t.clone().requires_grad_() for t in (x, w, b))

        def fb(f: Callable[..., torch.Tensor]) -> Callable[[], Any]:
            def run() -> None:
                f(xr, wr, br, **kw).sum().backward()
                xr.grad = wr.grad = br.grad = None

            return run

        return {"torch": fb(tf), "anyconv": fb(AF.conv)}
    return {"torch": lambda: tf(x, w, b, **kw), "anyconv": lambda: AF.conv(x, w, b, **kw)}


def _as_torch(model: torch.nn.Module) -> torch.nn.Module:
    from anyconv.nn.conv import TORCH_EQUIVALENTS

    back = {v: k for k, v in TORCH_EQUIVALENTS.items()}
    twin = copy.deepcopy(model)
    for m in twin.modules():
        if type(m) in back:
            m.__class__ = back[type(m)]
    return twin


def _model_pair() -> dict[str, Callable[[], Any]]:
    import anyconv.models

    model = anyconv.models.create_model("mnist1d_cnn")
    twin = _as_torch(model)
    x = torch.randn(32, 1, 40)
    target = torch.randint(0, 10, (32,))

    def train_step(m: torch.nn.Module) -> Callable[[], Any]:
        opt = torch.optim.SGD(m.parameters(), lr=0.01)

        def run() -> None:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(m(x), target).backward()
            opt.step()

        return run

    return {"torch": train_step(twin), "anyconv": train_step(model)}


def cases() -> list[tuple[str, str, dict[str, Callable[[], Any]]]]:
    torch.manual_seed(0)
    x1, w1 = torch.randn(32, 32, 20), torch.randn(32, 32, 3)
    x2, w2 = torch.randn(8, 16, 8, 8), torch.randn(16, 16, 3, 3)
    return [
        ("conv1d_32x32x20_k3_s2", "forward", _conv_pair(x1, w1, False, stride=2, padding=1)),
        ("conv1d_32x32x20_k3_s2", "fwd+bwd", _conv_pair(x1, w1, True, stride=2, padding=1)),
        ("conv2d_8x16x8x8_k3", "forward", _conv_pair(x2, w2, False, padding=1)),
        ("conv2d_8x16x8x8_k3", "fwd+bwd", _conv_pair(x2, w2, True, padding=1)),
        ("mnist1d_cnn_b32", "train_step", _model_pair()),
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--min-run-time", type=float, default=0.1)
    p.add_argument("--out", default=None, help="write BASE.csv and BASE.json")
    a = p.parse_args(argv)
    set_threads(1)
    rows = []
    print(f"torch {torch.__version__}, 1 thread, load {load_average()}")
    print(f"{'case':24s} {'mode':10s} {'torch us':>9s} {'anyconv us':>10s} {'(median)':>9s} {'(median)':>9s}"
          f" {'ratio':>6s} {'(median)':>8s}")
    for case, mode, fns in cases():
        t = interleaved(fns, rounds=a.rounds, min_run_time=a.min_run_time)
        tt, ta = t["torch"], t["anyconv"]
        row = {"case": case, "mode": mode, "torch_us_min": 1e6 * tt.min, "anyconv_us_min": 1e6 * ta.min,
               "torch_us_median": 1e6 * tt.median, "anyconv_us_median": 1e6 * ta.median,
               "ratio_min": ta.min / tt.min, "ratio_median": ta.median / tt.median}
        rows.append(row)
        print(f"{case:24s} {mode:10s} {row['torch_us_min']:9.1f} {row['anyconv_us_min']:10.1f}"
              f" {row['torch_us_median']:9.1f} {row['anyconv_us_median']:9.1f}"
              f" {row['ratio_min']:6.2f} {row['ratio_median']:8.2f}", flush=True)
    print(f"load after: {load_average()}")
    if a.out:
        for path in write_results(rows, a.out, machine_info()):
            print("wrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
