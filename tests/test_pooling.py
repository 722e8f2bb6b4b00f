"""Pooling vs torch: generated samples of every parameter combination torch supports.

Values, indices and gradients, batched and unbatched, N = 1, 2, 3, float64 tight and the
other float dtypes loose; NaN/tie/-inf behaviour of max pooling; gradcheck/gradgradcheck;
determinism.
"""

from __future__ import annotations

import itertools
import random

import pytest
import torch
import torch.nn.functional as F

import anyconv.functional as AF

TORCH = {
    ("max", 1): F.max_pool1d, ("max", 2): F.max_pool2d, ("max", 3): F.max_pool3d,
    ("avg", 1): F.avg_pool1d, ("avg", 2): F.avg_pool2d, ("avg", 3): F.avg_pool3d,
    ("lp", 1): F.lp_pool1d, ("lp", 2): F.lp_pool2d, ("lp", 3): F.lp_pool3d,
}
OURS = {
    ("max", 1): AF.max_pool1d, ("max", 2): AF.max_pool2d, ("max", 3): AF.max_pool3d,
    ("avg", 1): AF.avg_pool1d, ("avg", 2): AF.avg_pool2d, ("avg", 3): AF.avg_pool3d,
    ("lp", 1): AF.lp_pool1d, ("lp", 2): AF.lp_pool2d, ("lp", 3): AF.lp_pool3d,
}


def _samples(kind: str, count: int, seed: int) -> list[tuple[int, tuple[int, ...], dict]]:
    """(N, input shape, kwargs) that torch accepts: padding <= half the kernel."""
    rng = random.Random(seed)
    out = []
    for t in range(count):
        n = 1 + t % 3
        k = tuple(rng.randint(1, 3) for _ in range(n))
        d = tuple(rng.randint(1, 2) for _ in range(n)) if kind == "max" else (1,) * n
        eff = [(kk - 1) * dd + 1 for kk, dd in zip(k, d)]
        s = tuple(rng.randint(1, 3) for _ in range(n))
        pad = tuple(rng.randint(0, kk // 2) for kk in k)
        if kind == "lp":
            pad = (0,) * n
        size = tuple(rng.randint(e, e + 5) for e in eff)
        batched = t % 4 != 3
        shape = ((2, 3) if batched else (3,)) + size
        kw: dict = {"kernel_size": k if rng.random() < 0.7 else k[0], "ceil_mode": rng.random() < 0.5}
        if isinstance(kw["kernel_size"], int):
            k = (k[0],) * n
            kw["kernel_size"] = k[0]
            pad = tuple(min(p, k[0] // 2) for p in pad)
            size = tuple(max(v, (k[0] - 1) * dd + 1) for v, dd in zip(size, d))
            shape = shape[: len(shape) - n] + size
        if rng.random() < 0.8:
            kw["stride"] = s
        if kind != "lp":
            kw["padding"] = pad
        if kind == "max":
            kw["dilation"] = d
            kw["return_indices"] = rng.random() < 0.5
        if kind == "avg":
            kw["count_include_pad"] = rng.random() < 0.5
            if n > 1 and rng.random() < 0.3:
                kw["divisor_override"] = rng.randint(1, 5)
        if kind == "lp":
            kw["norm_type"] = rng.choice([1, 2, 3.5, float("inf"), float("-inf")])
        out.append((n, shape, kw))
    return out


def _call(table: dict, kind: str, n: int, x: torch.Tensor, kw: dict):
    kw = dict(kw)
    if kind == "lp":
        if n == 1 and table is TORCH and isinstance(kw["kernel_size"], tuple):
            kw["kernel_size"] = kw["kernel_size"][0]  # torch's lp_pool1d takes an int only
        return table[kind, n](x, kw.pop("norm_type"), **kw)
    return table[kind, n](x, **kw)


CASES = [(kind, *s) for kind in ("max", "avg", "lp") for s in _samples(kind, 36, {"max": 1, "avg": 2, "lp": 3}[kind])]


@pytest.mark.parametrize("kind,n,shape,kw", CASES, ids=[f"{c[0]}{c[1]}d-{i}" for i, c in enumerate(CASES)])
def test_matches_torch_float64_values_indices_grads(kind, n, shape, kw):
    torch.manual_seed(len(CASES) + hash(str(kw)) % 1000)
    x = torch.randn(shape, dtype=torch.float64)
    if kind == "lp":
        x = x.abs() + 0.1  # torch's lp of negative sums is NaN; compared separately below
    xa, xt = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yt = _call(OURS, kind, n, xa, kw), _call(TORCH, kind, n, xt, kw)
    if kw.get("return_indices"):
        (ya, ia), (yt, it) = ya, yt
        assert ia.dtype == torch.int64 and torch.equal(ia, it)
    assert ya.shape == yt.shape and ya.dtype == yt.dtype
    torch.testing.assert_close(ya, yt, atol=1e-10, rtol=1e-10)
    g = torch.randn_like(yt)
    (ga,) = torch.autograd.grad(ya, xa, g)
    (gt,) = torch.autograd.grad(yt, xt, g)
    torch.testing.assert_close(ga, gt, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("output_size", ["one", "down", "up", "none"])
@pytest.mark.parametrize("batched", [True, False])
def test_adaptive_matches_torch(n, output_size, batched):
    torch.manual_seed(n)
    spatial = (7, 5, 6)[:n]
    osz = {"one": (1,) * n, "down": (3, 2, 4)[:n], "up": (9, 6, 8)[:n], "none": (None, 3, None)[:n]}[output_size]
    arg = osz if n > 1 or output_size == "none" else osz[0]
    x = torch.randn(((2, 3) if batched else (3,)) + spatial, dtype=torch.float64)
    avg = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}[n]
    mx = {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d}[n]
    ours_avg = {1: AF.adaptive_avg_pool1d, 2: AF.adaptive_avg_pool2d, 3: AF.adaptive_avg_pool3d}[n]
    ours_max = {1: AF.adaptive_max_pool1d, 2: AF.adaptive_max_pool2d, 3: AF.adaptive_max_pool3d}[n]
    if n == 1 and output_size == "none":
        arg = 7  # torch's 1-d op takes an int only

    def generic(t, a):  # the N-d op with N set by a sequence
        return AF.adaptive_avg_pool(t, a if isinstance(a, tuple) else (a,))

    for ours, ref in ((ours_avg, avg), (generic, avg)):
        xa, xt = x.clone().requires_grad_(), x.clone().requires_grad_()
        ya, yt = ours(xa, arg), ref(xt, arg)
        torch.testing.assert_close(ya, yt, atol=1e-10, rtol=1e-10)
        g = torch.randn_like(yt)
        torch.testing.assert_close(torch.autograd.grad(ya, xa, g)[0], torch.autograd.grad(yt, xt, g)[0],
                                   atol=1e-10, rtol=1e-10)
    xa, xt = x.clone().requires_grad_(), x.clone().requires_grad_()
    (ya, ia), (yt, it) = ours_max(xa, arg, True), mx(xt, arg, True)
    assert torch.equal(ya, yt) and torch.equal(ia, it)
    g = torch.randn_like(yt)
    assert torch.equal(torch.autograd.grad(ya, xa, g)[0], torch.autograd.grad(yt, xt, g)[0])


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("special", ["ties", "nan", "neginf"])
def test_max_ties_nan_and_neg_inf_pick_torch_element(n, special):
    g = torch.Generator().manual_seed(7 + n)
    shape = (2, 2) + (9, 8, 7)[:n]
    x = torch.randint(0, 3, shape, generator=g).double()  # many ties
    if special == "nan":
        x[torch.rand(shape, generator=g) < 0.15] = float("nan")
    if special == "neginf":
        x[torch.rand(shape, generator=g) < 0.7] = float("-inf")
    for k, s, p, d, cm in [(3, 2, 1, 1, False), (2, 1, 1, 1, True), (3, 1, 1, 2, False), (2, 3, 1, 1, True)]:
        ours = getattr(AF, f"max_pool{n}d")(x, k, s, p, d, cm, True)
        ref = getattr(F, f"max_pool{n}d")(x, k, s, p, d, cm, True)
        torch.testing.assert_close(ours[0], ref[0], equal_nan=True, atol=0, rtol=0)
        assert torch.equal(ours[1], ref[1]), (k, s, p, d, cm)
    for osz in (3, 4):
        ours = getattr(AF, f"adaptive_max_pool{n}d")(x, osz, True)
        ref = getattr(F, f"adaptive_max_pool{n}d")(x, osz, True)
        torch.testing.assert_close(ours[0], ref[0], equal_nan=True, atol=0, rtol=0)
        assert torch.equal(ours[1], ref[1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("op", ["max", "avg", "lp", "adaptive_avg", "adaptive_max"])
def test_low_precision_dtypes(dtype, op):
    torch.manual_seed(3)
    x64 = torch.rand(2, 3, 9, 8, dtype=torch.float64) + 0.5
    x = x64.to(dtype).requires_grad_()
    ref_in = x.detach().double().requires_grad_()
    call = {
        "max": lambda m, t: m.max_pool2d(t, 3, 2, 1),
        "avg": lambda m, t: m.avg_pool2d(t, 3, 2, 1, ceil_mode=True, count_include_pad=False),
        "lp": lambda m, t: m.lp_pool2d(t, 2, 2, 2),
        "adaptive_avg": lambda m, t: m.adaptive_avg_pool2d(t, (4, 3)),
        "adaptive_max": lambda m, t: m.adaptive_max_pool2d(t, (4, 3)),
    }[op]
    y, yr = call(AF, x), call(F, ref_in)  # reference: torch in float64 on the same values
    assert y.dtype == dtype and y.shape == yr.shape
    tol = {torch.float32: 1e-5, torch.bfloat16: 2e-2, torch.float16: 2e-3}[dtype]
    torch.testing.assert_close(y.double(), yr, atol=tol, rtol=tol)
    g = torch.rand_like(yr)
    (gx,) = torch.autograd.grad(y, x, g.to(dtype))
    (gr,) = torch.autograd.grad(yr, ref_in, g)
    assert gx.dtype == dtype
    torch.testing.assert_close(gx.double(), gr, atol=4 * tol, rtol=4 * tol)


GRAD_CASES = [
    ("max_pool", dict(kernel_size=(2, 3), stride=(2, 1), padding=((1, 0), (2, 1)), dilation=(1, 2), ceil_mode=True)),
    ("max_pool", dict(kernel_size=(3,), stride=2, padding="same")),
    ("avg_pool", dict(kernel_size=(3, 2), stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    ("avg_pool", dict(kernel_size=(2, 2, 2), stride=1, padding="causal", dilation=(1, 2, 1))),
    ("lp_pool", dict(norm_type=2.5, kernel_size=(2, 3), stride=(1, 2), padding=((0, 1), (1, 1)), ceil_mode=True)),
    ("adaptive_avg_pool", dict(output_size=(3, 4))),
    ("adaptive_max_pool", dict(output_size=(3, 2, 4))),
]


@pytest.mark.parametrize("name,kw", GRAD_CASES, ids=[c[0] + str(i) for i, c in enumerate(GRAD_CASES)])
def test_gradcheck_and_gradgradcheck(name, kw):
    n = len(kw.get("kernel_size", kw.get("output_size")))
    torch.manual_seed(11)
    x = torch.rand((2, 2) + (6, 5, 4)[:n], dtype=torch.float64) + 0.2
    x.requires_grad_()
    kw = dict(kw)

    def fn(t: torch.Tensor) -> torch.Tensor:
        if name == "lp_pool":
            k2 = dict(kw)
            return AF.lp_pool(t, k2.pop("norm_type"), **k2)
        return getattr(AF, name)(t, **kw)

    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


def test_deterministic_bitwise():
    torch.manual_seed(5)
    x = torch.randn(2, 3, 11, 10, requires_grad=True)
    g = torch.randn(2, 3, 6, 5)
    ops = [lambda t: AF.max_pool2d(t, 3, 2, 1), lambda t: AF.avg_pool2d(t, 3, 2, 1),
           lambda t: AF.adaptive_max_pool2d(t, (6, 5)), lambda t: AF.adaptive_avg_pool2d(t, (6, 5))]
    for op in ops:
        runs = [(op(x), torch.autograd.grad(op(x), x, g)[0]) for _ in range(3)]
        for y, gx in runs[1:]:
            assert torch.equal(y, runs[0][0]) and torch.equal(gx, runs[0][1])


def test_generic_n_from_kernel_or_input_and_aliases_agree():
    x = torch.randn(2, 3, 6, 7)
    for a, b in itertools.combinations([AF.max_pool(x, 2), AF.max_pool(x, (2, 2)), AF.max_pool2d(x, 2)], 2):
        assert torch.equal(a, b)
    # a sequence sets N: (3, 6, 7) treated as unbatched 2-d input
    assert AF.avg_pool(x[0], (2, 2)).shape == (3, 3, 3)


@pytest.mark.parametrize("mode", ["chunks", "running"])
def test_every_kernel_path_matches_torch(mode, monkeypatch):
    """The fast path in several chunks (a short last one), and the running kernel for large planes."""
    from anyconv.ops import _pool_buffered

    if mode == "running":
        monkeypatch.setattr(_pool_buffered, "MAX_PLANE_BYTES", 0)
    else:  # chunks of 4 planes: the 6 planes of a batched sample need a full and a short chunk
        monkeypatch.setattr(_pool_buffered, "_chunk_planes", lambda spec, k, size: 4)
    for kind, n, shape, kw in CASES[::3]:
        torch.manual_seed(1)
        x = torch.rand(shape, dtype=torch.float64).requires_grad_()
        xt = x.detach().clone().requires_grad_()
        ya, yt = _call(OURS, kind, n, x, kw), _call(TORCH, kind, n, xt, kw)
        if kw.get("return_indices"):
            assert torch.equal(ya[1], yt[1])
            ya, yt = ya[0], yt[0]
        torch.testing.assert_close(ya, yt, atol=1e-10, rtol=1e-10)
        g = torch.rand_like(yt)
        torch.testing.assert_close(torch.autograd.grad(ya, x, g)[0], torch.autograd.grad(yt, xt, g)[0],
                                   atol=1e-10, rtol=1e-10)


def test_values_only_path_propagates_nan_like_torch():
    x = torch.randn(2, 3, 8, 9)
    x[0, 1, 2, 3] = float("nan")
    x[1, 2, 7, 8] = float("-inf")
    with torch.no_grad():
        for k, s, p in [(3, 2, 1), (2, 1, 0), (3, 3, 1)]:
            torch.testing.assert_close(AF.max_pool2d(x, k, s, p), F.max_pool2d(x, k, s, p), equal_nan=True)


@pytest.mark.parametrize("path", ["kron", "per_dim"])
def test_adaptive_avg_both_matrix_paths_match_torch(path, monkeypatch):
    from anyconv.ops import _adaptive_kernels

    if path == "per_dim":
        monkeypatch.setattr(_adaptive_kernels, "KRON_MAX_OUT", 0)
    torch.manual_seed(2)
    for shape, osz, ref in [((2, 3, 15, 15), (4, 4), F.adaptive_avg_pool2d), ((3, 7, 9, 10), (3, 4, 6), F.adaptive_avg_pool3d),
                            ((2, 3, 13), 5, F.adaptive_avg_pool1d), ((2, 3, 8, 9), (4, 5), F.adaptive_avg_pool2d)]:
        x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
        xt = x.detach().clone().requires_grad_()
        n = len(osz) if isinstance(osz, tuple) else 1
        y = getattr(AF, f"adaptive_avg_pool{n}d")(x, osz)
        yt = ref(xt, osz)
        torch.testing.assert_close(y, yt, atol=1e-12, rtol=1e-12)
        g = torch.randn_like(yt)
        torch.testing.assert_close(torch.autograd.grad(y, x, g)[0], torch.autograd.grad(yt, xt, g)[0],
                                   atol=1e-12, rtol=1e-12)
