"""Summary: the learning material's CIFAR-10 table reproduced exactly; mult-adds against torch's flop counter."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import anyconv
import anyconv.nn as ann

nn = torch.nn

# From the learning material (torchinfo's output for its CIFAR-10 model, input [3, 3, 32, 32]).
EXPECTED_ROWS = """\
CIFAR10Model                             [3, 10]                   --
├─Sequential: 1-1                        [3, 64, 1, 1]             --
│    └─Conv2d: 2-1                       [3, 32, 30, 30]           896
│    └─BatchNorm2d: 2-2                  [3, 32, 30, 30]           64
│    └─ReLU: 2-3                         [3, 32, 30, 30]           --
│    └─MaxPool2d: 2-4                    [3, 32, 15, 15]           --
│    └─Conv2d: 2-5                       [3, 64, 13, 13]           18,496
│    └─BatchNorm2d: 2-6                  [3, 64, 13, 13]           128
│    └─ReLU: 2-7                         [3, 64, 13, 13]           --
│    └─MaxPool2d: 2-8                    [3, 64, 6, 6]             --
│    └─AdaptiveAvgPool2d: 2-9            [3, 64, 1, 1]             --
├─Flatten: 1-2                           [3, 64]                   --
├─Sequential: 1-3                        [3, 10]                   --""".splitlines()


class CIFAR10Model(nn.Module):
    def __init__(self, lib=nn):
        super().__init__()
        self.feature_extractor = nn.Sequential(
            lib.Conv2d(3, 32, 3), nn.BatchNorm2d(32), nn.ReLU(), lib.MaxPool2d(2, 2),
            lib.Conv2d(32, 64, 3), nn.BatchNorm2d(64), nn.ReLU(), lib.MaxPool2d(2, 2),
            lib.AdaptiveAvgPool2d((1, 1)),
        )
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(nn.Linear(64, 10))

    def forward(self, x):
        return self.classifier(self.flatten(self.feature_extractor(x)))


def _rows(s):
    return [r.rstrip() for r in s.rows()]


@pytest.mark.parametrize("lib", [nn, ann], ids=["torch", "anyconv"])
def test_cifar_table_reproduced_exactly(lib):
    s = anyconv.summary(CIFAR10Model(lib), input_size=(3, 3, 32, 32), col_names=("output_size", "num_params"), wide=True)
    got = _rows(s)
    assert got[: len(EXPECTED_ROWS)] == EXPECTED_ROWS
    fitted = anyconv.summary(CIFAR10Model(lib), input_size=(3, 3, 32, 32), col_names=("output_size", "num_params"))
    assert [r.split() for r in fitted.rows()] == [r.split() for r in got]  # same cells, columns sized to fit
    assert got[-1].split() == ["│", "└─Linear:", "2-10", "[3,", "10]", "650"]
    assert s.total_params == 896 + 64 + 18496 + 128 + 650 == s.trainable_params
    assert "Total params: 20,234" in str(s) and "Receptive" not in str(s)


def _flops(model, shape):
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(shape))
    return counter.get_total_flops()


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.Sequential(nn.Conv2d(4, 8, 3, stride=2, padding=1, dilation=2, bias=False), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=4, bias=False)), (2, 4, 17, 15)),
    (lambda: nn.Sequential(nn.ConvTranspose2d(4, 6, 4, stride=2, padding=1, groups=2, bias=False), nn.ConvTranspose2d(6, 3, 3, dilation=2, bias=False)), (2, 4, 5, 6)),
    (lambda: nn.Sequential(nn.Conv3d(2, 4, (1, 3, 2), padding="same", bias=False), nn.ConvTranspose3d(4, 2, 3, stride=(1, 2, 3), output_padding=(0, 1, 2), dilation=1, bias=False)), (1, 2, 4, 5, 6)),
    (lambda: nn.Sequential(nn.Conv1d(3, 6, 5, stride=3, groups=3, bias=False), nn.Flatten(), nn.Linear(6 * 6, 7, bias=False)), (4, 3, 20)),
    (lambda: nn.Sequential(nn.Conv1d(3, 6, 5, bias=False), nn.Linear(16, 5, bias=False)), (2, 3, 20)),
], ids=["conv-groups-dilation", "conv_transpose-groups", "3d-transpose-output_padding", "conv1d-linear", "linear-3d"])
def test_true_mult_adds_equal_half_of_torch_flop_count(make, shape):
    # torch's flop counter counts the weight products only (no bias): the models have none
    model = make()
    s = anyconv.summary(model, shape)
    assert 2 * s.true_mult_adds == _flops(model, shape)
    assert s.total_params == sum(p.numel() for p in model.parameters())


def test_resnet_like_receptive_field_and_algorithm_columns():
    model = nn.Sequential(nn.Conv2d(3, 8, 7, stride=2, padding=3), nn.MaxPool2d(3, 2, 1), nn.Conv2d(8, 8, 3, padding=1))
    s = anyconv.summary(model, (1, 3, 64, 64))
    rf = [la.receptive_field for la in s.layers if la.leaf]
    assert rf == [(7.0, 7.0), (11.0, 11.0), (19.0, 19.0)]
    algos = [la.algorithm for la in s.layers if la.leaf]
    assert algos[0] in anyconv.algorithms.names() and algos[1] is None
    text = str(s)
    assert "Receptive Field" in text and "19x19" in text and "Estimated Total Size (MB)" in text


def test_frozen_params_and_shared_modules():
    conv = nn.Conv1d(2, 2, 3, padding=1)
    model = nn.Sequential(conv, nn.ReLU(), conv)
    for p in conv.parameters():
        p.requires_grad_(False)
    s = anyconv.summary(model, (1, 2, 8))
    assert s.total_params == 14 and s.trainable_params == 0
    assert "(recursive)" in str(s)


def test_bad_arguments():
    with pytest.raises(ValueError, match="input_size"):
        anyconv.summary(nn.Conv2d(1, 1, 3), (1, 1))
    with pytest.raises(ValueError, match="col_names"):
        anyconv.summary(nn.Conv2d(1, 1, 3), (1, 1, 5, 5), col_names=("params",))
    with pytest.raises(TypeError, match="model"):
        anyconv.summary(None, (1, 1, 5, 5))


def test_batch_norm_at_batch_one_and_data_dependent_models_leave_the_model_unchanged():
    class DataDependent(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 4, 3)
            self.bn = nn.BatchNorm2d(4)

        def forward(self, x):
            y = self.bn(self.conv(x))
            return y * float(y.abs().max() >= 0)  # needs real data: the meta run fails, the real one runs

    model = DataDependent().train()
    before = model.bn.running_mean.clone()
    s = anyconv.summary(model, (1, 2, 3, 3))
    assert [la.output_shape for la in s.layers if la.leaf] == [(1, 4, 1, 1), (1, 4, 1, 1)]
    assert model.training and model.bn.training
    assert torch.equal(model.bn.running_mean, before)


def test_depth_limit_collapses_containers_like_torchinfo():
    inner = nn.Sequential(nn.Conv1d(1, 2, 3), nn.Sequential(nn.Conv1d(2, 2, 3)))
    s = anyconv.summary(nn.Sequential(inner), (1, 1, 9), depth=2, col_names=("num_params", "mult_adds"))
    rows = [r.split() for r in s.rows()]
    # Conv1d(2, 2, 3) on length 7: 2 * 5 * 2 * 3 products + 2 * 5 bias additions (torchinfo counts them)
    assert rows[-1][:3] == ["│", "└─Sequential:", "2-2"] and rows[-1][3:] == ["14", "70"]
    assert len(s.layers) == 4 and s.total_params == 8 + 14


def test_module_list_gets_a_row_and_a_refused_input_is_a_value_error():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Conv1d(1, 2, 3), nn.Conv1d(2, 2, 3)])
            self.head = nn.Linear(4, 1)

        def forward(self, x):
            for b in self.blocks:
                x = b(x)
            return self.head(x)

    s = anyconv.summary(Net(), (1, 1, 8), col_names=("output_size", "num_params"))
    assert [r.split() for r in s.rows()][:4] == [
        ["Net", "[1,", "2,", "1]", "--"],
        ["├─ModuleList:", "1-1", "--", "--"],
        ["│", "└─Conv1d:", "2-1", "[1,", "2,", "6]", "8"],
        ["│", "└─Conv1d:", "2-2", "[1,", "2,", "4]", "14"],
    ]
    with pytest.raises(ValueError, match=r"summary: `input_size` must be a shape the model accepts"):
        anyconv.summary(Net(), (1, 1, 9))
