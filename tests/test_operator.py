"""Operator matrix (against torch's conv), its transpose, singular values (FFT vs SVD) and the norm."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from anyconv.algorithms._operator import conv_operator
from anyconv.core.spec import CorrSpec
from anyconv.tools import operator_matrix, operator_norm, power_iteration, singular_values

TORCH_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
TORCH_CONVT = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def _ref(x, w, n, stride, dilation, groups, pairs, mode):
    flat = [v for b, a in reversed(pairs) for v in (b, a)]
    xp = F.pad(x, flat, mode="constant" if mode == "zeros" else mode)
    return TORCH_CONV[n](xp, w, stride=stride, dilation=dilation, groups=groups)


SAMPLES = [  # n, stride, dilation, groups, padding pairs per dim, mode
    (1, 1, 1, 1, (0, 0), "zeros"),
    (1, 3, 2, 2, (2, 1), "zeros"),
    (2, 2, 1, 1, (1, 2), "reflect"),
    (2, 1, 2, 2, (2, 2), "circular"),
    (3, 2, 1, 1, (1, 0), "replicate"),
    (3, 1, 1, 2, (0, 2), "zeros"),
]


@pytest.mark.parametrize("n, s, d, g, pad, mode", SAMPLES)
@pytest.mark.parametrize("dense", [False, True])
def test_matrix_times_x_is_the_convolution(n, s, d, g, pad, mode, dense):
    torch.manual_seed(n + s)
    x = torch.randn(2, 4, *[7, 6, 5][:n], dtype=torch.float64)
    w = torch.randn(6, 4 // g, *[3, 2, 3][:n], dtype=torch.float64)
    a = operator_matrix(w, x.shape, stride=s, dilation=d, groups=g, padding=[pad] * n, padding_mode=mode, dense=dense)
    assert a.is_sparse != dense
    y = _ref(x, w, n, s, d, g, [pad] * n, mode)
    torch.testing.assert_close(a @ x.flatten(), y.flatten(), atol=1e-10, rtol=0)


def test_core_builder_is_born_coalesced_and_serves_one_sample():
    w = torch.randn(4, 2, 3, 3, dtype=torch.float64)
    spec = CorrSpec((2, 1), (1, 2), ((1, 0), (2, 2)), 2)
    a = conv_operator(w, (6, 7), spec)
    assert a.is_coalesced()
    again = torch.sparse_coo_tensor(a.indices(), a.values(), a.shape, check_invariants=True).coalesce()
    assert torch.equal(a.indices(), again.indices())
    x = torch.randn(3, 4, 6, 7, dtype=torch.float64)
    y = F.conv2d(F.pad(x, (2, 2, 1, 0)), w, stride=(2, 1), dilation=(1, 2), groups=2)
    torch.testing.assert_close((a @ x.reshape(3, -1).T).T, y.reshape(3, -1), atol=1e-10, rtol=0)


@pytest.mark.parametrize("n, s, d, g, p, op", [(1, 2, 1, 1, 1, 1), (2, 3, 2, 2, (1, 2), (2, 0)), (3, 2, 1, 1, 0, 1)])
def test_transpose_matrix_is_conv_transpose_and_the_adjoint(n, s, d, g, p, op):
    torch.manual_seed(1)
    x = torch.randn(1, 4, *[5, 4, 3][:n], dtype=torch.float64)
    w = torch.randn(4, 6 // g, *[3, 2, 2][:n], dtype=torch.float64)
    t = operator_matrix(w, x.shape, transpose=True, stride=s, dilation=d, groups=g, padding=p, output_padding=op)
    y = TORCH_CONVT[n](x, w, stride=s, dilation=d, groups=g, padding=p, output_padding=op)
    torch.testing.assert_close(t @ x.flatten(), y.flatten(), atol=1e-10, rtol=0)
    # for matching shapes it is the transpose of the forward conv's matrix
    a = operator_matrix(w, y.shape, stride=s, dilation=d, groups=g, padding=p, dense=True)
    if a.shape[0] == x.numel():
        torch.testing.assert_close(t.to_dense(), a.T, atol=0, rtol=0)


def test_modules_and_flip_and_unbatched():
    conv = torch.nn.Conv2d(2, 3, 3, stride=2, padding=1, padding_mode="replicate").double()
    x = torch.randn(2, 7, 6, dtype=torch.float64)
    a = operator_matrix(conv, x.shape)
    torch.testing.assert_close(a @ x.flatten(), (conv(x) - conv.bias[:, None, None]).flatten(), atol=1e-10, rtol=0)
    tconv = torch.nn.ConvTranspose1d(2, 3, 4, stride=2, padding=1).double()
    z = torch.randn(1, 2, 5, dtype=torch.float64)
    t = operator_matrix(tconv, z.shape)
    torch.testing.assert_close(t @ z.flatten(), (tconv(z) - tconv.bias[None, :, None]).flatten(), atol=1e-10, rtol=0)
    w = torch.randn(1, 1, 3, dtype=torch.float64)
    f = operator_matrix(w, (1, 6), flip=True, dense=True)
    torch.testing.assert_close(f, operator_matrix(w.flip(-1), (1, 6), dense=True))


@pytest.mark.parametrize("n, k, d, g", [(1, 3, 1, 1), (2, 3, 1, 1), (2, 2, 2, 2), (3, 2, 1, 1)])
def test_fft_singular_values_equal_svd_of_the_matrix(n, k, d, g):
    torch.manual_seed(2)
    w = torch.randn(4, 4 // g, *[k] * n, dtype=torch.float64)
    shape = (4, *[6, 5, 4][:n])
    total = (k - 1) * d
    p = dict(padding=[(total // 2, total - total // 2)] * n, padding_mode="circular", dilation=d, groups=g)
    fft = singular_values(w, shape, method="fft", **p)
    svd = singular_values(w, shape, method="svd", **p)
    torch.testing.assert_close(fft, svd, atol=1e-9, rtol=1e-9)
    r = power_iteration(w, shape, tol=1e-12, max_iter=3000, **p)
    assert r.norm == pytest.approx(float(svd[0]), rel=1e-5)


def test_power_iteration_matches_svd_for_zero_padding_strides_and_transpose():
    torch.manual_seed(3)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64)
    for p in (dict(stride=2, padding=1), dict(padding=((0, 2), (1, 0)), dilation=2)):
        top = float(singular_values(w, (1, 2, 7, 7), **p)[0])
        r = power_iteration(w, (1, 2, 7, 7), tol=1e-12, max_iter=5000, **p)
        assert r.converged and r.iterations > 1 and r.residual < 1e-3
        assert r.norm == pytest.approx(top, rel=1e-5)
        assert operator_norm(w, (2, 2, 7, 7), **p) == pytest.approx(top, rel=1e-3)
    top_t = float(singular_values(w, (1, 3, 4, 4), transpose=True, stride=2)[0])
    assert power_iteration(w, (1, 3, 4, 4), transpose=True, stride=2, tol=1e-12, max_iter=5000).norm == pytest.approx(top_t, rel=1e-5)


def test_sedghi_example_all_ones_kernel():
    # a k x k kernel of ones, circular: singular values are |sum of taps * phase|; the largest is k*k
    s = singular_values(torch.ones(1, 1, 3, 3, dtype=torch.float64), (1, 8, 8), padding=1, padding_mode="circular")
    assert s.shape == (64,) and float(s[0]) == pytest.approx(9.0)
    assert s.tolist() == sorted(s.tolist(), reverse=True)


def test_errors():
    w = torch.randn(2, 2, 3)
    with pytest.raises(ValueError, match="method"):
        singular_values(w, (2, 8), method="fft", padding=1)  # zero padding: not circulant
    with pytest.raises(TypeError, match="output_padding"):
        operator_matrix(w, (2, 8), output_padding=1)
    with pytest.raises(ValueError, match="stride"):
        operator_matrix(w, (2, 8), stride=0)
    with pytest.raises(ValueError, match="MAX_SVD_ENTRIES"):
        singular_values(torch.randn(8, 8, 3, 3), (8, 64, 64), method="svd")
    with pytest.raises(TypeError, match="weight"):
        operator_norm("w", (2, 8))


def test_complex_weights_and_gradient_through_the_matrix():
    torch.manual_seed(4)
    w = torch.randn(3, 2, 3, 3, dtype=torch.complex128)
    x = torch.randn(2, 2, 6, 5, dtype=torch.complex128)
    a = operator_matrix(w, x.shape, stride=2, padding=1)
    torch.testing.assert_close(a @ x.flatten(), F.conv2d(x, w, stride=2, padding=1).flatten(), atol=1e-10, rtol=0)
    r = power_iteration(w, (1, 2, 6, 5), padding=1, tol=1e-12, max_iter=5000)
    assert r.norm == pytest.approx(float(singular_values(w, (2, 6, 5), padding=1)[0]), rel=1e-6)
    wr = torch.randn(1, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    operator_matrix(wr, (1, 5, 5), padding=1, dense=True).sum().backward()
    # each tap is used once per output position whose window keeps it inside the 5 x 5 input
    uses = torch.tensor([4.0, 5.0, 4.0], dtype=torch.float64)
    torch.testing.assert_close(wr.grad[0, 0], uses[:, None] * uses[None, :])
