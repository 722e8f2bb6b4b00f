"""anyconv.nn transposed convolution modules against torch.nn: init, repr, forward, gradients, crops.

Crop forms torch lacks ((before, after) pairs, 'same', 'valid') are compared with torch's
uncropped output cropped here by API.md's formulas; ConvTransposeNd with N = 4 by the adjoint
identity with ConvNd.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from anyconv import nn as anynn
from nn_helpers import (
    ANY_CONVT,
    TIGHT,
    TORCH_CONVT,
    check_same,
    pair,
)

CONVT_CASES = [
    (1, 2, 3, 3, {}, (5,), None),
    (1, 4, 2, 3, {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2}, (5,), None),
    (1, 2, 2, 3, {"stride": 3, "padding": 1}, (4,), (11,)),
    (2, 2, 3, 3, {"stride": 2, "padding": 1}, (4, 5), None),
    (2, 2, 4, (2, 3), {"stride": (2, 1), "dilation": (1, 2), "output_padding": (1, 0), "bias": False}, (3, 4), None),
    (2, 4, 4, 3, {"stride": 2, "padding": 1, "groups": 4}, (4, 4), (8, 7)),
    (3, 2, 2, 2, {"stride": 2}, (2, 3, 2), None),
    (3, 2, 3, 3, {"stride": (1, 2, 2), "padding": (0, 1, 1), "output_padding": (0, 1, 0)}, (2, 3, 3), None),
]



@pytest.mark.parametrize("n, cin, cout, k, kw, spatial, output_size", CONVT_CASES)
def test_conv_transpose_matches_torch(n, cin, cout, k, kw, spatial, output_size):
    a, t = pair(10 + n, ANY_CONVT[n], TORCH_CONVT[n], cin, cout, k, **kw)
    assert isinstance(a, TORCH_CONVT[n])
    assert repr(a) == repr(t)
    for p, q in zip(a.parameters(), t.parameters()):
        assert torch.equal(p, q)
    a.double()
    t.double()
    x = torch.randn(2, cin, *spatial, dtype=torch.float64)
    fw = {} if output_size is None else {"output_size": list(output_size)}
    check_same(a, t, x, **fw)
    check_same(a, t, x[0], **fw)


@pytest.mark.parametrize(
    "n, k, s, padding, spatial",
    [
        (1, 3, 2, ((0, 2),), (5,)),
        (1, 4, 2, "same", (5,)),
        (1, 3, 1, "valid", (4,)),
        (1, 1, 3, "same", (4,)),  # stride larger than the kernel: output extended at the end
        (2, 3, 2, ((1, 0), (0, 2)), (3, 4)),
        (2, (2, 3), (2, 3), "same", (3, 3)),
        (3, 3, 2, "same", (2, 3, 2)),
    ],
)
def test_conv_transpose_crop_forms(n, k, s, padding, spatial):
    a = ANY_CONVT[n](2, 3, k, stride=s, padding=padding).double()
    t = TORCH_CONVT[n](2, 3, k, stride=s).double()
    t.load_state_dict(a.state_dict())
    x = torch.randn(2, 2, *spatial, dtype=torch.float64)
    bias = t.bias.reshape(1, -1, *[1] * n)
    full = t(x) - bias  # uncropped, without bias (an extension at the end gets the bias only, as TF)
    ks, ss = ((v,) * n if isinstance(v, int) else v for v in (k, s))
    if padding == "same":
        crops = []
        for kk, st in zip(ks, ss):
            total = kk - st  # API.md: crop total (k - 1) * d + 1 - s, split like the forward 'same'
            crops.append((total // 2, total - total // 2) if total >= 0 else (0, total))
    elif padding == "valid":
        crops = [(0, 0)] * n
    else:
        crops = list(padding)
    flat = [-v for pr in reversed(crops) for v in pr]
    expected = F.pad(full, flat) + bias
    y = a(x)
    torch.testing.assert_close(y, expected, **TIGHT)
    if padding == "same":
        assert y.shape[2:] == tuple(i * st for i, st in zip(spatial, ss))


def test_conv_transpose_nd_adjoint_and_conv_transpose3d():
    torch.manual_seed(0)
    k, s = (2, 3, 2, 2), (2, 1, 2, 1)
    c = anynn.ConvNd(2, 3, k, stride=s, padding=1, bias=False).double()
    ct = anynn.ConvTransposeNd(3, 2, k, stride=s, padding=1, bias=False).double()
    ct.weight.data.copy_(c.weight.data)
    x = torch.randn(1, 2, 5, 4, 5, 4, dtype=torch.float64)
    y = c(x)
    g = torch.randn(y.shape, dtype=torch.float64)
    out = ct(g, output_size=x.shape[2:])
    assert out.shape == x.shape
    torch.testing.assert_close((y * g).sum(), (x * out).sum(), **TIGHT)  # <Cx, g> == <x, C^T g>
    a, t = pair(3, anynn.ConvTransposeNd, torch.nn.ConvTranspose3d, 2, 4, (3, 3, 2), stride=2, padding=1)
    assert repr(a) == repr(t).replace("ConvTranspose3d", "ConvTransposeNd", 1)
    a.double()
    t.double()
    check_same(a, t, torch.randn(2, 2, 3, 2, 3, dtype=torch.float64), output_size=(6, 4, 5))
