"""Pooling with ``ceil_mode=True`` and a dilated kernel larger than the padded input, against torch.

torch serves such calls whenever its output size ``ceil((in + 2p - (k - 1) d - 1) / s) + 1`` (a last
window starting in the end padding dropped) is at least 1: a window may reach beyond the end of the
input. API.md: anyconv serves them too, unless a window covers padding only (a ValueError naming
``padding``). Rows from the differential fuzzer (seed 7, indices 3106, 2334, 1183) plus a 1-d sweep
of every small size, kernel, stride, dilation and padding, values, indices and gradients.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F

import anyconv.functional as AF

Pair = tuple[Callable[[torch.Tensor], Any], Callable[[torch.Tensor], Any]]


def _rows() -> list[tuple[str, tuple[int, ...], Pair]]:
    return [
        ("max_dilated_1d", (1, 2, 4), (
            lambda x: AF.max_pool(x, (3,), padding=[0], dilation=2, ceil_mode=True, return_indices=True),
            lambda x: F.max_pool1d(x, 3, padding=0, dilation=2, ceil_mode=True, return_indices=True))),
        ("lp2d_kernel_3_on_2x2", (1, 2, 2, 2), (
            lambda x: AF.lp_pool2d(x, 3, [3, 3], stride=[], ceil_mode=True),
            lambda x: F.lp_pool2d(x, 3, (3, 3), ceil_mode=True))),
        ("avg2d_unbatched_divisor", (1, 2, 2), (
            lambda x: AF.avg_pool2d(x, (3, 3), padding=(0, 0), ceil_mode=True, count_include_pad=False,
                                    divisor_override=-2),
            lambda x: F.avg_pool2d(x, (3, 3), padding=(0, 0), ceil_mode=True, count_include_pad=False,
                                   divisor_override=-2))),
        ("avg2d_include_pad", (2, 3, 2, 3), (
            lambda x: AF.avg_pool2d(x, (5, 6), 3, padding=(1, 2), ceil_mode=True),
            lambda x: F.avg_pool2d(x, (5, 6), 3, padding=(1, 2), ceil_mode=True))),
        ("max3d_channels_last", (1, 2, 2, 3, 1), (
            lambda x: AF.max_pool3d(x.contiguous(memory_format=torch.channels_last_3d), (3, 4, 2), 2, (1, 0, 1),
                                    ceil_mode=True, return_indices=True),
            lambda x: F.max_pool3d(x, (3, 4, 2), 2, (1, 0, 1), ceil_mode=True, return_indices=True))),
    ]


def _check(ours: Any, ref: Any, x: torch.Tensor) -> None:
    if isinstance(ref, tuple):
        assert torch.equal(ours[1], ref[1])
        ours, ref = ours[0], ref[0]
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref)
    g = torch.randn_like(ref)
    (want,) = torch.autograd.grad(ref, x, g)
    (got,) = torch.autograd.grad(ours, x, g)
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize(("name", "shape", "pair"), _rows(), ids=[r[0] for r in _rows()])
def test_fuzzer_rows(name: str, shape: tuple[int, ...], pair: Pair) -> None:
    x = torch.rand(shape, dtype=torch.float64).add(0.1).requires_grad_()
    ours, ref = pair
    _check(ours(x), ref(x), x)


def _covers(i: int, k: int, s: int, d: int, p: int, o: int) -> bool:
    return all(any(0 <= j * s - p + q * d < i for q in range(k)) for j in range(o))


def _pair(kind: str, k: int, s: int, d: int, p: int) -> Pair:
    """``(torch, anyconv)`` 1-d pooling with ``ceil_mode=True``."""
    if kind == "max":
        return (lambda t: F.max_pool1d(t, k, s, p, d, ceil_mode=True, return_indices=True),
                lambda t: AF.max_pool(t, (k,), (s,), (p,), (d,), ceil_mode=True, return_indices=True))
    if kind == "avg":
        return (lambda t: F.avg_pool1d(t, k, s, p, ceil_mode=True),
                lambda t: AF.avg_pool(t, (k,), (s,), (p,), ceil_mode=True))
    if kind == "avg_exclude_pad":
        return (lambda t: F.avg_pool1d(t, k, s, p, ceil_mode=True, count_include_pad=False),
                lambda t: AF.avg_pool(t, (k,), (s,), (p,), ceil_mode=True, count_include_pad=False))
    if kind == "avg_divisor":
        return (lambda t: F.avg_pool2d(t.unsqueeze(-1), (k, 1), (s, 1), (p, 0), ceil_mode=True,
                                       divisor_override=3).squeeze(-1),
                lambda t: AF.avg_pool(t, (k,), (s,), (p,), ceil_mode=True, divisor_override=3))
    return (lambda t: F.lp_pool1d(t, 2.0, k, s, ceil_mode=True),
            lambda t: AF.lp_pool(t, 2.0, (k,), (s,), ceil_mode=True))


@pytest.mark.parametrize("kind", ["max", "avg", "avg_exclude_pad", "avg_divisor", "lp"])
def test_sweep_1d(kind: str) -> None:
    """Every in < 6, k < 6, s < 4, d < 4 (max), p <= k // 2: served exactly when torch serves and no
    window covers padding only, with torch's values, indices and gradients."""
    torch.manual_seed(0)
    served = 0
    for i, k, s, d, p in itertools.product(range(1, 6), range(1, 6), range(1, 4), range(1, 4), range(3)):
        if p > k // 2 or (kind != "max" and d != 1) or (kind == "lp" and p != 0):
            continue
        x = torch.rand(2, 3, i, dtype=torch.float64).add(0.1).requires_grad_()
        ref_fn, ours_fn = _pair(kind, k, s, d, p)
        try:
            ref = ref_fn(x)
        except RuntimeError:
            with pytest.raises(ValueError):
                ours_fn(x)
            continue
        o = (ref[0] if isinstance(ref, tuple) else ref).shape[-1]
        if not _covers(i, k, s, d, p, o):
            with pytest.raises(ValueError, match="padding"):
                ours_fn(x)
            continue
        _check(ours_fn(x), ref, x)
        served += 1
    assert served > 50


@pytest.mark.parametrize("shape, out", [((0, 2, 6, 7, 1), (6, 6, 2)), ((0, 1, 6, 6, 3), (3, 8, None)),
                                        ((0, 3, 5, 7), (3, 4)), ((0, 3, 7), (3,)), ((0, 2, 4, 4), (8, 8))])
def test_adaptive_avg_pool_on_an_empty_batch_like_torch(shape, out):
    # the averaging-matrix path viewed its product with -1 (fuzzer seed 7: 14610, 14707, 15069)
    x = torch.randn(shape, requires_grad=True)
    ref = getattr(F, f"adaptive_avg_pool{len(out)}d")(x, out)
    y = AF.adaptive_avg_pool(x, out)
    assert y.shape == ref.shape
    y.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape
