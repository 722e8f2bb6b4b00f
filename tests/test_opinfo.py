"""One generic test per OpInfo sample (``opinfo.py``): every op of ``anyconv.functional``.

For each sample: the output (and indices) against the reference call the table records, the
gradients of every float tensor against the reference's (torch's autograd), for every
algorithm that serves a conv-family sample (one that cannot must raise ValueError with its
reason; those are counted and printed), the ``anyconv.nn`` module with the same arguments, and
``anyconv.nn.convert`` of torch's module where torch has it. gradcheck/gradgradcheck run on a
small float64 subset, and every error row must raise its type naming its parameter.

CI runs a representative subset (every op, about one sample in ten, chosen by a hash of the
id); ``ANYCONV_OPINFO=all`` runs every sample.
"""

from __future__ import annotations

import math
import os
import zlib
from collections import defaultdict
from typing import Any

import pytest
import torch

import anyconv
import anyconv.functional as AF
import anyconv.nn as ann
from differential import ALGORITHMS, outputs_and_grads, rejection_reason
from opinfo import OpError, OpSample, all_errors, all_samples, first
from tolerances import assert_close

ALL = all_samples()


def _subset(samples: list[OpSample], share: int, least: int) -> list[OpSample]:
    """Per op, the ``max(least, len / share)`` samples with the smallest CRC of their id."""
    if os.environ.get("ANYCONV_OPINFO") == "all":
        return samples
    by_op: dict[str, list[OpSample]] = defaultdict(list)
    for s in samples:
        by_op[s.op].append(s)
    out = []
    for group in by_op.values():
        group.sort(key=lambda s: zlib.crc32(s.id.encode()))
        out += group[: max(least, math.ceil(len(group) / share))]
    return out


CI = _subset(ALL, 10, 2)
GRADCHECK = [s for s in _subset([s for s in ALL if s.n <= 2 and s.batched is False], 40, 1)]


def _algorithms(sample: OpSample) -> tuple[str | None, ...]:
    return ALGORITHMS if sample.conv_like else (None,)


def _run(sample: OpSample, tensors: tuple[torch.Tensor, ...], algo: str | None) -> Any:
    extra = {} if algo is None else {"algorithm": algo}
    return sample.call(getattr(AF, sample.op), tensors, **extra)


def _check_output(out: Any, expected: Any, dtype: torch.dtype, what: str) -> None:
    if isinstance(expected, tuple):
        assert isinstance(out, tuple) and len(out) == len(expected), f"{what}: expected a pair"
        assert_close(out[0], expected[0], dtype, f"{what} values")
        assert out[1].dtype == expected[1].dtype and torch.equal(out[1], expected[1]), f"{what}: indices differ"
    else:
        assert not isinstance(out, tuple), f"{what}: expected one tensor"
        assert out.dtype == expected.dtype, f"{what}: dtype {out.dtype} != {expected.dtype}"
        assert_close(out, expected, dtype, what)


def _grads(sample: OpSample, fn: Any, tensors: tuple[torch.Tensor, ...], gy: torch.Tensor | None = None) -> Any:
    """Output and the gradients of ``<out, gy>`` w.r.t. every differentiated tensor."""
    live = [i for i, t in enumerate(tensors) if t.is_floating_point() and i not in sample.nograd]

    def part(*xs: torch.Tensor) -> torch.Tensor:
        full = list(tensors)
        for i, x in zip(live, xs):
            full[i] = x
        return first(fn(tuple(full)))

    return outputs_and_grads(part, [tensors[i] for i in live], gy)


@pytest.mark.parametrize("sample", CI, ids=lambda s: s.id)
def test_sample_against_reference(sample: OpSample, capsys: pytest.CaptureFixture[str]) -> None:
    tensors = sample.tensors(torch.float64)
    expected = sample.ref(*tensors)
    ref_out, ref_grads, gy = _grads(sample, lambda t: sample.ref(*t), tensors) if sample.ref_differentiable else (
        None, (), None)
    served, refused = [], {}
    for algo in _algorithms(sample):
        try:
            out = _run(sample, tensors, algo)
        except ValueError as e:  # only an algorithm may refuse, and only with its reason
            reason = rejection_reason(e, algo) if algo not in (None, "auto") else None
            assert reason, f"{sample.id} algorithm={algo}: {e}"
            refused[algo] = reason
            continue
        served.append(algo)
        _check_output(out, expected, torch.float64, f"{sample.id} algorithm={algo}")
        if sample.ref_differentiable:
            _, grads, _ = _grads(sample, lambda t, a=algo: _run(sample, t, a), tensors, gy)
            for i, (g, rg) in enumerate(zip(grads, ref_grads)):
                assert_close(g, rg, torch.float64, f"{sample.id} algorithm={algo} grad {i}")
    assert served and served[0] in (None, "auto"), f"{sample.id}: the default must serve"
    if refused:
        with capsys.disabled():
            print(f"\n{sample.id}: {len(refused)} algorithms refused: {refused}")


def test_refusals_are_counted() -> None:
    """Some CI conv samples are refused by some algorithm (so the refusal path is exercised)."""
    count = 0
    for sample in CI:
        if sample.op != "conv":
            continue
        for algo in ALGORITHMS[1:]:
            try:
                _run(sample, sample.tensors(torch.float64), algo)
            except ValueError as e:
                assert rejection_reason(e, algo), str(e)
                count += 1
    assert count > 0


def _module(sample: OpSample, tensors: tuple[torch.Tensor, ...], cls: Any) -> torch.nn.Module:
    assert sample.module is not None
    _, args, kwargs, _ = sample.module
    m = cls(*args, **kwargs).double()
    if isinstance(m, torch.nn.modules.conv._ConvNd):
        with torch.no_grad():
            m.weight.copy_(tensors[1])
            if m.bias is not None:
                m.bias.copy_(tensors[2])
    return m


MODULE_SAMPLES = [s for s in CI if s.module is not None and not s.op[-2:-1].isdigit()]


@pytest.mark.parametrize("sample", MODULE_SAMPLES, ids=lambda s: s.id)
def test_module_and_convert(sample: OpSample) -> None:
    """The anyconv.nn module with the sample's arguments, and convert() of torch's module."""
    assert sample.module is not None
    name, _, _, fwd = sample.module
    if not hasattr(ann, name):  # Fold/Unfold/MaxUnpool*d land with another change
        pytest.skip(f"anyconv.nn has no {name} yet")
    tensors = sample.tensors(torch.float64)
    expected = sample.ref(*tensors)
    inputs = tensors[:2] if sample.op == "max_unpool" else tensors[:1]
    ours = _module(sample, tensors, getattr(ann, name))
    _check_output(ours(*inputs, **fwd), expected, torch.float64, f"{name} module")
    if sample.torch_module:
        converted = anyconv.nn.convert(_module(sample, tensors, getattr(torch.nn, name)))
        assert type(converted).__module__.startswith("anyconv."), f"convert kept {type(converted)}"
        _check_output(converted(*inputs, **fwd), expected, torch.float64, f"convert({name})")


@pytest.mark.parametrize("sample", GRADCHECK, ids=lambda s: s.id)
def test_gradcheck_gradgradcheck(sample: OpSample) -> None:
    tensors = sample.tensors(torch.float64)
    live = [i for i, t in enumerate(tensors) if t.is_floating_point() and i not in sample.nograd]

    def fn(*xs: torch.Tensor) -> torch.Tensor:
        full = list(tensors)
        for i, x in zip(live, xs):
            full[i] = x
        return first(_run(sample, tuple(full), None))

    inputs = tuple(tensors[i].clone().requires_grad_() for i in live)
    assert torch.autograd.gradcheck(fn, inputs)
    assert torch.autograd.gradgradcheck(fn, inputs)


@pytest.mark.parametrize("error", all_errors(), ids=lambda e: e.id)
def test_error_names_the_parameter(error: OpError) -> None:
    with pytest.raises(error.exc) as info:
        getattr(AF, error.op)(**error.kwargs)
    assert f"`{error.param}`" in str(info.value), str(info.value)
