"""Identities every conv-family op must satisfy, for every algorithm.

- adjoint: ``<conv(x, w), y> == <x, conv_transpose(y, w)>`` (same stride, dilation, groups,
  padding pairs; ``output_size`` = x's size), also for complex (a bilinear pairing);
- linearity in the input and in the weight (every padding mode is linear);
- shape arithmetic: ``anyconv.core.shapes`` formulas == the actual output shapes;
- determinism: the same call twice gives bit-identical outputs and gradients.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

import anyconv.functional as AF
from anyconv.core import shapes as _shapes
from differential import ALGORITHMS, expected_rejection, outputs_and_grads, rejection_reason
from references import per_dim, resolve_padding, transpose_crop
from samples import Sample, conv_samples, conv_transpose_samples, unfold_samples

CONV = list(conv_samples())
CONV_T = list(conv_transpose_samples())
ZERO_PAD = [s for s in CONV if s.kwargs.get("padding_mode", "zeros") == "zeros" and s.batched]


def _served(sample: Sample, algo: str, x: torch.Tensor, w: torch.Tensor) -> bool:
    return sample.op != "conv" or expected_rejection(sample, algo, x, w) is None


def _pairs(sample: Sample, x: torch.Tensor, w: torch.Tensor) -> Any:
    kw = sample.kwargs
    n = sample.n
    return resolve_padding(kw.get("padding", 0), x.shape[-n:], w.shape[2:], per_dim(kw.get("stride", 1), n),
                           per_dim(kw.get("dilation", 1), n))


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128], ids=str)
@pytest.mark.parametrize("sample", ZERO_PAD, ids=lambda s: s.id)
def test_adjoint(sample: Sample, dtype: torch.dtype) -> None:
    x, w = sample.tensors(dtype)[:2]
    kw = {k: v for k, v in sample.kwargs.items() if k in ("stride", "dilation", "groups")}
    if sample.kwargs.get("flip"):
        w = w.flip(list(range(2, 2 + sample.n)))
    pairs = _pairs(sample, x, w)
    y = AF.conv(x, w, padding=pairs, **kw)
    gen = torch.Generator().manual_seed(7)
    g = torch.randn(y.shape, dtype=dtype, generator=gen)
    lhs = (y * g).sum()
    for algo in ALGORITHMS:
        try:
            xt = AF.conv_transpose(g, w, padding=pairs, output_size=list(x.shape[2:]), algorithm=algo, **kw)
        except ValueError as e:
            assert algo != "auto" and rejection_reason(e, algo), e
            continue
        rhs = (x * xt).sum()
        assert abs((lhs - rhs).item()) <= 1e-10 * max(1.0, abs(lhs.item())), (algo, lhs.item(), rhs.item())


@pytest.mark.parametrize("sample", [s for s in CONV if s.batched and s.n in (1, 4)] + [s for s in CONV_T if s.batched and s.n == 2],
                         ids=lambda s: s.id)
def test_linearity(sample: Sample) -> None:
    x, w = sample.tensors(torch.float64)[:2]
    gen = torch.Generator().manual_seed(11)
    x2, w2 = torch.randn(x.shape, dtype=x.dtype, generator=gen), torch.randn(w.shape, dtype=w.dtype, generator=gen)
    a, b = 0.7, -1.9
    op = AF.conv if sample.op == "conv" else AF.conv_transpose
    for algo in ALGORITHMS:
        if not _served(sample, algo, x, w):
            continue

        def f(u: torch.Tensor, v: torch.Tensor, algo: str = algo) -> torch.Tensor:
            return op(u, v, algorithm=algo, **sample.kwargs)

        try:
            torch.testing.assert_close(f(a * x + b * x2, w), a * f(x, w) + b * f(x2, w), rtol=1e-9, atol=1e-10)
            torch.testing.assert_close(f(x, a * w + b * w2), a * f(x, w) + b * f(x, w2), rtol=1e-9, atol=1e-10)
        except ValueError as e:
            assert algo != "auto" and rejection_reason(e, algo), e


@pytest.mark.parametrize("sample", CONV, ids=lambda s: s.id)
def test_conv_shape_formula(sample: Sample) -> None:
    x, w, b = sample.xwb(torch.float64)
    kw = sample.kwargs
    n = sample.n
    s, d = per_dim(kw.get("stride", 1), n), per_dim(kw.get("dilation", 1), n)
    pad = kw.get("padding", 0)
    kernel = w.shape[2:]
    spatial = x.shape[-n:]
    if pad in ("same", "same_lower"):
        pairs = [_shapes.same_padding(i, k, ss, dd, pad == "same_lower") for i, k, ss, dd in zip(spatial, kernel, s, d)]
    elif pad == "causal":
        pairs = [_shapes.causal_padding(k, dd) for k, dd in zip(kernel, d)]
    elif pad == "valid":
        pairs = [(0, 0)] * n
    else:
        pairs = list(_pairs(sample, x, w))
    out = [_shapes.conv_output_size(i, k, ss, dd, pb, pa) for i, k, ss, dd, (pb, pa) in zip(spatial, kernel, s, d, pairs)]
    if pad in ("same", "same_lower", "causal"):  # the API's promise: ceil(in / stride)
        assert out == [-(-i // ss) for i, ss in zip(spatial, s)]
    lead = (x.shape[0],) if sample.batched else ()
    assert tuple(AF.conv(x, w, b, **kw).shape) == (*lead, w.shape[0], *out)


@pytest.mark.parametrize("sample", CONV_T, ids=lambda s: s.id)
def test_conv_transpose_shape_formula(sample: Sample) -> None:
    x, w, b = sample.xwb(torch.float64)
    kw = sample.kwargs
    n = sample.n
    s, d, op = (per_dim(kw.get(k, v), n) for k, v in (("stride", 1), ("dilation", 1), ("output_padding", 0)))
    kernel = w.shape[2:]
    spatial = x.shape[-n:]
    pad = kw.get("padding", 0)
    if pad == "same":
        crop = [_shapes.conv_transpose_same_crop(k, ss, dd) for k, ss, dd in zip(kernel, s, d)]
        assert crop == list(transpose_crop("same", kernel, s, d))
    else:
        crop = list(transpose_crop(pad, kernel, s, d))
    if "output_size" in kw:
        ranges = [_shapes.output_padding_range(i, k, ss, dd, pb, pa) for i, k, ss, dd, (pb, pa) in zip(spatial, kernel, s, d, crop)]
        assert all(lo <= o <= hi for (lo, hi), o in zip(ranges, kw["output_size"]))
        out = list(kw["output_size"])
    else:
        out = [_shapes.conv_transpose_output_size(i, k, ss, dd, pb, pa, o)
               for i, k, ss, dd, (pb, pa), o in zip(spatial, kernel, s, d, crop, op)]
    if pad == "same":
        assert out == [i * ss for i, ss in zip(spatial, s)]
    lead = (x.shape[0],) if sample.batched else ()
    groups = kw.get("groups", 1)
    assert tuple(AF.conv_transpose(x, w, b, **kw).shape) == (*lead, w.shape[1] * groups, *out)


@pytest.mark.parametrize("sid,n,batched,shape,kwargs", list(unfold_samples()), ids=[s[0] for s in unfold_samples()])
def test_unfold_shape_formula(sid: str, n: int, batched: bool, shape: tuple[int, ...], kwargs: dict[str, Any]) -> None:
    x = torch.zeros(shape)
    k = kwargs["kernel_size"]
    s, d = per_dim(kwargs.get("stride", 1), n), per_dim(kwargs.get("dilation", 1), n)
    pairs = resolve_padding(kwargs.get("padding", 0), shape[-n:], k, s, d)
    blocks = [_shapes.conv_output_size(i, kk, ss, dd, pb, pa) for i, kk, ss, dd, (pb, pa) in zip(shape[-n:], k, s, d, pairs)]
    lead = shape[:1] if batched else ()
    assert tuple(AF.unfold(x, **kwargs).shape) == (*lead, shape[-n - 1] * _shapes.prod(k), _shapes.prod(blocks))


DETERMINISM = [s for s in CONV if s.name in ("combo", "combo_reflect_same", "depthwise") and s.batched] + [
    s for s in CONV_T if s.name in ("combo", "output_padding") and s.batched]


@pytest.mark.parametrize("algo", ALGORITHMS)
@pytest.mark.parametrize("sample", DETERMINISM, ids=lambda s: s.id)
def test_determinism(sample: Sample, algo: str) -> None:
    """Two runs of the same call: bit-identical outputs and gradients (CPU)."""
    tensors = sample.tensors(torch.float32)
    op: Any = AF.conv if sample.op == "conv" else AF.conv_transpose
    if not _served(sample, algo, *tensors[:2]):
        return

    def fn(*t: torch.Tensor) -> torch.Tensor:
        return op(*t, **{**sample.kwargs, "algorithm": algo})

    try:
        out1, grads1, gy = outputs_and_grads(fn, tensors)
    except ValueError as e:
        assert algo != "auto" and rejection_reason(e, algo), e
        return
    out2, grads2, _ = outputs_and_grads(fn, tensors, gy)
    assert torch.equal(out1, out2)
    for g1, g2 in zip(grads1, grads2):
        assert torch.equal(g1, g2)


def test_fold_unfold_determinism() -> None:
    x = torch.randn(2, 3, 5, 4, 3)
    u1, (g1,), gy = outputs_and_grads(lambda t: AF.unfold(t, 2, padding=1), (x,))
    u2, (g2,), _ = outputs_and_grads(lambda t: AF.unfold(t, 2, padding=1), (x,), gy)
    assert torch.equal(u1, u2) and torch.equal(g1, g2)
    f1, (h1,), gy = outputs_and_grads(lambda t: AF.fold(t, [5, 4, 3], 2, padding=1), (u1,))
    f2, (h2,), _ = outputs_and_grads(lambda t: AF.fold(t, [5, 4, 3], 2, padding=1), (u1,), gy)
    assert torch.equal(f1, f2) and torch.equal(h1, h2)
