"""The learning material's CIFAR-10 model: two Conv-BatchNorm-ReLU-MaxPool stages, global average pool, linear."""

from __future__ import annotations

import torch
from torch import nn

from ._common import Layers


class CIFAR10Model(nn.Module):
    r"""``[conv3x3 -> BN -> ReLU -> maxpool 2] x 2 (32, 64 channels) -> adaptive avg pool 1 -> linear``.

    Same layer names as the tutorial (``feature_extractor``, ``flatten``, ``classifier``), so
    its state_dict loads; 20,234 parameters for 3 input channels and 10 classes.

    Args:
        in_channels: input channels (3 for CIFAR-10, 1 for digits).
        num_classes: number of outputs.
        algorithm: anyconv algorithm of every conv and pooling layer.

    Shape:
        ``(B, in_channels, H, W) -> (B, num_classes)``, for ``H, W >= 10``
        (``floor((floor((H - 2) / 2) - 2) / 2) >= 1``).

    Examples:
        >>> m = CIFAR10Model(3, 10)
        >>> m(torch.zeros(3, 3, 32, 32)).shape, sum(p.numel() for p in m.parameters())
        (torch.Size([3, 10]), 20234)
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10, algorithm: str = "auto"):
        super().__init__()
        L = Layers(algorithm)
        self.feature_extractor = nn.Sequential(
            L.Conv2d(in_channels, 32, kernel_size=3),  # (B, 32, H-2, W-2)
            nn.BatchNorm2d(32),
            nn.ReLU(),
            L.MaxPool2d(kernel_size=2),  # (B, 32, (H-2)/2, (W-2)/2)
            L.Conv2d(32, 64, kernel_size=3),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            L.MaxPool2d(kernel_size=2),
            L.AdaptiveAvgPool2d(output_size=(1, 1)),  # (B, 64, 1, 1)
        )
        self.flatten = nn.Flatten(start_dim=1)  # (B, 64)
        self.classifier = nn.Sequential(nn.Linear(64, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.feature_extractor(x)))


def cifar_cnn(*, in_channels: int = 3, num_classes: int = 10, algorithm: str = "auto") -> CIFAR10Model:
    """The learning material's CIFAR-10 model (see :class:`CIFAR10Model`)."""
    return CIFAR10Model(in_channels, num_classes, algorithm=algorithm)
