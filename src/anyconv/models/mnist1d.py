"""The MNIST-1D CNN of Greydanus & Kobak (2020): three strided Conv1d layers and a linear head."""

from __future__ import annotations

import torch
from torch import nn

from ._common import Layers, conv_out


class Mnist1DCNN(nn.Module):
    r"""The paper's ``ConvBase``: ``conv1d(5, s2, p1) -> relu -> conv1d(3, s2, p1) -> relu -> conv1d(3, s2, p1) -> relu -> linear``.

    With 25 channels and 40-point signals the conv stack gives ``(B, 25, 5)`` features and the
    model has 5,210 parameters, like the paper's (it reaches about 94% test accuracy).

    Args:
        in_channels: channels of the signal (1 for MNIST-1D).
        num_classes: number of outputs.
        channels: width of every conv layer.
        seq_len: length of the input signals.
        algorithm: anyconv algorithm of every conv layer.

    Shape:
        ``(B, L)`` or ``(B, in_channels, L) -> (B, num_classes)``; the features are
        ``channels * l3`` with ``l1 = floor((L - 3) / 2) + 1``, ``l2 = floor((l1 - 1) / 2) + 1``,
        ``l3 = floor((l2 - 1) / 2) + 1``.

    Examples:
        >>> m = Mnist1DCNN()
        >>> m(torch.zeros(4, 40)).shape, sum(p.numel() for p in m.parameters())
        (torch.Size([4, 10]), 5210)
    """

    def __init__(
        self, in_channels: int = 1, num_classes: int = 10, channels: int = 25, seq_len: int = 40,
        algorithm: str = "auto",
    ):
        super().__init__()
        L = Layers(algorithm)
        self.in_channels = in_channels
        self.conv1 = L.Conv1d(in_channels, channels, 5, stride=2, padding=1)
        self.conv2 = L.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.conv3 = L.Conv1d(channels, channels, 3, stride=2, padding=1)
        n = conv_out(conv_out(conv_out(seq_len, 5, 2, 1), 3, 2, 1), 3, 2, 1)
        if n < 1:
            raise ValueError(f"mnist1d_cnn: `seq_len` must be >= 3; got seq_len={seq_len!r}")
        self.linear = nn.Linear(channels * n, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)  # (B, L) -> (B, 1, L)
        h = self.conv1(x).relu()  # (B, C, l1)
        h = self.conv2(h).relu()  # (B, C, l2)
        h = self.conv3(h).relu()  # (B, C, l3)
        return self.linear(h.flatten(1))  # (B, num_classes)


def mnist1d_cnn(*, in_channels: int = 1, num_classes: int = 10, algorithm: str = "auto", **kwargs: int) -> Mnist1DCNN:
    """The MNIST-1D CNN (see :class:`Mnist1DCNN`)."""
    return Mnist1DCNN(in_channels, num_classes, algorithm=algorithm, **kwargs)
