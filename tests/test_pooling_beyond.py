"""Pooling beyond torch, against an independent reference written here.

Asymmetric / 'same' / 'same_lower' / 'causal' / large padding, dilation for avg and lp, N >= 4:
the reference pads nothing and loops over every window in plain Python on tiny inputs,
listing the window's positions, keeping those inside the input (and, for the divisor, those
inside the padded input). Plus the identity that N-d pooling with kernel 1 along an axis is
(N-1)-d pooling over the slices, which carries torch's 3-d ops to N = 4.
"""

from __future__ import annotations

import itertools
import math
import random

import pytest
import torch
import torch.nn.functional as F

import anyconv.functional as AF


def _out_size(i, k, s, d, pb, pa, ceil_mode):
    eff = (k - 1) * d + 1
    o = math.floor((i + pb + pa - eff) / s) + 1
    if ceil_mode:
        o = math.ceil((i + pb + pa - eff) / s) + 1
        if (o - 1) * s >= i + pb:  # last window starts in the end padding: dropped
            o -= 1
    return o


def _pads(padding, n, size, k, s, d):
    if padding == "valid":
        return [(0, 0)] * n
    if padding == "causal":
        return [((kk - 1) * dd, 0) for kk, dd in zip(k, d)]
    if padding in ("same", "same_lower"):
        out = []
        for i, kk, ss, dd in zip(size, k, s, d):
            total = max((math.ceil(i / ss) - 1) * ss + (kk - 1) * dd + 1 - i, 0)
            lo, hi = total // 2, total - total // 2
            out.append((hi, lo) if padding == "same_lower" else (lo, hi))
        return out
    return [p if isinstance(p, tuple) else (p, p) for p in padding]


def reference(x, kind, k, s, d, padding, ceil_mode=False, cip=True, divisor=None, p=None):
    """Plain-loop pooling of a (B, C, *spatial) float64 tensor; returns (values, indices)."""
    n = len(k)
    size = x.shape[2:]
    pads = _pads(padding, n, size, k, s, d)
    outs = [_out_size(size[i], k[i], s[i], d[i], *pads[i], ceil_mode) for i in range(n)]
    vals = torch.empty(*x.shape[:2], *outs, dtype=x.dtype)
    idxs = torch.empty(*x.shape[:2], *outs, dtype=torch.int64)
    flat = x.reshape(*x.shape[:2], -1)
    for b, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for j in itertools.product(*(range(o) for o in outs)):
            inside, padded = [], 0
            for q in itertools.product(*(range(kk) for kk in k)):
                pos = [j[t] * s[t] - pads[t][0] + q[t] * d[t] for t in range(n)]
                if all(-pads[t][0] <= pos[t] < size[t] + pads[t][1] for t in range(n)):
                    padded += 1
                if all(0 <= pos[t] < size[t] for t in range(n)):
                    f = 0
                    for t in range(n):
                        f = f * size[t] + pos[t]
                    inside.append((f, flat[b, c, f].item()))
            assert inside, "reference: window covers padding only"
            if kind == "max":
                best_f, best = inside[0][0], -math.inf
                for f, v in inside:  # first maximum; a NaN replaces
                    if v > best or math.isnan(v):
                        best_f, best = f, v
                vals[(b, c) + j], idxs[(b, c) + j] = best, best_f
            elif kind == "avg":
                total = sum(v for _, v in inside)
                vals[(b, c) + j] = total / (divisor or (padded if cip else len(inside)))
            else:  # torch's lp: (avg of x^p with padding counted) * prod(k), to the 1/p
                a = sum(v**p for _, v in inside) / padded * math.prod(k)
                vals[(b, c) + j] = a ** (1 / p)
    return vals, idxs


def _samples(seed, count):
    rng = random.Random(seed)
    forms = ["valid", "same", "same_lower", "causal", "pairs", "large", "ints"]
    out = []
    for t in range(count):
        n = 1 + t % 4
        k = tuple(rng.randint(1, 3) for _ in range(n))
        s = tuple(rng.randint(1, 3) for _ in range(n))
        d = tuple(rng.randint(1, 3) for _ in range(n))
        form = forms[t % len(forms)]
        size = tuple(rng.randint((kk - 1) * dd + 1, (kk - 1) * dd + 4) for kk, dd in zip(k, d))
        if n == 4:
            size = tuple(min(v, 4) for v in size)
            k = tuple(min(kk, 2) for kk in k)
            d = (1,) * n
        eff = [(kk - 1) * dd + 1 for kk, dd in zip(k, d)]
        if form == "pairs":
            padding = tuple((rng.randint(0, e - 1), rng.randint(0, e - 1)) for e in eff)
        elif form == "large":  # beyond half the kernel (torch refuses), up to e - 1
            padding = tuple(e - 1 for e in eff)
        elif form == "ints":
            padding = tuple(rng.randint(0, e - 1) for e in eff)
        else:
            padding = form
        out.append((k, s, d, padding, size, rng.random() < 0.4))
    return out


BEYOND = _samples(42, 28)


@pytest.mark.parametrize("k,s,d,padding,size,ceil_mode", BEYOND, ids=[f"{len(c[0])}d-{c[3] if isinstance(c[3], str) else 'explicit'}-{i}" for i, c in enumerate(BEYOND)])
def test_every_padding_form_dilation_and_nd_against_reference(k, s, d, padding, size, ceil_mode):
    torch.manual_seed(sum(size))
    x = torch.randn(1, 2, *size, dtype=torch.float64)
    try:
        ref_max, ref_idx = reference(x, "max", k, s, d, padding, ceil_mode)
    except AssertionError:  # a window covering padding only must be a named ValueError
        with pytest.raises(ValueError, match="`padding`"):
            AF.max_pool(x, k, s, padding, d, ceil_mode)
        return
    v, i = AF.max_pool(x, k, s, padding, d, ceil_mode, return_indices=True)
    torch.testing.assert_close(v, ref_max, atol=0, rtol=0)
    assert torch.equal(i, ref_idx)
    for cip in (True, False):
        ref = reference(x, "avg", k, s, d, padding, ceil_mode, cip=cip)[0]
        torch.testing.assert_close(AF.avg_pool(x, k, s, padding, ceil_mode, cip, None, d), ref, atol=1e-12, rtol=1e-12)
    ref = reference(x, "avg", k, s, d, padding, ceil_mode, divisor=3)[0]
    torch.testing.assert_close(AF.avg_pool(x, k, s, padding, ceil_mode, True, 3, d), ref, atol=1e-12, rtol=1e-12)
    xp = x.abs() + 0.1
    ref = reference(xp, "lp", k, s, d, padding, ceil_mode, p=3)[0]
    torch.testing.assert_close(AF.lp_pool(xp, 3, k, s, padding, ceil_mode, d), ref, atol=1e-12, rtol=1e-12)


def test_reference_agrees_with_torch_where_torch_has_the_op():
    """The reference itself is checked against torch on a few torch-supported cases."""
    torch.manual_seed(0)
    x = torch.randn(1, 2, 7, 6, dtype=torch.float64)
    for k, s, p, d, cm in [((3, 2), (2, 1), (1, 1), (1, 2), True), ((2, 3), (1, 2), (1, 0), (2, 1), False)]:
        v, i = F.max_pool2d(x, k, s, p, d, cm, return_indices=True)
        rv, ri = reference(x, "max", k, s, d, p, cm)
        assert torch.equal(v, rv) and torch.equal(i, ri)
        ra = reference(x, "avg", k, s, (1, 1), p, cm, cip=False)[0]
        torch.testing.assert_close(F.avg_pool2d(x, k, s, p, cm, False), ra)


@pytest.mark.parametrize("kind", ["max", "avg", "lp"])
@pytest.mark.parametrize("axis", [0, 1, 2, 3])
def test_kernel_one_axis_equals_lower_dim_pooling_over_slices(kind, axis):
    """4-d pooling with kernel 1 (stride 1, no padding) along ``axis`` == 3-d torch pooling per slice."""
    torch.manual_seed(axis)
    x = torch.rand(2, 2, 4, 5, 3, 6, dtype=torch.float64) + 0.1
    k3, s3, p3 = [3, 2, 2], [2, 1, 2], [1, 1, 0]
    k, s, p = list(k3), list(s3), list(p3)
    k.insert(axis, 1)
    s.insert(axis, 1)
    p.insert(axis, 0)
    if kind == "max":
        ours = AF.max_pool(x, k, s, p, ceil_mode=True)
    elif kind == "avg":
        ours = AF.avg_pool(x, k, s, p, ceil_mode=True, count_include_pad=False)
    else:
        ours = AF.lp_pool(x, 2, k, s, 0, ceil_mode=True)
    slices = []
    for t in range(x.shape[2 + axis]):
        xs = x.select(2 + axis, t)
        if kind == "max":
            slices.append(F.max_pool3d(xs, k3, s3, p3, ceil_mode=True))
        elif kind == "avg":
            slices.append(F.avg_pool3d(xs, k3, s3, p3, ceil_mode=True, count_include_pad=False))
        else:
            slices.append(F.lp_pool3d(xs, 2, k3, s3, ceil_mode=True))
    torch.testing.assert_close(ours, torch.stack(slices, 2 + axis), atol=1e-12, rtol=1e-12)


def test_adaptive_4d_against_reference_windows():
    torch.manual_seed(1)
    x = torch.randn(1, 2, 5, 3, 4, 6, dtype=torch.float64)
    osz = (2, 3, 3, 4)
    avg = AF.adaptive_avg_pool(x, osz)
    mx, idx = AF.adaptive_max_pool(x, osz, return_indices=True)
    flat = x.reshape(1, 2, -1)
    for c in range(2):
        for j in itertools.product(*(range(o) for o in osz)):
            ranges = [range((jj * i) // o, -(-((jj + 1) * i) // o)) for jj, i, o in zip(j, x.shape[2:], osz)]
            pos = [sum(p * st for p, st in zip(q, (72, 24, 6, 1))) for q in itertools.product(*ranges)]
            vals = [flat[0, c, f].item() for f in pos]
            assert abs(avg[(0, c) + j].item() - sum(vals) / len(vals)) < 1e-12
            assert mx[(0, c) + j].item() == max(vals)
            assert idx[(0, c) + j].item() == pos[vals.index(max(vals))]


def test_gradients_beyond_torch_gradcheck():
    x = (torch.rand(1, 1, 4, 3, 3, 4, dtype=torch.float64) + 0.1).requires_grad_()
    fns = [
        lambda t: AF.max_pool(t, (2, 2, 1, 3), 2, "same_lower", (1, 1, 1, 1)),
        lambda t: AF.avg_pool(t, (3, 1, 2, 2), 1, ((2, 2), (0, 0), (1, 0), (0, 1)), dilation=(2, 1, 1, 1),
                              count_include_pad=False),
        lambda t: AF.lp_pool(t, 1.5, (2, 2, 2, 2), (1, 2, 1, 2), "causal"),
    ]
    for fn in fns:
        assert torch.autograd.gradcheck(fn, (x,))
        assert torch.autograd.gradgradcheck(fn, (x,))


def test_vectorised_counts_and_first_elements_agree_with_the_shape_formulas():
    from anyconv.core import shapes as _shapes
    from anyconv.core.pool_spec import pool_spec
    from anyconv.ops._pool_kernels import first_inside_index, window_counts

    x = torch.empty(1, 1, 11, device="meta")
    for k, s, d, pads, cm in [(3, 2, 1, ((2, 1),), True), (2, 3, 3, ((2, 0),), False), (4, 1, 2, "same", True)]:
        spec = pool_spec("avg_pool1d", x, k, s, pads, d, cm, n=1)
        (pb, pa), o = spec.padding[0], spec.out_spatial[0]
        for include in (True, False):
            c = window_counts(spec, include, torch.device("cpu"), torch.float64)
            got = [float(c)] * o if isinstance(c, float) else c.tolist()
            assert got == [_shapes.pool_window_count(11, k, s, d, pb, pa, j, include) for j in range(o)]
        first = first_inside_index(spec, torch.device("cpu")).tolist()
        assert first == [j * s - pb + d * _shapes.pool_first_inside(11, k, s, d, pb, j) for j in range(o)]
