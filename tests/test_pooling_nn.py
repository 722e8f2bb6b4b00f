"""anyconv.nn pooling modules: drop-in for torch.nn (constructor, repr, forward), and convert()."""

from __future__ import annotations

import pytest
import torch

import anyconv
import anyconv.nn as ann

CTORS = [
    ("MaxPool1d", (3,), {"stride": 2, "padding": 1, "return_indices": True}, (2, 3, 9)),
    ("MaxPool2d", (3, 2, 1), {"dilation": 1, "ceil_mode": True}, (2, 3, 9, 8)),
    ("MaxPool3d", ((2, 3, 2),), {}, (3, 6, 7, 5)),
    ("AvgPool1d", (3,), {"padding": 1, "count_include_pad": False}, (2, 3, 9)),
    ("AvgPool2d", (3, 2, 1), {"ceil_mode": True, "divisor_override": 4}, (2, 3, 9, 8)),
    ("AvgPool3d", (2,), {"count_include_pad": False}, (2, 3, 4, 5, 6)),
    ("LPPool1d", (2, 3), {"stride": 2}, (2, 3, 9)),
    ("LPPool2d", (3, (2, 3)), {"ceil_mode": True}, (2, 3, 9, 8)),
    ("LPPool3d", (1.5, 2), {}, (2, 3, 4, 5, 6)),
    ("AdaptiveAvgPool1d", (4,), {}, (2, 3, 9)),
    ("AdaptiveAvgPool2d", ((3, None),), {}, (2, 3, 9, 8)),
    ("AdaptiveAvgPool3d", (2,), {}, (3, 4, 5, 6)),
    ("AdaptiveMaxPool1d", (4, True), {}, (2, 3, 9)),
    ("AdaptiveMaxPool2d", ((3, 5),), {}, (2, 3, 9, 8)),
    ("AdaptiveMaxPool3d", (2,), {"return_indices": True}, (3, 4, 5, 6)),
]


@pytest.mark.parametrize("name,args,kwargs,shape", CTORS, ids=[c[0] for c in CTORS])
def test_drop_in_for_torch(name, args, kwargs, shape):
    ours = getattr(ann, name)(*args, **kwargs)
    ref = getattr(torch.nn, name)(*args, **kwargs)
    assert isinstance(ours, getattr(torch.nn, name))
    assert repr(ours) == repr(ref)
    assert ours.algorithm == "auto" and getattr(ann, name)(*args, **kwargs, algorithm="direct").algorithm == "direct"
    assert ours.state_dict().keys() == ref.state_dict().keys()
    torch.manual_seed(0)
    x = torch.rand(shape, dtype=torch.float64) + 0.1
    a, b = ours(x), ref(x)
    if isinstance(b, tuple):
        torch.testing.assert_close(a[0], b[0], atol=1e-12, rtol=1e-12)
        assert torch.equal(a[1], b[1])
    else:
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)


def test_nd_modules_and_every_padding_form():
    x = torch.randn(1, 2, 5, 6, 4, 3)
    assert ann.MaxPoolNd((2, 3, 2, 1), stride=2, padding="same")(x).shape == (1, 2, 3, 3, 2, 2)
    assert ann.AvgPoolNd((2, 2, 2, 2), padding="causal", stride=1, dilation=2)(x).shape == (1, 2, 5, 6, 4, 3)
    assert ann.MaxPool2d(3, 2, "same_lower")(torch.randn(6, 5, 3)).shape == (6, 3, 2)
    assert ann.AvgPool1d(3, 1, ((2, 0),))(torch.randn(2, 5)).shape == (2, 5)
    assert ann.LPPool2d(2, 3, 1, padding=((1, 1), (2, 0)), dilation=(1, 2))(torch.rand(2, 6, 4)).shape == (2, 6, 2)
    assert "padding=same" in repr(ann.AvgPool2d(3, padding="same"))


def test_convert_swaps_every_torch_pooling_layer():
    model = torch.nn.Sequential(
        torch.nn.MaxPool2d(3, 1, 1), torch.nn.AvgPool2d(2, ceil_mode=True), torch.nn.LPPool2d(2, 2),
        torch.nn.AdaptiveMaxPool2d(3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.ReLU(),
    )
    conv = anyconv.nn.convert(model, algorithm="direct")
    for layer, orig in zip(conv, model):
        if isinstance(orig, torch.nn.ReLU):
            assert type(layer) is torch.nn.ReLU
            continue
        assert type(layer).__module__ == "anyconv.nn.pooling" and isinstance(layer, type(orig))
        assert layer.algorithm == "direct" and repr(layer) == repr(orig)
    assert type(model[0]) is torch.nn.MaxPool2d  # the original is untouched
    x = torch.rand(2, 3, 13, 11, dtype=torch.float64)
    torch.testing.assert_close(conv(x), model(x), atol=1e-12, rtol=1e-12)
    one_d = anyconv.nn.convert(torch.nn.Sequential(torch.nn.AvgPool1d(3), torch.nn.LPPool1d(1, 2), torch.nn.MaxPool3d(2)))
    assert [type(m).__module__ for m in one_d] == ["anyconv.nn.pooling"] * 3
    torch.testing.assert_close(one_d[0](x[0]), torch.nn.AvgPool1d(3)(x[0]))


def test_modules_backward_and_unbatched():
    x = torch.rand(3, 8, 8, dtype=torch.float64, requires_grad=True)
    for m in (ann.MaxPool2d(2), ann.AvgPool2d(3, 1, 1), ann.AdaptiveMaxPool2d(3), ann.LPPool2d(2, 2)):
        assert torch.autograd.gradcheck(m, (x,))
