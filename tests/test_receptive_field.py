"""Receptive fields checked against the gradient of one output unit (positive weights, no cancellation)."""

from __future__ import annotations

import pytest
import torch

import anyconv.nn as ann
from anyconv.tools import receptive_field

nn = torch.nn


def _positive(model: nn.Module) -> nn.Module:
    model = model.double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.rand_like(p) + 0.5)
    return model


def _measured(model: nn.Module, shape: tuple[int, ...], unit: tuple[int, ...]) -> list[tuple[int, int]]:
    """Per spatial dim, the (first, last) input position with a nonzero gradient of output[0, 0, *unit]."""
    x = torch.ones(shape, dtype=torch.float64, requires_grad=True)
    y = model(x)
    y[(0, 0, *unit)].backward()
    nz = x.grad[0].abs().sum(0).nonzero()
    return [(int(nz[:, i].min()), int(nz[:, i].max())) for i in range(nz.shape[1])]


def _middle(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(s // 2 for s in shape[2:])


CASES = [
    ("conv stack 1-d", lambda: nn.Sequential(nn.Conv1d(1, 2, 3), nn.ReLU(), nn.Conv1d(2, 2, 5, stride=2), nn.Conv1d(2, 1, 3)), (1, 1, 64)),
    ("dilation + padding 2-d", lambda: nn.Sequential(nn.Conv2d(1, 2, 3, padding=2, dilation=2), nn.Conv2d(2, 1, (3, 5), stride=(2, 1), padding=(1, 2))), (1, 1, 40, 40)),
    ("avg pool + conv", lambda: nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.AvgPool2d(3, 2, 1), nn.Conv2d(2, 1, 3)), (1, 1, 48, 48)),
    ("anyconv asymmetric padding", lambda: nn.Sequential(ann.Conv2d(1, 2, 4, padding=((1, 2), (0, 3))), ann.AvgPool2d(2, padding=((1, 0), (0, 1))), ann.Conv2d(2, 1, 3, dilation=3)), (1, 1, 50, 50)),
    ("anyconv 'same' stride 2, 3-d", lambda: nn.Sequential(ann.Conv3d(1, 2, 3, stride=2, padding="same"), ann.Conv3d(2, 1, 2, stride=2, padding="same")), (1, 1, 20, 20, 20)),
    ("anyconv 4-d", lambda: nn.Sequential(ann.ConvNd(1, 1, (3, 2, 2, 3), stride=(1, 2, 1, 2), dilation=(2, 1, 1, 1))), (1, 1, 12, 12, 8, 12)),
    ("down then up (conv_transpose)", lambda: nn.Sequential(nn.Conv1d(1, 2, 3, stride=2, padding=1), nn.ConvTranspose1d(2, 1, 4, stride=2, padding=1)), (1, 1, 40)),
]


@pytest.mark.parametrize("name, make, shape", CASES, ids=[c[0] for c in CASES])
def test_field_matches_gradient_of_one_unit(name, make, shape):
    torch.manual_seed(0)
    model = _positive(make())
    fields = receptive_field(model, shape)
    last = fields[-1]
    out = model(torch.ones(shape, dtype=torch.float64)).shape
    assert last.output_shape == tuple(out)
    unit = _middle(tuple(out))
    got = _measured(model, shape, unit)
    for i, (lo, hi) in enumerate(got):
        start = last.start[i] + unit[i] * last.jump[i]
        assert (lo, hi) == (start, start + last.size[i] - 1), (i, last)


def test_residual_add_takes_the_union():
    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv1d(1, 1, 3, padding=1)
            self.b = nn.Conv1d(1, 1, 3, padding=1)
            self.c = nn.Conv1d(1, 1, 7, padding=3)

        def forward(self, x):
            return self.b(self.a(x)) + self.c(x)

    model = _positive(Res())
    fields = receptive_field(model, (1, 1, 30))
    assert [f.name for f in fields] == ["a", "b", "c"]
    measured = _measured(model, (1, 1, 30), (15,))
    assert measured == [(12, 18)]  # both branches reach 7 wide around 15
    assert fields[-1].size == (7,)


def test_max_pool_geometry_equals_avg_pool_geometry():
    # the gradient of a max pool is sparse, so max pools are checked through an avg pool of the same geometry
    mx = receptive_field(nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(3, 2, 1, dilation=2)), (1, 1, 32, 32))
    av = receptive_field(nn.Sequential(nn.Conv2d(1, 1, 3), ann.AvgPool2d(3, 2, 1, dilation=2)), (1, 1, 32, 32))
    assert (mx[-1].size, mx[-1].jump, mx[-1].start) == (av[-1].size, av[-1].jump, av[-1].start)
    model = _positive(nn.Sequential(nn.Conv2d(1, 1, 3), ann.AvgPool2d(3, 2, 1, dilation=2)))
    got = _measured(model, (1, 1, 32, 32), (7, 7))
    start = av[-1].start[0] + 7 * av[-1].jump[0]
    assert got == [(start, start + av[-1].size[0] - 1)] * 2


def test_transposed_conv_size_is_the_largest_over_units():
    model = _positive(nn.Sequential(nn.ConvTranspose1d(1, 1, 5, stride=3, padding=1, dilation=2)))
    f = receptive_field(model, (1, 1, 12))[-1]
    out = model(torch.ones(1, 1, 12, dtype=torch.float64)).shape[-1]
    widths = []
    for o in range(4, out - 4):
        (lo, hi), = _measured(model, (1, 1, 12), (o,))
        widths.append(hi - lo + 1)
    assert max(widths) == f.size[0]
    assert f.jump[0] == pytest.approx(1 / 3)


def test_flatten_and_linear_lose_the_field_and_adaptive_pool_covers_all():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3))
    fields = receptive_field(model, (2, 1, 9, 9))
    assert fields[1].size == (9, 9)
    assert fields[2].size is None and fields[3].size is None
    assert "-" in str(fields[3])


def test_bad_input_is_a_value_error():
    with pytest.raises(ValueError, match="input_shape"):
        receptive_field(nn.Conv2d(1, 1, 3), (1, 1))
    with pytest.raises(TypeError, match="model"):
        receptive_field("resnet", (1, 1, 8, 8))


def test_random_chains_match_the_gradient():
    import random

    rng = random.Random(7)
    for _ in range(25):
        layers = []
        for _ in range(rng.randint(1, 4)):
            k, s, d = rng.randint(1, 4), rng.randint(1, 3), rng.randint(1, 3)
            if rng.random() < 0.7:
                pad = ((rng.randint(0, 3), rng.randint(0, 3)),)
                layers.append(ann.Conv1d(1, 1, k, stride=s, dilation=d, padding=pad))
            else:  # a pooling window must keep at least one input element
                pad = ((rng.randint(0, k - 1), rng.randint(0, k - 1)),)
                layers.append(ann.AvgPool1d(k, s, padding=pad, dilation=d))
        model = _positive(nn.Sequential(*layers))
        shape = (1, 1, 300)
        last = receptive_field(model, shape)[-1]
        unit = (last.output_shape[-1] // 2,)
        start = last.start[0] + unit[0] * last.jump[0]
        if start < 0 or start + last.size[0] > shape[-1]:
            continue  # the field must lie inside the input to be measured whole
        assert _measured(model, shape, unit) == [(start, start + last.size[0] - 1)], layers
