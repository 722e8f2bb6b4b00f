"""``conv`` and its aliases against independent references: outputs and all gradients.

Every sample of ``samples.CONV_CASES`` (N = 1..4, batched and unbatched) runs with every
registered algorithm and ``auto`` in float64 (tight) and float32 (loose); a subset runs in
complex128/complex64 and bfloat16/float16. The reference is torch's conv on an explicitly
padded input for N <= 3 and the first-kernel-axis recursion for N = 4 (``references.py``).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import torch
import torch.nn.functional as F

import anyconv
import anyconv.functional as AF
from anyconv import algorithms
from differential import ALGORITHMS, compare, expected_rejection, rejection_reason
from references import operator_matrix, ref_conv
from samples import Sample, conv_samples
from tolerances import assert_close

SAMPLES = list(conv_samples())
SUBSET_NAMES = ("plain", "bias", "combo", "combo_reflect_same", "depthwise", "same_strided_dilated", "circular_int")
SUBSET = [s for s in SAMPLES if s.name in SUBSET_NAMES]


def _fn(sample: Sample, algo: str) -> Any:
    def fn(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        return AF.conv(x, w, b, algorithm=algo, **sample.kwargs)

    return fn


def _ref(sample: Sample) -> Any:
    def fn(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        return ref_conv(x, w, b, **sample.kwargs)

    return fn


def check(sample: Sample, algo: str, dtype: torch.dtype) -> None:
    tensors = sample.tensors(torch.complex128 if dtype.is_complex else torch.float64)
    reason = expected_rejection(sample, algo, *tensors[:2])
    if reason is not None:  # the algorithm must refuse, with its reason
        with pytest.raises(ValueError, match=re.escape(reason)):
            _fn(sample, algo)(*(t.to(dtype) for t in tensors))
        return
    compare(_fn(sample, algo), _ref(sample), tensors, dtype)


@pytest.mark.parametrize("algo", ALGORITHMS)
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.id)
def test_conv_matches_reference(sample: Sample, algo: str) -> None:
    check(sample, algo, torch.float64)


@pytest.mark.parametrize("algo", ALGORITHMS)
@pytest.mark.parametrize("sample", [s for s in SAMPLES if s.name in SUBSET_NAMES], ids=lambda s: s.id)
def test_conv_float32(sample: Sample, algo: str) -> None:
    check(sample, algo, torch.float32)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.id)
def test_conv_float32_auto(sample: Sample) -> None:
    check(sample, "auto", torch.float32)


@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64], ids=str)
@pytest.mark.parametrize("algo", ALGORITHMS)
@pytest.mark.parametrize("sample", SUBSET, ids=lambda s: s.id)
def test_conv_complex(sample: Sample, algo: str, dtype: torch.dtype) -> None:
    check(sample, algo, dtype)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("algo", ALGORITHMS)
@pytest.mark.parametrize("sample", [s for s in SUBSET if s.batched], ids=lambda s: s.id)
def test_conv_low_precision(sample: Sample, algo: str, dtype: torch.dtype) -> None:
    check(sample, algo, dtype)


@pytest.mark.parametrize("sample", [s for s in SAMPLES if s.name in SUBSET_NAMES + ("flip", "stride_per_dim")],
                         ids=lambda s: s.id)
def test_algorithms_agree(sample: Sample) -> None:
    """Every registered algorithm gives the same result as ``direct`` (float32, loose)."""
    x, w, b = sample.xwb(torch.float32)
    base = AF.conv(x, w, b, **{**sample.kwargs, "algorithm": "direct"})
    for name in algorithms.names():
        if expected_rejection(sample, name, x, w) is None:
            assert_close(AF.conv(x, w, b, **{**sample.kwargs, "algorithm": name}), base, torch.float32, name)


# ------------------------------------------------------------------------------------ aliases
ALIAS_SAMPLES = [s for s in SAMPLES if s.n <= 3 and s.name in ("plain", "bias", "combo", "pad_pairs", "same_strided")]


@pytest.mark.parametrize("sample", ALIAS_SAMPLES, ids=lambda s: s.id)
def test_aliases_positional_like_torch(sample: Sample) -> None:
    """``convNd(x, w, b, stride, padding, dilation, groups)`` positionally, as torch's."""
    x, w, b = sample.xwb(torch.float64)
    kw = dict(sample.kwargs)
    flip = kw.pop("flip", False)
    alias = getattr(AF, f"conv{sample.n}d")
    args = (x, w, b, kw.get("stride", 1), kw.get("padding", 0), kw.get("dilation", 1),
            kw.get("groups", 1))
    assert_close(alias(*args, flip=flip), ref_conv(x, w, b, **sample.kwargs), torch.float64)
    if sample.name == "plain":  # torch accepts these args too: compare with torch directly
        assert_close(alias(*args), getattr(F, f"conv{sample.n}d")(*args), torch.float64)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_alias_rejects_other_rank(n: int) -> None:
    alias = getattr(AF, f"conv{n}d")
    w = torch.zeros((1, 1) + (1,) * (n + 1))
    with pytest.raises(ValueError, match=rf"conv{n}d: `weight` must be a {n + 2}-d tensor"):
        alias(torch.zeros((1, 1) + (2,) * (n + 1)), w)


# ----------------------------------------------------------------------- operator matrix, N = 4
@pytest.mark.parametrize("kwargs", [{}, {"stride": (2, 1, 1, 2), "padding": 1}, {"dilation": (1, 2, 1, 1), "padding": "same"},
                                    {"padding": ((1, 0), (0, 1), 0, (2, 0)), "groups": 2}], ids=str)
def test_conv_4d_equals_operator_matrix(kwargs: dict[str, Any]) -> None:
    """conv(x).flatten() == M @ x.flatten() with M built entry by entry from the definition."""
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(4, 3, 4, 3, 3, dtype=torch.float64, generator=gen)  # unbatched (C, *L), N = 4
    w = torch.randn(2, 4 // kwargs.get("groups", 1), 2, 2, 1, 2, dtype=torch.float64, generator=gen)
    m = operator_matrix(w, x.shape, **kwargs)
    sample = Sample("conv", "matrix", tuple(x.shape), tuple(w.shape), None, kwargs, 4, False)
    for algo in ALGORITHMS:
        reason = expected_rejection(sample, algo, x, w)
        if reason is not None:
            with pytest.raises(ValueError, match=re.escape(reason)):
                AF.conv(x, w, algorithm=algo, **kwargs)
            continue
        assert_close(AF.conv(x, w, algorithm=algo, **kwargs).flatten(), m @ x.flatten(), torch.float64, algo)


# ------------------------------------------------------------------------ workspace and edges
@pytest.mark.parametrize("algo", ALGORITHMS)
def test_small_workspace_limit_tiles_and_keeps_results(algo: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a 1 MiB limit the work is split in many tiles; results and gradients are unchanged."""
    from anyconv.algorithms import _common

    count = {"tiles": 0}
    real_tiles = _common.tiles

    def counting(*args: Any) -> Any:
        for t in real_tiles(*args):
            count["tiles"] += 1
            yield t

    monkeypatch.setattr(_common, "tiles", counting)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 30, 30, dtype=torch.float64, generator=gen)
    w = torch.randn(4, 8, 5, 5, dtype=torch.float64, generator=gen)
    kwargs: dict[str, Any] = {"stride": 1, "padding": 2}
    with anyconv.workspace_limit(2**20):
        try:
            compare(lambda a, b: AF.conv(a, b, algorithm=algo, **kwargs), lambda a, b: F.conv2d(a, b, **kwargs),
                    (x, w), torch.float64)
        except ValueError as e:  # an algorithm may refuse (e.g. its buffers exceed the limit), with a reason
            assert algo != "auto" and rejection_reason(e, algo), e
            return
    if algo in ("direct", "im2col"):  # the algorithms built on the shared tile loop
        assert count["tiles"] > 6, "the small limit did not split the work"
    assert anyconv.get_workspace_limit() == 256 * 2**20


@pytest.mark.parametrize("algo", ALGORITHMS)
@pytest.mark.parametrize("k", [1, 3])
def test_batch_zero_gives_empty_output(algo: str, k: int) -> None:
    """Batch size 0: an empty output and empty/zero gradients, for every algorithm and kernel."""
    for n in (1, 2, 4):
        x = torch.zeros((0, 2) + (5,) * n, dtype=torch.float64, requires_grad=True)
        w = torch.ones((4, 1) + (k,) * n, dtype=torch.float64, requires_grad=True)
        sample = Sample("conv", "batch0", tuple(x.shape), tuple(w.shape), None, {"groups": 2, "padding": 1}, n, True)
        if expected_rejection(sample, algo, x, w) is not None:
            continue
        y = AF.conv(x, w, groups=2, padding=1, algorithm=algo)
        assert y.shape == (0, 4) + (5 + 3 - k,) * n
        gx, gw = torch.autograd.grad(y.sum(), (x, w), allow_unused=True)
        assert gx.shape == x.shape and (gw is None or not gw.any())


def test_output_keeps_dtype_and_device() -> None:
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.complex128):
        y = AF.conv(torch.ones(1, 1, 4, 4, dtype=dtype), torch.ones(1, 1, 2, 2, dtype=dtype))
        assert y.dtype == dtype and y.device == torch.device("cpu")


def test_noncontiguous_inputs() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 6, 9, 3, dtype=torch.float64, generator=gen).transpose(1, 3)[:, :, ::2]  # (2, 3, 5, 6)
    w = torch.randn(6, 4, 3, 2, dtype=torch.float64, generator=gen).transpose(0, 1)[:, :3]  # (4, 3, 3, 2)
    assert not x.is_contiguous() and not w.is_contiguous()
    for algo in ALGORITHMS:
        sample = Sample("conv", "noncontiguous", tuple(x.shape), tuple(w.shape), None, {"stride": (1, 2)}, 2, True)
        if expected_rejection(sample, algo, x, w) is None:
            compare(lambda a, b, algo=algo: AF.conv(a, b, stride=(1, 2), algorithm=algo),
                    lambda a, b: F.conv2d(a, b, stride=(1, 2)), (x, w), torch.float64)


@pytest.mark.parametrize("n", [5, 6, 8, 9])
def test_auto_any_n(n: int) -> None:
    """auto (and direct) serve N > 4; checked against the first-kernel-axis recursion."""
    gen = torch.Generator().manual_seed(n)
    x = torch.randn((1, 2) + (3, 2) * (n // 2) + (3,) * (n % 2), dtype=torch.float64, generator=gen)
    w = torch.randn((2, 2) + (2, 1) * (n // 2) + (2,) * (n % 2), dtype=torch.float64, generator=gen)
    kwargs: dict[str, Any] = {"stride": 2, "padding": "same"}
    expected = ref_conv(x, w, **kwargs)
    assert_close(AF.conv(x, w, **kwargs), expected, torch.float64, "auto")
    assert_close(AF.conv(x, w, algorithm="direct", **kwargs), expected, torch.float64, "direct")
