"""anyconv.nn.convert on a small torch CNN: equal outputs and gradients, weights kept, original untouched."""

from __future__ import annotations

import copy

import pytest
import torch

import anyconv
from anyconv import nn as anynn

TIGHT = {"atol": 1e-10, "rtol": 1e-10}


class SmallCNN(torch.nn.Module):
    """Conv, BN, ReLU, strided/padded/'same' convs, a transposed conv, Conv1d/Conv3d, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1),
            torch.nn.BatchNorm2d(8),
            torch.nn.ReLU(),
            torch.nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=2, bias=False),
            torch.nn.ReLU(),
            torch.nn.Conv2d(8, 6, (3, 2), padding="same", dilation=(1, 2), padding_mode="reflect"),
        )
        self.up = torch.nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1)
        self.seq = torch.nn.Conv1d(4, 4, 3, padding=1, padding_mode="circular")
        self.vol = torch.nn.Conv3d(1, 2, 3, padding=1)
        self.head = torch.nn.Linear(4 + 4 * 8 + 2, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.up(self.features(x))  # (B, 4, 8, 8)
        s = self.seq(y.mean(2)).mean(2)  # (B, 4)
        v = self.vol(x[:, :1].unsqueeze(1)[..., :4, :4, :4]).mean((2, 3, 4))  # (B, 2)
        return self.head(torch.cat([s, y.mean(3).flatten(1), v], 1))  # (B, 4 + 32 + 2)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    m = SmallCNN().double()
    with torch.no_grad():  # non-trivial BN statistics
        m(torch.randn(4, 3, 8, 8, dtype=torch.float64))
    return m


@pytest.mark.parametrize("train", [False, True])
def test_convert_small_cnn_equal_outputs_and_gradients(train):
    torch_model = _model().train(train)
    before = copy.deepcopy(torch_model.state_dict())
    converted = anynn.convert(torch_model)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    ref_model = copy.deepcopy(torch_model)  # so BN running stats update identically in train mode
    y_ref = ref_model(x)
    y = converted(x)
    torch.testing.assert_close(y, y_ref, **TIGHT)
    assert converted.training == train
    g = torch.randn(y.shape, dtype=torch.float64)
    (y * g).sum().backward()
    (y_ref * g).sum().backward()
    ref_params = dict(ref_model.named_parameters())
    for name, p in converted.named_parameters():
        torch.testing.assert_close(p.grad, ref_params[name].grad, **TIGHT)
    # the torch model is unchanged: same classes, same state, no gradients, and no shared storage
    assert type(torch_model.features[0]) is torch.nn.Conv2d and type(torch_model.up) is torch.nn.ConvTranspose2d
    for k, v in torch_model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in torch_model.parameters())
    assert converted.features[0].weight.data_ptr() != torch_model.features[0].weight.data_ptr()


def test_convert_swaps_classes_and_keeps_weights():
    torch_model = _model()
    converted = anynn.convert(torch_model, algorithm="direct")
    swapped = {
        "features.0": anynn.Conv2d,
        "features.3": anynn.Conv2d,
        "features.5": anynn.Conv2d,
        "up": anynn.ConvTranspose2d,
        "seq": anynn.Conv1d,
        "vol": anynn.Conv3d,
    }
    modules = dict(converted.named_modules())
    for name, cls in swapped.items():
        assert type(modules[name]) is cls, name
        assert modules[name].algorithm == "direct"
        assert repr(modules[name]).endswith("algorithm='direct')")
    assert type(modules["features.1"]) is torch.nn.BatchNorm2d
    assert type(modules["head"]) is torch.nn.Linear
    assert isinstance(modules["features.0"], torch.nn.Conv2d)
    assert list(converted.state_dict()) == list(torch_model.state_dict())
    for k, v in torch_model.state_dict().items():
        assert torch.equal(converted.state_dict()[k], v), k
    x = torch.randn(1, 3, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(converted.eval()(x), torch_model.eval()(x), **TIGHT)


def test_converted_layer_repr_and_state_dict_round_trip():
    t = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1, padding_mode="replicate")
    c = anynn.convert(torch.nn.Sequential(t))[0]
    assert repr(c) == repr(t)
    back = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1, padding_mode="replicate")
    back.load_state_dict(c.state_dict())
    x = torch.randn(1, 3, 7, 7)
    torch.testing.assert_close(back(x), t(x))
    torch.testing.assert_close(c(x), t(x), atol=1e-5, rtol=1e-4)


def test_convert_output_size_forward_of_transposed_layer():
    t = torch.nn.ConvTranspose1d(2, 3, 3, stride=3, padding=1).double()
    c = anynn.convert(t)  # a bare layer converts too
    assert type(c) is anynn.ConvTranspose1d
    x = torch.randn(2, 2, 4, dtype=torch.float64)
    torch.testing.assert_close(c(x, output_size=[11]), t(x, output_size=[11]), **TIGHT)


def test_convert_errors():
    with pytest.raises(TypeError, match="convert: `module` must be a torch.nn.Module"):
        anynn.convert("resnet")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="convert: `algorithm` must be one of"):
        anynn.convert(torch.nn.Conv2d(1, 1, 1), algorithm="fastest")


def test_convert_reaches_every_torch_conv_class():
    for torch_cls, any_cls in anyconv.nn.conv.TORCH_EQUIVALENTS.items():
        assert issubclass(any_cls, torch_cls)
        assert any_cls.__module__.startswith("anyconv.nn")
