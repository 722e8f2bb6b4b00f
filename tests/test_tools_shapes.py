"""Shape calculator: output_shape against the ops themselves and torch; padding_for; formulas."""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F

import anyconv.functional as AF
from anyconv.tools import explain_shape, output_shape, padding_for

CONV = [
    ((2, 3, 17, 20), (4, 3, 3, 5), dict(stride=2, padding=1)),
    ((3, 9), (4, 3, 2), dict(stride=3, dilation=2, padding="same")),
    ((1, 4, 7, 8, 9), (6, 2, 2, 3, 2), dict(groups=2, padding=((1, 0), (2, 1), (0, 3)))),
    ((1, 2, 5, 6, 4, 5), (3, 2, 2, 2, 1, 3), dict(padding="causal", stride=(1, 2, 1, 2))),
    ((1, 2, 10, 10), (2, 2, 3, 3), dict(padding=2, padding_mode="reflect")),
]


@pytest.mark.parametrize("x, w, p", CONV)
def test_conv_output_shape_equals_the_op(x, w, p):
    got = output_shape("conv", x, weight_shape=w, **p)
    assert got == tuple(AF.conv(torch.zeros(x), torch.zeros(w), **p).shape)


@pytest.mark.parametrize("x, w, p", [
    ((1, 4, 5, 6), (4, 3, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ((4, 7), (4, 2, 4), dict(stride=3, dilation=2, groups=2, padding=2)),
])
def test_conv_transpose_output_shape_equals_torch(x, w, p):
    ref = {1: F.conv_transpose1d, 2: F.conv_transpose2d}[len(w) - 2]
    assert output_shape(f"conv_transpose{len(w) - 2}d", x, weight_shape=w, **p) == tuple(
        ref(torch.zeros(x), torch.zeros(w), **p).shape)


@pytest.mark.parametrize("op, x, p, ref", [
    ("max_pool2d", (1, 3, 9, 10), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), F.max_pool2d),
    ("avg_pool1d", (2, 3, 11), dict(kernel_size=4, stride=3, ceil_mode=True), F.avg_pool1d),
    ("max_pool3d", (1, 2, 7, 7, 7), dict(kernel_size=2, dilation=2), F.max_pool3d),
    ("adaptive_avg_pool2d", (1, 3, 9, 10), dict(output_size=(4, 3)), F.adaptive_avg_pool2d),
    ("adaptive_max_pool1d", (2, 5, 13), dict(output_size=5), F.adaptive_max_pool1d),
])
def test_pool_output_shape_equals_torch(op, x, p, ref):
    assert output_shape(op, x, **p) == tuple(ref(torch.zeros(x), **p).shape)


def test_unfold_and_lp_pool_and_nd_pool():
    assert output_shape("unfold", (2, 3, 8, 9), kernel_size=(3, 2), padding=1, stride=2) == tuple(
        F.unfold(torch.zeros(2, 3, 8, 9), (3, 2), padding=1, stride=2).shape)
    assert output_shape("lp_pool2d", (1, 2, 8, 8), norm_type=2, kernel_size=3, stride=2) == tuple(
        F.lp_pool2d(torch.zeros(1, 2, 8, 8), 2, 3, 2).shape)
    assert output_shape("max_pool", (1, 1, 6, 6, 6, 6), kernel_size=(2, 2, 3, 3), padding="same") == (1, 1, 3, 3, 2, 2)


def _evaluate(formula: str) -> int:
    expr = formula.rsplit("=", 1)[0]
    return int(eval(expr, {"floor": math.floor, "ceil": math.ceil}))  # noqa: S307 - test of our own text


@pytest.mark.parametrize("op, x, p", [
    ("conv2d", (1, 3, 32, 32), dict(kernel_size=5, stride=2, padding="same")),
    ("conv1d", (1, 3, 31), dict(kernel_size=4, stride=3, dilation=2, padding=((2, 5),))),
    ("conv_transpose2d", (1, 4, 7, 5), dict(kernel_size=4, stride=2, padding="same")),
    ("conv_transpose1d", (1, 4, 7), dict(kernel_size=3, stride=2, padding=1, output_size=(14,))),
    ("max_pool2d", (1, 2, 8, 9), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("avg_pool1d", (1, 2, 6), dict(kernel_size=2, stride=2, padding=1, ceil_mode=True)),
    ("unfold", (1, 2, 9, 9), dict(kernel_size=3, stride=2)),
])
def test_rendered_formulas_evaluate_to_the_sizes(op, x, p):
    info = explain_shape(op, x, **p)
    n = len(info.formulas)
    for f, o in zip(info.formulas, info.output_shape[-n:] if info.kind != "unfold" else [None] * n):
        assert int(f.rsplit("=", 1)[1]) == _evaluate(f)
        if o is not None:
            assert _evaluate(f) == o


def test_explain_reports_the_padding_actually_applied():
    info = explain_shape("conv2d", (1, 3, 32, 32), kernel_size=5, stride=2, padding="same")
    assert info.padding == ((1, 2), (1, 2)) and info.output_shape == (1, 3, 16, 16)
    assert explain_shape("conv1d", (1, 1, 10), kernel_size=3, dilation=2, padding="causal").padding == ((4, 0),)


@pytest.mark.parametrize("op, x, want, p, expect", [
    ("conv2d", (1, 3, 32, 32), (16, 16), dict(kernel_size=5, stride=2), ((2, 2), (2, 2))),
    ("conv1d", (1, 1, 10), (10,), dict(kernel_size=4), ((1, 2),)),
    ("conv1d", (1, 1, 10), (5,), dict(kernel_size=3, dilation=3), ((0, 1),)),
    ("max_pool2d", (1, 1, 7, 7), (4, 4), dict(kernel_size=3, stride=2), ((1, 1), (1, 1))),
    ("conv_transpose1d", (1, 2, 8), (16,), dict(kernel_size=4, stride=2), ((1, 1),)),
])
def test_padding_for_gives_the_wanted_size(op, x, want, p, expect):
    pairs = padding_for(op, x, want, **p)
    assert pairs == expect
    assert output_shape(op, x, padding=pairs, **p)[-len(want):] == want


def test_padding_for_without_solution_is_a_clear_value_error():
    with pytest.raises(ValueError, match=r"padding_for: `output_shape` must be a size reachable.*at least 30"):
        padding_for("conv2d", (1, 3, 32, 32), (10, 10), kernel_size=3)
    with pytest.raises(ValueError, match="adaptive"):
        padding_for("adaptive_avg_pool2d", (1, 3, 8, 8), (2, 2), output_size=2)


@pytest.mark.parametrize("call, exc, pattern", [
    (lambda: output_shape("conv2d", (1, 3, 8, 8), weight_shape=(4, 2, 3, 3)), ValueError, r"`input` must be 2 channels"),
    (lambda: output_shape("conv3d", (1, 3, 8, 8), weight_shape=(4, 3, 3, 3)), ValueError, "weight_shape"),
    (lambda: output_shape("conv", (1, 3, 8, 8), kernel_size=3, stride=0), ValueError, "stride"),
    (lambda: output_shape("pool", (1, 3, 8, 8), kernel_size=3), ValueError, "`op`"),
    (lambda: output_shape("max_pool2d", (1, 3, 8, 8), kernel=3), TypeError, "kernel"),
    (lambda: output_shape("max_pool2d", "1x3x8x8", kernel_size=3), TypeError, "input_shape"),
])
def test_errors_are_the_ops_own(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_as_dict_is_json_ready():
    import json

    d = explain_shape("avg_pool2d", (1, 1, 5, 5), kernel_size=2).as_dict()
    assert re.search('"output_shape": \\[1, 1, 2, 2\\]', json.dumps(d))


def _random_conv_case(rng):
    n = rng.randint(1, 3)
    k = [rng.randint(1, 3) for _ in range(n)]
    s = [rng.randint(1, 3) for _ in range(n)]
    d = [rng.randint(1, 2) for _ in range(n)]
    x = [rng.randint((kk - 1) * dd + 1, 9) for kk, dd in zip(k, d)]
    pad = rng.choice([0, 1, "same", "valid", "causal", [(rng.randint(0, 2), rng.randint(0, 2)) for _ in range(n)]])
    return n, k, s, d, x, pad


def test_random_conv_calls_match_the_op_on_real_tensors():
    import random

    rng = random.Random(5)
    for _ in range(60):
        n, k, s, d, x, pad = _random_conv_case(rng)
        g = rng.choice([1, 2])
        w = (2 * g, 2, *k)
        got = output_shape("conv", (1, 2 * g, *x), weight_shape=w, stride=s, dilation=d, padding=pad, groups=g)
        ref = AF.conv(torch.zeros(1, 2 * g, *x), torch.zeros(w), stride=s, dilation=d, padding=pad, groups=g)
        assert got == tuple(ref.shape)
        if isinstance(pad, str):
            continue
        wt = (2 * g, 2, *k)
        op = [rng.randint(0, max(ss, dd) - 1) for ss, dd in zip(s, d)]
        kw = dict(stride=s, dilation=d, padding=pad, output_padding=op, groups=g)
        try:
            ref = AF.conv_transpose(torch.zeros(1, 2 * g, *x), torch.zeros(wt), **kw)
        except ValueError as e:
            with pytest.raises(ValueError, match=str(e).split(":")[1].split("`")[1]):
                output_shape("conv_transpose", (1, 2 * g, *x), weight_shape=wt, **kw)
            continue
        assert output_shape("conv_transpose", (1, 2 * g, *x), weight_shape=wt, **kw) == tuple(ref.shape)


def test_random_padding_for_reaches_every_reachable_size():
    import random

    rng = random.Random(6)
    for _ in range(60):
        n, k, s, d, x, _ = _random_conv_case(rng)
        base = output_shape("conv", (1, 1, *x), kernel_size=k, stride=s, dilation=d)
        want = tuple(b + rng.randint(0, 3) for b in base[2:])
        pairs = padding_for("conv", (1, 1, *x), want, kernel_size=k, stride=s, dilation=d)
        assert output_shape("conv", (1, 1, *x), kernel_size=k, stride=s, dilation=d, padding=pairs)[2:] == want
        assert all(0 <= a - b <= 1 for b, a in pairs)
        for i, (b, a) in enumerate(pairs):  # no smaller symmetric total works when the answer is asymmetric
            if a != b:
                for t in range(0, b + a, 2):
                    one = [(0, 0)] * n
                    one[i] = (t // 2, t // 2)
                    assert output_shape("conv", (1, 1, *x), kernel_size=k, stride=s, dilation=d, padding=one)[2 + i] != want[i]


@pytest.mark.parametrize("op, params, ref", [
    ("conv2d", {"weight_shape": (4, 3, 3, 3), "stride": (2,), "padding": [1], "dilation": (1,)},
     lambda x: F.conv2d(x, torch.zeros(4, 3, 3, 3), stride=(2,), padding=[1], dilation=(1,))),
    ("conv_transpose2d", {"weight_shape": (3, 4, 3, 3), "stride": [2], "output_padding": (1,)},
     lambda x: F.conv_transpose2d(x, torch.zeros(3, 4, 3, 3), stride=[2], output_padding=(1,))),
    ("max_pool2d", {"kernel_size": 3, "stride": ()}, lambda x: F.max_pool2d(x, 3, stride=())),
    ("avg_pool2d", {"kernel_size": [2], "stride": []}, lambda x: F.avg_pool2d(x, [2], stride=[])),
    ("max_pool2d", {"kernel_size": (3,), "padding": (1,), "dilation": [2]},
     lambda x: F.max_pool2d(x, (3,), padding=(1,), dilation=[2])),
])
def test_output_shape_takes_torchs_argument_forms_for_aliases(op, params, ref):
    # output_shape("conv2d", ...) reads its params as conv2d itself does: one-element sequences broadcast,
    # a pooling stride of () or [] is the kernel size
    x = torch.zeros(2, 3, 16, 16)
    assert output_shape(op, x.shape, **params) == tuple(ref(x).shape)
