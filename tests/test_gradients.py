"""gradcheck AND gradgradcheck in float64 for conv, conv_transpose, unfold and fold.

Every registered algorithm (``anyconv.algorithms.names()`` at collection time, so algorithms
added later are covered) and ``auto`` run over a representative subset of the sample tables
with torch's fast (random-projection) gradcheck; full Jacobian checks run on the smallest
samples. An algorithm that refuses a sample must raise ValueError with its reason: the tests
check that instead of skipping.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

import anyconv.functional as AF
from anyconv import algorithms
from anyconv.core.spec import CorrSpec
from differential import ALGORITHMS, expected_rejection, rejection_reason
from samples import Sample, conv_samples, conv_transpose_samples

CONV_CASES = ("bias", "combo", "combo_reflect_same", "depthwise", "causal_strided_dilated", "circular_beyond_size")
CONV_T_CASES = ("bias", "combo", "same_stride_gt_kernel", "output_padding_lt_dilation", "output_size")


def _two_ns(cases: tuple[str, ...], samples: list[Sample]) -> list[Sample]:
    """Case i at N = i % 4 + 1 and (i + 2) % 4 + 1 (batched; ``bias`` also unbatched): every N
    appears for every algorithm at half the cost of the full product."""
    keep = []
    for s in samples:
        i = cases.index(s.name) if s.name in cases else -1
        if i >= 0 and s.n in (i % 4 + 1, (i + 2) % 4 + 1) and (s.batched or s.name == "bias"):
            keep.append(s)
    return keep


CONV = _two_ns(CONV_CASES, list(conv_samples(tiny=True)))
CONV_T = _two_ns(CONV_T_CASES, list(conv_transpose_samples(tiny=True)))
SMALLEST = [s for s in conv_samples(tiny=True) if s.id in ("conv-bias-1d-b", "conv-combo_reflect_same-1d-u")] + [
    s for s in conv_transpose_samples(tiny=True) if s.id in ("conv_transpose-bias-1d-b", "conv_transpose-combo-1d-u")]


def _fn(sample: Sample, algo: str) -> Any:
    op = AF.conv if sample.op == "conv" else AF.conv_transpose
    return lambda *t: op(*t, **{**sample.kwargs, "algorithm": algo})


def _checks(sample: Sample, algo: str, fast: bool) -> None:
    tensors = sample.tensors(torch.float64, requires_grad=True)
    fn = _fn(sample, algo)
    if sample.op == "conv":
        reason = expected_rejection(sample, algo, *tensors[:2])
        if reason is not None:
            with pytest.raises(ValueError, match=re.escape(reason)):
                fn(*tensors)
            return
    try:
        assert gradcheck(fn, tensors, fast_mode=fast)
        assert gradgradcheck(fn, tensors, fast_mode=fast)
    except ValueError as e:  # conv_transpose: a refusal must carry the algorithm's reason
        if sample.op == "conv" or algo == "auto" or not rejection_reason(e, algo):
            raise


@pytest.mark.parametrize("algo", ALGORITHMS)
@pytest.mark.parametrize("sample", CONV + CONV_T, ids=lambda s: s.id)
def test_gradcheck_fast(sample: Sample, algo: str) -> None:
    _checks(sample, algo, fast=True)


@pytest.mark.parametrize("algo", ALGORITHMS)
@pytest.mark.parametrize("sample", SMALLEST, ids=lambda s: s.id)
def test_gradcheck_full(sample: Sample, algo: str) -> None:
    _checks(sample, algo, fast=False)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_unfold_fold_gradcheck(n: int) -> None:
    gen = torch.Generator().manual_seed(n)
    size = (4, 3, 2, 2)[:n]
    kwargs = {"kernel_size": (2, 2, 1, 2)[:n], "stride": (2, 1, 1, 1)[:n], "padding": (1, 0, 1, 0)[:n],
              "dilation": (1, 2, 1, 1)[:n]}
    x = torch.randn((1, 2 if n < 4 else 1, *size), dtype=torch.float64, generator=gen, requires_grad=True)
    assert gradcheck(lambda t: AF.unfold(t, **kwargs), (x,))
    assert gradgradcheck(lambda t: AF.unfold(t, **kwargs), (x,))
    cols = torch.randn(AF.unfold(x, **kwargs).shape, dtype=torch.float64, generator=gen, requires_grad=True)
    assert gradcheck(lambda t: AF.fold(t, list(size), **kwargs), (cols,))
    assert gradgradcheck(lambda t: AF.fold(t, list(size), **kwargs), (cols,))


# (input shape, weight shape, kwargs): calls that stress different algorithm limits
PROBES: list[tuple[tuple[int, ...], tuple[int, ...], dict[str, Any]]] = [
    ((1, 2, 6), (2, 2, 3), {}),
    ((1, 2, 5, 5), (2, 1, 2, 2), {"stride": 2, "groups": 2}),
    ((1, 1, 40, 40), (1, 1, 3, 3), {"dilation": 2}),
    ((1, 2, 3, 3, 3, 3), (1, 2, 3, 3, 3, 3), {"padding": 1}),
    ((1, 1) + (1,) * 21, (1, 1) + (1,) * 21, {}),  # 21 spatial dims
]


@pytest.mark.parametrize("algo", algorithms.names())
def test_refusals_name_their_reason(algo: str) -> None:
    """For probe calls: if ``supports`` refuses the core call, asking explicitly raises with that
    reason; otherwise the call gives torch-checked (via ``direct``/``auto``) results."""
    gen = torch.Generator().manual_seed(0)
    for xs, ws, kw in PROBES:
        x = torch.randn(xs, dtype=torch.float64, generator=gen)
        w = torch.randn(ws, dtype=torch.float64, generator=gen)
        n = w.dim() - 2
        spec = CorrSpec(
            tuple(kw.get("stride", 1) for _ in range(n)), tuple(kw.get("dilation", 1) for _ in range(n)),
            ((kw.get("padding", 0),) * 2,) * n, kw.get("groups", 1),
        )
        x_padded = torch.nn.functional.pad(x, [kw.get("padding", 0)] * (2 * n))
        reason = algorithms.get(algo).supports(x_padded, w, CorrSpec(spec.stride, spec.dilation, ((0, 0),) * n, spec.groups)) \
            if kw.get("padding") else algorithms.get(algo).supports(x, w, spec)
        if reason is not None:
            assert isinstance(reason, str) and reason
            with pytest.raises(ValueError, match=rf"algorithm={algo!r} cannot serve this call: {re.escape(reason)}"):
                AF.conv(x, w, algorithm=algo, **kw)
        else:
            torch.testing.assert_close(AF.conv(x, w, algorithm=algo, **kw), AF.conv(x, w, algorithm="auto", **kw),
                                       rtol=1e-9, atol=1e-10)


def test_direct_refuses_more_than_20_dims() -> None:
    """A concrete refusal: ``direct`` (einsum letters) serves at most 20 spatial dims; auto still works."""
    x = torch.ones((1, 1) + (1,) * 21, dtype=torch.float64)
    w = torch.full((1, 1) + (1,) * 21, 2.0, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"algorithm='direct' cannot serve this call: at most 20 spatial dims"):
        AF.conv(x, w, algorithm="direct")
    assert AF.conv(x, w).flatten().tolist() == [2.0]
