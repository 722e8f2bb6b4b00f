"""Property-based robustness: random argument values AND types thrown at every op.

Each example starts from a consistent call (random N, channels, groups, batch 0..2 or
unbatched, valid-looking keyword values) and then replaces 0 to 2 of its arguments by
anything from a pool: ints, negatives, floats, bools, strings, None, wrong-length and nested
sequences, tensors of any rank, of size zero, of integer/bool dtypes, with mismatched shapes.
Every call must either return a tensor of the input's dtype, or raise ValueError/TypeError
whose message has the shared shape and names one of the op's parameters. Any other exception
(IndexError, RuntimeError, ...) fails the test.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import anyconv.functional as AF

SHAPE = re.compile(r"^(\w+): `(\w+)` must be .+; got \2=", re.S)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                    database=None)

DTYPES = [torch.float32, torch.float64, torch.float16, torch.complex64, torch.int64, torch.bool]


@st.composite
def tensors(draw: Any, max_rank: int = 6) -> torch.Tensor:
    """Any rank, any (small) sizes including zero, any dtype."""
    shape = draw(st.lists(st.integers(0, 4), max_size=max_rank))
    dtype = draw(st.sampled_from(DTYPES))
    return torch.zeros(shape, dtype=dtype) if dtype == torch.bool else torch.ones(shape, dtype=dtype)


small_ints = st.one_of(st.integers(-2, 5), st.sampled_from([10**30, 2**63, -(2**63), 2**62 + 1]))
scalars = st.one_of(small_ints, st.floats(-2, 4, allow_nan=False), st.booleans(), st.none(),
                    st.sampled_from(["same", "valid", "same_lower", "causal", "full", "", "2", "zeros", "auto"]))
sequences = st.lists(st.one_of(small_ints, st.tuples(small_ints, small_ints), st.lists(small_ints, max_size=3),
                               st.floats(0, 3), st.text(max_size=2), st.none()), max_size=5)
ANYTHING = st.one_of(scalars, sequences, sequences.map(tuple), tensors(max_rank=3))


def _int_or_seq(n: int, lo: int, hi: int) -> Any:
    return st.one_of(st.integers(lo, hi), st.lists(st.integers(lo, hi), min_size=n, max_size=n))


@st.composite
def calls(draw: Any, op: str) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    """``(fn, args, kwargs)``: a consistent call of ``op``, then up to two arguments replaced."""
    n = draw(st.integers(1, 3))
    g, cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    batch = draw(st.sampled_from([None, 0, 1, 2]))
    spatial = draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))
    kernel = draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    lead = () if batch is None else (batch,)
    alias = draw(st.booleans())
    args: dict[str, Any]
    if op in ("conv", "conv_transpose"):
        x = torch.ones((*lead, g * cg, *spatial), dtype=dtype)
        transposed = op == "conv_transpose"
        w = torch.ones((g * cg, og, *kernel) if transposed else (g * og, cg, *kernel), dtype=dtype)
        bias = draw(st.sampled_from([None, torch.ones(g * og, dtype=dtype)]))
        args = {"input": x, "weight": w, "bias": bias, "stride": draw(_int_or_seq(n, 1, 3)),
                "dilation": draw(_int_or_seq(n, 1, 2)), "groups": g}
        if transposed:
            args["padding"] = draw(st.one_of(_int_or_seq(n, 0, 2), st.sampled_from(["same", "valid"])))
            args["output_padding"] = draw(_int_or_seq(n, 0, 1))
            args["output_size"] = draw(st.one_of(st.none(), st.lists(st.integers(1, 9), min_size=n, max_size=n)))
        else:
            args["padding"] = draw(st.one_of(_int_or_seq(n, 0, 2), st.sampled_from(["same", "valid", "same_lower", "causal"])))
            args["padding_mode"] = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
            args["flip"] = draw(st.booleans())
            args["algorithm"] = draw(st.sampled_from(["auto", "direct", "im2col"]))
        fn = getattr(AF, f"{op}{n}d") if alias else getattr(AF, op)
    elif op == "unfold":
        args = {"input": torch.ones((*lead, cg, *spatial), dtype=dtype), "kernel_size": kernel,
                "dilation": draw(_int_or_seq(n, 1, 2)), "padding": draw(_int_or_seq(n, 0, 2)),
                "stride": draw(_int_or_seq(n, 1, 2))}
        fn = AF.unfold
    else:  # fold
        stride = draw(st.lists(st.integers(1, 2), min_size=n, max_size=n))
        blocks = [max((i - k) // s + 1, 1) for i, k, s in zip(spatial, kernel, stride)]
        k_total = 1
        for k in kernel:
            k_total *= k
        length = 1
        for b in blocks:
            length *= b
        args = {"input": torch.ones((*lead[:1], cg * k_total, length), dtype=dtype), "output_size": spatial,
                "kernel_size": kernel, "dilation": 1, "padding": 0, "stride": stride}
        fn = AF.fold
    if alias and op == "conv":
        for key in ("padding_mode", "flip", "algorithm"):
            args.pop(key)
    names = list(args)
    for _ in range(draw(st.integers(0, 2))):
        args[draw(st.sampled_from(names))] = draw(st.one_of(ANYTHING, tensors()))
    params = list(inspect.signature(fn).parameters)
    positional = tuple(args.pop(p) for p in params[:1])
    return fn, positional, args


def _check(call: tuple[Any, tuple[Any, ...], dict[str, Any]]) -> None:
    fn, args, kwargs = call
    params = set(inspect.signature(fn).parameters)
    try:
        out = fn(*args, **kwargs)
    except (ValueError, TypeError) as e:
        m = SHAPE.match(str(e))
        assert m, f"{type(e).__name__} message not in the shared shape: {e}"
        assert m.group(1) == fn.__name__, f"message names op {m.group(1)!r}, expected {fn.__name__!r}: {e}"
        assert m.group(2) in params, f"message names {m.group(2)!r}, not a parameter of {fn.__name__}: {e}"
        return
    assert isinstance(out, torch.Tensor)
    assert out.dtype == args[0].dtype


@SETTINGS
@given(call=calls("conv"))
def test_conv_random_arguments(call: Any) -> None:
    _check(call)


@SETTINGS
@given(call=calls("conv_transpose"))
def test_conv_transpose_random_arguments(call: Any) -> None:
    _check(call)


@SETTINGS
@given(call=calls("unfold"))
def test_unfold_random_arguments(call: Any) -> None:
    _check(call)


@SETTINGS
@given(call=calls("fold"))
def test_fold_random_arguments(call: Any) -> None:
    _check(call)
