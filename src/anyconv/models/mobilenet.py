"""MobileNetV2 (Sandler et al., 2018) and MobileNetV3-small/large (Howard et al., 2019), torchvision layout.

Depthwise convolutions are grouped convs with ``groups = channels``; squeeze-and-excitation
uses 1x1 convs, as torchvision does, so state_dict keys and shapes equal torchvision's.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import torch
from torch import nn

from ._common import Layers, init_torchvision, make_divisible

Act = type[nn.Module] | None


def conv_norm_act(
    L: Layers, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1, act: Act = nn.ReLU6,
    bn: functools.partial[nn.BatchNorm2d] | type[nn.BatchNorm2d] = nn.BatchNorm2d,
) -> nn.Sequential:
    """torchvision's ``Conv2dNormActivation``: conv (padding ``(k - 1) / 2``, no bias), BN, activation."""
    layers: list[nn.Module] = [
        L.Conv2d(cin, cout, kernel, stride=stride, padding=(kernel - 1) // 2, groups=groups, bias=False),
        bn(cout),
    ]
    if act is not None:
        layers.append(act(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidualV2(nn.Module):
    r"""Expand (1x1, ReLU6) -> depthwise 3x3 (stride, ReLU6) -> project (1x1, linear); residual when shapes match."""

    def __init__(self, L: Layers, cin: int, cout: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = round(cin * expand_ratio)
        self.use_res_connect = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(conv_norm_act(L, cin, hidden, 1))
        layers += [
            conv_norm_act(L, hidden, hidden, 3, stride, groups=hidden),
            L.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    r"""MobileNetV2: 3x3/2 stem, 17 inverted residual blocks, 1x1 conv to 1280, avg pool, linear.

    Args:
        in_channels: input channels.
        num_classes: number of outputs.
        width_mult: channel multiplier (widths rounded to multiples of 8).
        dropout: dropout probability before the linear.
        algorithm: anyconv algorithm of every conv and pooling layer.

    Shape:
        ``(B, in_channels, H, W) -> (B, num_classes)``; the last features are ``H / 32``.

    Examples:
        >>> MobileNetV2(num_classes=4)(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 4])
    """

    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

    def __init__(
        self, in_channels: int = 3, num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.2,
        algorithm: str = "auto",
    ):
        super().__init__()
        L = Layers(algorithm)
        cin = make_divisible(32 * width_mult)
        self.last_channel = make_divisible(1280 * max(1.0, width_mult))
        features: list[nn.Module] = [conv_norm_act(L, in_channels, cin, 3, 2)]
        for t, c, n, s in self.SETTINGS:
            cout = make_divisible(c * width_mult)
            for i in range(n):
                features.append(InvertedResidualV2(L, cin, cout, s if i == 0 else 1, t))
                cin = cout
        features.append(conv_norm_act(L, cin, self.last_channel, 1))
        self.features = nn.Sequential(*features)
        self.pool = L.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes))
        init_torchvision(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x))  # (B, 1280, 1, 1)
        return self.classifier(torch.flatten(x, 1))


class SqueezeExcitation(nn.Module):
    r"""``x * hardsigmoid(fc2(relu(fc1(avgpool(x)))))`` with 1x1 convs ``fc1``, ``fc2``."""

    def __init__(self, L: Layers, channels: int, squeeze: int):
        super().__init__()
        self.avgpool = L.AdaptiveAvgPool2d(1)
        self.fc1 = L.Conv2d(channels, squeeze, 1)
        self.fc2 = L.Conv2d(squeeze, channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc2(self.activation(self.fc1(self.avgpool(x))))  # (B, C, 1, 1)
        return x * self.scale_activation(scale)


class BlockV3(NamedTuple):
    cin: int
    kernel: int
    expanded: int
    cout: int
    se: bool
    hardswish: bool
    stride: int


class InvertedResidualV3(nn.Module):
    r"""Expand (1x1) -> depthwise kxk (stride) -> [squeeze-excitation] -> project (1x1); residual when shapes match."""

    def __init__(self, L: Layers, cfg: BlockV3, bn: functools.partial[nn.BatchNorm2d]):
        super().__init__()
        act: Act = nn.Hardswish if cfg.hardswish else nn.ReLU
        self.use_res_connect = cfg.stride == 1 and cfg.cin == cfg.cout
        layers: list[nn.Module] = []
        if cfg.expanded != cfg.cin:
            layers.append(conv_norm_act(L, cfg.cin, cfg.expanded, 1, act=act, bn=bn))
        layers.append(conv_norm_act(L, cfg.expanded, cfg.expanded, cfg.kernel, cfg.stride, cfg.expanded, act, bn))
        if cfg.se:
            layers.append(SqueezeExcitation(L, cfg.expanded, make_divisible(cfg.expanded // 4, 8)))
        layers.append(conv_norm_act(L, cfg.expanded, cfg.cout, 1, act=None, bn=bn))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.use_res_connect else self.block(x)


# (in, kernel, expanded, out, squeeze-excite, hardswish, stride) of torchvision's tables.
V3_LARGE = (
    (16, 3, 16, 16, False, False, 1), (16, 3, 64, 24, False, False, 2), (24, 3, 72, 24, False, False, 1),
    (24, 5, 72, 40, True, False, 2), (40, 5, 120, 40, True, False, 1), (40, 5, 120, 40, True, False, 1),
    (40, 3, 240, 80, False, True, 2), (80, 3, 200, 80, False, True, 1), (80, 3, 184, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1), (80, 3, 480, 112, True, True, 1), (112, 3, 672, 112, True, True, 1),
    (112, 5, 672, 160, True, True, 2), (160, 5, 960, 160, True, True, 1), (160, 5, 960, 160, True, True, 1),
)
V3_SMALL = (
    (16, 3, 16, 16, True, False, 2), (16, 3, 72, 24, False, False, 2), (24, 3, 88, 24, False, False, 1),
    (24, 5, 96, 40, True, True, 2), (40, 5, 240, 40, True, True, 1), (40, 5, 240, 40, True, True, 1),
    (40, 5, 120, 48, True, True, 1), (48, 5, 144, 48, True, True, 1), (48, 5, 288, 96, True, True, 2),
    (96, 5, 576, 96, True, True, 1), (96, 5, 576, 96, True, True, 1),
)


class MobileNetV3(nn.Module):
    r"""MobileNetV3: 3x3/2 stem (hardswish), inverted residual blocks with SE, 1x1 conv, avg pool, 2 linears.

    Args:
        blocks: the block table (:data:`V3_LARGE` or :data:`V3_SMALL`).
        last_channel: width of the first linear (1280 large, 1024 small).
        in_channels: input channels.
        num_classes: number of outputs.
        dropout: dropout probability before the last linear.
        algorithm: anyconv algorithm of every conv and pooling layer.

    Shape:
        ``(B, in_channels, H, W) -> (B, num_classes)``.

    Examples:
        >>> MobileNetV3(V3_SMALL, 1024, num_classes=4).eval()(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 4])
    """

    def __init__(
        self, blocks: tuple[tuple[int, int, int, int, bool, bool, int], ...], last_channel: int,
        in_channels: int = 3, num_classes: int = 1000, dropout: float = 0.2, algorithm: str = "auto",
    ):
        super().__init__()
        L = Layers(algorithm)
        bn = functools.partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
        cfgs = [BlockV3(*b) for b in blocks]
        layers: list[nn.Module] = [conv_norm_act(L, in_channels, cfgs[0].cin, 3, 2, act=nn.Hardswish, bn=bn)]
        layers += [InvertedResidualV3(L, c, bn) for c in cfgs]
        last_conv = 6 * cfgs[-1].cout
        layers.append(conv_norm_act(L, cfgs[-1].cout, last_conv, 1, act=nn.Hardswish, bn=bn))
        self.features = nn.Sequential(*layers)
        self.avgpool = L.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(last_conv, last_channel),
            nn.Hardswish(inplace=True),
            nn.Dropout(p=dropout, inplace=True),
            nn.Linear(last_channel, num_classes),
        )
        init_torchvision(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))  # (B, 6 c, 1, 1)
        return self.classifier(torch.flatten(x, 1))


def mobilenet_v2(*, in_channels: int = 3, num_classes: int = 1000, algorithm: str = "auto", **kwargs: float) -> MobileNetV2:
    """MobileNetV2 (see :class:`MobileNetV2`)."""
    return MobileNetV2(in_channels, num_classes, algorithm=algorithm, **kwargs)


def mobilenet_v3_large(*, in_channels: int = 3, num_classes: int = 1000, algorithm: str = "auto", **kwargs: float) -> MobileNetV3:
    """MobileNetV3-large (see :class:`MobileNetV3`)."""
    return MobileNetV3(V3_LARGE, 1280, in_channels, num_classes, algorithm=algorithm, **kwargs)


def mobilenet_v3_small(*, in_channels: int = 3, num_classes: int = 1000, algorithm: str = "auto", **kwargs: float) -> MobileNetV3:
    """MobileNetV3-small (see :class:`MobileNetV3`)."""
    return MobileNetV3(V3_SMALL, 1024, in_channels, num_classes, algorithm=algorithm, **kwargs)
