"""max_unpool and fractional_max_pool: differential against torch (N = 1..3), a plain-loop
reference (any N), the SegNet round trip, gradients, modules, convert and the error table."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

import anyconv
import anyconv.functional as AF
import anyconv.nn as ann

DTYPES = [torch.float32, torch.float64]


# ---------------------------------------------------------------- plain-loop references (any N)


def unpool_reference(x: torch.Tensor, idx: torch.Tensor, out_spatial: tuple[int, ...]) -> torch.Tensor:
    """Every input written, in memory order, at its flat index (the last write wins)."""
    b, c = x.shape[:2]
    size = 1
    for o in out_spatial:
        size *= o
    out = torch.zeros(b, c, size, dtype=x.dtype)
    xs, ids = x.reshape(b, c, -1), idx.reshape(b, c, -1)
    for bi, ci in itertools.product(range(b), range(c)):
        for p in range(xs.shape[2]):
            out[bi, ci, int(ids[bi, ci, p])] = xs[bi, ci, p]
    return out.reshape(b, c, *out_spatial)


def fractional_reference(x: torch.Tensor, kernel: tuple[int, ...], out: tuple[int, ...],
                         samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Graham's intervals in Python floats (float64 input only), max by scanning every box."""
    assert x.dtype == torch.float64
    b, c, *ins = x.shape
    nd = len(ins)
    vals = torch.empty(b, c, *out, dtype=x.dtype)
    idxs = torch.empty(b, c, *out, dtype=torch.int64)
    for bi, ci in itertools.product(range(b), range(c)):
        starts = []
        for d in range(nd):
            u = float(samples[bi, ci, nd - 1 - d if nd == 2 else d])
            i, k, o = ins[d], kernel[d], out[d]
            alpha = (i - k) / (o - 1) if o > 1 else 0.0
            starts.append([int((j + u) * alpha) - int(u * alpha) for j in range(o - 1)] + [i - k])
        plane = x[bi, ci]
        for j in itertools.product(*(range(o) for o in out)):
            best, best_at = float("-inf"), None
            for q in itertools.product(*(range(k) for k in kernel)):
                pos = tuple(starts[d][j[d]] + q[d] for d in range(nd))
                v = float(plane[pos])
                if best_at is None:
                    best_at = pos
                if v > best or v != v:
                    best, best_at = v, pos
            assert best_at is not None
            flat = 0
            for d in range(nd):
                flat = flat * ins[d] + best_at[d]
            vals[(bi, ci, *j)] = best
            idxs[(bi, ci, *j)] = flat
    return vals, idxs


# ---------------------------------------------------------------- max_unpool against torch

UNPOOL_SAMPLES = [  # n, batched input shape before pooling, kernel, stride, padding, output_size form
    (1, (2, 3, 9), 2, None, 0, None),
    (1, (2, 3, 10), 3, 2, 1, "spatial"),
    (1, (2, 3, 11), [3], [2], [1], "full"),
    (2, (2, 3, 8, 6), 2, None, 0, None),
    (2, (2, 2, 9, 8), (3, 2), (2, 1), (1, 0), "spatial"),
    (2, (1, 3, 7, 9), 3, 2, 1, "full"),
    (2, (2, 2, 6, 6), 2, (), 0, "size"),
    (3, (2, 2, 5, 6, 4), 2, None, 0, None),
    (3, (1, 2, 7, 5, 6), (3, 2, 3), (2, 2, 1), (1, 0, 1), "spatial"),
]


def _full(v, n):
    """The N-d form of a torch-alias argument (the generic op takes N from the kernel)."""
    if isinstance(v, int):
        return (v,) * n
    return tuple(v) * n if isinstance(v, list) and len(v) == 1 else v


def _output_size(form, shape):
    if form == "spatial":
        return list(shape[2:])
    if form == "full":
        return tuple(shape)
    if form == "size":
        return torch.Size(shape)
    return None


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,shape,k,s,p,form", UNPOOL_SAMPLES)
def test_max_unpool_matches_torch(n, shape, k, s, p, form, dtype, batched):
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=dtype)
    pool = getattr(F, f"max_pool{n}d")
    s_torch = None if s == () else s
    y, idx = pool(x, k, s_torch, p, return_indices=True)
    out_size = _output_size(form, shape)
    if not batched:
        y, idx = y[0], idx[0]  # output_size keeps torch's (B, C, *spatial) form
    ref_fn = getattr(F, f"max_unpool{n}d")
    y_ref = y.clone().requires_grad_()
    ref = ref_fn(y_ref, idx, k, s_torch, p, out_size)
    g = torch.randn_like(ref)
    (gr,) = torch.autograd.grad(ref, y_ref, g)
    for fn, args in ((getattr(AF, f"max_unpool{n}d"), (k, s, p)), (AF.max_unpool, (_full(k, n), _full(s, n), _full(p, n)))):
        y_ours = y.clone().requires_grad_()
        ours = fn(y_ours, idx, *args, out_size)
        assert ours.dtype == ref.dtype and torch.equal(ours, ref)
        (go,) = torch.autograd.grad(ours, y_ours, g)
        assert torch.equal(go, gr)


def test_max_unpool_repeated_indices_last_write_wins_like_torch():
    torch.manual_seed(1)
    x = torch.randn(2, 3, 6, 5)
    idx = torch.randint(0, 12, (2, 3, 6, 5))  # many repeats, distinct values
    ref = F.max_unpool2d(x, idx, 2, output_size=(12, 10))
    ours = AF.max_unpool2d(x, idx, 2, output_size=(12, 10))
    assert torch.equal(ours, ref)
    assert torch.equal(ours, unpool_reference(x, idx, (12, 10)))


@pytest.mark.parametrize("n", [1, 4])
def test_max_unpool_against_loop_reference(n):
    torch.manual_seed(2)
    shape = (2, 2, 9) if n == 1 else (1, 2, 5, 5, 3, 5)
    x = torch.randn(shape, dtype=torch.float64)
    y, idx = AF.max_pool(x, (3,) * n, 2, 1, return_indices=True)
    expect_sizes = tuple((i - 1) * 2 + 3 - 2 for i in y.shape[2:])
    ours = AF.max_unpool(y, idx, (3,) * n, 2, 1)
    assert ours.shape[2:] == expect_sizes
    assert torch.equal(ours, unpool_reference(y, idx, expect_sizes))
    # unbatched and an explicit output size (the pooled input's own size)
    ours = AF.max_unpool(y[0], idx[0], (3,) * n, 2, 1, output_size=shape[2:])
    assert torch.equal(ours, unpool_reference(y[:1], idx[:1], shape[2:])[0])


@pytest.mark.parametrize("n,shape,k,s", [(2, (2, 3, 8, 6), 2, 2), (2, (1, 2, 9, 7), 3, 2), (4, (1, 2, 4, 6, 4, 2), 2, 2)])
def test_segnet_round_trip(n, shape, k, s):
    """anyconv max_pool(return_indices) -> max_unpool puts each maximum back in place."""
    torch.manual_seed(3)
    x = torch.rand(shape) + 0.1  # positive: unpooled zeros never beat a kept maximum
    y, idx = AF.max_pool(x, k, s, return_indices=True)
    up = AF.max_unpool(y, idx, k, s, output_size=shape[2:])
    assert up.shape == x.shape
    flat_x, flat_up = x.reshape(*shape[:2], -1), up.reshape(*shape[:2], -1)
    kept = flat_up.gather(2, idx.reshape(*shape[:2], -1))
    assert torch.equal(kept, flat_x.gather(2, idx.reshape(*shape[:2], -1)))
    mask = torch.zeros_like(flat_x, dtype=torch.bool).scatter_(2, idx.reshape(*shape[:2], -1), True)
    assert torch.equal(flat_up[~mask], torch.zeros_like(flat_up[~mask]))
    assert torch.equal(AF.max_pool(up, k, s), y)  # pooling the unpooled gives the pooled back
    if n <= 3:
        torch_idx = getattr(F, f"max_pool{n}d")(x, k, s, return_indices=True)[1]
        assert torch.equal(idx, torch_idx)
        assert torch.equal(up, getattr(F, f"max_unpool{n}d")(y, idx, k, s, output_size=shape[2:]))


@pytest.mark.parametrize("n", [2, 4])
def test_max_unpool_gradcheck(n):
    torch.manual_seed(4)
    shape = (1, 2, 4, 6) if n == 2 else (1, 1, 4, 2, 2, 4)
    x = torch.randn(shape, dtype=torch.float64)
    y, idx = AF.max_pool(x, 2, return_indices=True)
    y = y.detach().requires_grad_()
    fn = lambda t: AF.max_unpool(t, idx, 2)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (y,))
    assert torch.autograd.gradgradcheck(fn, (y,))


# ---------------------------------------------------------------- fractional_max_pool against torch

FRACTIONAL_SAMPLES = [  # n, batched shape, kernel, output_size, output_ratio
    (2, (2, 3, 11, 9), 2, 5, None),
    (2, (2, 2, 13, 10), (3, 2), (4, 7), None),
    (2, (1, 3, 10, 12), [2, 3], [5, 4], None),
    (2, (2, 2, 12, 9), 3, None, 0.5),
    (2, (2, 2, 12, 9), 2, None, (0.7, 0.4)),
    (2, (1, 2, 6, 7), 2, 1, None),
    (3, (2, 2, 7, 8, 6), 2, 3, None),
    (3, (1, 2, 9, 6, 8), (3, 2, 2), None, (0.5, 0.6, 0.75)),
    (3, (2, 1, 5, 7, 6), 2, (3, 1, 4), None),
]


def _ratio_for_torch(r, n):
    return None if r is None else ([r] * n if isinstance(r, float) else r)  # torch's functional needs a sequence


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,shape,k,out,ratio", FRACTIONAL_SAMPLES)
def test_fractional_max_pool_matches_torch(n, shape, k, out, ratio, dtype, batched):
    torch.manual_seed(5)
    x = torch.randn(shape, dtype=dtype)
    u = torch.rand(shape[0], shape[1], n, dtype=dtype)
    if not batched:
        x, u = x[0], u[:1]
    x_ref, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    ref_v, ref_i = getattr(F, f"fractional_max_pool{n}d")(x_ref, k, out, _ratio_for_torch(ratio, n), True, u)
    g = torch.randn_like(ref_v)
    (gr,) = torch.autograd.grad(ref_v, x_ref, g)
    for fn, kk, oo in ((getattr(AF, f"fractional_max_pool{n}d"), k, out), (AF.fractional_max_pool, _full(k, n), out)):
        v, i = fn(x_ours, kk, oo, ratio, True, u)
        assert v.dtype == ref_v.dtype and torch.equal(v, ref_v) and torch.equal(i, ref_i)
        (go,) = torch.autograd.grad(v, x_ours, g)
        assert torch.equal(go, gr)
        assert torch.equal(fn(x, kk, oo, ratio, _random_samples=u), ref_v)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_fractional_intervals_bit_exact_in_low_precision(dtype):
    """torch computes the interval starts in the input's dtype: so must anyconv (many samples)."""
    torch.manual_seed(6)
    x = torch.randn(3, 40, 45, 37).to(dtype)
    u = torch.rand(3, 40, 2).to(dtype)
    for o in (6, 19, 33):
        ref = F.fractional_max_pool2d(x, 3, output_size=o, return_indices=True, _random_samples=u)
        ours = AF.fractional_max_pool2d(x, 3, output_size=o, return_indices=True, _random_samples=u)
        assert torch.equal(ours[1], ref[1]) and torch.equal(ours[0], ref[0])


def test_fractional_draws_samples_like_torch():
    """Without _random_samples both draw torch.rand((B, C, N)) in the input's dtype: same seed, same result."""
    x = torch.randn(2, 3, 10, 9, 11)
    torch.manual_seed(7)
    ref = F.fractional_max_pool3d(x, 2, output_size=4, return_indices=True)
    torch.manual_seed(7)
    ours = AF.fractional_max_pool3d(x, 2, output_size=4, return_indices=True)
    assert torch.equal(ours[0], ref[0]) and torch.equal(ours[1], ref[1])
    torch.manual_seed(8)
    ref = F.fractional_max_pool2d(x[0], 2, output_ratio=[0.5, 0.5])
    torch.manual_seed(8)
    assert torch.equal(AF.fractional_max_pool2d(x[0], 2, output_ratio=0.5), ref)


def test_fractional_nan_and_ties_follow_torch():
    x = torch.zeros(1, 2, 8, 8)
    x[0, 0, 2, 3] = float("nan")
    x[0, 1, 4:, :] = 1.0  # ties: the first maximum in scan order
    u = torch.rand(1, 2, 2)
    ref = F.fractional_max_pool2d(x, 3, output_size=4, return_indices=True, _random_samples=u)
    ours = AF.fractional_max_pool2d(x, 3, output_size=4, return_indices=True, _random_samples=u)
    assert torch.equal(ours[1], ref[1]) and torch.equal(ours[0].isnan(), ref[0].isnan())


@pytest.mark.parametrize("n,shape,k,out", [(1, (2, 3, 11), 2, 5), (2, (1, 2, 9, 8), (2, 3), (4, 3)),
                                           (3, (1, 2, 5, 4, 6), 2, (4, 3, 5)),  # out + k - 1 == in: torch's 3-d refuses
                                           (4, (1, 2, 6, 5, 7, 5), (2, 2, 3, 2), (3, 4, 2, 3))])
def test_fractional_against_loop_reference(n, shape, k, out):
    torch.manual_seed(9)
    x = torch.randn(shape, dtype=torch.float64)
    u = torch.rand(shape[0], shape[1], n, dtype=torch.float64)
    v, i = AF.fractional_max_pool(x, _full(k, n), out, None, True, u)
    rv, ri = fractional_reference(x, _full(k, n), _full(out, n), u)
    assert torch.equal(v, rv) and torch.equal(i, ri)
    v1, i1 = AF.fractional_max_pool(x[0], _full(k, n), out, return_indices=True, _random_samples=u[:1])
    assert torch.equal(v1, rv[0]) and torch.equal(i1, ri[0])


@pytest.mark.parametrize("n", [2, 4])
def test_fractional_gradcheck(n):
    torch.manual_seed(10)
    shape = (1, 2, 7, 6) if n == 2 else (1, 1, 4, 3, 4, 3)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    u = torch.rand(1, shape[1], n, dtype=torch.float64)
    fn = lambda t: AF.fractional_max_pool(t, (2,) * n, 2, _random_samples=u)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


def test_meta_tensors_give_shapes():
    x = torch.empty(2, 3, 9, 8, 7, device="meta")
    assert AF.fractional_max_pool(x, 2, output_ratio=0.5).shape == (2, 3, 4, 4, 3)
    idx = torch.empty(2, 3, 9, 8, 7, dtype=torch.int64, device="meta")
    assert AF.max_unpool(x, idx, 2, padding=((1, 0), 0, (0, 1))).shape == (2, 3, 17, 16, 13)


# ---------------------------------------------------------------- modules and convert

MODULES = [  # name, constructor args, kwargs, input shape
    ("MaxUnpool1d", (2,), {}, (2, 3, 8)),
    ("MaxUnpool2d", (3, 2, 1), {}, (2, 3, 9, 7)),
    ("MaxUnpool3d", ((2, 1, 2),), {"stride": (2, 1, 2)}, (2, 6, 4, 4)),
    ("FractionalMaxPool2d", (2,), {"output_size": (4, 3), "return_indices": True}, (2, 3, 9, 8)),
    ("FractionalMaxPool2d", ((3, 2),), {"output_ratio": 0.5}, (3, 9, 8)),
    ("FractionalMaxPool3d", (2,), {"output_ratio": (0.5, 0.6, 0.7)}, (2, 2, 6, 5, 7)),
]


@pytest.mark.parametrize("name,args,kwargs,shape", MODULES, ids=[f"{m[0]}-{i}" for i, m in enumerate(MODULES)])
def test_modules_are_drop_in(name, args, kwargs, shape):
    ref_cls, cls = getattr(torch.nn, name), getattr(ann, name)
    torch.manual_seed(11)
    x = torch.randn(shape, dtype=torch.float64)
    if name.startswith("Fractional"):
        n = int(name[-2])
        kwargs = {**kwargs, "_random_samples": torch.rand(shape[0] if len(shape) == n + 2 else 1, shape[-n - 1], n,
                                                          dtype=torch.float64)}
    ours, ref = cls(*args, **kwargs), ref_cls(*args, **kwargs)
    assert isinstance(ours, ref_cls) and repr(ours) == repr(ref) and ours.algorithm == "auto"
    assert cls(*args, **kwargs, algorithm="direct").algorithm == "direct"
    assert ours.state_dict().keys() == ref.state_dict().keys()
    if name.startswith("MaxUnpool"):
        n = int(name[-2])
        pool = torch.nn.modules.pooling.__dict__[f"MaxPool{n}d"](ref.kernel_size, ref.stride, ref.padding,
                                                                  return_indices=True)
        y, idx = pool(x)
        assert torch.equal(ours(y, idx), ref(y, idx))
        size = x.shape[-n:]
        assert torch.equal(ours(y, idx, output_size=size), ref(y, idx, output_size=size))
        return
    a, b = ours(x), ref(x)
    if isinstance(b, tuple):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    else:
        assert torch.equal(a, b)


def test_nd_modules():
    torch.manual_seed(12)
    x = torch.randn(1, 2, 6, 4, 6, 4)
    y, idx = ann.MaxPoolNd((2, 2, 2, 2), return_indices=True)(x)
    assert ann.MaxUnpoolNd((2, 2, 2, 2))(y, idx).shape == x.shape
    assert "kernel_size=(2, 2, 2, 2)" in repr(ann.MaxUnpoolNd((2, 2, 2, 2)))
    u = torch.rand(1, 2, 4, dtype=x.dtype)
    m = ann.FractionalMaxPoolNd((2, 2, 2, 2), output_size=(3, 2, 3, 2), return_indices=True, _random_samples=u)
    v, i = m(x)
    assert "_random_samples" in m.state_dict()
    rv, ri = AF.fractional_max_pool(x, (2, 2, 2, 2), (3, 2, 3, 2), None, True, u)
    assert torch.equal(v, rv) and torch.equal(i, ri)


def test_convert_swaps_unpool_and_fractional():
    model = torch.nn.Sequential(torch.nn.FractionalMaxPool2d(2, output_size=4), torch.nn.MaxUnpool1d(2),
                                torch.nn.FractionalMaxPool3d(2, output_ratio=0.5), torch.nn.MaxUnpool3d(2))
    conv = anyconv.nn.convert(model)
    assert [type(m).__name__ for m in conv] == ["FractionalMaxPool2d", "MaxUnpool1d", "FractionalMaxPool3d",
                                                 "MaxUnpool3d"]
    assert all(type(m).__module__ == "anyconv.nn.unpool" for m in conv)
    assert type(model[0]) is torch.nn.FractionalMaxPool2d


# ---------------------------------------------------------------- error table

_X = torch.randn(1, 2, 4, 4)
_I = torch.zeros(1, 2, 4, 4, dtype=torch.int64)
ERRORS = [  # id, call, exception, parameter named
    ("unpool-input", lambda: AF.max_unpool2d(_X.long(), _I, 2), TypeError, "input"),
    ("unpool-rank", lambda: AF.max_unpool3d(_X[0, 0], _I[0, 0], 2), ValueError, "input"),
    ("unpool-indices-type", lambda: AF.max_unpool2d(_X, _I.int(), 2), TypeError, "indices"),
    ("unpool-indices-shape", lambda: AF.max_unpool2d(_X, _I[..., :3], 2), ValueError, "indices"),
    ("unpool-indices-range", lambda: AF.max_unpool2d(_X, _I + 64, 2), ValueError, "indices"),
    ("unpool-indices-negative", lambda: AF.max_unpool2d(_X, _I - 1, 2), ValueError, "indices"),
    ("unpool-kernel", lambda: AF.max_unpool2d(_X, _I, 0), ValueError, "kernel_size"),
    ("unpool-kernel-len", lambda: AF.max_unpool2d(_X, _I, (2, 2, 2)), ValueError, "kernel_size"),
    ("unpool-stride", lambda: AF.max_unpool2d(_X, _I, 2, (2, 0)), ValueError, "stride"),
    ("unpool-padding", lambda: AF.max_unpool2d(_X, _I, 2, 2, -1), ValueError, "padding"),
    ("unpool-padding-str", lambda: AF.max_unpool2d(_X, _I, 2, 2, "same"), ValueError, "padding"),
    ("unpool-padding-big", lambda: AF.max_unpool(_X, _I, (1, 1), 1, 2), ValueError, "padding"),
    ("unpool-out-range", lambda: AF.max_unpool2d(_X, _I, 2, output_size=(10, 8)), ValueError, "output_size"),
    ("unpool-out-len", lambda: AF.max_unpool2d(_X, _I, 2, output_size=(8, 8, 8)), ValueError, "output_size"),
    ("unpool-out-type", lambda: AF.max_unpool2d(_X, _I, 2, output_size=8), TypeError, "output_size"),
    ("frac-input", lambda: AF.fractional_max_pool2d(_X.long(), 2, 2), TypeError, "input"),
    ("frac-neither", lambda: AF.fractional_max_pool2d(_X, 2), ValueError, "output_size"),
    ("frac-both", lambda: AF.fractional_max_pool2d(_X, 2, 2, 0.5), ValueError, "output_ratio"),
    ("frac-ratio-one", lambda: AF.fractional_max_pool2d(_X, 2, output_ratio=1.0), ValueError, "output_ratio"),
    ("frac-ratio-small", lambda: AF.fractional_max_pool2d(_X, 2, output_ratio=0.1), ValueError, "output_ratio"),
    ("frac-ratio-type", lambda: AF.fractional_max_pool2d(_X, 2, output_ratio="half"), TypeError, "output_ratio"),
    ("frac-out", lambda: AF.fractional_max_pool2d(_X, 2, (2, 0)), ValueError, "output_size"),
    ("frac-too-big", lambda: AF.fractional_max_pool2d(_X, 2, 4), ValueError, "kernel_size"),
    ("frac-kernel", lambda: AF.fractional_max_pool2d(_X, -2, 2), ValueError, "kernel_size"),
    ("frac-indices-flag", lambda: AF.fractional_max_pool2d(_X, 2, 2, return_indices=1), TypeError, "return_indices"),
    ("frac-samples-shape", lambda: AF.fractional_max_pool2d(_X, 2, 2, _random_samples=torch.rand(1, 2, 3)),
     ValueError, "_random_samples"),
    ("frac-samples-dtype", lambda: AF.fractional_max_pool2d(_X, 2, 2, _random_samples=torch.rand(1, 2, 2).double()),
     TypeError, "_random_samples"),
    ("frac-samples-range", lambda: AF.fractional_max_pool2d(_X, 2, 2, _random_samples=torch.full((1, 2, 2), 1.5)),
     ValueError, "_random_samples"),
    ("frac-module-ratio", lambda: ann.FractionalMaxPoolNd((2, 2), output_ratio=2.0)(_X), ValueError, "output_ratio"),
]


@pytest.mark.parametrize("call,exc,param", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors_name_the_parameter(call, exc, param):
    with pytest.raises(exc, match=f"`{param}`"):
        call()


# ---------------------------------------------------------------- tools: output_shape, receptive_field, summary


@pytest.mark.parametrize("op,shape,params", [
    ("max_unpool2d", (2, 3, 4, 5), {"kernel_size": 3, "stride": 2, "padding": 1}),
    ("max_unpool1d", (3, 6), {"kernel_size": 2, "output_size": [13]}),
    ("max_unpool3d", (1, 2, 3, 2, 4), {"kernel_size": (2, 3, 2), "stride": 1}),
    ("fractional_max_pool2d", (2, 3, 10, 9), {"kernel_size": 2, "output_ratio": (0.5, 0.7)}),
    ("fractional_max_pool3d", (3, 8, 9, 7), {"kernel_size": (2, 3, 2), "output_size": (4, 5, 3)}),
])
def test_output_shape_matches_torch(op, shape, params):
    x = torch.randn(shape)
    if op.startswith("max_unpool"):
        idx = torch.zeros(shape, dtype=torch.int64)
        expect = getattr(F, op)(x, idx, **params).shape
        generic = anyconv.tools.output_shape("max_unpool", shape, **{**params, "kernel_size": _full(
            params["kernel_size"], int(op[-2]))})
    else:
        expect = getattr(F, op)(x, **params).shape
        generic = anyconv.tools.output_shape("fractional_max_pool", shape, **{**params, "kernel_size": _full(
            params["kernel_size"], int(op[-2]))})
    assert anyconv.tools.output_shape(op, shape, **params) == tuple(expect) == generic
    with pytest.raises(TypeError, match="`dilation`"):
        anyconv.tools.output_shape(op, shape, **params, dilation=2)


class _SegNetish(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.pool = torch.nn.MaxPool2d(2, return_indices=True)
        self.unpool = torch.nn.MaxUnpool2d(2)
        self.frac = torch.nn.FractionalMaxPool2d(2, output_size=12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, i = self.pool(self.conv(x))
        return self.frac(self.unpool(y, i))


@pytest.mark.parametrize("convert", [False, True])
def test_receptive_field_and_summary_know_unpool_and_fractional(convert):
    model = anyconv.nn.convert(_SegNetish()) if convert else _SegNetish()
    fields = {f.name: f for f in anyconv.tools.receptive_field(model, (1, 3, 16, 16))}
    assert fields["pool"].size == (4, 4) and fields["pool"].jump == (2, 2)
    # unpooling is the transposed layer of the pooling: each output reads one input, jump / 2
    assert (fields["unpool"].size, fields["unpool"].jump, fields["unpool"].start) == ((4, 4), (1, 1), (-1, -1))
    assert fields["unpool"].output_shape == (1, 4, 16, 16)
    # fractional: windows of 2, mean step (16 - 2) / (12 - 1)
    assert fields["frac"].size == (5, 5) and fields["frac"].jump == pytest.approx((14 / 11, 14 / 11))
    text = str(anyconv.summary(model, (1, 3, 16, 16)))
    assert "MaxUnpool2d" in text and "FractionalMaxPool2d" in text and "[1, 4, 12, 12]" in text
