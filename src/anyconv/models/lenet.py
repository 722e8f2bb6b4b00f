"""LeNet-5 (LeCun et al., 1998): two conv + subsampling stages and three fully connected layers."""

from __future__ import annotations

import torch
from torch import nn

from ._common import Layers, conv_out


class LeNet5(nn.Module):
    r"""LeNet-5 with tanh activations and average-pool subsampling.

    ``conv(5x5, pad 2) -> tanh -> avgpool 2 -> conv(5x5) -> tanh -> avgpool 2 -> 120 -> 84 -> classes``.
    The first conv pads by 2, so a 28x28 MNIST digit sees the 32x32 field of the paper.

    Args:
        in_channels: input channels (1 for MNIST).
        num_classes: number of outputs.
        image_size: height = width of the input images (28 for MNIST).
        algorithm: anyconv algorithm of every conv and pooling layer.

    Shape:
        ``(B, in_channels, S, S) -> (B, num_classes)``; the flattened features are
        ``16 * m * m`` with ``m = floor((floor(S / 2) - 4) / 2)``.

    Examples:
        >>> LeNet5()(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28, algorithm: str = "auto"):
        super().__init__()
        L = Layers(algorithm)
        m = conv_out(conv_out(conv_out(image_size, 5, 1, 2), 2, 2), 5) // 2
        if m < 1:
            raise ValueError(f"lenet5: `image_size` must be >= 12; got image_size={image_size!r}")
        self.features = nn.Sequential(
            L.Conv2d(in_channels, 6, 5, padding=2),  # (B, 6, S, S)
            nn.Tanh(),
            L.AvgPool2d(2),  # (B, 6, S/2, S/2)
            L.Conv2d(6, 16, 5),  # (B, 16, S/2 - 4, S/2 - 4)
            nn.Tanh(),
            L.AvgPool2d(2),  # (B, 16, m, m)
        )
        self.classifier = nn.Sequential(
            nn.Flatten(1),
            nn.Linear(16 * m * m, 120),
            nn.Tanh(),
            nn.Linear(120, 84),
            nn.Tanh(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def lenet5(*, in_channels: int = 1, num_classes: int = 10, algorithm: str = "auto", **kwargs: int) -> LeNet5:
    """LeNet-5 (see :class:`LeNet5`)."""
    return LeNet5(in_channels, num_classes, algorithm=algorithm, **kwargs)
