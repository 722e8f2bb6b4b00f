"""ResNet-18/34/50/101/152 (He et al., 2015) in torchvision's layout (ResNet v1.5: stride in the 3x3 conv)."""

from __future__ import annotations

import functools

import torch
from torch import nn

from ._common import Layers, init_torchvision


class BasicBlock(nn.Module):
    r"""``y = relu(bn2(conv3x3(relu(bn1(conv3x3_s(x))))) + shortcut(x))``.

    The shortcut is the identity, or ``conv1x1_s -> BN`` (``downsample``) when the stride or
    the width changes, so that both branches have the same shape.
    """

    expansion = 1

    def __init__(self, L: Layers, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = L.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = L.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)  # (B, planes, H/s, W/s)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    r"""``1x1 (reduce) -> 3x3 (stride) -> 1x1 (expand x4)``, each followed by BN, plus the shortcut."""

    expansion = 4

    def __init__(self, L: Layers, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = L.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = L.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = L.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    r"""Stem (7x7/2 conv, BN, ReLU, 3x3/2 max pool), four stages of blocks, global avg pool, linear.

    State_dict keys and shapes equal torchvision's ``resnet18`` ... ``resnet152``.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers: number of blocks in each of the four stages.
        in_channels: input channels.
        num_classes: number of outputs.
        zero_init_residual: start every residual branch's last BN at zero (block = identity).
        algorithm: anyconv algorithm of every conv and pooling layer.

    Shape:
        ``(B, in_channels, H, W) -> (B, num_classes)``; the stages see ``H / 4, H / 8, H / 16, H / 32``.

    Examples:
        >>> ResNet(BasicBlock, [1, 1, 1, 1], num_classes=3)(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self, block: type[BasicBlock] | type[Bottleneck], layers: list[int], in_channels: int = 3,
        num_classes: int = 1000, zero_init_residual: bool = False, algorithm: str = "auto",
    ):
        super().__init__()
        L = Layers(algorithm)
        self.inplanes = 64
        self.conv1 = L.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = L.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._stage(L, block, 64, layers[0])
        self.layer2 = self._stage(L, block, 128, layers[1], stride=2)
        self.layer3 = self._stage(L, block, 256, layers[2], stride=2)
        self.layer4 = self._stage(L, block, 512, layers[3], stride=2)
        self.avgpool = L.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        init_torchvision(self, linear_std=None)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def _stage(
        self, L: Layers, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int, stride: int = 1
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                L.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        out = [block(L, self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        out += [block(L, self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, H/4, W/4)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, 512 e, H/32, W/32)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _resnet(
    block: type[BasicBlock] | type[Bottleneck], layers: list[int], *, in_channels: int = 3,
    num_classes: int = 1000, algorithm: str = "auto", **kwargs: bool,
) -> ResNet:
    return ResNet(block, layers, in_channels, num_classes, algorithm=algorithm, **kwargs)


resnet18 = functools.partial(_resnet, BasicBlock, [2, 2, 2, 2])
resnet34 = functools.partial(_resnet, BasicBlock, [3, 4, 6, 3])
resnet50 = functools.partial(_resnet, Bottleneck, [3, 4, 6, 3])
resnet101 = functools.partial(_resnet, Bottleneck, [3, 4, 23, 3])
resnet152 = functools.partial(_resnet, Bottleneck, [3, 8, 36, 3])
