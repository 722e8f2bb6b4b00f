"""Pieces shared by the model families: layer factories bound to an algorithm, inits, torch swap."""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable
from typing import Any

from torch import nn


class Layers:
    """anyconv's layer classes with ``algorithm=`` bound, e.g. ``L.Conv2d(3, 8, 3)``.

    Attribute access looks the class up in ``anyconv.nn`` (so models follow that module) and
    returns a constructor that passes ``algorithm`` to every conv and pooling layer.
    """

    def __init__(self, algorithm: str = "auto") -> None:
        self.algorithm = algorithm

    def __getattr__(self, name: str) -> Callable[..., nn.Module]:
        from .. import nn as acnn

        cls = getattr(acnn, name)
        return functools.partial(cls, algorithm=self.algorithm)


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``v`` to the nearest multiple of ``divisor``, never below 90% of ``v`` (MobileNet rule)."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def init_torchvision(model: nn.Module, linear_std: float | None = 0.01) -> None:
    """torchvision's initialisation: Kaiming-normal (fan_out, ReLU) convs, unit norms, N(0, std) linears."""
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear_std is not None:
            nn.init.normal_(m.weight, 0, linear_std)
            nn.init.zeros_(m.bias)


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a convolution or pooling window: ``floor((n + 2p - k) / s) + 1``."""
    return math.floor((size + 2 * padding - kernel) / stride) + 1


def with_torch_layers(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` whose anyconv conv/pooling layers are torch's own classes again.

    Weights, buffers and everything else are kept, so the copy computes the same function with
    PyTorch's kernels: the reference that anyconv's layers are compared with.

    Examples:
        >>> import anyconv
        >>> m = anyconv.models.create_model("mnist1d_cnn")
        >>> type(with_torch_layers(m).conv1).__module__
        'torch.nn.modules.conv'
    """
    from ..nn import conv, pooling

    back: dict[type[nn.Module], type[nn.Module]] = {}
    for table in (conv.TORCH_EQUIVALENTS, pooling.TORCH_EQUIVALENTS):
        back.update({ours: theirs for theirs, ours in table.items()})
    out = copy.deepcopy(model)
    for m in out.modules():
        target = back.get(type(m))
        if target is not None:
            m.__class__ = target
    return out


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def describe(model: nn.Module) -> dict[str, Any]:
    """Keys and shapes of the state_dict, as plain lists (what the manifests record)."""
    return {k: list(v.shape) for k, v in model.state_dict().items()}

