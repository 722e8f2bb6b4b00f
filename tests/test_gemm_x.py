"""im2col's implicit product (``native_c/gemm_x.c``: the windows gathered from the padded input in the
GEMM's packing, no column matrix) against torch's convolution.

Every call here is forced onto the kernel (``ANYCONV_GEMM=native``, no size threshold): float64 results
are compared with torch's float64 convolution to 1e-13, float32 to float32 rounding, in 1-3 dims with
strides, dilations and (asymmetric) padding; then bit-determinism across thread counts, NaN/Inf like
torch's, and the calls it leaves to the column path.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import anyconv.functional as AF
from anyconv.algorithms import _gemm, _native_abi, im2col
from anyconv.core.spec import CorrSpec

pytestmark = pytest.mark.skipif(_native_abi.unavailable() is not None, reason="no native library")


@pytest.fixture(autouse=True)
def forced(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    monkeypatch.setenv("ANYCONV_GEMM", "native")
    monkeypatch.setattr(_gemm, "MIN_MACS", 0)
    monkeypatch.setattr(_gemm, "MIN_PRODUCT_MACS", 0)
    monkeypatch.setattr(_gemm, "MIN_N", 0)
    served: list[int] = []
    real = im2col._implicit

    def spy(*a: object) -> torch.Tensor | None:
        y = real(*a)  # type: ignore[arg-type]
        served.append(y is not None)
        return y

    monkeypatch.setattr(im2col, "_implicit", spy)
    return served


CASES = [  # (x shape, w shape, stride, padding, dilation)
    ((2, 5, 9, 11), (7, 5, 3, 3), 1, 1, 1), ((3, 4, 13, 7), (6, 4, 3, 2), 2, (2, 0), 1),
    ((2, 3, 20), (4, 3, 5), 1, 2, 2), ((2, 3, 6, 7, 5), (4, 3, 3, 2, 3), (1, 2, 1), 1, 1),
    ((2, 3, 16, 16), (40, 3, 7, 7), 2, 3, 1), ((1, 2, 10, 9), (3, 2, 3, 3), 1, (3, 4), 2),
    ((3, 37, 6, 5), (29, 37, 3, 3), 1, 0, 1), ((4, 16, 8, 8), (33, 16, 3, 3), 2, 1, 1),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_implicit_forward_equals_torch(case: tuple, dtype: torch.dtype, forced: list[int]):
    xs, ws, stride, padding, dilation = case
    conv = {3: F.conv1d, 4: F.conv2d, 5: F.conv3d}[len(xs)]
    g = torch.Generator().manual_seed(len(xs) + ws[0])
    x = torch.randn(xs, generator=g, dtype=dtype).transpose(0, 1).contiguous().transpose(0, 1)  # odd strides
    w = torch.randn(ws, generator=g, dtype=dtype)
    y = AF.conv(x, w, None, stride, padding, dilation, algorithm="im2col")
    ref = conv(x.double(), w.double(), None, stride, padding, dilation)
    assert forced and all(forced), "the implicit product did not serve the call"
    assert y.shape == ref.shape
    assert ((y.double() - ref).abs().max() / ref.abs().max()).item() < (1e-13 if dtype == torch.float64 else 2e-6)


@pytest.mark.filterwarnings("ignore:Using padding=.same.")
def test_implicit_forward_asymmetric_padding_equals_torch(forced: list[int]):
    # 'same' with an even kernel pads more after than before: the padded copy carries both sides
    x, w = torch.randn(2, 6, 11, 10, dtype=torch.float64), torch.randn(5, 6, 4, 4, dtype=torch.float64)
    y = AF.conv2d(x, w, padding="same", algorithm="im2col")
    ref = F.conv2d(x, w, padding="same")
    assert all(forced) and forced
    assert torch.allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_implicit_forward_is_bit_identical_at_every_thread_count(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(_native_abi, "MIN_MACS_PER_THREAD", 1)
    x, w = torch.randn(3, 16, 14, 14), torch.randn(100, 16, 3, 3)  # enough panels and tiles for either split
    before, results = torch.get_num_threads(), []
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results.append(AF.conv2d(x, w, padding=1, algorithm="im2col"))
            results.append(AF.conv2d(x[:1, :, :4, :4], w, padding=1, algorithm="im2col"))  # few columns: rows split
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(r, results[i % 2]) for i, r in enumerate(results))


def test_implicit_forward_propagates_nan_and_inf_like_torch(forced: list[int]):
    x, w = torch.randn(2, 4, 8, 8), torch.randn(6, 4, 3, 3)
    x[0, 1, 2, 3], x[1, 2, 0, 0], w[3, 0, 1, 1] = float("nan"), float("inf"), float("-inf")
    y = AF.conv2d(x, w, padding=1, algorithm="im2col")
    ref = F.conv2d(x, w, padding=1)
    assert all(forced) and forced
    assert torch.equal(y.isnan(), ref.isnan()) and torch.equal(y.isinf(), ref.isinf())
    fin = ref.isfinite()
    assert torch.allclose(y[fin], ref[fin], rtol=1e-4, atol=1e-4)


def test_implicit_declines_groups_and_other_dtypes():
    spec = CorrSpec((1, 1), (1, 1), ((1, 1), (1, 1)), 2)
    assert im2col._implicit(torch.randn(2, 4, 6, 6), torch.randn(4, 2, 3, 3), spec) is None  # (the real one)
    one = CorrSpec((1, 1), (1, 1), ((1, 1), (1, 1)), 1)
    assert im2col._implicit(torch.randn(2, 4, 6, 6).half(), torch.randn(4, 4, 3, 3).half(), one) is None
    assert im2col._implicit(torch.randn(2, 4, 6, 6), torch.randn(4, 4, 3, 3), one) is not None


@pytest.fixture
def gemm_t_everywhere(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    # gemm_t serves every stride-1 one-group input gradient (whatever auto picks for the stuffed call)
    from anyconv.algorithms import gemm_t, names, small, small_t, variants

    monkeypatch.setattr(gemm_t, "REPLACES", tuple(names()))
    for mod in (small, small_t):  # (small calls: their own route computes the gradient)
        monkeypatch.setattr(mod, "supports", lambda *a, **k: "off in these tests")
    used: list[int] = []
    real = gemm_t.serve
    monkeypatch.setattr(gemm_t, "serve", lambda *a, **k: used.append(1) or real(*a, **k))
    variants._ROUTES.clear()
    yield used
    variants._ROUTES.clear()


T_CASES = [  # (x shape, w shape, padding, dilation): stride 1
    ((2, 5, 9, 11), (7, 5, 3, 3), 1, 1), ((3, 4, 13, 7), (6, 4, 3, 2), (2, 0), 1), ((2, 3, 20), (4, 3, 5), 2, 2),
    ((2, 3, 6, 7, 5), (4, 3, 3, 2, 3), 1, 1), ((1, 2, 10, 9), (3, 2, 3, 3), (3, 4), 2), ((4, 33, 6, 6), (40, 33, 3, 3), 1, 1),
]


@pytest.mark.parametrize("case", T_CASES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_gemm_t_input_gradients_equal_torch(case: tuple, dtype: torch.dtype, gemm_t_everywhere: list[int]):
    # the flipped, channel-swapped weight read from the forward's weight in the packing (1-3 dims,
    # dilation, padding wider than the kernel's reach: a crop) against torch's input gradient
    xs, ws, padding, dilation = case
    conv = {3: F.conv1d, 4: F.conv2d, 5: F.conv3d}[len(xs)]
    g = torch.Generator().manual_seed(len(xs) + ws[0])
    x, w = torch.randn(xs, generator=g, dtype=dtype), torch.randn(ws, generator=g, dtype=dtype)
    gy = torch.randn_like(conv(x, w, None, 1, padding, dilation))
    xa = x.clone().requires_grad_(True)
    dx, = torch.autograd.grad(AF.conv(xa, w, None, 1, padding, dilation), xa, gy)
    xd = x.double().requires_grad_(True)
    ref, = torch.autograd.grad(conv(xd, w.double(), None, 1, padding, dilation), xd, gy.double())
    assert gemm_t_everywhere, "gemm_t did not serve the input gradient"
    assert dx.shape == x.shape and dx.is_contiguous()
    assert ((dx.double() - ref).abs().max() / ref.abs().max()).item() < (1e-13 if dtype == torch.float64 else 2e-6)


def test_gemm_t_is_bit_identical_at_every_thread_count(monkeypatch: pytest.MonkeyPatch, gemm_t_everywhere: list[int]):
    monkeypatch.setattr(_native_abi, "MIN_MACS_PER_THREAD", 1)
    w, results = torch.randn(40, 100, 3, 3), []
    before = torch.get_num_threads()
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            for size in (14, 4):  # many columns (split by columns), few (split by rows)
                x = torch.randn(3, 100, size, size, generator=torch.Generator().manual_seed(size), requires_grad=True)
                gy = torch.randn(3, 40, size, size, generator=torch.Generator().manual_seed(size + 1))
                results.append(torch.autograd.grad(AF.conv2d(x, w, padding=1), x, gy)[0])
    finally:
        torch.set_num_threads(before)
    assert gemm_t_everywhere
    assert all(torch.equal(r, results[i % 2]) for i, r in enumerate(results))


def test_gemm_t_declines_strides_groups_and_1x1_kernels():
    from anyconv.algorithms import gemm_t

    x, w = torch.randn(2, 8, 10, 10), torch.randn(8, 8, 3, 3)
    assert "stride 1" in str(gemm_t.supports(x, w, CorrSpec((2, 2), (1, 1), ((1, 1), (1, 1)), 1)))
    assert "one group" in str(gemm_t.supports(x, torch.randn(8, 4, 3, 3), CorrSpec((1, 1), (1, 1), ((1, 1), (1, 1)), 2)))
    assert "1x1" in str(gemm_t.supports(x, torch.randn(8, 8, 1, 1), CorrSpec((1, 1), (1, 1), ((0, 0), (0, 0)), 1)))


@pytest.mark.parametrize("dims", [2, 3])
def test_implicit_products_read_channels_last_inputs(dims: int, forced: list[int], gemm_t_everywhere: list[int]):
    # a channels_last input (its padded copy keeps that layout) is read row-major: forward and input gradient
    fmt = {2: torch.channels_last, 3: torch.channels_last_3d}[dims]
    conv = {2: F.conv2d, 3: F.conv3d}[dims]
    x = torch.randn(2, 6, *(7,) * dims, dtype=torch.float64).contiguous(memory_format=fmt).requires_grad_(True)
    w = torch.randn(5, 6, *(3,) * dims, dtype=torch.float64)
    y = AF.conv(x, w, padding=1, algorithm="im2col")  # (named: im2col's implicit product)
    xt = x.detach().clone().requires_grad_(True)
    ref = conv(xt, w, padding=1)
    gy = torch.randn_like(ref)
    dx, = torch.autograd.grad(AF.conv(x, w, padding=1), x, gy)  # (auto: gemm_t's input gradient)
    dref, = torch.autograd.grad(ref, xt, gy)
    assert forced and all(forced) and gemm_t_everywhere
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(dx, dref, rtol=1e-12, atol=1e-12)


def test_small_calls_take_the_implicit_products_by_their_sizes(forced: list[int]):
    # the small-call path's own rule: rows (output channels, or input channels for the input gradient)
    # of at least 8; a weight gradient of at least 32 columns and 64 positions per sample; stride 1 for dx
    from anyconv.algorithms import _small_gemm as small

    def flags(xs: tuple, ws: tuple, stride: int) -> tuple[bool, bool, bool]:
        x, w = torch.randn(xs), torch.randn(ws)
        spec = CorrSpec((stride,) * (len(xs) - 2), (1,) * (len(xs) - 2), ((1, 1),) * (len(xs) - 2), 1)
        return small._natively(small.Plan.of(x.shape, w.shape, spec), x, w).native

    assert flags((8, 16, 8, 8), (16, 16, 3, 3), 1) == (True, True, True)
    assert flags((8, 16, 8, 8), (6, 16, 3, 3), 1) == (False, False, True)  # 6 output channels
    assert flags((32, 25, 19), (25, 25, 3), 2) == (True, False, False)  # 10 positions; stride 2
    assert flags((8, 1, 8, 8), (16, 1, 3, 3), 1) == (True, False, False)  # 9 columns; 1 input channel
    x, w = torch.randn(8, 16, 8, 8, dtype=torch.float64, requires_grad=True), torch.randn(16, 16, 3, 3, dtype=torch.float64)
    xt = x.detach().clone().requires_grad_(True)
    gy = torch.randn(8, 16, 8, 8, dtype=torch.float64)
    dx, = torch.autograd.grad(AF.conv2d(x, w, padding=1), x, gy)
    ref, = torch.autograd.grad(F.conv2d(xt, w, padding=1), xt, gy)
    torch.testing.assert_close(dx, ref, rtol=1e-12, atol=1e-12)
