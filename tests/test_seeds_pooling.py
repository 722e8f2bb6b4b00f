"""The learning material's pooling examples (shared/seeds), reproduced exactly."""

from __future__ import annotations

import torch

import anyconv.functional as AF
import anyconv.nn as ann


def test_max_and_avg_on_the_3x3_example():
    x = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    # the seed's pool2d(X, (2, 2)) slides with stride 1 over a plain 2-d matrix
    assert AF.max_pool(x[None], (2, 2), stride=1).squeeze(0).tolist() == [[4.0, 5.0], [7.0, 8.0]]
    assert AF.avg_pool(x[None], (2, 2), stride=1).squeeze(0).tolist() == [[2.0, 3.0], [5.0, 6.0]]


def test_max_pool_on_the_4x4_arange():
    x = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    assert ann.MaxPool2d(3)(x).tolist() == [[[[10.0]]]]
    assert ann.MaxPool2d(3, padding=1, stride=2)(x).tolist() == [[[[5.0, 7.0], [13.0, 15.0]]]]


def test_two_channel_version():
    x = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    x = torch.cat((x, x + 1), 1)
    assert ann.MaxPool2d(3, padding=1, stride=2)(x).tolist() == [
        [[[5.0, 7.0], [13.0, 15.0]], [[6.0, 8.0], [14.0, 16.0]]]
    ]


def test_cifar_model_pooling_shapes():
    """The CIFAR-10 model's pooling: 30 -> 15 -> (conv) 13 -> 6 -> global average 1."""
    x = torch.randn(3, 32, 30, 30)
    y = ann.MaxPool2d(kernel_size=2)(x)
    assert y.shape == (3, 32, 15, 15)
    assert ann.MaxPool2d(kernel_size=2)(torch.randn(3, 64, 13, 13)).shape == (3, 64, 6, 6)
    assert ann.AdaptiveAvgPool2d(output_size=(1, 1))(torch.randn(3, 64, 6, 6)).shape == (3, 64, 1, 1)
