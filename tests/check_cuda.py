"""The differential checks again with every tensor on a GPU (not part of the pytest suite: CI has none).

    python tests/check_cuda.py [device [failures.txt]]   # default "cuda"; exits 1 on any mismatch

The conv and conv_transpose samples of ``samples.py`` (N = 1..4, batched and unbatched, every
padding form and mode), for ``auto`` and every algorithm, in float64 and float32: output and the
gradients of input, weight and bias against ``references.py`` computed on the same device (torch's
CUDA kernels for N <= 3); an algorithm may refuse a call with its reason. Then unfold/fold, the
pooling samples of ``test_pooling.py`` (values, indices, gradients against torch's CUDA pooling),
an ``anyconv.nn`` model's forward and backward against the same model on the CPU, and the
``algorithm`` choices made for CUDA tensors. Prints one line per group and the failures.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import anyconv  # noqa: E402
import anyconv.functional as AF  # noqa: E402
from anyconv import algorithms  # noqa: E402

FAILURES: list[str] = []


def _grads(fn: Callable[..., torch.Tensor], tensors: Sequence[torch.Tensor], gy: torch.Tensor | None
           ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], torch.Tensor]:
    leaves = [t.detach().clone().requires_grad_(True) for t in tensors]
    out = fn(*leaves)
    if gy is None:
        gen = torch.Generator().manual_seed(1234)
        gy = torch.randn(out.shape, generator=gen, dtype=torch.float64).to(device=out.device, dtype=out.dtype)
    grads = torch.autograd.grad((out * gy).sum(), leaves)
    return out.detach(), tuple(g.detach() for g in grads), gy


def _check(what: str, fn: Callable[..., torch.Tensor], ref: Callable[..., torch.Tensor],
           tensors: Sequence[torch.Tensor], dtype: torch.dtype, device: torch.device) -> str:
    """'ok', 'refused' or 'FAIL' (recorded) for one call."""
    from tolerances import assert_close

    ins = [t.to(device=device, dtype=dtype) for t in tensors]
    try:
        out, grads, gy = _grads(fn, ins, None)
    except ValueError as e:
        if "cannot serve this call" in str(e):
            return "refused"
        FAILURES.append(f"{what}: {type(e).__name__}: {e}")
        return "FAIL"
    except Exception as e:  # noqa: BLE001 - a crash is a failure to report, not to stop at
        FAILURES.append(f"{what}: {type(e).__name__}: {e}")
        return "FAIL"
    try:
        ref_out, ref_grads, _ = _grads(ref, ins, gy)
    except Exception as e:  # noqa: BLE001
        FAILURES.append(f"{what}: the reference failed: {type(e).__name__}: {e}")
        return "FAIL"
    try:
        assert out.device.type == device.type, f"output on {out.device}"
        assert_close(out, ref_out, dtype, "output")
        for name, g, rg in zip(("input", "weight", "bias"), grads, ref_grads):
            assert g.device.type == device.type, f"grad {name} on {g.device}"
            assert_close(g, rg, dtype, f"grad {name}")
    except AssertionError as e:
        FAILURES.append(f"{what}: {e}")
        return "FAIL"
    return "ok"


def check_conv(device: torch.device) -> None:
    from references import ref_conv, ref_conv_transpose
    from samples import conv_samples, conv_transpose_samples

    for op, samples, ours, ref in (("conv", conv_samples(), AF.conv, ref_conv),
                                   ("conv_transpose", conv_transpose_samples(), AF.conv_transpose, ref_conv_transpose)):
        counts: dict[str, int] = {}
        t0 = time.perf_counter()
        for sample in samples:
            tensors = sample.tensors(torch.float64)
            for dtype in (torch.float64, torch.float32):
                for algo in ("auto", *algorithms.names()):
                    kw = dict(sample.kwargs)

                    def fn(*t: torch.Tensor, kw: dict[str, Any] = kw, algo: str = algo,
                           ours: Any = ours) -> torch.Tensor:
                        return ours(*t, algorithm=algo, **kw)

                    def rf(*t: torch.Tensor, kw: dict[str, Any] = kw, ref: Any = ref) -> torch.Tensor:
                        return ref(*t, **kw)

                    res = _check(f"{sample.id} {algo} {dtype}", fn, rf, tensors, dtype, device)
                    counts[res] = counts.get(res, 0) + 1
        print(f"{op:15s} {counts} ({time.perf_counter() - t0:.0f} s)", flush=True)


def check_unfold_fold(device: torch.device) -> None:
    from references import ref_fold, ref_unfold
    from samples import unfold_samples

    counts: dict[str, int] = {}
    for sid, n, batched, shape, kw in unfold_samples():
        if not batched:
            continue  # the references take batched input
        x = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(len(sid)))
        for dtype in (torch.float64, torch.float32):
            res = _check(f"{sid} {dtype}", lambda t, kw=kw: AF.unfold(t, **kw), lambda t, kw=kw: ref_unfold(t, **kw),
                         [x], dtype, device)
            counts[res] = counts.get(res, 0) + 1
            cols = ref_unfold(x, **kw)
            size = list(shape[-n:])
            res = _check(f"fold-{sid} {dtype}", lambda c, kw=kw, s=size: AF.fold(c, s, **kw),
                         lambda c, kw=kw, s=size: ref_fold(c, s, **kw), [cols], dtype, device)
            counts[res] = counts.get(res, 0) + 1
    print(f"{'unfold/fold':15s} {counts}", flush=True)


def check_pooling(device: torch.device) -> None:
    import test_pooling as tp

    counts: dict[str, int] = {}
    for kind, n, shape, kw in tp.CASES:
        x = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(n + len(str(kw))))
        if kind == "lp":
            x = x.abs() + 0.1
        what = f"{kind}{n}d {kw}"
        try:
            xa = x.to(device).requires_grad_()
            xt = x.to(device).requires_grad_()
            ya, yt = tp._call(tp.OURS, kind, n, xa, kw), tp._call(tp.TORCH, kind, n, xt, kw)
            if kw.get("return_indices"):
                (ya, ia), (yt, it) = ya, yt
                assert torch.equal(ia, it), "indices differ"
            assert ya.device.type == device.type
            if kind == "lp" and abs(kw["norm_type"]) == float("inf"):
                # torch 2.13 defines these as the max (min) of |x| over the window; older releases
                # (2.11 on the GPU machine) return (sum x^inf)^(1/inf) = 1: compare with the definition
                sign = 1.0 if kw["norm_type"] > 0 else -1.0
                mp = {1: torch.nn.functional.max_pool1d, 2: torch.nn.functional.max_pool2d,
                      3: torch.nn.functional.max_pool3d}[n]
                kwm = {k: v for k, v in kw.items() if k in ("kernel_size", "stride", "ceil_mode")}
                yt = sign * mp(sign * xt.abs(), **kwm)
            torch.testing.assert_close(ya, yt, atol=1e-10, rtol=1e-10)
            g = torch.randn(yt.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(5)).to(device)
            (ga,) = torch.autograd.grad(ya, xa, g)
            (gt,) = torch.autograd.grad(yt, xt, g)
            torch.testing.assert_close(ga, gt, atol=1e-10, rtol=1e-10)
            counts["ok"] = counts.get("ok", 0) + 1
        except Exception as e:  # noqa: BLE001
            FAILURES.append(f"{what}: {type(e).__name__}: {e}")
            counts["FAIL"] = counts.get("FAIL", 0) + 1
    print(f"{'pooling':15s} {counts}", flush=True)


def check_model_and_choices(device: torch.device) -> None:
    from anyconv import models

    counts: dict[str, int] = {}
    for name in ("resnet18", "mobilenet_v2", "unet"):
        if name not in models.list_models():
            continue
        try:
            torch.manual_seed(0)
            model = models.create_model(name, num_classes=10) if name != "unet" else models.create_model(name)
            model = model.double().eval()
            size, chans = (64, 3) if name != "unet" else (32, 1)
            x = torch.randn(2, chans, size, size, dtype=torch.float64)
            ref = model(x)
            ref.square().sum().backward()
            ref_grads = [p.grad.clone() for p in model.parameters()]
            model.zero_grad()
            mc = model.to(device)
            y = mc(x.to(device))
            y.square().sum().backward()
            torch.testing.assert_close(y.cpu(), ref, atol=1e-9, rtol=1e-9)
            for p, rg in zip(mc.parameters(), ref_grads):
                torch.testing.assert_close(p.grad.cpu(), rg, atol=1e-8, rtol=1e-8)
            counts["ok"] = counts.get("ok", 0) + 1
        except Exception as e:  # noqa: BLE001
            FAILURES.append(f"model {name}: {type(e).__name__}: {e}")
            counts["FAIL"] = counts.get("FAIL", 0) + 1
    x, w = torch.randn(2, 144, 56, 56, device=device), torch.randn(144, 1, 3, 3, device=device)
    choice = anyconv.choose_algorithm(x, w, padding=1, groups=144)
    print(f"{'models (CPU=GPU)':15s} {counts}; auto for a depthwise 3x3 on {device.type}: {choice!r}", flush=True)
    if choice == "native" and device.type != "cpu":
        FAILURES.append("auto chose the CPU-only native kernel for CUDA tensors")


def main() -> int:
    device = torch.device(sys.argv[1] if len(sys.argv) > 1 else "cuda")
    # torch's CUDA convolutions (the references) default to TF32 on Ampere and later: 10-bit
    # mantissas, errors of 1e-3; anyconv's float32 matmuls are full float32
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    print(f"torch {torch.__version__}, device {device}"
          f" ({torch.cuda.get_device_name(device) if device.type == 'cuda' else ''})", flush=True)
    for check in (check_conv, check_unfold_fold, check_pooling, check_model_and_choices):
        try:
            check(device)
        except Exception as e:  # noqa: BLE001 - report it with the rest
            FAILURES.append(f"{check.__name__} stopped: {type(e).__name__}: {e}")
    for line in FAILURES[:40]:
        print("FAIL", line)
    if len(sys.argv) > 2:  # all of them to a file
        Path(sys.argv[2]).write_text("\n".join(FAILURES) + "\n")
    print(f"{len(FAILURES)} failures")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
