"""anyconv.summary against torchinfo 1.8.0 itself: every zoo model and torchvision-style torch.nn models.

torchinfo runs the real model on the CPU; anyconv traces a meta copy. With the same columns and
``wide=True`` (torchinfo's layout), the whole text must equal torchinfo's, except the rows that
anyconv marks ``*`` (their mult-adds cell is the true count) and the lines that explain them.
"""

from __future__ import annotations

import re

import pytest
import torch

import anyconv
from anyconv.models import create_model, list_models

torchinfo = pytest.importorskip("torchinfo")
nn = torch.nn
COLS = ("output_size", "num_params", "mult_adds")
ZOO_INPUTS = {"mnist1d_cnn": (2, 1, 40), "lenet5": (2, 1, 28, 28), "unet": (2, 1, 32, 32), "alexnet": (1, 3, 64, 64),
              "resnet101": (1, 3, 32, 32), "resnet152": (1, 3, 32, 32)}


class Block(nn.Module):
    """torchvision's BasicBlock, written with torch.nn layers."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + identity)


class TinyResNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 7, 2, 3, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(3, 2, 1))
        self.layer1 = nn.Sequential(Block(16, 16, 1), Block(16, 16, 1))
        self.layer2 = nn.Sequential(Block(16, 32, 2), Block(32, 32, 1))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.avgpool(self.layer2(self.layer1(self.stem(x)))), 1))


class Decoder(nn.Module):
    """Where torchinfo's rule is wrong: transposed convs, a Linear on 3 dims, GroupNorm; plus a shared
    module, a frozen layer and a ModuleList."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ModuleList([nn.ConvTranspose2d(8, 8, 4, 2, 1), nn.ConvTranspose2d(8, 4, 3, 2, 1, 1, groups=2)])
        self.norm = nn.GroupNorm(2, 4)
        self.mix = nn.Conv2d(4, 4, 1)
        self.head = nn.Linear(16, 3)
        self.frozen = nn.Conv2d(4, 4, 3, padding=1)
        self.frozen.requires_grad_(False)

    def forward(self, x):
        for up in self.up:
            x = up(x)
        x = self.mix(self.mix(self.frozen(self.norm(x))))
        return self.head(x.flatten(2)[..., :16])


def _both(model, shape, **kw):
    theirs = torchinfo.summary(model, input_size=shape, col_names=COLS, verbose=0, device="cpu")
    ours = anyconv.summary(model, shape, col_names=COLS, wide=True, **kw)
    return theirs, ours


def _check_equal(model, shape):
    theirs, ours = _both(model, shape)
    assert (ours.total_params, ours.trainable_params, ours.total_mult_adds) == (
        theirs.total_params, theirs.trainable_params, theirs.total_mult_adds)
    assert (ours.input_bytes, ours.pass_bytes, ours.params_bytes) == (
        theirs.total_input, theirs.total_output_bytes, theirs.total_param_bytes)
    # torchinfo 1.8.0 on Python >= 3.11 prints its unit enum as "(Units.MEGABYTES)": it means "(M)"
    want = re.sub(r"\(Units\.(\w)\w*\)", r"(\1)", str(theirs)).splitlines()
    got = str(ours).splitlines()
    got = [ln for ln in got if not ln.startswith(("True mult-adds", "  * "))]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if g.endswith("*"):  # the true count in place of torchinfo's: the other cells still equal
            assert g.split()[:-1] == w.split()[:-1] and g != w
        elif "ModuleList:" in w:  # torchinfo shows one shared row object: the last index, "(recursive)"
            assert g.split(":")[0] == w.split(":")[0]
        else:
            assert g == w
    marked = sum(ln.endswith("*") for ln in got)
    assert (ours.true_mult_adds != ours.total_mult_adds) == (marked > 0)
    return ours


def _fits(model, shape, width=100):
    text = str(anyconv.summary(model, shape))
    assert max(len(ln) for ln in text.splitlines()) <= width, text
    return text


@pytest.mark.parametrize("name", list_models())
def test_zoo_model_equals_torchinfo(name):
    torch.manual_seed(0)
    model = create_model(name)
    shape = ZOO_INPUTS.get(name, (2, 3, 32, 32))
    _check_equal(model, shape)
    _fits(model, shape)


def test_resnet_like_torch_model_equals_torchinfo_and_fits():
    model = TinyResNet()
    ours = _check_equal(model, (2, 3, 32, 32))
    assert ours.notes == ("norm",)  # batch norm: torchinfo counts its affine per sample
    bn = [la for la in ours.layers if la.type == "BatchNorm2d"]
    assert all(la.true_mult_adds == 2 * torch.Size(la.output_shape).numel() for la in bn)
    text = _fits(model, (2, 3, 32, 32))
    assert "Receptive Field" in text and "Algorithm" in text


def test_decoder_marks_where_torchinfo_is_wrong_and_counts_truly():
    model = Decoder()
    shape = (2, 8, 3, 3)
    ours = _check_equal(model, shape)
    assert set(ours.notes) == {"conv_transpose", "norm", "linear"}
    rows = {la.name: la for la in ours.layers}
    # every weight tap of a transposed conv runs once per input position: B * C_in * H * W * C_out/g * k * k
    assert rows["up.0"].true_mult_adds == 2 * 8 * 3 * 3 * 8 * 16 + 2 * 8 * 6 * 6
    assert rows["up.1"].true_mult_adds == 2 * 8 * 6 * 6 * 2 * 9 + 2 * 4 * 12 * 12
    assert rows["head"].true_mult_adds == 2 * 4 * (16 * 3 + 3)  # (2, 4, 16) @ (16, 3), per row
    assert rows["frozen"].trainable_params == 0 and ours.trainable_params == ours.total_params - 148
    text = str(ours)
    assert "(148)" in text and "(recursive)" in text and "True mult-adds" in text


def test_layout_options():
    model = TinyResNet()
    default = _fits(model, (1, 3, 32, 32))
    narrow = str(anyconv.summary(model, (1, 3, 32, 32), max_width=70))
    assert max(map(len, narrow.splitlines())) <= 70 and "not shown: over 70 characters" in narrow
    wide = str(anyconv.summary(model, (1, 3, 32, 32), wide=True))
    assert max(map(len, wide.splitlines())) > 150 and "Algorithm" in wide
    plain = str(anyconv.summary(model, (1, 3, 32, 32), extras=False))
    assert "Receptive Field" not in plain and "Algorithm" not in plain and "Receptive Field" in default
    head = str(anyconv.summary(model, (1, 3, 32, 32), col_names=COLS, col_width=16)).splitlines()[1]
    starts = [head.index(title) for title in ("Output Shape", "Param #", "Mult-Adds")]
    assert [b - a for a, b in zip(starts, starts[1:])] == [17, 17]  # 16 wide plus the space between
    for bad in ({"col_width": 0}, {"max_width": 10}, {"depth": -1}, {"col_names": "mult_adds"}):
        with pytest.raises(ValueError, match=f"summary: `{next(iter(bad))}`"):
            anyconv.summary(model, (1, 3, 32, 32), **bad)
