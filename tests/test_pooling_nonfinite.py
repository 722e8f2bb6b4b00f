"""NaN and Inf through pooling land where torch puts them (values, gradients), against torch.

torch averages each adaptive window on its own, so a NaN or Inf reaches only the outputs whose
windows hold it (``+Inf`` and ``-Inf`` in one window give NaN). anyconv's faster forms (a GEMM
with the averaging matrix) multiplied it by that matrix's zeros and spread NaN over the plane:
the differential fuzzer found 149 such calls in 20,000 of seed 7 (rows below: indices 108, 164,
265). Gradients: a NaN or Inf in ``grad_output`` reaches only the inputs of its window. Max, avg
and lp pooling rows check the same rule for the sliding-window ops (max picks NaN, as torch).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

import anyconv.functional as AF

NAN, INF = float("nan"), float("inf")
ADAPTIVE_AVG: dict[int, Callable[..., torch.Tensor]] = {
    1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}


def _same(out: torch.Tensor, ref: torch.Tensor) -> None:
    """The same NaN, +Inf and -Inf positions, and close finite values."""
    assert out.shape == ref.shape
    for mask in (torch.isnan, torch.isposinf, torch.isneginf):
        assert torch.equal(mask(out), mask(ref)), f"{mask.__name__} positions differ"
    ok = torch.isfinite(ref)
    torch.testing.assert_close(torch.where(ok, out, 0), torch.where(ok, ref.to(out.dtype), 0), rtol=1e-2, atol=1e-2)


def _inject(shape: tuple[int, ...], values: list[float], seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    flat = x.view(-1)
    for v, at in zip(values, torch.randperm(flat.numel(), generator=g).tolist()):
        flat[at] = v
    return x.to(dtype)


FUZZER_ROWS = [  # (input shape, output_size, dtype, layout) of seed 7, indices 108, 164, 265
    ((1, 3, 4, 3, 5), [4, 4, 3], torch.float16, "contiguous"),
    ((1, 3, 6, 5), (8, None), torch.float64, "permuted"),
    ((2, 2, 7), [3, 4], torch.float32, "expanded"),
]


@pytest.mark.parametrize(("shape", "size", "dtype", "layout"), FUZZER_ROWS, ids=["108", "164", "265"])
def test_fuzzer_rows(shape: tuple[int, ...], size: list[int | None], dtype: torch.dtype, layout: str) -> None:
    x = _inject(shape, [NAN, INF, -INF], 7, dtype)
    if layout == "permuted":
        x = x.permute(0, 1, 3, 2).contiguous().permute(0, 1, 3, 2)
    elif layout == "expanded":
        x = x[:1].expand(x.shape)
    n = len(size)
    ref = ADAPTIVE_AVG[n](x.float() if dtype == torch.float16 else x, size)
    _same(AF.adaptive_avg_pool(x, size), ref)


SIZES = [  # (input spatial, output spatial): overlapping windows, one GEMM, per-dim GEMMs, tiles, upsampling
    ((7,), (3,)), ((5,), (8,)), ((6, 5), (4, 3)), ((9, 9), (4, 6)), ((15, 15), (4, 4)), ((40, 3), (13, 2)),
    ((30, 17), (9, 11)), ((4, 3, 5), (4, 4, 3)), ((6, 6, 7), (3, 2, 5)), ((8, 9), (4, 3)),
]
VALUES = {"nan": [NAN], "inf": [INF], "-inf": [-INF], "inf_and_-inf": [INF, -INF, INF], "mixed": [NAN, INF, -INF]}


@pytest.mark.parametrize(("spatial", "size"), SIZES, ids=[f"{a}->{b}" for a, b in SIZES])
@pytest.mark.parametrize("values", list(VALUES), ids=list(VALUES))
def test_adaptive_avg_forward(spatial: tuple[int, ...], size: tuple[int, ...], values: str) -> None:
    for seed, dtype in enumerate((torch.float64, torch.float32, torch.float16)):
        x = _inject((2, 3, *spatial), VALUES[values], seed, dtype)
        ref = ADAPTIVE_AVG[len(size)](x.float() if dtype == torch.float16 else x, size)
        _same(AF.adaptive_avg_pool(x, size), ref)


@pytest.mark.parametrize(("spatial", "size"), SIZES, ids=[f"{a}->{b}" for a, b in SIZES])
@pytest.mark.parametrize("values", ["nan", "inf_and_-inf"])
def test_adaptive_avg_backward(spatial: tuple[int, ...], size: tuple[int, ...], values: str) -> None:
    """Finite input, NaN/Inf in grad_output: torch's gradient positions (and NaN input, finite grad_output)."""
    x = torch.randn(2, 3, *spatial, dtype=torch.float64, requires_grad=True)
    gy = _inject((2, 3, *size), VALUES[values], 1)
    (want,) = torch.autograd.grad(ADAPTIVE_AVG[len(size)](x, size), x, gy)
    (got,) = torch.autograd.grad(AF.adaptive_avg_pool(x, size), x, gy)
    _same(got, want)
    xn = _inject((2, 3, *spatial), VALUES[values], 2).requires_grad_()
    gy = torch.randn(2, 3, *size, dtype=torch.float64)
    (want,) = torch.autograd.grad(ADAPTIVE_AVG[len(size)](xn, size), xn, gy)
    (got,) = torch.autograd.grad(AF.adaptive_avg_pool(xn, size), xn, gy)
    _same(got, want)


@pytest.mark.parametrize(("spatial", "size"), [((7,), (3,)), ((6, 5), (4, 3)), ((5, 4), (9, 3))])
def test_adaptive_avg_second_order(spatial: tuple[int, ...], size: tuple[int, ...]) -> None:
    x = torch.randn(1, 2, *spatial, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda t: AF.adaptive_avg_pool(t, size), (x,))


@pytest.mark.parametrize(("spatial", "size"), [((7,), (3,)), ((6, 5), (4, 3)), ((4, 3, 5), (4, 4, 3)), ((5,), (8,))])
def test_adaptive_max_picks_nan(spatial: tuple[int, ...], size: tuple[int, ...]) -> None:
    x = _inject((2, 3, *spatial), [NAN, INF, -INF, NAN], 3)
    ref = {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d}[len(size)]
    rv, ri = ref(x, size, return_indices=True)
    v, i = AF.adaptive_max_pool(x, size, return_indices=True)
    _same(v, rv)
    assert torch.equal(i, ri)


WINDOWS = [((9,), (3,), (2,), (1,)), ((7, 6), (3, 2), (2, 1), (1, 0)), ((5, 6, 4), (2, 3, 2), (1, 2, 2), (0, 1, 1))]


@pytest.mark.parametrize(("spatial", "k", "s", "p"), WINDOWS, ids=["1d", "2d", "3d"])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_sliding_pools(spatial: tuple[int, ...], k: tuple[int, ...], s: tuple[int, ...], p: tuple[int, ...],
                       ceil_mode: bool) -> None:
    n = len(k)
    x = _inject((2, 3, *spatial), [NAN, INF, -INF, INF], 4)
    rv, ri = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[n - 1](x, k, s, p, ceil_mode=ceil_mode, return_indices=True)
    v, i = AF.max_pool(x, k, s, p, ceil_mode=ceil_mode, return_indices=True)
    _same(v, rv)
    assert torch.equal(i, ri)
    avg = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[n - 1]
    for cip in (True, False):
        _same(AF.avg_pool(x, k, s, p, ceil_mode=ceil_mode, count_include_pad=cip),
              avg(x, k, s, p, ceil_mode=ceil_mode, count_include_pad=cip))
    if n < 3:
        lp = F.lp_pool1d if n == 1 else F.lp_pool2d
        kk = k[0] if n == 1 else k
        for norm, t in ((2.0, x.abs()), (1.0, x)):
            _same(AF.lp_pool(t, norm, k, s, ceil_mode=ceil_mode), lp(t, norm, kk, s, ceil_mode=ceil_mode))  # type: ignore[arg-type]
