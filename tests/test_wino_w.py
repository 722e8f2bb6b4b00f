"""``wino_w``: the Winograd weight gradient of 3x3 stride-1 2-D correlations, against torch's.

Numbers first (``wino_w.gradient`` on its own: paddings, crops, sizes that are not whole tiles, strided
inputs, many chunks of tiles), then the route: it serves the weight gradient exactly where ``auto``
gives the forward to winograd, leaves NaN/Inf to the registry (where torch puts them), and its result
does not depend on the thread count.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import anyconv.functional as AF
from anyconv.algorithms import _native_abi, auto, variants, wino_w, winograd
from anyconv.core.spec import CorrSpec

pytestmark = pytest.mark.skipif(_native_abi.unavailable() is not None, reason="no native library")


def _torch_dw(x: torch.Tensor, gy: torch.Tensor, w_shape: tuple, padding: tuple) -> torch.Tensor:
    """torch's weight gradient in float64 (``padding``: per dim (before, after), zeros; negative crops)."""
    pads = [v for pair in reversed(padding) for v in pair]
    xp = F.pad(x.double(), pads)
    w = torch.zeros(w_shape, dtype=torch.float64, requires_grad=True)
    dw, = torch.autograd.grad(F.conv2d(xp, w), w, gy.double())
    return dw


@pytest.mark.parametrize("m", [2, 4, 6])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape, padding", [
    ((2, 5, 9, 11), ((1, 1), (1, 1))), ((1, 3, 6, 6), ((0, 0), (0, 0))), ((3, 8, 13, 7), ((2, 0), (0, 2))),
    ((1, 2, 9, 70), ((1, 1), (1, 1))), ((2, 4, 10, 12), ((-1, 2), (3, -2)))])
def test_gradient_equals_torch(m: int, dtype: torch.dtype, shape: tuple, padding: tuple):
    g = torch.Generator().manual_seed(m + len(shape))
    x = torch.randn(shape, generator=g, dtype=dtype).transpose(2, 3).contiguous().transpose(2, 3)  # column stride != 1
    spec = CorrSpec((1, 1), (1, 1), padding, 1)
    out = spec.output_spatial(x.shape[2:], (3, 3))
    gy = torch.randn((shape[0], 6, *out), generator=g, dtype=dtype)
    dw = wino_w.gradient(x, gy, spec, m)
    ref = _torch_dw(x, gy, (6, shape[1], 3, 3), padding)
    assert dw.shape == ref.shape and dw.dtype == dtype and dw.is_contiguous()
    tol = 1e-11 if dtype == torch.float64 else 4e-5  # float32: within auto's accuracy bound (256 u)
    assert ((dw.double() - ref).abs().max() / ref.abs().max()).item() < tol


def test_chunks_of_tiles_sum_to_the_whole(monkeypatch: pytest.MonkeyPatch):
    # a tiny chunk budget: many chunks (of samples, tile rows and tile columns) accumulate the products
    from anyconv.algorithms import wino_w as mod

    x, gy = torch.randn(3, 4, 17, 19, dtype=torch.float64), torch.randn(3, 5, 17, 19, dtype=torch.float64)
    spec = CorrSpec((1, 1), (1, 1), ((1, 1), (1, 1)), 1)
    whole = mod.gradient(x, gy, spec)
    chunks: list[int] = []
    real = mod._wn.transform_in
    monkeypatch.setattr(mod._wn, "transform_in", lambda *a, **k: chunks.append(1) or real(*a, **k))
    monkeypatch.setattr(mod, "chunk_limit", lambda fixed, unit, chunk, least: unit)  # one tile per chunk
    chunked = mod.gradient(x, gy, spec)
    assert len(chunks) == 2 * 3 * 5 * 5  # every tile its own chunk (x's transform and gy's)
    ref = _torch_dw(x, gy, (5, 4, 3, 3), ((1, 1), (1, 1)))
    assert torch.allclose(chunked, ref, rtol=0, atol=1e-11 * ref.abs().max().item())
    assert torch.allclose(whole, ref, rtol=0, atol=1e-11 * ref.abs().max().item())


def _layer() -> tuple[torch.Tensor, torch.Tensor, CorrSpec]:
    x, w = torch.randn(4, 64, 32, 32), torch.randn(64, 64, 3, 3) * 0.05  # (a ResNet layer)
    return x, w, CorrSpec((1, 1), (1, 1), ((1, 1), (1, 1)), 1)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records each call wino_w serves (cached routes cleared before and after)."""
    used: list[int] = []
    real = wino_w.serve
    monkeypatch.setattr(wino_w, "serve", lambda *a, **k: used.append(1) or real(*a, **k))
    variants._ROUTES.clear()
    yield used
    variants._ROUTES.clear()


def test_serves_the_weight_gradient_where_auto_picks_winograd(served: list[int]):
    x, w, spec = _layer()
    assert auto.choose(x, w, spec, values=False).name == "winograd"  # the premise (the shipped profile)
    assert wino_w.supports(x, w, spec) is None
    gy = torch.randn(4, 64, 32, 32)
    wa = w.clone().requires_grad_(True)
    dw, = torch.autograd.grad(AF.conv2d(x, wa, padding=1), wa, gy)
    assert served, "wino_w did not serve the weight gradient"
    ref = _torch_dw(x, gy, tuple(w.shape), ((1, 1), (1, 1)))
    assert ((dw.double() - ref).abs().max() / ref.abs().max()).item() < 4e-5
    # a call whose forward auto gives to another algorithm keeps the other weight-gradient routes
    small_x, small_w = torch.randn(4, 512, 4, 4), torch.randn(512, 512, 3, 3)  # (ResNet's last 3x3 layer)
    name = auto.choose(small_x, small_w, spec, values=False).name
    assert name != "winograd" and "not winograd" in str(wino_w.supports(small_x, small_w, spec))
    assert "channels" in str(wino_w.supports(x[:, :32], w[:32, :32], spec))
    from anyconv import workspace_limit

    with workspace_limit(2**20):  # its (36, 64, 64) sums (576 KiB) above half the 512 KiB scratch budget
        assert "scratch budget" in str(wino_w.supports(x, w, spec))
    for bad, why in [(CorrSpec((2, 2), (1, 1), ((1, 1), (1, 1)), 1), "stride"),
                     (CorrSpec((1, 1), (1, 1), ((1, 1), (1, 1)), 2), "one group")]:
        assert why in str(wino_w.supports(x, w[:, :32] if bad.groups == 2 else w, bad))


def test_leaves_non_finite_operands_to_the_registry(served: list[int]):
    x, w, spec = _layer()
    gy = torch.randn(4, 64, 32, 32)
    gy[1, 5, 10, 10] = float("inf")  # (inside: at the border torch's oneDNN skips the padding taps)
    x[0, 3, 7, 7] = float("nan")
    wa = w.clone().requires_grad_(True)
    dw, = torch.autograd.grad(AF.conv2d(x, wa, padding=1), wa, gy)
    assert not served
    wt = w.clone().requires_grad_(True)
    ref, = torch.autograd.grad(F.conv2d(x, wt, padding=1), wt, gy)
    assert torch.equal(torch.isnan(dw), torch.isnan(ref)) and torch.equal(torch.isinf(dw), torch.isinf(ref))


def test_bit_identical_at_every_thread_count(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(_native_abi, "MIN_MACS_PER_THREAD", 1)
    x, gy = torch.randn(3, 16, 20, 20), torch.randn(3, 24, 20, 20)
    spec = CorrSpec((1, 1), (1, 1), ((1, 1), (1, 1)), 1)
    before, results = torch.get_num_threads(), []
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results.append(wino_w.gradient(x, gy, spec))
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(r, results[0]) for r in results[1:])


def test_error_growth_is_the_forward_winograd_s():
    assert wino_w.ERROR_GROWTH == winograd.WINOGRAD_GROWTH[2][winograd.M_DEFAULT[2]]
    assert wino_w.ERROR_GROWTH * auto.unit_roundoff(torch.float32) <= auto.ACCURACY_ULPS * auto.unit_roundoff(torch.float32)
