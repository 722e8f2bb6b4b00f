"""Run an op and its reference on the same values and compare outputs AND gradients.

``compare(fn, ref, tensors, dtype)``: ``fn`` (anyconv) gets ``tensors`` in ``dtype``; ``ref``
gets the same values in ``REFERENCE_DTYPE[dtype]``. Both are differentiated through
``<out, gy>`` for one fixed random ``gy`` (real part of ``<out, conj(gy)>`` for complex), and the
output and every input gradient are compared with the tolerance table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import torch

import anyconv
from anyconv import algorithms
from anyconv.core.padding import pad
from anyconv.core.spec import CorrSpec, conv_spec
from tolerances import REFERENCE_DTYPE, assert_close


def _loss(out: torch.Tensor, gy: torch.Tensor) -> torch.Tensor:
    return (out * gy.conj()).real.sum() if out.is_complex() else (out * gy).sum()


def outputs_and_grads(
    fn: Callable[..., torch.Tensor], tensors: Sequence[torch.Tensor], gy: torch.Tensor | None = None
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], torch.Tensor]:
    """``fn(*tensors)`` and the gradients of ``<out, gy>`` w.r.t. every tensor (``gy`` drawn if None)."""
    leaves = [t.detach().clone().requires_grad_(True) for t in tensors]
    out = fn(*leaves)
    if gy is None:
        gen = torch.Generator().manual_seed(1234)
        wide = torch.complex128 if out.is_complex() else torch.float64
        gy = torch.randn(out.shape, generator=gen, dtype=wide).to(out.dtype)
    grads = torch.autograd.grad(_loss(out, gy.to(out.dtype)), leaves, allow_unused=False)
    return out.detach(), tuple(g.detach() for g in grads), gy


def compare(
    fn: Callable[..., torch.Tensor],
    ref: Callable[..., torch.Tensor],
    tensors: Sequence[torch.Tensor],
    dtype: torch.dtype,
    names: Sequence[str] = ("input", "weight", "bias"),
) -> None:
    """Assert that ``fn`` and ``ref`` agree in output and in the gradient of every tensor."""
    ours_in = [t.detach().to(dtype) for t in tensors]
    out, grads, gy = outputs_and_grads(fn, ours_in)
    assert out.dtype == dtype, f"output dtype {out.dtype} != input dtype {dtype}"
    ref_dtype = REFERENCE_DTYPE[dtype]
    ref_in = [t.to(ref_dtype) for t in ours_in]  # the same (rounded) values
    ref_out, ref_grads, _ = outputs_and_grads(ref, ref_in, gy.to(ref_dtype))
    assert_close(out, ref_out, dtype, "output")
    for name, g, rg in zip(names, grads, ref_grads):
        assert g.dtype == dtype, f"grad {name} dtype {g.dtype}"
        assert_close(g, rg, dtype, f"grad {name}")


def rejection_reason(error: ValueError, algorithm: str) -> str | None:
    """The reason in an "algorithm=... cannot serve this call: REASON" error, else None."""
    m = re.search(rf"algorithm={algorithm!r} cannot serve this call: (.+)", str(error))
    return m.group(1) if m else None


def expected_rejection(sample: Any, algo: str, x: torch.Tensor, w: torch.Tensor) -> str | None:
    """The reason ``algo`` gives for refusing the core call of this sample (None: it serves it)."""
    if algo == "auto":
        return None
    kw = sample.kwargs
    spec = conv_spec("conv", x, w, None, kw.get("stride", 1), kw.get("padding", 0), kw.get("dilation", 1),
                     kw.get("groups", 1), kw.get("padding_mode", "zeros"), kw.get("flip", False), algo)
    xb = x if spec.batched else x.unsqueeze(0)
    core = spec.core
    if spec.padding_mode != "zeros":
        xb = pad(xb, core.padding, spec.padding_mode)
        core = CorrSpec(core.stride, core.dilation, ((0, 0),) * core.n, core.groups)
    return algorithms.get(algo).supports(xb, w, core)


ALGORITHMS = ("auto", *anyconv.algorithms.names())
