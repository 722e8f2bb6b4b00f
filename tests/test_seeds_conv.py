"""The learning material's convolution examples reproduce exactly with anyconv.

Each expected value is copied from the seed text (or worked out by hand in a comment), never
computed with anyconv. Seeds live in ``/work/shared/seeds/`` (files named below).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

import anyconv.functional as AF
from anyconv.core import shapes as _shapes

F64 = torch.float64


def t(values: object) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


# ---- seed 002_6fa3a65957904724.txt ("Convolutions", d2l-style notebook) ----------------------
@pytest.mark.parametrize("algo", ["auto", "direct", "im2col"])
def test_cross_correlation_2d(algo: str) -> None:
    # In [29]: corr2d(X, K) -> tensor([[19., 25.], [37., 43.]])
    x = t([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    k = t([[0.0, 1.0], [2.0, 3.0]])
    y = AF.conv(x[None, None], k[None, None], algorithm=algo)
    assert y[0, 0].tolist() == [[19.0, 25.0], [37.0, 43.0]]


def test_two_input_channels() -> None:
    # In [41]: corr2d_multi_in(X, K) -> tensor([[56., 72.], [104., 120.]])
    x = t([[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]], [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]])
    k = t([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])
    assert AF.conv(x, k[None]).tolist() == [[[56.0, 72.0], [104.0, 120.0]]]  # unbatched (C, H, W)


def _edge_image() -> torch.Tensor:
    # In [31]: X = torch.ones((6, 8)); X[:, 2:6] = 0
    x = torch.ones((6, 8), dtype=F64)
    x[:, 2:6] = 0
    return x


def test_vertical_edge_detection() -> None:
    # In [32]: K = [[1, -1]]: 1 at the white->black edge, -1 at black->white, 0 elsewhere
    y = AF.conv2d(_edge_image()[None, None], t([[[[1.0, -1.0]]]]))
    assert y[0, 0].tolist() == [[0.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0]] * 6
    # the transposed image has horizontal edges only: the same kernel sees none
    assert AF.conv2d(_edge_image().t()[None, None].contiguous(), t([[[[1.0, -1.0]]]])).abs().max().item() == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_learned_edge_kernel_converges(seed: int) -> None:
    # In [33]/[34]: a 1x2 kernel trained for 15 steps (lr 3e-2, squared error) -> about [1, -1]
    # (the seed prints [0.9873, -1.0097]); here trained with anyconv's conv and autograd rules.
    x = _edge_image().reshape(1, 1, 6, 8)
    target = t([[0.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0]] * 6).reshape(1, 1, 6, 7)
    gen = torch.Generator().manual_seed(seed)
    bound = 2**-0.5  # nn.Conv2d(1, 1, (1, 2)) initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    w = ((torch.rand(1, 1, 1, 2, generator=gen, dtype=F64) * 2 - 1) * bound).requires_grad_()
    losses = []
    for _ in range(15):
        loss = ((AF.conv2d(x, w) - target) ** 2).sum()
        (g,) = torch.autograd.grad(loss, w)
        with torch.no_grad():
            w -= 3e-2 * g
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0] + 1e-3
    assert torch.allclose(w.detach().flatten(), t([1.0, -1.0]), atol=0.06), w


@pytest.mark.parametrize(
    "kernel,padding,stride,expected",
    [
        (3, 1, 1, (8, 8)),  # In [35]: padding=1 -> torch.Size([8, 8])
        ((5, 3), (2, 1), 1, (8, 8)),  # In [37]: padding (2, 1) -> torch.Size([8, 8])
        (3, 1, 2, (4, 4)),  # In [38]: stride 2 -> torch.Size([4, 4])
        ((3, 5), (0, 1), (3, 4), (2, 2)),  # In [39]: -> torch.Size([2, 2])
    ],
)
def test_output_sizes_seed_002(kernel: object, padding: object, stride: object, expected: tuple[int, int]) -> None:
    k: Any = (kernel, kernel) if isinstance(kernel, int) else kernel
    w = torch.ones(1, 1, *k, dtype=F64)
    y = AF.conv2d(torch.rand(1, 1, 8, 8, dtype=F64), w, padding=padding, stride=stride)  # type: ignore[arg-type]
    assert tuple(y.shape[2:]) == expected


# ---- seed 000_a0341cbedbe70243.txt ("CONVOLUTION") -------------------------------------------
def test_output_size_formula_seed_000() -> None:
    # "Input Size = 32, Kernel Size = 5, Padding = 2, Stride = 1 ... Output Size = 32"
    assert _shapes.conv_output_size(32, 5, 1, 1, 2, 2) == 32
    assert AF.conv2d(torch.zeros(1, 1, 32, 32), torch.zeros(1, 1, 5, 5), padding=2).shape[2:] == (32, 32)
    # "Padding = (Kernel Size - 1) / 2" keeps the size at stride 1: padding='same' gives it too
    assert AF.conv1d(torch.zeros(1, 1, 32), torch.zeros(1, 1, 5), padding="same").shape[-1] == 32


# ---- seed 003_b5dc3787cdd2c7b8.txt (1D/2D correlation) ----------------------------------------
def test_1d_same_valid_strided() -> None:
    # In [4]/[5]: signal arange(1, 10) (9 samples; the seed's comment says 10, its code gives 9),
    # kernel [2, 1, 2]
    signal = torch.arange(1, 10, dtype=F64).reshape(1, 1, -1)
    kernel = t([2.0, 1.0, 2.0]).reshape(1, 1, -1)
    assert AF.conv1d(signal, kernel, padding="same").flatten().tolist() == [5, 10, 15, 20, 25, 30, 35, 40, 25]
    assert AF.conv1d(signal, kernel, padding="valid").flatten().tolist() == [10, 15, 20, 25, 30, 35, 40]
    assert AF.conv1d(signal, kernel, padding=2, stride=2).flatten().tolist() == [2, 10, 20, 30, 40, 18]


def test_2d_vertical_kernel_on_ramp() -> None:
    # In [7]/[8]: signal arange(1, 26) as 5x5, kernel rows [1, 0, -1] (outputs only plotted).
    # By hand: x[i, j] = 5 i + j + 1, so each kernel row adds x[i, j-1] - x[i, j+1] = -2 and a
    # valid 3x3 window gives -6; with 'same' zero padding the border windows lose terms.
    signal = torch.arange(1, 26, dtype=F64).reshape(1, 1, 5, 5)
    kernel = t([[1.0, 0.0, -1.0]] * 3).reshape(1, 1, 3, 3)
    assert AF.conv2d(signal, kernel, padding="valid")[0, 0].tolist() == [[-6.0] * 3] * 3
    same = AF.conv2d(signal, kernel, padding="same")[0, 0]
    x = signal[0, 0]

    def by_hand(i: int, j: int) -> float:
        total = 0.0
        for di in (-1, 0, 1):
            for dj, kv in ((-1, 1.0), (1, -1.0)):
                if 0 <= i + di < 5 and 0 <= j + dj < 5:
                    total += kv * x[i + di, j + dj].item()
        return total

    assert same.tolist() == [[by_hand(i, j) for j in range(5)] for i in range(5)]
    assert same[2, 2].item() == -6.0 and same[0, 0].item() == -(2 + 7)
    strided = AF.conv2d(signal, kernel, padding=1, stride=2)[0, 0]
    assert strided.tolist() == [[by_hand(i, j) for j in (0, 2, 4)] for i in (0, 2, 4)]


# ---- seed 004_60a5c1b7030937ba.txt ("Convolutions", HardikPrabhu) ------------------------------
def test_kernel_point1_to_point9_on_4x5_image() -> None:
    # In [16]: 3x3 kernel 0.1..0.9 on the 4x5 image 1..20 -> [[41.1, 45.6, 50.1], [63.6, 68.1, 72.6]]
    image = torch.arange(1, 21, dtype=F64).reshape(1, 1, 4, 5)
    kernel = (torch.arange(1, 10, dtype=F64) / 10).reshape(1, 1, 3, 3)
    expected = t([[41.1, 45.6, 50.1], [63.6, 68.1, 72.6]])
    assert torch.allclose(AF.conv2d(image, kernel)[0, 0], expected, rtol=0, atol=1e-12)
    # In [19]: the same numbers as a 1-D conv with the 4 rows as channels and 2 output channels
    w1 = torch.zeros(2, 4, 3, dtype=F64)
    w1[0, 0:3] = kernel[0, 0]
    w1[1, 1:4] = kernel[0, 0]
    assert torch.allclose(AF.conv1d(image[0], w1), expected, rtol=0, atol=1e-12)


def test_matrix_form_1d() -> None:
    # In [6]/[7]: kernel printed as [0.3447, 0.5001, 0.2005], x = 1..10, y = W @ x printed to 4 digits
    y = AF.conv1d(torch.arange(1, 11, dtype=F64)[None, None], t([[[0.3447, 0.5001, 0.2005]]]))
    printed = t([1.9466, 2.9920, 4.0374, 5.0828, 6.1282, 7.1736, 8.2190, 9.2643])
    assert torch.allclose(y.flatten(), printed, atol=1e-3)  # the kernel itself was printed rounded


@pytest.mark.parametrize("stride,dilation,expected", [(1, 1, 8), (2, 1, 4), (1, 2, 6)])
def test_stride_dilation_sizes_seed_004(stride: int, dilation: int, expected: int) -> None:
    # "Stride and Dilation": input 10, kernel 3 -> 8 positions; stride 2 -> 4; dilation 2 -> 6
    y = AF.conv1d(torch.zeros(1, 1, 10), torch.zeros(1, 1, 3), stride=stride, dilation=dilation)
    assert y.shape[-1] == expected
