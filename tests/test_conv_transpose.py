"""``conv_transpose`` and its aliases against independent references: outputs and all gradients.

Every sample of ``samples.CONV_T_CASES`` (N = 1..4, batched and unbatched) runs with every
registered algorithm and ``auto`` in float64 and float32; a subset in complex and half
precision. Reference: torch's ``conv_transpose1d/2d/3d`` without padding, then an explicit crop
(N <= 3); for N = 4 the vector-Jacobian product of the recursive N-d correlation.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F

import anyconv
import anyconv.functional as AF
from anyconv import algorithms
from differential import ALGORITHMS, compare, rejection_reason
from references import ref_conv_transpose
from samples import Sample, conv_transpose_samples
from tolerances import assert_close

SAMPLES = list(conv_transpose_samples())
SUBSET_NAMES = ("plain", "bias", "combo", "same_stride_gt_kernel", "depthwise", "output_size")
SUBSET = [s for s in SAMPLES if s.name in SUBSET_NAMES]


def _fn(sample: Sample, algo: str) -> Any:
    def fn(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        return AF.conv_transpose(x, w, b, algorithm=algo, **sample.kwargs)

    return fn


def _ref(sample: Sample) -> Any:
    def fn(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        return ref_conv_transpose(x, w, b, **sample.kwargs)

    return fn


def check(sample: Sample, algo: str, dtype: torch.dtype) -> None:
    tensors = sample.tensors(torch.complex128 if dtype.is_complex else torch.float64)
    try:
        compare(_fn(sample, algo), _ref(sample), tensors, dtype)
    except ValueError as e:  # an algorithm may refuse a call, but only with a reason
        if algo == "auto" or not rejection_reason(e, algo):
            raise


@pytest.mark.parametrize("algo", ALGORITHMS)
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.id)
def test_conv_transpose_matches_reference(sample: Sample, algo: str) -> None:
    check(sample, algo, torch.float64)


@pytest.mark.parametrize("algo", ALGORITHMS)
@pytest.mark.parametrize("sample", SUBSET, ids=lambda s: s.id)
def test_conv_transpose_float32(sample: Sample, algo: str) -> None:
    check(sample, algo, torch.float32)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.id)
def test_conv_transpose_float32_auto(sample: Sample) -> None:
    check(sample, "auto", torch.float32)


@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64], ids=str)
@pytest.mark.parametrize("algo", ALGORITHMS)
@pytest.mark.parametrize("sample", SUBSET, ids=lambda s: s.id)
def test_conv_transpose_complex(sample: Sample, algo: str, dtype: torch.dtype) -> None:
    check(sample, algo, dtype)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("algo", ALGORITHMS)
@pytest.mark.parametrize("sample", [s for s in SUBSET if s.batched], ids=lambda s: s.id)
def test_conv_transpose_low_precision(sample: Sample, algo: str, dtype: torch.dtype) -> None:
    check(sample, algo, dtype)


def test_output_size_shapes() -> None:
    """Each reachable output_size gives exactly that size (torch's ConvTranspose rule)."""
    x, w = torch.randn(1, 2, 4, 5), torch.randn(2, 3, 3, 2)
    for size in ([9, 10], [10, 11], [9, 11]):
        y = AF.conv_transpose(x, w, stride=2, output_size=size)
        assert tuple(y.shape) == (1, 3, *size)
        t = torch.nn.ConvTranspose2d(2, 3, (3, 2), stride=2, bias=False)
        t.weight.data = w
        assert_close(y, t(x, output_size=size), torch.float32)
    # full (B, C, *spatial) output_size also accepted, as torch's modules do
    assert AF.conv_transpose(x, w, stride=2, output_size=[1, 3, 10, 11]).shape == (1, 3, 10, 11)


@pytest.mark.parametrize("sample", [s for s in SAMPLES if s.n <= 3 and s.name in ("plain", "bias", "combo", "pad_per_dim",
                                                                                 "output_padding")],
                         ids=lambda s: s.id)
def test_aliases_positional_like_torch(sample: Sample) -> None:
    """``conv_transposeNd(x, w, b, stride, padding, output_padding, groups, dilation)`` as torch's."""
    x, w, b = sample.xwb(torch.float64)
    kw = sample.kwargs
    args = (x, w, b, kw.get("stride", 1), kw.get("padding", 0), kw.get("output_padding", 0),
            kw.get("groups", 1), kw.get("dilation", 1))
    ours = getattr(AF, f"conv_transpose{sample.n}d")(*args)
    assert_close(ours, ref_conv_transpose(x, w, b, **kw), torch.float64)
    pad = kw.get("padding", 0)
    if isinstance(pad, int) or all(isinstance(p, int) for p in pad):  # forms torch accepts too
        assert_close(ours, getattr(F, f"conv_transpose{sample.n}d")(*args), torch.float64, "torch")


@pytest.mark.parametrize("algo", ALGORITHMS)
@pytest.mark.parametrize("k", [1, 2])
def test_batch_zero_gives_empty_output(algo: str, k: int) -> None:
    for n in (1, 2, 4):
        x = torch.zeros((0, 2) + (3,) * n, dtype=torch.float64, requires_grad=True)
        w = torch.ones((2, 3) + (k,) * n, dtype=torch.float64, requires_grad=True)
        try:
            y = AF.conv_transpose(x, w, stride=2, algorithm=algo)
        except ValueError as e:
            assert algo != "auto" and rejection_reason(e, algo), e
            continue
        assert y.shape == (0, 3) + (4 + k,) * n
        gx, gw = torch.autograd.grad(y.sum(), (x, w), allow_unused=True)
        assert gx.shape == x.shape and (gw is None or not gw.any())


def test_algorithms_agree() -> None:
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 4, 3, 4, 3, generator=gen)
    w = torch.randn(4, 3, 2, 3, 2, generator=gen)
    kw: dict[str, Any] = {"stride": (2, 1, 3), "padding": ((1, 0), 1, (0, 2)), "groups": 2, "dilation": (1, 2, 1)}
    w = w[:, :1].repeat(1, 1, 1, 1, 1)  # (C_in, C_out // groups = 1, *k)
    base = AF.conv_transpose(x, w, algorithm="direct", **kw)
    for name in algorithms.names():
        try:
            assert_close(AF.conv_transpose(x, w, algorithm=name, **kw), base, torch.float32, name)
        except ValueError as e:
            assert rejection_reason(e, name), e


def test_small_workspace_limit_keeps_results() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 16, 16, dtype=torch.float64, generator=gen)
    w = torch.randn(8, 4, 5, 5, dtype=torch.float64, generator=gen)
    for algo in ALGORITHMS:
        with anyconv.workspace_limit(2**20):
            try:
                compare(lambda a, b, algo=algo: AF.conv_transpose(a, b, stride=2, padding=1, algorithm=algo),
                        lambda a, b: F.conv_transpose2d(a, b, stride=2, padding=1), (x, w), torch.float64)
            except ValueError as e:
                assert algo != "auto" and rejection_reason(e, algo), e
