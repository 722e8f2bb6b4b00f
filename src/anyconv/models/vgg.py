"""VGG-11/13/16/19 (Simonyan & Zisserman, 2014), with and without batch norm, in torchvision's layout."""

from __future__ import annotations

import functools

import torch
from torch import nn

from ._common import Layers, init_torchvision

# Configurations A, B, D, E of the paper: conv widths, "M" = 2x2 max pool.
CONFIGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


class VGG(nn.Module):
    r"""3x3 convs (padding 1) and 2x2 max pools, adaptive avg pool to 7x7, three linears.

    State_dict keys and shapes equal torchvision's ``vgg11`` ... ``vgg19_bn``.

    Args:
        config: a list of conv widths and ``"M"`` (max pool), e.g. ``CONFIGS["vgg16"]``.
        batch_norm: put ``BatchNorm2d`` after every conv.
        in_channels: input channels.
        num_classes: number of outputs.
        dropout: dropout probability in the classifier.
        algorithm: anyconv algorithm of every conv and pooling layer.

    Shape:
        ``(B, in_channels, H, W) -> (B, num_classes)`` for ``H, W >= 32``.

    Examples:
        >>> VGG(CONFIGS["vgg11"], num_classes=5)(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 5])
    """

    def __init__(
        self, config: list[int | str], batch_norm: bool = False, in_channels: int = 3, num_classes: int = 1000,
        dropout: float = 0.5, algorithm: str = "auto",
    ):
        super().__init__()
        L = Layers(algorithm)
        layers: list[nn.Module] = []
        c = in_channels
        for v in config:
            if v == "M":
                layers.append(L.MaxPool2d(kernel_size=2, stride=2))
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"VGG: `config` entries must be positive ints or 'M'; got {v!r}")
            layers.append(L.Conv2d(c, v, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU(inplace=True))
            c = v
        self.features = nn.Sequential(*layers)
        self.avgpool = L.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        init_torchvision(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))  # (B, 512, 7, 7)
        return self.classifier(torch.flatten(x, 1))


def _vgg(name: str, batch_norm: bool, *, in_channels: int = 3, num_classes: int = 1000,
         algorithm: str = "auto", **kwargs: float) -> VGG:
    return VGG(CONFIGS[name], batch_norm, in_channels, num_classes, algorithm=algorithm, **kwargs)


vgg11 = functools.partial(_vgg, "vgg11", False)
vgg13 = functools.partial(_vgg, "vgg13", False)
vgg16 = functools.partial(_vgg, "vgg16", False)
vgg19 = functools.partial(_vgg, "vgg19", False)
vgg11_bn = functools.partial(_vgg, "vgg11", True)
vgg13_bn = functools.partial(_vgg, "vgg13", True)
vgg16_bn = functools.partial(_vgg, "vgg16", True)
vgg19_bn = functools.partial(_vgg, "vgg19", True)
