"""Pooling errors: every bad argument named (ValueError/TypeError), before any work.

A table of bad calls, a hypothesis test that random arguments give a result or a named
ValueError/TypeError and nothing else, and the front door on meta tensors (shape only).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import anyconv.functional as AF
from anyconv.core.pool_spec import adaptive_spec, pool_spec

X = torch.randn(2, 3, 6, 6)

BAD = [
    # (call, exception, parameter named)
    (lambda: AF.max_pool2d([1.0], 2), TypeError, "input"),
    (lambda: AF.max_pool2d(torch.ones(2, 3, 6, 6, dtype=torch.int64), 2), TypeError, "input"),
    (lambda: AF.max_pool2d(torch.randn(6, 6), 2), ValueError, "input"),
    (lambda: AF.max_pool2d(torch.randn(1, 2, 3, 4, 5), 2), ValueError, "input"),
    (lambda: AF.max_pool(torch.randn(4, 4), 2), ValueError, "input"),
    (lambda: AF.max_pool2d(torch.randn(1, 2, 0, 4), 2), ValueError, "input"),
    (lambda: AF.max_pool2d(X, 0), ValueError, "kernel_size"),
    (lambda: AF.max_pool2d(X, (2, 2, 2)), ValueError, "kernel_size"),
    (lambda: AF.max_pool2d(X, 2.0), TypeError, "kernel_size"),
    (lambda: AF.max_pool2d(X, "2"), TypeError, "kernel_size"),
    (lambda: AF.max_pool2d(X, 7), ValueError, "kernel_size"),
    (lambda: AF.max_pool2d(X, 3, dilation=3), ValueError, "kernel_size"),
    (lambda: AF.max_pool2d(X, 2, (2, 0)), ValueError, "stride"),
    (lambda: AF.max_pool2d(X, 2, -1), ValueError, "stride"),
    (lambda: AF.max_pool2d(X, 2, True), TypeError, "stride"),
    (lambda: AF.max_pool2d(X, 2, 2, -1), ValueError, "padding"),
    (lambda: AF.max_pool2d(X, 2, 2, "full"), ValueError, "padding"),
    (lambda: AF.max_pool2d(X, 2, 2, ((1, 2, 3), (0, 0))), ValueError, "padding"),
    (lambda: AF.max_pool2d(X, 2, 2, (1, 1, 1)), ValueError, "padding"),
    (lambda: AF.max_pool2d(X, 2, 2, 2), ValueError, "padding"),  # first window is all padding
    (lambda: AF.avg_pool1d(torch.randn(1, 1, 3), 2, 1, ((0, 3),)), ValueError, "padding"),  # last window
    (lambda: AF.max_pool1d(torch.randn(1, 1, 1), 2, 1, 2, dilation=3), ValueError, "padding"),  # jumps over
    (lambda: AF.max_pool2d(X, 2, 2, 0, 0), ValueError, "dilation"),
    (lambda: AF.max_pool2d(X, 2, ceil_mode=1), TypeError, "ceil_mode"),
    (lambda: AF.max_pool2d(X, 2, return_indices="yes"), TypeError, "return_indices"),
    (lambda: AF.avg_pool2d(X, 2, count_include_pad=None), TypeError, "count_include_pad"),
    (lambda: AF.avg_pool2d(X, 2, divisor_override=0), ValueError, "divisor_override"),
    (lambda: AF.avg_pool2d(X, 2, divisor_override=1.5), TypeError, "divisor_override"),
    (lambda: AF.lp_pool2d(X, 0, 2), ValueError, "norm_type"),
    (lambda: AF.lp_pool2d(X, float("nan"), 2), ValueError, "norm_type"),
    (lambda: AF.lp_pool2d(X, "2", 2), TypeError, "norm_type"),
    (lambda: AF.adaptive_avg_pool2d(X, 0), ValueError, "output_size"),
    (lambda: AF.adaptive_avg_pool2d(X, (2, 2, 2)), ValueError, "output_size"),
    (lambda: AF.adaptive_max_pool2d(X, "2"), TypeError, "output_size"),
    (lambda: AF.adaptive_max_pool2d(X, 2.5), TypeError, "output_size"),
    (lambda: AF.adaptive_avg_pool(X, None), TypeError, "output_size"),
    (lambda: AF.adaptive_max_pool2d(X, 2, return_indices=0), TypeError, "return_indices"),
    (lambda: AF.adaptive_avg_pool3d(X[0], 2), ValueError, "input"),
]


@pytest.mark.parametrize("i", range(len(BAD)))
def test_bad_arguments_are_named(i):
    call, exc, param = BAD[i]
    with pytest.raises(exc) as info:
        call()
    assert f"`{param}`" in str(info.value), str(info.value)
    assert str(info.value).count("\n") == 0


def test_errors_come_before_any_work():
    """A meta tensor has no data: validation alone must raise, and valid calls resolve shapes."""
    meta = torch.empty(2, 3, 6, 6, device="meta")
    with pytest.raises(ValueError, match="`padding`"):
        pool_spec("max_pool2d", meta, 2, 2, 2, n=2)
    spec = pool_spec("avg_pool2d", meta, (3, 2), 2, ((1, 0), "same")[0:1] * 2, ceil_mode=True, n=2)
    assert spec.padding == ((1, 0), (1, 0))
    assert spec.out_spatial == AF.avg_pool2d(torch.randn(2, 3, 6, 6), (3, 2), 2, ((1, 0), (1, 0)), True).shape[2:]
    for padding in ("same", "same_lower", "causal", "valid", 1, ((2, 0), (0, 1))):
        for stride in (1, 2, 3):
            spec = pool_spec("max_pool", meta, (3, 2), stride, padding, 1, True)
            assert spec.out_spatial == AF.max_pool(torch.randn(2, 3, 6, 6), (3, 2), stride, padding, 1, True).shape[2:]
    assert pool_spec("max_pool", meta, 3, 2, "same").out_spatial == (3, 3)
    assert adaptive_spec("adaptive_max_pool", meta, (None, 4)).out_spatial == (6, 4)


JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 8), st.floats(-2, 4), st.just(float("nan")), st.text(max_size=5),
    st.sampled_from(["same", "valid", "causal", "same_lower"]),
    st.lists(st.integers(-1, 4), max_size=4).map(tuple),
    st.lists(st.tuples(st.integers(-1, 3), st.integers(-1, 3)), max_size=3),
)
PARAMS = ["kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices", "count_include_pad",
          "divisor_override", "norm_type", "output_size", "input"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    op=st.sampled_from(["max_pool2d", "avg_pool2d", "lp_pool1d", "max_pool", "avg_pool", "adaptive_avg_pool2d",
                        "adaptive_max_pool", "lp_pool"]),
    shape=st.lists(st.integers(0, 5), min_size=1, max_size=5),
    dtype=st.sampled_from([torch.float32, torch.float64, torch.int32, torch.bool]),
    args=st.dictionaries(st.sampled_from(PARAMS[:-2]), JUNK, max_size=4),
    first=JUNK,
)
def test_random_arguments_raise_only_named_value_or_type_errors(op, shape, dtype, args, first):
    x = torch.zeros(shape, dtype=dtype)
    fn = getattr(AF, op)
    allowed = {
        "max": ["stride", "padding", "dilation", "ceil_mode", "return_indices"],
        "avg": ["stride", "padding", "ceil_mode", "count_include_pad", "divisor_override", "dilation"],
        "lp": ["stride", "ceil_mode", "padding", "dilation"],
        "adaptive_avg": [],
        "adaptive_max": ["return_indices"],
    }[op.split("_pool")[0]]
    kwargs = {k: v for k, v in args.items() if k in allowed}
    try:
        if op.startswith("lp"):
            fn(x, args.get("norm_type", 2), first, **kwargs)
        else:
            fn(x, first, **kwargs)
    except (ValueError, TypeError) as e:
        assert any(f"`{p}`" in str(e) for p in PARAMS), str(e)
