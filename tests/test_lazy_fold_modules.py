"""Lazy convolution modules and Fold/Unfold against torch's: parameters, outputs, gradients, convert."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch.nn.parameter import UninitializedParameter

import anyconv

LAZY = [
    # (class name, constructor args, constructor kwargs, input shape)
    ("LazyConv1d", (6, 3), {}, (2, 4, 9)),
    ("LazyConv1d", (6, 3), {"stride": 2, "bias": False, "padding_mode": "circular", "padding": 1}, (4, 9)),
    ("LazyConv2d", (6, 3), {"groups": 2, "padding": "same", "dilation": 2}, (2, 4, 7, 8)),
    ("LazyConv2d", (4, (2, 3)), {"stride": (2, 1), "padding": (1, 0), "padding_mode": "reflect"}, (3, 6, 7)),
    ("LazyConv3d", (4, 2), {"stride": 2, "padding": 1}, (1, 3, 5, 5, 6)),
    ("LazyConvTranspose1d", (6, 3), {"stride": 2, "output_padding": 1}, (2, 4, 5)),
    ("LazyConvTranspose2d", (6, 3), {"groups": 2, "padding": 1, "dilation": 2, "bias": False}, (2, 4, 5, 4)),
    ("LazyConvTranspose2d", (3, (3, 2)), {"stride": (2, 3), "padding": (1, 0)}, (4, 5, 4)),
    ("LazyConvTranspose3d", (4, 2), {"stride": 2}, (1, 3, 3, 4, 3)),
]


def _pair(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    ref = getattr(torch.nn, name)(*args, dtype=torch.float64, **kwargs)
    torch.manual_seed(0)
    mine = getattr(anyconv.nn, name)(*args, dtype=torch.float64, **kwargs)
    return ref, mine


@pytest.mark.parametrize("row", LAZY, ids=[f"{r[0]}-{r[2]}" for r in LAZY])
def test_lazy_matches_torch(row: Any) -> None:
    name, args, kwargs, shape = row
    ref, mine = _pair(name, args, kwargs)
    assert isinstance(mine.weight, UninitializedParameter) and mine.has_uninitialized_params()
    assert isinstance(mine, type(ref).cls_to_become)  # e.g. a torch.nn.Conv2d, as torch's lazy one
    assert list(mine.state_dict()) == list(ref.state_dict())
    assert repr(mine) == repr(ref)
    x = torch.randn(shape, dtype=torch.float64)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    torch.manual_seed(1)
    want = ref(xa)
    torch.manual_seed(1)
    got = mine(xb)
    assert type(mine) is getattr(anyconv.nn, name.replace("Lazy", ""))  # cls_to_become
    assert not any(isinstance(p, UninitializedParameter) for p in mine.parameters())
    assert mine.in_channels == ref.in_channels
    assert {k: v.shape for k, v in mine.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    for (ka, a), (kb, b) in zip(mine.named_parameters(), ref.named_parameters()):
        assert ka == kb and torch.equal(a, b), ka  # the same draws as torch's initialisation
    torch.testing.assert_close(got, want)
    gy = torch.randn_like(want)
    want_g = torch.autograd.grad(want, [xa, *ref.parameters()], gy)
    got_g = torch.autograd.grad(got, [xb, *mine.parameters()], gy)
    for a, b in zip(got_g, want_g):
        torch.testing.assert_close(a, b)


def test_lazy_initialize_parameters_and_state_dict() -> None:
    x = torch.randn(2, 5, 8, 8)
    torch.manual_seed(3)
    ref = torch.nn.LazyConvTranspose2d(4, 3, stride=2)
    ref.initialize_parameters(x)
    torch.manual_seed(3)
    mine = anyconv.nn.LazyConvTranspose2d(4, 3, stride=2)
    mine.initialize_parameters(x)
    assert torch.equal(mine.weight, ref.weight) and torch.equal(mine.bias, ref.bias)
    assert mine.weight.shape == (5, 4, 3, 3)
    # loading a state_dict materialises an uninitialised module (torch's LazyModuleMixin)
    fresh = anyconv.nn.LazyConv2d(6, 3, padding="same")
    src = torch.nn.Conv2d(5, 6, 3, padding=1)
    fresh.load_state_dict(src.state_dict())
    assert torch.equal(fresh.weight, src.weight)
    torch.testing.assert_close(fresh(x), src(x))


def test_lazy_anyconv_padding_forms_and_algorithm() -> None:
    """Forms torch's lazy modules refuse: strided 'same', (before, after) pairs, algorithm=."""
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64)
    m = anyconv.nn.LazyConv2d(4, 3, stride=2, padding="same", algorithm="direct", dtype=torch.float64)
    y = m(x)
    assert type(m) is anyconv.nn.Conv2d and m.algorithm == "direct"
    # 'same' at stride 2: out = ceil(in / 2); total padding (o - 1) * s + k - in, extra at the end
    torch.testing.assert_close(y, F.conv2d(F.pad(x, (0, 1, 1, 1)), m.weight, m.bias, stride=2))
    t = anyconv.nn.LazyConvTranspose1d(2, 4, stride=2, padding=((1, 2),), dtype=torch.float64)
    xt = torch.randn(1, 3, 5, dtype=torch.float64)
    yt = t(xt)
    full = F.conv_transpose1d(xt, t.weight, stride=2)  # (5 - 1) * 2 + 4 = 12, cropped 1 and 2
    torch.testing.assert_close(yt, full[..., 1:-2] + t.bias.reshape(1, -1, 1))


BAD = [
    (lambda: anyconv.nn.LazyConv2d(0, 3), ValueError, "out_channels"),
    (lambda: anyconv.nn.LazyConv2d(4, 3, groups=3), ValueError, "groups"),
    (lambda: anyconv.nn.LazyConv2d(4, 3, padding="full"), ValueError, "padding"),
    (lambda: anyconv.nn.LazyConv1d(4, 3, stride=0), ValueError, "stride"),
    (lambda: anyconv.nn.LazyConv3d(4, 3, algorithm="nope"), ValueError, "algorithm"),
    (lambda: anyconv.nn.LazyConvTranspose2d(4, 3, stride=2, output_padding=2), ValueError, "output_padding"),
    (lambda: anyconv.nn.LazyConvTranspose1d(4, 3, padding_mode="reflect"), ValueError, "padding_mode"),
    (lambda: anyconv.nn.LazyConv2d(4, 3, groups=2)(torch.randn(1, 3, 5, 5)), ValueError, "input"),
    (lambda: anyconv.nn.LazyConv2d(4, 3)(torch.randn(1, 1, 3, 5, 5)), ValueError, "input"),
    (lambda: anyconv.nn.LazyConvTranspose2d(4, 3)(torch.randn(1, 0, 5, 5)), ValueError, "input"),
    (lambda: anyconv.nn.LazyConv1d(4, 3)(torch.ones(1, 2, 5, dtype=torch.int64)), TypeError, "input"),
]


@pytest.mark.parametrize("i", range(len(BAD)))
def test_lazy_errors_are_named(i: int) -> None:
    call, exc, param = BAD[i]
    with pytest.raises(exc, match=f"`{param}`"):
        call()


def test_convert_lazy_torch_modules() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.LazyConv2d(4, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.LazyConvTranspose2d(2, 2, stride=2))
    converted = anyconv.nn.convert(model, algorithm="direct")
    assert [type(m).__name__ for m in converted] == ["LazyConv2d", "ReLU", "LazyConvTranspose2d"]
    assert type(converted[0]).__module__ == "anyconv.nn.lazy"
    x = torch.randn(2, 3, 6, 6)
    torch.manual_seed(1)
    want = model(x)
    torch.manual_seed(1)
    got = converted(x)
    assert type(converted[0]) is anyconv.nn.Conv2d and type(converted[2]) is anyconv.nn.ConvTranspose2d
    assert converted[0].algorithm == "direct"
    torch.testing.assert_close(got, want)
    again = anyconv.nn.convert(model)  # initialised torch lazy layers are torch's Conv*d now
    assert type(again[0]) is anyconv.nn.Conv2d
    torch.testing.assert_close(again(x), want)


FOLD = [
    # (Unfold kwargs, input shape)
    ({"kernel_size": 3}, (2, 3, 6, 7)),
    ({"kernel_size": (2, 3), "dilation": (2, 1), "padding": 1, "stride": (1, 2)}, (2, 3, 6, 7)),
    ({"kernel_size": 2, "stride": 2}, (3, 6, 8)),  # unbatched image, as torch
]


@pytest.mark.parametrize("row", FOLD, ids=[str(r[0]) for r in FOLD])
def test_fold_unfold_match_torch(row: Any) -> None:
    kwargs, shape = row
    mine, ref = anyconv.nn.Unfold(**kwargs), torch.nn.Unfold(**kwargs)
    assert repr(mine) == repr(ref) and isinstance(mine, torch.nn.Unfold)
    x = torch.randn(shape, dtype=torch.float64)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    want, got = ref(xa), mine(xb)
    torch.testing.assert_close(got, want)
    gy = torch.randn_like(want)
    torch.testing.assert_close(torch.autograd.grad(got, xb, gy)[0], torch.autograd.grad(want, xa, gy)[0])
    fold_ref = torch.nn.Fold(shape[-2:], **kwargs)
    fold_mine = anyconv.nn.Fold(shape[-2:], **kwargs)
    assert repr(fold_mine) == repr(fold_ref)
    ca, cb = want.detach().clone().requires_grad_(), want.detach().clone().requires_grad_()
    fw, fg = fold_ref(ca), fold_mine(cb)
    torch.testing.assert_close(fg, fw)
    gx = torch.randn_like(fw)
    torch.testing.assert_close(torch.autograd.grad(fg, cb, gx)[0], torch.autograd.grad(fw, ca, gx)[0])


def _one_hot(c: int, kernel: tuple[int, ...]) -> torch.Tensor:
    """Weights ``(C * K, 1, *kernel)`` picking kernel offset ``j`` into channel ``c * K + j``."""
    k = math.prod(kernel)
    return torch.eye(k, dtype=torch.float64).reshape(k, 1, *kernel).repeat(c, 1, *[1] * len(kernel))


def test_fold_unfold_3d_against_torch_conv() -> None:
    """3-d Unfold is a grouped conv with one-hot kernels; 3-d Fold is its transposed conv."""
    x = torch.randn(2, 3, 5, 6, 4, dtype=torch.float64)
    kernel, kw = (2, 3, 2), {"stride": (1, 2, 2), "padding": (1, 0, 1), "dilation": (2, 1, 1)}
    w = _one_hot(3, kernel)
    want = F.conv3d(x, w, stride=kw["stride"], padding=kw["padding"], dilation=kw["dilation"], groups=3)
    got = anyconv.nn.Unfold(kernel, **kw)(x)
    torch.testing.assert_close(got, want.flatten(2))
    back = F.conv_transpose3d(want, w, stride=kw["stride"], padding=kw["padding"], dilation=kw["dilation"],
                              groups=3, output_padding=(0, 1, 0))  # the 6 of dim 1 is not reached by k3 s2
    torch.testing.assert_close(anyconv.nn.Fold((5, 6, 4), kernel, **kw)(got), back)
    assert anyconv.nn.Unfold(2)(torch.randn(1, 2, 3, 3, 3, 3)).shape == (1, 32, 16)  # N = input.dim() - 2


def test_convert_swaps_fold_unfold() -> None:
    model = torch.nn.Sequential(torch.nn.Unfold(2), torch.nn.Fold((4, 4), 2))
    converted = anyconv.nn.convert(model)
    assert [type(m) for m in converted] == [anyconv.nn.Unfold, anyconv.nn.Fold]
    x = torch.randn(1, 2, 4, 4)
    torch.testing.assert_close(converted(x), model(x))
