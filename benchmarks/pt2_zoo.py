"""The PyTorch 2 subsystems on every zoo model: one row per model, for the issue's evidence.

Per model (small inputs, batch 2, float32, 1 thread): graph breaks under ``torch._dynamo.explain``;
``torch.compile(fullgraph=True)`` forward and backward vs eager (max |difference| of the output and
of every parameter's gradient); ``torch.export.export`` (default and ``strict=True``) run vs eager and
the number of ``anyconv::*`` nodes; ONNX (``anyconv.onnx.export``) run by onnxruntime vs eager;
``torch.jit.trace`` (``check_trace``) vs eager; the loss under ``torch.autocast("cpu", bfloat16)`` vs
the same model with torch's layers under autocast; per-sample gradients by ``vmap(grad(loss))`` vs a
loop over torch's layers (eval mode: batch norm uses its running statistics). A failure is written
in its cell, never skipped. Usage::

    python benchmarks/pt2_zoo.py [--models lenet5,resnet18] [--out benchmarks/results/pt2_zoo.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch

import anyconv
import anyconv.onnx
from anyconv.models import create_model, list_models, with_torch_layers

SIZES = {"mnist1d_cnn": (1, 40), "lenet5": (1, 28, 28), "unet": (1, 32, 32), "alexnet": (3, 64, 64)}


def _shape(name: str) -> tuple[int, ...]:
    return (2, *SIZES.get(name, (3, 32, 32)))


def _diff(a: Any, b: Any) -> float:
    return float((a.detach().float() - b.detach().float()).abs().max())


def _cell(fn: Callable[[], str]) -> str:
    try:
        return fn()
    except Exception as e:  # the row records what failed (the evidence), it does not stop the run
        return f"FAIL {type(e).__name__}: {str(e).splitlines()[0][:80]}"


def _grads(m: torch.nn.Module, f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
    m.zero_grad(set_to_none=True)
    f(x).float().square().mean().backward()
    return [p.grad.clone() for p in m.parameters() if p.grad is not None]


def row(name: str) -> dict[str, str]:
    torch.manual_seed(0)
    m = create_model(name, in_channels=_shape(name)[1]).eval()
    x = torch.randn(_shape(name))
    ref = m(x).detach()
    out: dict[str, str] = {"model": name}
    torch._dynamo.reset()
    out["graph_breaks"] = _cell(lambda: str(torch._dynamo.explain(m)(x).graph_break_count))

    def compiled() -> str:
        c = torch.compile(m, fullgraph=True)
        y = c(x)
        g_c, g_e = _grads(m, c, x), _grads(m, m, x)
        return f"out {_diff(y, ref):.1e} grad {max(_diff(a, b) for a, b in zip(g_c, g_e)):.1e}"

    out["compile_fwd_bwd"] = _cell(compiled)

    def exported(strict: bool) -> str:
        ep = torch.export.export(m, (x,), strict=strict)
        nodes = sum(str(n.target).startswith("anyconv.") for n in ep.graph.nodes if n.op == "call_function")
        return f"{_diff(ep.module()(x), ref):.1e} ({nodes} anyconv nodes)"

    out["export"] = _cell(lambda: exported(False))
    out["export_strict"] = _cell(lambda: exported(True))

    def onnx() -> str:
        import onnxruntime as ort

        with tempfile.TemporaryDirectory() as d:
            program = anyconv.onnx.export(m, (x,))
            program.save(f"{d}/m.onnx")
            s = ort.InferenceSession(f"{d}/m.onnx")
            y = s.run(None, {s.get_inputs()[0].name: x.numpy()})[0]
        return f"{_diff(torch.from_numpy(y), ref):.1e}"

    out["onnx_ort"] = _cell(onnx)

    def traced() -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("error", torch.jit.TracerWarning)
            t = torch.jit.trace(m, (x,), check_trace=True)
        return f"{_diff(t(x), ref):.1e}"

    out["jit_trace"] = _cell(traced)
    twin = with_torch_layers(m)

    def autocast() -> str:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            a, b = m(x).float().square().mean(), twin(x).float().square().mean()
        return f"{abs(float(a - b)) / max(abs(float(b)), 1e-12):.1e} rel"

    out["autocast_bf16_loss"] = _cell(autocast)

    def per_sample() -> str:
        params = {k: v.detach() for k, v in m.named_parameters()}
        buffers = {k: v.detach() for k, v in m.named_buffers()}

        def loss(p: dict[str, torch.Tensor], xi: torch.Tensor) -> torch.Tensor:
            return torch.func.functional_call(m, (p, buffers), (xi.unsqueeze(0),)).square().mean()

        got = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0))(params, x)
        worst = 0.0
        for i in range(x.shape[0]):
            twin.zero_grad(set_to_none=True)
            twin(x[i : i + 1]).square().mean().backward()
            for k, p in twin.named_parameters():
                worst = max(worst, _diff(got[k][i], p.grad))
        return f"{worst:.1e}"

    out["vmap_per_sample_grad"] = _cell(per_sample)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(list_models()))
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name in args.models.split(","):
        t0 = time.perf_counter()
        r = row(name)
        r["seconds"] = f"{time.perf_counter() - t0:.0f}"
        rows.append(r)
        print(" | ".join(r.values()), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"torch": torch.__version__, "anyconv": anyconv.__version__, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
