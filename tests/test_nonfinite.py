"""NaN and Inf land where torch puts them, whatever algorithm serves the call.

Random NaN/+Inf/-Inf are injected into the input, the weight or the output gradient; the output and
both gradients must have the NaN, +Inf and -Inf masks of torch's. The reference is torch on the
explicitly zero-padded input (zero padding is data: a non-finite weight times a padded zero is NaN, as
in torch's reference path; torch's oneDNN path leaves padded zeros out, so torch's own answer with
``padding=`` depends on the batch size). Algorithms checked: ``auto`` and every algorithm that keeps
torch's positions by construction or by its own check (``winograd``, ``fft`` recompute a non-finite
result exactly); ``positions``, ``matrix``, ``depthwise`` and ``native``'s nested and 3-D forms, when
named, compute their own arithmetic (``auto`` never gives them a non-finite call: ``auto.hazard``).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import anyconv
import anyconv.functional as AF
from anyconv.algorithms import auto, native

TORCH = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
EXACT = ("auto", "direct", "im2col", "fft", "winograd", "kn2row", "shifted")
#: (name, x shape, w shape, kwargs): N = 1..3, grouped, depthwise, strided, a large 1-D kernel
CASES = [
    ("1d", (2, 4, 30), (3, 4, 3), dict(padding=1)),
    ("2d", (2, 4, 12, 12), (4, 4, 3, 3), dict(padding=1)),
    ("2d-depthwise", (1, 8, 12, 12), (8, 1, 3, 3), dict(padding=1, groups=8)),
    ("2d-strided", (2, 4, 12, 12), (6, 2, 5, 5), dict(padding=2, groups=2, stride=2)),
    ("3d", (1, 2, 6, 6, 6), (3, 2, 3, 3, 3), dict(padding=1)),
    ("1d-large", (1, 2, 200), (2, 2, 41), dict(padding=20)),
]
WHERE = ("x", "w", "gy")


def _masks(t: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return torch.isnan(t), torch.isposinf(t), torch.isneginf(t)


def assert_same_nonfinite(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    for name, a, e in zip(("NaN", "+Inf", "-Inf"), _masks(actual), _masks(expected)):
        assert torch.equal(a, e), f"{what}: {name} at {int(a.sum())} positions, torch {int(e.sum())} ({int((a != e).sum())} differ)"


def inject(t: torch.Tensor, count: int, gen: torch.Generator) -> torch.Tensor:
    """``t`` with ``count`` random elements set to NaN, +Inf or -Inf."""
    t = t.clone()
    flat = t.view(-1)
    idx = torch.randperm(flat.numel(), generator=gen)[:count]
    flat[idx] = torch.tensor([float("nan"), float("inf"), float("-inf")])[torch.randint(0, 3, (count,), generator=gen)]
    return t


def run_case(xs: tuple[int, ...], ws: tuple[int, ...], kw: dict, algorithm: str, where: str, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    n = len(xs) - 2
    x, w = torch.randn(xs, generator=gen), torch.randn(ws, generator=gen)
    if where == "x":
        x = inject(x, 1, gen)
    if where == "w":
        w = inject(w, 1, gen)
    x.requires_grad_()
    w.requires_grad_()
    ref_kw = dict(kw)
    pad = ref_kw.pop("padding")
    r = TORCH[n](F.pad(x, [pad] * (2 * n)), w, **ref_kw)
    y = AF.conv(x, w, algorithm=algorithm, **kw)
    gy = torch.randn(r.shape, generator=gen)
    if where == "gy":
        gy = inject(gy, 2, gen)
    if where != "gy":
        assert_same_nonfinite(y.detach(), r.detach(), f"{algorithm} output ({where} non-finite)")
    dx, dw = torch.autograd.grad(y, (x, w), gy)
    rx, rw = torch.autograd.grad(r, (x, w), gy)
    assert_same_nonfinite(dx, rx, f"{algorithm} grad_input ({where} non-finite)")
    assert_same_nonfinite(dw, rw, f"{algorithm} grad_weight ({where} non-finite)")
    # the sample tells positions apart: some result of torch's is partly finite, partly not
    assert any(bool(torch.isfinite(t).any() and not torch.isfinite(t).all()) for t in (r, rx, rw))


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("algorithm", EXACT)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_like_torch(case: tuple, algorithm: str, where: str) -> None:
    _, xs, ws, kw = case
    x, w = torch.empty(xs), torch.empty(ws)
    try:
        AF.conv(x, w, algorithm=algorithm, **kw)
    except ValueError as e:  # an algorithm that cannot serve the sample says why
        assert "cannot serve" in str(e)
        return
    for seed in range(2):
        run_case(xs, ws, kw, algorithm, where, seed)


def test_resnet_3x3_one_inf_is_its_receptive_field() -> None:
    """The issue's case: one Inf in a ResNet 3x3 layer's input gives exactly the 576 Inf of its
    receptive field (64 output channels x 3 x 3), by Winograd (named or chosen) as by torch."""
    x, w = torch.randn(1, 64, 28, 28), torch.randn(64, 64, 3, 3)
    x[0, 3, 10, 10] = float("inf")
    r = F.conv2d(x, w, padding=1)
    for algorithm in ("auto", "winograd", "fft"):
        y = AF.conv(x, w, padding=1, algorithm=algorithm)
        assert_same_nonfinite(y, r, algorithm)
        assert int(torch.isinf(y).sum()) == 576 and not bool(torch.isnan(y).any())


def test_large_kernel_fft_keeps_one_inf_local() -> None:
    x, w = torch.randn(1, 2, 4000), torch.randn(2, 2, 801)
    x[0, 1, 1234] = float("-inf")
    r = F.conv1d(x, w)
    for algorithm in ("auto", "fft"):
        assert_same_nonfinite(AF.conv(x, w, algorithm=algorithm), r, algorithm)


@pytest.mark.skipif(native.unavailable() is not None, reason="the native kernel is not available")
@pytest.mark.parametrize("where", WHERE)
def test_depthwise_13x13_native_nested(where: str) -> None:
    """A 13x13 depthwise layer (native's nested Winograd form where the build has it): ``auto`` moves a
    non-finite call to an exact algorithm, forward and both gradients."""
    run_case((2, 32, 20, 20), (32, 1, 13, 13), dict(padding=6, groups=32), "auto", where, 0)


def test_explain_says_so() -> None:
    x, w = torch.randn(1, 64, 28, 28), torch.randn(64, 64, 3, 3)
    assert "non-finite" not in anyconv.explain_algorithm(x, w, padding=1, backward=False)
    x[0, 0, 0, 0] = float("nan")
    text = anyconv.explain_algorithm(x, w, padding=1, backward=False)
    assert "non-finite" in text


def test_finite_check() -> None:
    assert auto.finite(torch.randn(100), torch.randn(3, 3))
    for bad in (float("nan"), float("inf"), float("-inf")):
        t = torch.randn(100)
        t[17] = bad
        assert not auto.finite(torch.ones(2), t)
        assert not auto.finite(t.half())


NAMED = ("positions", "matrix", "depthwise", "native")


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("algorithm", NAMED)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_named_algorithms_like_torch(case: tuple, algorithm: str, where: str) -> None:
    """Named, the algorithms whose own sums misplace NaN/Inf (``auto.hazard``) give a call with
    non-finite operands to ``auto.exact`` (``algorithms.run``): torch's positions."""
    _, xs, ws, kw = case
    try:
        AF.conv(torch.empty(xs), torch.empty(ws), algorithm=algorithm, **kw)
    except ValueError as e:
        assert "cannot serve" in str(e)
        return
    for seed in range(2):
        run_case(xs, ws, kw, algorithm, where, seed)


def test_fuzz_positions_reflect() -> None:
    """The fuzzer's call (seed 7, index 2076): ``positions`` with reflect padding and a NaN in the input."""
    gen = torch.Generator().manual_seed(2076)
    x, w = inject(torch.randn(2, 6, 5, 4, generator=gen), 2, gen).double(), torch.randn(6, 2, 2, 1, dtype=torch.float64)
    r = F.conv2d(F.pad(x, (0, 0, 0, 0), mode="reflect"), w, dilation=(1, 2), groups=3)
    y = AF.conv(x, w, dilation=(1, 2), groups=3, padding="valid", padding_mode="reflect", algorithm="positions")
    assert_same_nonfinite(y, r, "positions")
    assert bool(torch.isfinite(r).any()) and not bool(torch.isfinite(r).all())
