"""AlexNet (Krizhevsky et al., 2012) in torchvision's layout (one-GPU variant of "One weird trick")."""

from __future__ import annotations

import torch
from torch import nn

from ._common import Layers


class AlexNet(nn.Module):
    r"""Five convs (11x11/4, 5x5, 3x3 x3) with max pooling, adaptive avg pool to 6x6, three linears.

    State_dict keys and shapes equal ``torchvision.models.alexnet`` (61,100,840 parameters).

    Args:
        in_channels: input channels.
        num_classes: number of outputs.
        dropout: dropout probability before the first two linears.
        algorithm: anyconv algorithm of every conv and pooling layer.

    Shape:
        ``(B, in_channels, H, W) -> (B, num_classes)`` for ``H, W >= 63``.

    Examples:
        >>> AlexNet(num_classes=7)(torch.zeros(1, 3, 63, 63)).shape
        torch.Size([1, 7])
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, dropout: float = 0.5, algorithm: str = "auto"):
        super().__init__()
        L = Layers(algorithm)
        self.features = nn.Sequential(
            L.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            L.MaxPool2d(kernel_size=3, stride=2),
            L.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            L.MaxPool2d(kernel_size=3, stride=2),
            L.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            L.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            L.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            L.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = L.AdaptiveAvgPool2d((6, 6))  # (B, 256, 6, 6)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))  # (B, 9216) -> (B, num_classes)


def alexnet(*, in_channels: int = 3, num_classes: int = 1000, algorithm: str = "auto", **kwargs: float) -> AlexNet:
    """AlexNet (see :class:`AlexNet`)."""
    return AlexNet(in_channels, num_classes, algorithm=algorithm, **kwargs)
