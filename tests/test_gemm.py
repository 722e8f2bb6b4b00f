"""The native matrix product (``native_c/gemm.c`` through ``algorithms/_gemm.py``) against torch.matmul.

Every product here is forced onto the kernel (``ANYCONV_GEMM=native``, no size threshold), in float64
(compared with torch's float64 product, to 1e-12) and float32 (to float32 rounding); then the
GEMM-based algorithms with the kernel against torch's convolution, bit-determinism across thread
counts, non-finite values like torch's, and the AVX2 and portable builds in their own processes.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import anyconv.functional as AF
from anyconv.algorithms import _gemm, _native_abi, _native_build
from thread_counts import weight_grads

pytestmark = pytest.mark.skipif(_native_abi.unavailable() is not None, reason="no native library")


@pytest.fixture(autouse=True)
def forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANYCONV_GEMM", "native")
    monkeypatch.setattr(_gemm, "MIN_MACS", 0)
    monkeypatch.setattr(_gemm, "MIN_PRODUCT_MACS", 0)
    monkeypatch.setattr(_gemm, "MIN_N", 0)


def _ref(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.matmul(a.double(), b.double())


def _native_only(a: torch.Tensor, b: torch.Tensor, **kw: object) -> torch.Tensor:
    out = _gemm._native(a, b, kw.get("out"), bool(kw.get("accumulate", False)))  # type: ignore[arg-type]
    assert out is not None, "the kernel declined a product it should compute"
    return out


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 3e-6)])
@pytest.mark.parametrize("m", [1, 5, 12, 13, 40, 150])
@pytest.mark.parametrize("k", [1, 7, 128, 129, 300])
@pytest.mark.parametrize("n", [1, 16, 33, 100, 1100])
def test_products_equal_torchs(dtype: torch.dtype, tol: float, m: int, k: int, n: int):
    g = torch.Generator().manual_seed(m * 1000 + k * 10 + n)
    a, b = torch.randn(m, k, generator=g, dtype=dtype), torch.randn(k, n, generator=g, dtype=dtype)
    y = _native_only(a, b)
    scale = _ref(a.abs(), b.abs()).max().item()
    assert y.dtype == dtype and y.shape == (m, n)
    assert (y.double() - _ref(a, b)).abs().max().item() <= tol * max(scale, 1.0)


@pytest.mark.parametrize("case", ["a_t", "b_t", "both_t", "strided", "batch", "broadcast_a", "broadcast_b",
                                  "batch2", "sliced"])
def test_any_strides_and_batches(case: str):
    g = torch.Generator().manual_seed(7)

    def r(*s: int) -> torch.Tensor:
        return torch.randn(*s, generator=g, dtype=torch.float64)

    a, b = {
        "a_t": (r(70, 50).T, r(70, 90)),
        "b_t": (r(50, 70), r(90, 70).T),
        "both_t": (r(70, 50).T, r(90, 70).T),
        "strided": (r(50, 140)[:, ::2], r(70, 180)[:, 1::2]),
        "batch": (r(3, 20, 30), r(3, 30, 40)),
        "broadcast_a": (r(20, 30), r(4, 30, 40)),
        "broadcast_b": (r(4, 20, 30), r(30, 40)),
        "batch2": (r(2, 3, 20, 30), r(2, 3, 30, 40)),
        "sliced": (r(6, 20, 30)[::2], r(6, 30, 40)[1::2].transpose(-1, -2).contiguous().transpose(-1, -2)),
    }[case]
    y = _gemm.matmul(a, b)
    assert y.shape == torch.matmul(a, b).shape
    assert torch.allclose(y, torch.matmul(a, b), rtol=0, atol=1e-12)


def test_the_kernel_computes_not_torch(monkeypatch: pytest.MonkeyPatch):
    # the forced path really is the kernel: with torch.matmul broken, products still come out right
    a, b = torch.randn(30, 40, dtype=torch.float64), torch.randn(40, 50, dtype=torch.float64)
    want = a @ b
    monkeypatch.setattr(torch, "matmul", lambda *args, **kw: pytest.fail("torch.matmul was called"))
    assert torch.allclose(_gemm.matmul(a, b), want, atol=1e-12)


def test_out_and_accumulate_like_baddbmm():
    a, b = torch.randn(4, 20, 30, dtype=torch.float64), torch.randn(4, 30, 50, dtype=torch.float64)
    c = torch.randn(4, 20, 50, dtype=torch.float64)
    want = torch.baddbmm(c, a, b)
    out = c.clone()
    assert _gemm.matmul(a, b, out=out, accumulate=True) is out
    assert torch.allclose(out, want, atol=1e-12)
    assert torch.allclose(_gemm.matmul(a, b, out=out), torch.bmm(a, b), atol=1e-12)


def test_k_zero_gives_zeros_and_accumulate_keeps_c():
    a, b = torch.randn(5, 0), torch.randn(0, 7)
    assert torch.equal(_gemm.matmul(a, b), torch.zeros(5, 7))
    c = torch.ones(5, 7)
    assert torch.equal(_gemm.matmul(a, b, out=c, accumulate=True), torch.ones(5, 7))


def test_bit_identical_at_every_thread_count(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(_native_abi, "MIN_MACS_PER_THREAD", 1)
    a, b = torch.randn(3, 100, 700), torch.randn(3, 700, 500)
    tall, narrow = torch.randn(301, 130), torch.randn(130, 20)
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3, 4):
            torch.set_num_threads(threads)
            # batched; one item (C's columns split over the threads); one narrow item (C's rows split)
            results.append((_gemm.matmul(a, b), _gemm.matmul(a[0], b[0]), _gemm.matmul(tall, narrow)))
    finally:
        torch.set_num_threads(before)
    for r in results[1:]:
        assert all(torch.equal(got, want) for got, want in zip(r, results[0]))
    assert torch.allclose(results[0][2].double(), tall.double() @ narrow.double(), rtol=0, atol=1e-4)


def test_nan_and_inf_like_torch():
    a, b = torch.randn(13, 40), torch.randn(40, 35)
    a[2, 5], a[7, 0], b[3, 30], b[10, 4] = float("inf"), float("nan"), float("-inf"), float("inf")
    y, want = _gemm.matmul(a, b), torch.matmul(a, b)
    assert torch.equal(y.isnan(), want.isnan()) and torch.equal(y.isinf(), want.isinf())
    finite = want.isfinite()
    assert torch.allclose(y[finite], want[finite], rtol=1e-5, atol=1e-4)


def test_autograd_tracked_products_stay_with_torch():
    a = torch.randn(20, 30, requires_grad=True)
    y = _gemm.matmul(a, torch.randn(30, 40))
    assert y.grad_fn is not None


@pytest.mark.parametrize("algorithm", ["im2col", "winograd", "shifted", "kn2row"])
@pytest.mark.parametrize("shape", [((2, 12, 9, 10), (16, 12, 3, 3), 1, 1), ((3, 8, 11, 7), (8, 4, 3, 3), 1, 2),
                                   ((2, 6, 12, 12), (10, 6, 1, 1), 1, 1), ((2, 6, 13, 12), (10, 6, 3, 3), 2, 1)])
def test_gemm_algorithms_with_the_kernel_equal_torch(algorithm: str, shape: tuple):
    xs, ws, stride, groups = shape
    g = torch.Generator().manual_seed(3)
    x = torch.randn(xs, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(ws, generator=g, dtype=torch.float64, requires_grad=True)
    try:
        y = AF.conv2d(x, w, None, stride, 1, 1, groups, algorithm=algorithm)
    except ValueError as e:  # the algorithm does not serve this call (winograd: stride 2; 1x1 kernels)
        assert "cannot serve this call" in str(e) and (stride != 1 or ws[-1] == 1), e
        assert algorithm != "im2col", e
        return
    want = F.conv2d(x, w, None, stride, 1, 1, groups)
    gy = torch.randn_like(want)
    assert torch.allclose(y, want, atol=1e-10)
    for got, ref in zip(torch.autograd.grad(y, (x, w), gy), torch.autograd.grad(want, (x, w), gy)):
        assert torch.allclose(got, ref, atol=1e-9)


BUILD_PROBE = """
    import torch, torch.nn.functional as F
    import anyconv.functional as AF
    from anyconv.algorithms import _gemm, _native_abi
    _gemm.MIN_MACS = _gemm.MIN_PRODUCT_MACS = _gemm.MIN_N = 0
    assert _native_abi.unavailable() is None, _native_abi.unavailable()
    print("FLAGS", " ".join(_native_abi.build_info().flags))
    for dt, tol in ((torch.float64, 1e-12), (torch.float32, 1e-4)):
        for m, k, n in ((1, 1, 1), (13, 129, 33), (40, 300, 1100)):
            a, b = torch.randn(m, k, dtype=dt), torch.randn(k, n, dtype=dt)
            assert torch.allclose(_gemm.matmul(a, b), a @ b, rtol=0, atol=tol * k), (dt, m, k, n)
    x, w = torch.randn(2, 16, 12, 12, dtype=torch.float64), torch.randn(24, 16, 3, 3, dtype=torch.float64)
    for alg in ("native", "im2col", "winograd"):
        assert torch.allclose(AF.conv2d(x, w, padding=1, algorithm=alg), F.conv2d(x, w, padding=1), atol=1e-10), alg
    xs, ws = torch.randn(2, 8, 11, 11), torch.randn(40, 8, 3, 3)  # im2col's implicit product, float32, stride 2
    assert torch.allclose(AF.conv2d(xs, ws, stride=2, padding=1, algorithm="im2col"),
                          F.conv2d(xs, ws, stride=2, padding=1), atol=1e-4)
    xd, wd = torch.randn(2, 32, 9, 9), torch.randn(32, 1, 3, 3)
    assert torch.allclose(AF.conv2d(xd, wd, padding=1, groups=32, algorithm="native"),
                          F.conv2d(xd, wd, padding=1, groups=32), atol=1e-5)
    print("OK")
"""


@pytest.mark.parametrize("isa, openmp", [("avx2", "0"), ("generic", "1")])
def test_the_avx2_and_portable_builds(tmp_path: Path, isa: str, openmp: str):
    # the AVX2/FMA build (run here with AVX-512 switched off at build time) and the portable C build
    # compute the same products and convolutions; avx2 without OpenMP exercises the pthread path too
    if isa == "avx2" and not {"avx2", "fma"} <= set(_native_build.cpu_features().split()):
        pytest.skip("this CPU has no AVX2/FMA")
    env = {**os.environ, "ANYCONV_CACHE": str(tmp_path), "ANYCONV_NATIVE_ISA": isa, "ANYCONV_NATIVE_OPENMP": openmp,
           "ANYCONV_GEMM": "native", "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(BUILD_PROBE)], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    flags = next(line for line in out.stdout.splitlines() if line.startswith("FLAGS")).split()
    assert ("-march=haswell" if isa == "avx2" else "-march=x86-64") in flags
    assert ("-fopenmp" in flags) == (openmp == "1")
    assert out.stdout.strip().endswith("OK")


def test_auto_scales_the_gemm_terms_by_the_measured_rate(monkeypatch: pytest.MonkeyPatch):
    # a profile fitted at 90 GFLOP/s, products now at 180 (or 45): GEMM terms x1/2 (x2), others unchanged
    from anyconv.algorithms import auto, profile
    from anyconv.tools.choose import core_call

    monkeypatch.delenv("ANYCONV_PROFILE", raising=False)
    shipped = profile.shipped()
    prof = profile.Profile(shipped.coefficients, {**shipped.fitted_on, "gemm_gflops": 90.0}, "test")
    xc, wc, spec = core_call("conv", torch.empty(2, 16, 20, 20), torch.empty(32, 16, 3, 3), padding=1)
    feats = auto.features("im2col", xc, wc, spec)
    coef = shipped.coefficients["im2col"]
    gemm = sum(coef.get(k, 0.0) * v for k, v in feats.items() if k in ("macs", "narrow_macs"))
    rest = sum(coef.get(k, 0.0) * v for k, v in feats.items() if k not in ("macs", "narrow_macs"))
    assert gemm > 0 and rest > 0
    for now, scale in ((180.0, 0.5), (45.0, 2.0), (90.0, 1.0), (1e6, 0.25)):
        monkeypatch.setattr(_gemm, "rate", lambda dtype=None, now=now: now)
        assert auto.gemm_scale(prof) == pytest.approx(scale)
        assert auto.estimate_ms("im2col", xc, wc, spec, prof) == pytest.approx(rest + scale * gemm)
    monkeypatch.setenv("ANYCONV_PROFILE", "default")  # reproducible runs: no timing enters a choice
    assert auto.gemm_scale(prof) == 1.0


def test_implicit_products_serve_while_the_kernel_keeps_its_share_of_torchs_rate(monkeypatch: pytest.MonkeyPatch):
    # the implicit products skip the columns: they serve at 0.6x torch's rate and above, costed at the
    # kernel's rate; plain products go to the faster backend
    from anyconv.algorithms import gemm_w, im2col
    from anyconv.tools.choose import core_call

    monkeypatch.delenv("ANYCONV_PROFILE", raising=False)
    monkeypatch.delenv("ANYCONV_GEMM", raising=False)
    xc, wc, spec = core_call("conv", torch.empty(8, 16, 20, 20), torch.empty(32, 16, 3, 3), padding=1)
    base = None
    for native_rate, ok, slow in ((160.0, True, 1.0), (60.0, True, 80 / 60), (40.0, False, 1.0)):
        monkeypatch.setattr(_gemm, "rates", lambda dtype=None, n=native_rate: {"native": n, "torch": 80.0})
        assert _gemm.backend(torch.float32) == ("native" if native_rate > 80 else "torch")
        assert _gemm.implicit_ok(torch.float32) is ok and im2col.implicit(xc, wc, spec) is ok
        assert _gemm.implicit_slowdown(torch.float32) == pytest.approx(slow)
        f = im2col.cost_features(xc, wc, spec)
        if base is None:
            base = f["macs"]
        if ok:
            assert f["macs"] == pytest.approx(base * slow) and f["copied_3d"] == f["runs"] == 0.0
        else:
            assert f["macs"] == pytest.approx(base) and f["runs"] > 0
            assert "below 0.6x" in str(gemm_w.supports(xc, wc, spec))
    monkeypatch.setenv("ANYCONV_GEMM", "torch")
    assert not _gemm.implicit_ok(torch.float32)


@pytest.mark.parametrize("m", [2, 4, 6])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape, padding", [((2, 5, 9, 11), (1, 1)), ((1, 3, 6, 6), (0, 0)), ((3, 8, 13, 7), (2, 0)),
                                            ((1, 2, 9, 120), (1, 1)), ((2, 4, 3, 40), (1, 2))])
def test_native_winograd_transforms_equal_torch(m: int, dtype: torch.dtype, shape: tuple, padding: tuple):
    # winograd with the native 2-D transforms (every tile size they serve, chunk edges, crops, strided
    # input) against F.conv2d; float64 to 1e-11 relative, float32 within the algorithm's accuracy bound
    from anyconv.algorithms import _winograd_native, winograd
    from anyconv.core.spec import CorrSpec

    g = torch.Generator().manual_seed(m)
    x = torch.randn(shape, generator=g, dtype=dtype).transpose(2, 3).contiguous().transpose(2, 3)  # column stride != 1
    w = torch.randn(6, shape[1], 3, 3, generator=g, dtype=dtype)
    spec = CorrSpec((1, 1), (1, 1), tuple((p, p) for p in padding), 1)
    out = spec.output_spatial(x.shape[2:], w.shape[2:])
    assert _winograd_native.serves(x, 2, [-(-v // m) for v in out], m) or not _native_abi.lanes_built()
    y = winograd.forward(x, w, spec, m)
    ref = F.conv2d(x.double(), w.double(), padding=padding)
    tol = 1e-11 if dtype == torch.float64 else 5e-5
    assert ((y.double() - ref).abs().max() / ref.abs().max()).item() < tol


def test_native_winograd_is_used_and_falls_back_for_wide_rows(monkeypatch: pytest.MonkeyPatch):
    from anyconv.algorithms import _winograd_native, winograd
    from anyconv.core.spec import CorrSpec

    calls: list[str] = []
    real_in = _winograd_native.transform_in
    monkeypatch.setattr(_winograd_native, "transform_in", lambda *a, **k: calls.append("in") or real_in(*a, **k))
    spec = CorrSpec((1, 1), (1, 1), ((1, 1), (1, 1)), 1)
    x, w = torch.randn(1, 3, 10, 10, dtype=torch.float64), torch.randn(4, 3, 3, 3, dtype=torch.float64)
    winograd.forward(x, w, spec)
    assert calls  # the native transforms computed it
    calls.clear()
    wide = torch.randn(1, 3, 5, 4 * _winograd_native.MAX_TILE_COLUMNS + 9, dtype=torch.float64)
    y = winograd.forward(wide, w, spec)
    assert not calls  # too many tiles per row: the tensor-op transforms
    assert torch.allclose(y, F.conv2d(wide, w, padding=1), atol=1e-10)


@pytest.fixture
def no_small_w(monkeypatch: pytest.MonkeyPatch):
    """The small-call variants, wino_w and dot_w decline (these test calls are small; a forward by ``small``
    keeps its columns for the weight gradient), gemm_w serves whatever auto picks for the swapped call, and
    no cached route remembers any of it."""
    from anyconv.algorithms import dot_w, gemm_w, names, small, small_w, variants, wino_w

    for mod in (small_w, wino_w, dot_w):
        monkeypatch.setattr(mod, "supports", lambda *a, **k: "declined by the test")
    monkeypatch.setattr(small, "supports", lambda *a, **k: "declined by the test")
    # (gemm_w replaces only im2col's choice; these tests check its numbers on every call)
    monkeypatch.setattr(gemm_w, "REPLACES", tuple(names()))
    monkeypatch.setattr(gemm_w, "MIN_ROWS", 0)  # (and any width: the kernel's edge tiles are tested)
    monkeypatch.setattr(gemm_w, "MIN_ROWS_WINDOWED", 0)
    monkeypatch.setattr(gemm_w, "MIN_COLUMNS", 0)
    variants._ROUTES.clear()
    yield
    variants._ROUTES.clear()


@pytest.mark.parametrize("case", [
    ((2, 5, 9, 11), (7, 5, 3, 3), 1, 1, 1), ((3, 4, 13, 7), (6, 4, 3, 2), 2, (2, 0), 1), ((2, 3, 20), (4, 3, 5), 1, 2, 2),
    ((2, 3, 6, 7, 5), (4, 3, 3, 2, 3), (1, 2, 1), 1, 1), ((2, 40, 12, 12), (33, 40, 1, 1), 1, 0, 1),
    ((2, 3, 16, 16), (8, 3, 7, 7), 2, 3, 1), ((1, 2, 10, 9), (3, 2, 3, 3), 1, (3, 4), 2)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_gemm_w_weight_gradients_equal_torch(case: tuple, dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch,
                                             no_small_w: None):
    # the weight gradient read straight from x in the packing (1-3 dims, strides, dilation, padding
    # larger than the kernel reach, a strided x) against torch's, and it is gemm_w that computes it
    from anyconv.algorithms import gemm_w

    xs, ws, stride, padding, dilation = case
    conv = {3: F.conv1d, 4: F.conv2d, 5: F.conv3d}[len(xs)]
    g = torch.Generator().manual_seed(len(xs))
    x = torch.randn(xs, generator=g, dtype=dtype).transpose(0, 1).contiguous().transpose(0, 1)  # odd strides
    w = torch.randn(ws, generator=g, dtype=dtype)
    gy = torch.randn_like(conv(x, w, None, stride, padding, dilation))
    used = []
    real = gemm_w.serve
    monkeypatch.setattr(gemm_w, "serve", lambda *a, **k: used.append(1) or real(*a, **k))
    wa = w.clone().requires_grad_(True)
    dw, = torch.autograd.grad(AF.conv(x, wa, None, stride, padding, dilation), wa, gy)
    wd = w.double().requires_grad_(True)
    ref, = torch.autograd.grad(conv(x.double(), wd, None, stride, padding, dilation), wd, gy.double())
    assert used, "gemm_w did not serve the weight gradient"
    assert dw.shape == w.shape and dw.is_contiguous()
    assert ((dw.double() - ref).abs().max() / ref.abs().max()).item() < (1e-13 if dtype == torch.float64 else 2e-6)


def test_gemm_w_is_bit_identical_at_every_thread_count(monkeypatch: pytest.MonkeyPatch, no_small_w: None):
    monkeypatch.setattr(_native_abi, "MIN_MACS_PER_THREAD", 1)
    results = weight_grads(torch.randn(3, 16, 14, 14), torch.randn(24, 16, 3, 3), torch.randn(3, 24, 14, 14), padding=1)
    assert all(torch.equal(r, results[0]) for r in results[1:])


def test_gemm_w_leaves_non_finite_operands_to_the_registry(monkeypatch: pytest.MonkeyPatch, no_small_w: None):
    # a padding zero times an Inf of the output gradient would be a NaN: such calls take the registry
    from anyconv.algorithms import gemm_w

    used: list[int] = []
    real = gemm_w.serve
    monkeypatch.setattr(gemm_w, "serve", lambda *a, **k: used.append(1) or real(*a, **k))
    x, w = torch.randn(2, 8, 10, 10), torch.randn(12, 8, 3, 3)
    gy = torch.randn(2, 12, 10, 10)
    wa = w.clone().requires_grad_(True)
    torch.autograd.grad(AF.conv2d(x, wa, padding=1), wa, gy)
    assert used
    used.clear()
    gy[0, 3, 0, 0] = float("inf")
    wa = w.clone().requires_grad_(True)
    torch.autograd.grad(AF.conv2d(x, wa, padding=1), wa, gy)
    assert not used


def test_gemm_w_replaces_only_im2col(monkeypatch: pytest.MonkeyPatch):
    # a weight gradient auto gives to native stays with native (few channels: its direct sums win)
    from anyconv.algorithms import gemm_w
    from anyconv.core.spec import CorrSpec

    spec = CorrSpec((1, 1), (1, 1), ((1, 1), (1, 1)), 1)
    x, w = torch.randn(8, 128, 28, 28), torch.randn(128, 128, 3, 3)
    monkeypatch.setattr("anyconv.algorithms.auto.choose", lambda *a, **k: type("C", (), {"name": "native"})())
    assert "not im2col" in str(gemm_w.supports(x, w, spec))
    monkeypatch.setattr("anyconv.algorithms.auto.choose", lambda *a, **k: type("C", (), {"name": "im2col"})())
    assert gemm_w.supports(x, w, spec) is None


def test_a_slow_native_build_is_costed_as_slow(monkeypatch: pytest.MonkeyPatch):
    # a native kernel that runs 10x slower than the profile predicts (an AVX2 build of the AVX-512-tuned
    # kernel) gets its predicted times scaled; one that runs as predicted is left alone
    from anyconv.algorithms import _native_rate, auto, native, profile

    monkeypatch.delenv("ANYCONV_PROFILE", raising=False)
    prof = profile.shipped()
    from anyconv.core.spec import CorrSpec

    spec = CorrSpec((1, 1), (1, 1), ((1, 1), (1, 1)), 1)
    x, w = torch.empty(_native_rate.PROBE[0]), torch.empty(_native_rate.PROBE[1])
    predicted_ms = sum(prof.coefficients["native"].get(k, 0.0) * v for k, v in native.cost_features(x, w, spec).items())
    real = native.forward
    # the real kernel first: as the profile predicts (or a little slower: no scaling below 2x) where it
    # has AVX-512's vectors; a build without them (an AVX2 machine) is itself the slow case
    _native_rate._SLOW.clear()
    base = _native_rate.slowdown(prof)
    if _native_abi.lanes_built():
        assert base == 1.0
    else:
        assert base >= 2.0
    # then a kernel made to take `factor` times the predicted time, well above the real one's
    factor = 10.0 * base
    expected = 2.0 ** (min(8, round(2 * math.log2(factor))) / 2)

    def slowed(*a: object) -> torch.Tensor:
        t0 = time.perf_counter()
        y = real(*a)  # type: ignore[arg-type]
        while (time.perf_counter() - t0) * 1e3 < factor * predicted_ms:
            pass
        return y

    monkeypatch.setattr(native, "forward", slowed)
    _native_rate._SLOW.clear()
    got = _native_rate.slowdown(prof)
    assert got == pytest.approx(expected)
    # auto's estimate is the profile's (the default profile: no scaling) times that factor
    scaled = auto.estimate_ms("native", x, w, spec, prof)
    monkeypatch.setenv("ANYCONV_PROFILE", "default")
    assert scaled == pytest.approx(auto.estimate_ms("native", x, w, spec, prof) * expected)
    assert scaled > 2 * auto.estimate_ms("native", x, w, spec, prof)
    _native_rate._SLOW.clear()
    assert _native_rate.slowdown(prof) == 1.0


def test_depthwise_calls_have_their_own_slowdown(monkeypatch: pytest.MonkeyPatch):
    # a kernel slowed 10x on depthwise calls only: their factor grows, the dense calls' does not, and
    # auto scales each call's estimate by its own
    from anyconv.algorithms import _native_rate, auto, native, profile
    from anyconv.core.spec import CorrSpec

    monkeypatch.delenv("ANYCONV_PROFILE", raising=False)
    prof = profile.shipped()
    _native_rate._SLOW.clear()
    dense0, dw0 = _native_rate.slowdown(prof), _native_rate.slowdown(prof, True)
    real = native.forward

    def slowed(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor:
        t0 = time.perf_counter()
        y = real(x, w, spec)
        if _native_rate.depthwise(w, spec):
            spent = time.perf_counter() - t0
            while time.perf_counter() - t0 < 10 * spent:
                pass
        return y

    monkeypatch.setattr(native, "forward", slowed)
    _native_rate._SLOW.clear()
    dense, dw = _native_rate.slowdown(prof), _native_rate.slowdown(prof, True)
    assert dense == dense0
    assert dw >= min(16.0, 4 * dw0)  # about 10x (2^3.5 after rounding), or the cap
    x, w = torch.empty(2, 64, 24, 24), torch.empty(64, 1, 3, 3)
    spec = CorrSpec((1, 1), (1, 1), ((1, 1), (1, 1)), 64)
    scaled = auto.estimate_ms("native", x, w, spec, prof)
    monkeypatch.setenv("ANYCONV_PROFILE", "default")
    assert scaled == pytest.approx(auto.estimate_ms("native", x, w, spec, prof) * dw)
    _native_rate._SLOW.clear()


def test_the_size_rule_counts_a_batch_of_products(monkeypatch: pytest.MonkeyPatch):
    # a batch of narrow products (Winograd's 36 per-coordinate products) counts its whole work; each
    # product must still be MIN_PRODUCT_MACS and MIN_N columns wide (the kernel's register tile)
    monkeypatch.setattr(_gemm, "MIN_MACS", 1 << 21)
    monkeypatch.setattr(_gemm, "MIN_PRODUCT_MACS", 1 << 18)
    monkeypatch.setattr(_gemm, "MIN_N", 24)
    calls: list[int] = []
    real = _gemm._native
    monkeypatch.setattr(_gemm, "_native", lambda *a, **k: calls.append(1) or real(*a, **k))
    wide = torch.randn(36, 64, 64), torch.randn(36, 64, 256)  # 36 products of 2^20: 2^25.2 in all
    assert torch.allclose(_gemm.matmul(*wide), torch.matmul(*wide), rtol=1e-4, atol=1e-3)
    assert calls
    calls.clear()
    _gemm.matmul(torch.randn(64, 64), torch.randn(64, 256))  # one product of 2^20: torch's
    _gemm.matmul(torch.randn(36, 256, 256), torch.randn(36, 256, 16))  # 16 columns: torch's
    _gemm.matmul(torch.randn(400, 16, 16), torch.randn(400, 16, 64))  # 2^14 each: torch's
    assert not calls


def test_gemm_w_declines_a_weight_gradient_narrower_than_its_tile():
    # U-Net's 1x1 head (16 -> 2 channels at 128x128): two rows of dw, each a sum over 32768 positions
    from anyconv.algorithms import gemm_w
    from anyconv.core.spec import CorrSpec

    spec = CorrSpec((1,), (1,), ((0, 0),), 1)
    assert "narrower" in str(gemm_w.supports(torch.randn(2, 16, 64), torch.randn(2, 16, 1), spec))
    assert "narrower" in str(gemm_w.supports(torch.randn(2, 3, 64), torch.randn(16, 3, 3), spec))  # 9 columns
    assert "narrower" in str(gemm_w.supports(torch.randn(2, 16, 64), torch.randn(12, 16, 3), spec))  # 12 rows
    # LeNet-5's second layer (16 rows, 150 columns, 5x5 windows): wide enough
    spec2 = CorrSpec((1, 1), (1, 1), ((0, 0), (0, 0)), 1)
    assert "narrower" not in str(gemm_w.supports(torch.randn(32, 6, 14, 14), torch.randn(16, 6, 5, 5), spec2))
