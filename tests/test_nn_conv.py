"""anyconv.nn convolution modules against torch.nn: init, state_dict, repr, forward, gradients.

Torch-expressible configurations are compared with torch's module directly; padding forms
torch lacks (strided 'same', 'same_lower', 'causal', (before, after) pairs) are compared with
torch's module with padding 0 applied to an input padded explicitly here (F.pad), the pads
computed in this file from API.md's formulas. ConvNd with N = 4 is checked against an
independent reference (a sum of torch Conv3d over the first kernel axis). Transposed modules:
test_nn_conv_transpose.py.
"""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F

import anyconv
from anyconv import nn as anynn
from nn_helpers import (
    ANY_CONV,
    TIGHT,
    TORCH_CONV,
    check_same,
    explicit_pairs,
    pair,
    same_pads,
)

CONV_CASES = [
    (1, 2, 3, 3, {}, (7,)),
    (1, 2, 4, 3, {"stride": 2, "padding": 1, "bias": False}, (8,)),
    (1, 4, 2, 4, {"dilation": 2, "padding": 3, "groups": 2}, (9,)),
    (1, 2, 2, 4, {"padding": "same"}, (6,)),
    (1, 2, 2, 3, {"padding": "valid", "padding_mode": "reflect"}, (6,)),
    (1, 2, 3, 3, {"padding": 2, "padding_mode": "reflect"}, (6,)),
    (1, 2, 3, 3, {"padding": 2, "padding_mode": "replicate", "stride": 2}, (6,)),
    (1, 2, 3, 3, {"padding": 2, "padding_mode": "circular", "dilation": 2}, (6,)),
    (2, 3, 4, 3, {"padding": 1}, (5, 6)),
    (2, 2, 4, (3, 2), {"stride": (2, 1), "padding": (1, 0), "dilation": (1, 2)}, (7, 6)),
    (2, 4, 4, 3, {"groups": 4, "padding": 1, "bias": False}, (5, 5)),
    (2, 2, 3, (2, 3), {"padding": "same", "dilation": 2}, (6, 7)),
    (2, 2, 3, 3, {"padding": (1, 2), "padding_mode": "reflect"}, (5, 5)),
    (2, 2, 3, 3, {"padding": 1, "padding_mode": "circular", "stride": 2}, (5, 6)),
    (2, 2, 3, 3, {"padding": "same", "padding_mode": "replicate"}, (4, 5)),
    (3, 2, 3, (2, 3, 1), {"stride": 2, "padding": 1}, (4, 5, 3)),
    (3, 4, 2, 2, {"groups": 2, "dilation": (1, 2, 1)}, (3, 5, 4)),
    (3, 2, 2, 3, {"padding": 1, "padding_mode": "reflect"}, (3, 4, 3)),
]

# (n, in, out, kernel, stride, dilation, padding, padding_mode, input spatial): padding torch lacks
EXTRA_PADDING_CASES = [
    (1, 2, 3, 3, 2, 1, "same", "zeros", (8,)),
    (1, 2, 3, 4, 3, 1, "same_lower", "zeros", (10,)),
    (1, 2, 3, 3, 2, 2, "causal", "zeros", (9,)),
    (1, 2, 3, 3, 1, 1, ((2, 0),), "reflect", (6,)),
    (2, 2, 3, 3, 2, 1, "same", "reflect", (7, 6)),
    (2, 2, 3, (2, 4), 1, 1, "same_lower", "replicate", (5, 6)),
    (2, 2, 3, 3, (1, 2), 1, "causal", "circular", (5, 6)),
    (2, 2, 3, 3, 1, 1, ((0, 2), (1, 0)), "zeros", (5, 5)),
    (2, 2, 3, 3, 2, 1, ((0, 2), 1), "circular", (5, 6)),
    (3, 2, 2, 3, 2, 1, "same", "zeros", (4, 5, 3)),
    (3, 2, 2, 2, 1, 1, ((1, 0), (0, 1), (1, 1)), "replicate", (3, 3, 3)),
]

# (n, in, out, kernel, kwargs, input spatial, output_size): torch-expressible transposed cases
@pytest.mark.parametrize("n, cin, cout, k, kw, spatial", CONV_CASES)
def test_conv_matches_torch(n, cin, cout, k, kw, spatial):
    a, t = pair(n, ANY_CONV[n], TORCH_CONV[n], cin, cout, k, **kw)
    assert isinstance(a, TORCH_CONV[n])
    assert repr(a) == repr(t)
    assert list(a.state_dict()) == list(t.state_dict())
    assert list(a._reversed_padding_repeated_twice) == list(t._reversed_padding_repeated_twice)
    for (name, p), (_, q) in zip(a.named_parameters(), t.named_parameters()):
        assert torch.equal(p, q), name  # same initialisation after the same seed
    a.double()
    t.double()
    x = torch.randn(2, cin, *spatial, dtype=torch.float64)
    check_same(a, t, x)
    check_same(a, t, x[0])  # unbatched


@pytest.mark.parametrize("n, cin, cout, k, s, d, padding, mode, spatial", EXTRA_PADDING_CASES)
def test_conv_padding_forms_torch_lacks(n, cin, cout, k, s, d, padding, mode, spatial):
    a = ANY_CONV[n](cin, cout, k, stride=s, padding=padding, dilation=d, padding_mode=mode).double()
    t = TORCH_CONV[n](cin, cout, k, stride=s, dilation=d).double()
    t.load_state_dict(a.state_dict())
    pairs = explicit_pairs(padding, n, spatial, k, s, d)
    flat = [v for pr in reversed(pairs) for v in pr]
    torch_mode = "constant" if mode == "zeros" else mode
    x = torch.randn(2, cin, *spatial, dtype=torch.float64)
    expected = t(F.pad(x, flat, mode=torch_mode))
    torch.testing.assert_close(a(x), expected, **TIGHT)
    torch.testing.assert_close(a(x[1]), expected[1], **TIGHT)
    if padding in ("same", "same_lower", "causal"):
        strides = (s,) * n if isinstance(s, int) else s
        assert a(x).shape[2:] == tuple(math.ceil(i / st) for i, st in zip(spatial, strides))
    # gradients flow to input, weight and bias exactly as through torch's padded pipeline
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    g = torch.randn(expected.shape, dtype=torch.float64)
    (a(x1) * g).sum().backward()
    (t(F.pad(x2, flat, mode=torch_mode)) * g).sum().backward()
    for u, v in ((x1.grad, x2.grad), (a.weight.grad, t.weight.grad), (a.bias.grad, t.bias.grad)):
        torch.testing.assert_close(u, v, **TIGHT)


def test_conv_nd_matches_conv3d_and_conv1d():
    for n, torch_cls in ((3, torch.nn.Conv3d), (1, torch.nn.Conv1d)):
        k = (3,) * n
        kw = {"stride": 2, "padding": 1, "dilation": 1, "groups": 2}
        a, t = pair(5, anynn.ConvNd, torch_cls, 4, 6, k, **kw)
        assert isinstance(a, torch.nn.modules.conv._ConvNd) and not isinstance(a, torch_cls)
        assert repr(a) == repr(t).replace(torch_cls.__name__, "ConvNd", 1)
        for p, q in zip(a.parameters(), t.parameters()):
            assert torch.equal(p, q)
        a.double()
        t.double()
        x = torch.randn(2, 4, *(5,) * n, dtype=torch.float64)
        check_same(a, t, x)
        # state_dict round trip both ways
        t2 = torch_cls(4, 6, k, **kw).double()
        t2.load_state_dict(a.state_dict())
        a2 = anynn.ConvNd(4, 6, k, **kw).double()
        a2.load_state_dict(t.state_dict())
        torch.testing.assert_close(t2(x), a2(x), **TIGHT)


def _conv4d_reference(x, w, b, stride, dilation, padding):
    """4-d correlation as a sum over the first kernel axis of torch Conv3d on input slices."""
    x = F.pad(x, [v for p in reversed(padding) for v in p])
    s0, d0 = stride[0], dilation[0]
    out0 = (x.shape[2] - (w.shape[2] - 1) * d0 - 1) // s0 + 1
    frames = []
    for t in range(out0):
        acc = sum(
            F.conv3d(x[:, :, t * s0 + j * d0], w[:, :, j], None, stride[1:], 0, dilation[1:])
            for j in range(w.shape[2])
        )
        frames.append(acc)
    return torch.stack(frames, 2) + b.reshape(1, -1, 1, 1, 1, 1)


@pytest.mark.parametrize(
    "kw, s, d, pads",
    [
        ({}, (1,) * 4, (1,) * 4, [(0, 0)] * 4),
        (
            {"stride": (2, 1, 2, 1), "padding": ((1, 0), 1, (0, 2), 0), "dilation": (1, 2, 1, 1)},
            (2, 1, 2, 1), (1, 2, 1, 1), [(1, 0), (1, 1), (0, 2), (0, 0)],
        ),
        (
            {"stride": 2, "padding": "same"}, (2,) * 4, (1,) * 4,
            [same_pads(i, k, 2, 1, False) for i, k in zip((4, 5, 4, 3), (2, 3, 2, 2))],
        ),
    ],
)
def test_conv_nd_four_dims_against_conv3d_slices(kw, s, d, pads):
    m = anynn.ConvNd(2, 3, (2, 3, 2, 2), **kw).double()
    x = torch.randn(2, 2, 4, 5, 4, 3, dtype=torch.float64)
    expected = _conv4d_reference(x, m.weight, m.bias, s, d, pads)
    torch.testing.assert_close(m(x), expected, **TIGHT)
    torch.testing.assert_close(m(x[0]), expected[0], **TIGHT)


def test_state_dict_round_trip_both_ways():
    a = anynn.Conv2d(3, 4, 3, padding=((1, 0), (0, 1)), bias=True).double()
    t = torch.nn.Conv2d(3, 4, 3).double()
    t.load_state_dict(a.state_dict())
    b = anynn.Conv2d(3, 4, 3, padding=((1, 0), (0, 1))).double()
    b.load_state_dict(t.state_dict())
    for k in a.state_dict():
        assert torch.equal(a.state_dict()[k], b.state_dict()[k])
    x = torch.randn(1, 3, 5, 5, dtype=torch.float64)
    torch.testing.assert_close(a(x), b(x), **TIGHT)
    ta = anynn.ConvTranspose1d(2, 4, 3, stride=2, padding="same")
    tt = torch.nn.ConvTranspose1d(2, 4, 3, stride=2)
    tt.load_state_dict(ta.state_dict())
    ta.load_state_dict(tt.state_dict())


def test_repr_shows_real_padding_and_algorithm():
    assert "padding=((0, 2), (1, 1))" in repr(anynn.Conv2d(1, 1, 3, padding=((0, 2), 1)))
    assert repr(anynn.Conv1d(1, 2, 3, stride=2, padding="same", algorithm="direct")) == (
        "Conv1d(1, 2, kernel_size=(3,), stride=(2,), padding=same, algorithm='direct')"
    )
    assert repr(anynn.Conv2d(1, 1, 3, padding=[(1, 1), (2, 2)])) == repr(torch.nn.Conv2d(1, 1, 3, padding=(1, 2)))
    assert "algorithm" not in repr(anynn.ConvTranspose2d(1, 1, 3, algorithm="auto"))


@pytest.mark.parametrize("algorithm", anyconv.algorithms.names())
@pytest.mark.parametrize("stride, groups", [(1, 1), (2, 1), (1, 2)])
def test_every_algorithm_gives_the_same_module_output(algorithm, stride, groups):
    """Each registered algorithm either matches torch or refuses with its reason (never silently)."""
    torch.manual_seed(1)
    a = anynn.Conv2d(2, 4, 3, stride=stride, groups=groups, padding="same", algorithm=algorithm).double()
    t = torch.nn.Conv2d(2, 4, 3, stride=stride, groups=groups).double()
    t.load_state_dict(a.state_dict())
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64)
    pads = [v for _ in range(2) for v in same_pads(6, 3, stride, 1, False)]
    expected = t(F.pad(x, pads))
    spec = anyconv.core.spec.CorrSpec((stride,) * 2, (1, 1), ((0, 0),) * 2, groups)
    reason = anyconv.algorithms.get(algorithm).supports(F.pad(x, pads), a.weight, spec)
    if reason is None:
        torch.testing.assert_close(a(x), expected, **TIGHT)
    else:
        with pytest.raises(ValueError, match=f"algorithm='{algorithm}' cannot serve this call"):
            a(x)
    a.algorithm = "auto"
    torch.testing.assert_close(a(x), expected, **TIGHT)


def test_float32_and_device_dtype_arguments():
    a, t = pair(7, anynn.Conv2d, torch.nn.Conv2d, 3, 5, 3, padding=1, dtype=torch.float64)
    assert a.weight.dtype == torch.float64 and torch.equal(a.weight, t.weight)
    a, t = pair(7, anynn.Conv2d, torch.nn.Conv2d, 3, 5, 3, padding=1)
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(a(x), t(x), atol=1e-5, rtol=1e-4)


ERRORS = [
    (anynn.Conv2d, (3, 4, 3), {"groups": 2}, ValueError, "Conv2d: `groups` must be a divisor of in_channels"),
    (anynn.Conv2d, (4, 6, 3), {"groups": 4}, ValueError, "`groups` must be a divisor of out_channels"),
    (anynn.Conv2d, (0, 4, 3), {}, ValueError, "Conv2d: `in_channels` must be a positive int; got in_channels=0"),
    (anynn.Conv2d, (2.0, 4, 3), {}, TypeError, "`in_channels` must be a positive int"),
    (anynn.Conv2d, (2, 4, (3, 3, 3)), {}, ValueError, "`kernel_size` must be .* sequence of 2"),
    (anynn.Conv2d, (2, 4, 3), {"stride": 0}, ValueError, "`stride` must be a positive int"),
    (anynn.Conv1d, (2, 4, 3), {"padding": "full"}, ValueError, "Conv1d: `padding` must be .*'causal'"),
    (anynn.Conv1d, (2, 4, 3), {"padding": -1}, ValueError, "`padding` must be"),
    (anynn.Conv1d, (2, 4, 3), {"padding_mode": "mirror"}, ValueError, "`padding_mode` must be one of"),
    (anynn.Conv1d, (2, 4, 3), {"bias": "yes"}, TypeError, "`bias` must be a bool"),
    (anynn.Conv3d, (2, 4, 3), {"algorithm": "magic"}, ValueError, "Conv3d: `algorithm` must be one of"),
    (anynn.ConvNd, (2, 4, 3), {}, TypeError, "ConvNd: `kernel_size` must be a non-empty sequence"),
    (anynn.ConvNd, (2, 4, ()), {}, ValueError, "ConvNd: `kernel_size` must be a non-empty sequence"),
    (anynn.ConvNd, (2, 4, (3, 3)), {"stride": (1, 1, 1)}, ValueError, "`stride` must be"),
    (anynn.ConvTranspose2d, (2, 4, 3), {"padding_mode": "reflect"}, ValueError, "ConvTranspose2d: `padding_mode` must be 'zeros'"),
    (anynn.ConvTranspose2d, (2, 4, 3), {"padding": "causal"}, ValueError, "`padding` must be .*'same'"),
    (anynn.ConvTranspose1d, (2, 4, 3), {"stride": 2, "output_padding": 2}, ValueError, "`output_padding` must be smaller"),
    (anynn.ConvTransposeNd, (2, 4, 3), {}, TypeError, "ConvTransposeNd: `kernel_size`"),
]


@pytest.mark.parametrize("cls, args, kwargs, exc, pattern", ERRORS)
def test_constructor_errors(cls, args, kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        cls(*args, **kwargs)


def test_forward_errors_name_the_module():
    with pytest.raises(ValueError, match=re.escape("Conv2d: `input` must be")):
        anynn.Conv2d(3, 4, 3)(torch.randn(1, 2, 5, 5))
    with pytest.raises(ValueError, match="Conv2d: `weight` must be a dilated kernel"):
        anynn.Conv2d(3, 4, 5)(torch.randn(1, 3, 3, 3))
    with pytest.raises(ValueError, match="ConvTranspose1d: `output_size` must be"):
        anynn.ConvTranspose1d(3, 4, 3, stride=2)(torch.randn(1, 3, 5), output_size=[20])
    m = anynn.ConvTranspose1d(3, 4, 3)
    m.padding_mode = "reflect"
    with pytest.raises(ValueError, match="ConvTranspose1d: `padding_mode` must be 'zeros'"):
        m(torch.randn(1, 3, 5))


def test_learned_edge_kernel_converges_like_torch():
    """The tutorial's 1x2 kernel learned from the edge image by gradient descent ends near [1, -1]."""
    x = torch.ones(1, 1, 6, 8, dtype=torch.float64)
    x[..., 2:6] = 0
    y = torch.zeros(1, 1, 6, 7, dtype=torch.float64)
    y[..., 1], y[..., 5] = 1.0, -1.0  # the tutorial's edge map (independent of any conv)
    a, t = pair(0, anynn.Conv2d, torch.nn.Conv2d, 1, 1, (1, 2), bias=False)
    a.double()
    t.double()
    for _ in range(30):
        for m in (a, t):
            m.zero_grad()
            ((m(x) - y) ** 2).sum().backward()
            with torch.no_grad():
                m.weight -= 3e-2 * m.weight.grad
    torch.testing.assert_close(a.weight, t.weight, **TIGHT)
    torch.testing.assert_close(a.weight.detach().flatten(), torch.tensor([1.0, -1.0], dtype=torch.float64), atol=0.05, rtol=0)
