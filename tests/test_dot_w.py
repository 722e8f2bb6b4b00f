"""``dot_w``, the weight gradient as dot products along output rows (``native_c/dot_w.c``), against torch.

Its limits (channels, row length) are lifted so that it serves every call here: float64 results are
compared with torch's float64 weight gradient to 1e-13, float32 to float32 rounding, in 1-2 dims with
kernel rows of 1-7 taps, dilations and padding, rows with partial vectors and blocks with fewer output
channels than a register block; then bit-determinism across thread counts, NaN/Inf operands sent to
the registry route, and the calls it declines.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import anyconv.functional as AF
from anyconv.algorithms import _native_abi, dot_w, variants
from anyconv.core.spec import CorrSpec
from thread_counts import weight_grads

pytestmark = pytest.mark.skipif(_native_abi.unavailable() is not None or not _native_abi.lanes_built(),
                                reason="no native library built for AVX-512")


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    from anyconv.algorithms import small, small_w, wino_w

    monkeypatch.setattr(dot_w, "MIN_ROW", 1)
    monkeypatch.setattr(dot_w, "MAX_CHANNELS", 1000)
    for mod in (small, small_w, wino_w):  # (variants tried before this one)
        monkeypatch.setattr(mod, "supports", lambda *a, **k: "off in these tests")
    used: list[int] = []
    real = dot_w.serve
    monkeypatch.setattr(dot_w, "serve", lambda *a, **k: used.append(1) or real(*a, **k))
    variants._ROUTES.clear()
    yield used
    variants._ROUTES.clear()


CASES = [  # (x shape, w shape, padding, dilation): stride 1
    ((2, 5, 9, 37), (7, 5, 3, 3), 1, 1), ((3, 4, 13, 20), (6, 4, 3, 2), (2, 0), 1), ((2, 3, 40), (4, 3, 5), 2, 2),
    ((1, 2, 10, 33), (9, 2, 3, 7), (3, 4), (2, 1)), ((2, 6, 5, 16), (30, 6, 2, 4), 0, 1),
    ((2, 3, 7, 18), (5, 3, 1, 6), (0, 2), 1), ((2, 40, 6, 17), (5, 40, 3, 3), 1, 1),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_dot_w_weight_gradients_equal_torch(case: tuple, dtype: torch.dtype, served: list[int]):
    xs, ws, padding, dilation = case
    conv = {3: F.conv1d, 4: F.conv2d}[len(xs)]
    g = torch.Generator().manual_seed(len(xs) + ws[0])
    x = torch.randn(xs, generator=g, dtype=dtype).transpose(0, 1).contiguous().transpose(0, 1)  # odd strides
    w = torch.randn(ws, generator=g, dtype=dtype)
    gy = torch.randn_like(conv(x, w, None, 1, padding, dilation))
    wa = w.clone().requires_grad_(True)
    dw, = torch.autograd.grad(AF.conv(x, wa, None, 1, padding, dilation), wa, gy)
    wd = w.double().requires_grad_(True)
    ref, = torch.autograd.grad(conv(x.double(), wd, None, 1, padding, dilation), wd, gy.double())
    assert served, "dot_w did not serve the weight gradient"
    assert dw.shape == w.shape
    assert ((dw.double() - ref).abs().max() / ref.abs().max()).item() < (1e-13 if dtype == torch.float64 else 2e-6)


def test_dot_w_is_bit_identical_at_every_thread_count(monkeypatch: pytest.MonkeyPatch, served: list[int]):
    monkeypatch.setattr(_native_abi, "MIN_MACS_PER_THREAD", 1)
    results = weight_grads(torch.randn(2, 12, 20, 40), torch.randn(20, 12, 3, 3), torch.randn(2, 20, 20, 40), padding=1)
    assert served and all(torch.equal(r, results[0]) for r in results[1:])


def test_dot_w_leaves_non_finite_operands_to_the_registry(served: list[int]):
    x, w = torch.randn(2, 4, 9, 20), torch.randn(6, 4, 3, 3)
    gy = torch.randn(2, 6, 9, 20)
    x[1, 2, 3, 4], gy[0, 5, 4, 10] = float("inf"), float("nan")  # (inside: no padding tap meets them)
    wa = w.clone().requires_grad_(True)
    dw, = torch.autograd.grad(AF.conv2d(x, wa, padding=1), wa, gy)
    wt = w.clone().requires_grad_(True)
    ref, = torch.autograd.grad(F.conv2d(x, wt, padding=1), wt, gy)
    assert not served, "dot_w computed a call with NaN/Inf operands"
    assert torch.equal(dw.isnan(), ref.isnan()) and torch.equal(dw.isinf(), ref.isinf())


def test_dot_w_declines_what_it_does_not_serve():
    spec = CorrSpec((1, 1), (1, 1), ((1, 1), (1, 1)), 1)
    x = torch.randn(2, 16, 64, 64)
    assert dot_w.supports(x, torch.randn(16, 16, 3, 3), spec) is None
    assert "stride 1" in str(dot_w.supports(x, torch.randn(16, 16, 3, 3), CorrSpec((2, 2), (1, 1), ((1, 1), (1, 1)), 1)))
    assert "1-7 taps" in str(dot_w.supports(x, torch.randn(16, 16, 9, 9), spec))
    assert "1x1" in str(dot_w.supports(x, torch.randn(16, 16, 1, 1), CorrSpec((1, 1), (1, 1), ((0, 0), (0, 0)), 1)))
    assert "half a register block" in str(dot_w.supports(x, torch.randn(2, 16, 3, 3), spec))
    assert "at most" in str(dot_w.supports(torch.randn(2, 128, 64, 64), torch.randn(16, 128, 3, 3), spec))
    assert "rows of at least" in str(dot_w.supports(torch.randn(2, 16, 15, 15), torch.randn(16, 16, 3, 3), spec))
    assert "float32/float64" in str(dot_w.supports(x.half(), torch.randn(16, 16, 3, 3).half(), spec))


def test_dot_w_reads_a_channels_last_input(served: list[int]):
    x = torch.randn(2, 6, 9, 20, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    w, gy = torch.randn(8, 6, 3, 3, dtype=torch.float64), torch.randn(2, 8, 9, 20, dtype=torch.float64)
    wa, wt = w.clone().requires_grad_(True), w.clone().requires_grad_(True)
    dw, = torch.autograd.grad(AF.conv2d(x, wa, padding=1), wa, gy)
    ref, = torch.autograd.grad(F.conv2d(x, wt, padding=1), wt, gy)
    assert served
    torch.testing.assert_close(dw, ref, rtol=1e-12, atol=1e-12)
