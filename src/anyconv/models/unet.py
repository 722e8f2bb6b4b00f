"""A small U-Net (Ronneberger et al., 2015): conv encoder, transposed-conv decoder, skip connections."""

from __future__ import annotations

import torch
from torch import nn

from ._common import Layers


def _double_conv(L: Layers, cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        L.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        L.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    r"""U-Net: ``depth`` down steps (double conv, max pool 2), a bottleneck, ``depth`` up steps.

    Each up step doubles the resolution with a ``ConvTranspose2d(c, c/2, 2, stride=2)``,
    concatenates the encoder features of the same scale and applies a double conv
    (``conv3x3 -> BN -> ReLU`` twice); a 1x1 conv gives per-pixel class scores.

    Args:
        in_channels: input channels.
        num_classes: output channels (classes per pixel).
        base_channels: channels of the first level (doubled at every level).
        depth: number of down/up steps; H and W must be divisible by ``2 ** depth``.
        algorithm: anyconv algorithm of every conv, transposed conv and pooling layer.

    Shape:
        ``(B, in_channels, H, W) -> (B, num_classes, H, W)``.

    Examples:
        >>> UNet(1, 2)(torch.zeros(2, 1, 16, 16)).shape
        torch.Size([2, 2, 16, 16])
    """

    def __init__(
        self, in_channels: int = 1, num_classes: int = 2, base_channels: int = 16, depth: int = 2,
        algorithm: str = "auto",
    ):
        super().__init__()
        L = Layers(algorithm)
        self.depth = depth
        widths = [base_channels * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        cin = in_channels
        for w in widths[:-1]:
            self.down.append(_double_conv(L, cin, w))
            cin = w
        self.pool = L.MaxPool2d(2)
        self.bottleneck = _double_conv(L, widths[-2], widths[-1])
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.up.append(L.ConvTranspose2d(2 * w, w, 2, stride=2))
            self.merge.append(_double_conv(L, 2 * w, w))
        self.head = L.Conv2d(base_channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = 2**self.depth
        if not torch.jit.is_tracing() and (x.shape[-1] % f or x.shape[-2] % f):  # traced: checked shapes
            raise ValueError(
                f"unet: input height and width must be divisible by {f}; got input shape {tuple(x.shape)}"
            )
        skips = []
        for block in self.down:
            x = block(x)  # (B, w, h, w)
            skips.append(x)
            x = self.pool(x)  # (B, w, h/2, w/2)
        x = self.bottleneck(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips)):
            x = up(x)  # (B, w, 2h, 2w)
            x = merge(torch.cat([skip, x], dim=1))
        return self.head(x)


def unet(*, in_channels: int = 1, num_classes: int = 2, algorithm: str = "auto", **kwargs: int) -> UNet:
    """A small U-Net (see :class:`UNet`)."""
    return UNet(in_channels, num_classes, algorithm=algorithm, **kwargs)
