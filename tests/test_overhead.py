"""The per-call-overhead fast paths: spec cache, single-tile run, small im2col backward."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import anyconv
import anyconv.functional as AF
from anyconv.algorithms import _small_gemm as _small
from anyconv.algorithms import native
from anyconv.core import spec_cache as _spec_cache
from anyconv.core.cache import BoundedCache


@pytest.fixture(params=[True, False], ids=["native", "no-native"], autouse=True)
def _native(request):
    """The small path serves the calls ``auto`` gives im2col or native: with and without the C kernel."""
    native.set_enabled(request.param)
    yield
    native.set_enabled(True)

TORCH_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _small_path(call):
    """``(served, result)``: whether ``call()`` ran the small path's forward (inside the
    ``anyconv::corr`` kernel), and what it returned."""
    hits = []
    real = _small.forward
    _small.forward = lambda *a: hits.append(1) or real(*a)
    try:
        y = call()
    finally:
        _small.forward = real
    return bool(hits), y


def test_spec_cache_keeps_errors():
    x, w = torch.randn(1, 2, 6), torch.randn(3, 2, 3)
    AF.conv(x, w, stride=1, padding=(1,))  # cached
    with pytest.raises(TypeError, match="`stride` must be"):
        AF.conv(x, w, stride=True, padding=(1,))  # True == 1, hash(True) == hash(1): must not hit
    with pytest.raises(TypeError, match="`flip` must be a bool"):
        AF.conv(x, w, stride=1, padding=(1,), flip=0)
    with pytest.raises(ValueError, match="`padding` must be"):
        AF.conv(x, w, stride=1, padding=(-1,))
    with pytest.raises(ValueError, match="`padding` must be"):
        AF.conv(x, w, stride=1, padding=(-1,))  # errors are never cached
    with pytest.raises(TypeError, match="dtype"):
        AF.conv(x.double(), w, stride=1, padding=(1,))


def test_spec_cache_hits_equal_specs():
    x, w = torch.randn(2, 4, 7, 5), torch.randn(4, 2, 3, 2)
    _spec_cache.SPEC_CACHE.clear()
    y1 = AF.conv(x, w, stride=(2, 1), padding=[(1, 0), 1], groups=2)
    assert len(_spec_cache.SPEC_CACHE) == 1
    y2 = AF.conv(x, w, stride=(2, 1), padding=[(1, 0), 1], groups=2)
    assert len(_spec_cache.SPEC_CACHE) == 1
    y3 = AF.conv(x, w, stride=[2, 1], padding=((1, 0), (1, 1)), groups=2)  # same call, other spelling
    torch.testing.assert_close(y1, y2, rtol=0, atol=0)
    torch.testing.assert_close(y1, y3, rtol=0, atol=0)
    ref = F.conv2d(F.pad(x, (1, 1, 1, 0)), w, stride=(2, 1), groups=2)
    torch.testing.assert_close(y1, ref, rtol=1e-5, atol=1e-5)


def test_uncacheable_arguments_still_work():
    x, w = torch.randn(1, 2, 6), torch.randn(3, 2, 3)
    y = AF.conv(x, w, stride=torch.Size([2]), padding=torch.Size([1]))  # not exact tuples: full validation
    torch.testing.assert_close(y, F.conv1d(x, w, stride=2, padding=1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("s,d,p,g", [(1, 1, 0, 1), (2, 1, 1, 1), (3, 2, 2, 2), (2, 3, 1, 4), (1, 2, 3, 2)])
def test_small_matches_torch(n, s, d, p, g):
    torch.manual_seed(n * 100 + s * 10 + d)
    x = torch.randn(3, 4, *[7] * n, dtype=torch.float64, requires_grad=True)
    w = torch.randn(8, 4 // g, *[3] * n, dtype=torch.float64, requires_grad=True)
    kw = dict(stride=s, dilation=d, padding=p, groups=g)
    y = AF.conv(x, w, **kw)
    gy = torch.randn_like(y)
    dx, dw = torch.autograd.grad(y, (x, w), gy)
    dx2, dw2 = torch.autograd.grad(TORCH_CONV[n](x, w, **kw), (x, w), gy)
    torch.testing.assert_close(dx, dx2, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(dw, dw2, rtol=1e-10, atol=1e-10)


def test_small_direct_call_matches_rules():
    """The fast path against the general rules (polyphase/auto), called directly."""
    from anyconv.algorithms._adjoints import corr_t_raw, corr_w_raw
    from anyconv.core.spec import CorrSpec

    torch.manual_seed(0)
    spec = CorrSpec((2, 1), (1, 2), ((1, 2), (0, 1)), 2)
    x, w = torch.randn(2, 4, 6, 7, dtype=torch.float64), torch.randn(6, 2, 3, 2, dtype=torch.float64)
    gy = torch.randn(2, 6, *spec.output_spatial(x.shape[2:], w.shape[2:]), dtype=torch.float64)
    dx, dw, _ = _small.backward(x, w, gy, spec, True, True)
    torch.testing.assert_close(dx, corr_t_raw(gy, w, spec, x.shape[2:], "direct"), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(dw, corr_w_raw(x, gy, spec, w.shape[2:], "direct"), rtol=1e-10, atol=1e-10)


def test_small_not_used_for_double_backward():
    x = torch.randn(2, 3, 8, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda a, b: AF.conv(a, b, stride=2, padding=1), (x, w))


def test_single_tile_equals_tiled():
    torch.manual_seed(1)
    x, w = torch.randn(8, 16, 40, 40), torch.randn(16, 8, 3, 3)  # columns: 1.8 MB > the 1 MiB limit
    for algo in ("im2col", "direct"):
        one = AF.conv(x, w, stride=2, padding=1, groups=2, algorithm=algo)
        with anyconv.workspace_limit(2**20):
            tiled = AF.conv(x, w, stride=2, padding=1, groups=2, algorithm=algo)
        assert one.is_contiguous()
        torch.testing.assert_close(one, tiled, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(one, F.conv2d(x, w, stride=2, padding=1, groups=2), rtol=1e-4, atol=1e-4)


def test_small_path_is_taken_and_matches_torch_with_bias():
    torch.manual_seed(2)
    x = torch.randn(4, 5, 12, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 5, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, dtype=torch.float64, requires_grad=True)
    small, y = _small_path(lambda: AF.conv(x, w, b, stride=2, padding=1))
    assert small  # the fast path served it
    assert y.is_contiguous()
    ref = F.conv1d(x, w, b, stride=2, padding=1)
    torch.testing.assert_close(y, ref, rtol=1e-10, atol=1e-10)
    gy = torch.randn_like(y)
    got = torch.autograd.grad(y, (x, w, b), gy)
    want = torch.autograd.grad(ref, (x, w, b), gy)
    for g1, g2 in zip(got, want):
        torch.testing.assert_close(g1, g2, rtol=1e-10, atol=1e-10)
    with torch.no_grad():
        torch.testing.assert_close(AF.conv(x, w, b, stride=2, padding=1), ref, rtol=1e-10, atol=1e-10)


def test_small_path_double_backward():
    x = torch.randn(2, 3, 9, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)
    assert _small_path(lambda: AF.conv(x, w, b, padding=1))[0]
    assert torch.autograd.gradcheck(lambda a, c, d: AF.conv(a, c, d, padding=1, dilation=2), (x, w, b))
    assert torch.autograd.gradgradcheck(lambda a, c, d: AF.conv(a, c, d, padding=1, dilation=2), (x, w, b))


def test_mnist1d_layers_take_the_small_path():
    import anyconv.models

    m = anyconv.models.create_model("mnist1d_cnn")
    h = torch.randn(8, 1, 40)
    for conv in (m.conv1, m.conv2, m.conv3):
        small, y = _small_path(lambda conv=conv, h=h: conv(h))
        assert small
        torch.testing.assert_close(y, F.conv1d(h, conv.weight, conv.bias, conv.stride, conv.padding),
                                   rtol=1e-4, atol=1e-5)
        h = y.relu()


def test_small_plan_follows_auto_state():
    """The cached small-call plan is keyed on auto's state: when the cost model stops choosing
    im2col (or native) for a call, the call leaves the small path (and is still right)."""
    from anyconv.algorithms import profile

    x = torch.randn(4, 3, 10, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, 3, 3, dtype=torch.float64, requires_grad=True)
    assert _small_path(lambda: AF.conv(x, w, padding=1))[0]
    base = profile.shipped()
    costly = {n: {f: (1e6 * v if n in ("im2col", "native") else v) for f, v in c.items()}
              for n, c in base.coefficients.items()}
    previous = profile.use(profile.Profile(costly, base.fitted_on, "test"))
    try:
        small, y = _small_path(lambda: AF.conv(x, w, padding=1))
    finally:
        profile.use(previous)
    assert not small
    torch.testing.assert_close(y, F.conv1d(x, w, padding=1), rtol=1e-10, atol=1e-10)


def test_small_path_keeps_no_columns_alive():
    """Backward keeps only the forward's inputs (never its columns); an input-only gradient matches torch."""
    x = torch.randn(3, 4, 11, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 2, 3, dtype=torch.float64)
    small, y = _small_path(lambda: AF.conv(x, w, stride=2, padding=[(2, 1)], groups=2))
    assert small
    saved = y.grad_fn.saved_tensors
    assert len(saved) == 2 and saved[0] is x and saved[1].shape == w.shape
    gy = torch.randn_like(y)
    xr = x.detach().requires_grad_(True)
    want = torch.autograd.grad(F.conv1d(F.pad(xr, (2, 1)), w, stride=2, groups=2), xr, gy)[0]
    torch.testing.assert_close(torch.autograd.grad(y, x, gy)[0], want, rtol=1e-10, atol=1e-10)


def test_small_path_index_cache_is_bounded(monkeypatch):
    """The cached gather/scatter indices of all plans together stay under ``INDEX_BUDGET``:
    past it the least recently used are forgotten and rebuilt, with the same results."""
    budget = 4000  # one plan's two indices (2 x 1440 bytes) fit, not two plans'
    monkeypatch.setattr(_small, "_PLANS", BoundedCache(1024))
    monkeypatch.setattr(_small, "_INDICES", BoundedCache(64, max_weight=budget, weight=lambda t: t.numel() * 8))
    for length in (9, 10, 11, 9):
        x = torch.randn(4, 3, length, dtype=torch.float64, requires_grad=True)
        w = torch.randn(5, 3, 3, dtype=torch.float64, requires_grad=True)
        small, y = _small_path(lambda x=x, w=w: AF.conv(x, w, padding=1, stride=2))
        assert small
        gy = torch.randn_like(y)
        got = torch.autograd.grad(y, (x, w), gy)
        ref = F.conv1d(x, w, padding=1, stride=2)
        torch.testing.assert_close(y, ref, rtol=1e-10, atol=1e-10)
        for a, b in zip(got, torch.autograd.grad(ref, (x, w), gy)):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
        cached = sum(t.numel() * 8 for t in _small._INDICES.values())
        assert 0 < cached <= budget and len(_small._INDICES) <= 2
