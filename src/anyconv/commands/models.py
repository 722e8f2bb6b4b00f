"""``anyconv models``: the model zoo, one line per model (name, input shape, parameters, what it is)."""

from __future__ import annotations

import argparse
from typing import Any

EPILOG = """examples:
  anyconv models                 every model of anyconv.models.list_models()
  anyconv models resnet          only names containing "resnet"
  anyconv models --json          one JSON object per line

INPUT is one sample's shape (C x spatial), the shape `anyconv summary NAME --input` and
`anyconv train --model NAME` expect (a batch adds N in front); PARAMS counts the parameters
of the default model (10 classes for the small ones, 1000 for the torchvision-named ones)."""

# name prefix -> (one sample's default spatial size, short description)
_ABOUT: dict[str, tuple[tuple[int, ...], str]] = {
    "lenet5": ((28, 28), "LeNet-5 (LeCun 1998): 2 conv + 3 linear, tanh, avg pooling; MNIST-sized digits"),
    "cifar_cnn": ((32, 32), "the learning material's CIFAR-10 CNN: 2 x (conv3x3, BN, ReLU, maxpool) + linear"),
    "mnist1d_cnn": ((40,), "1-D CNN for MNIST-1D signals (anyconv train's default)"),
    "alexnet": ((224, 224), "AlexNet (Krizhevsky 2012), torchvision's layout and weights"),
    "vgg": ((224, 224), "VGG (Simonyan & Zisserman 2014), torchvision's layout; _bn: with batch norm"),
    "resnet": ((224, 224), "ResNet (He 2015), torchvision's layout and weights"),
    "mobilenet_v2": ((224, 224), "MobileNetV2 (Sandler 2018): depthwise-separable inverted residuals"),
    "mobilenet_v3": ((224, 224), "MobileNetV3 (Howard 2019): depthwise, squeeze-excite, hard-swish"),
    "unet": ((64, 64), "a small U-Net (Ronneberger 2015): per-pixel classes, output N x classes x H x W"),
}


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "models", help="list the model zoo: name, input shape, parameters, description",
        description="List anyconv's model zoo (anyconv.models.create_model names), one line each.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("filter", nargs="?", default="", help="show only names containing this text")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=run)
    return p


def about(name: str) -> tuple[tuple[int, ...], str]:
    """``(spatial size, description)`` of a zoo model (longest matching name prefix)."""
    key = max((k for k in _ABOUT if name.startswith(k)), key=len, default=None)
    return _ABOUT[key] if key is not None else ((), "")


def describe(name: str) -> dict[str, Any]:
    """One zoo model as plain data; built on the ``meta`` device (no memory, no initialisation)."""
    import torch

    from ..models import count_params, create_model

    with torch.device("meta"):
        model = create_model(name)
    first = next((m for m in model.modules() if isinstance(m, torch.nn.modules.conv._ConvNd)), None)
    channels = int(first.in_channels) if first is not None else 1
    spatial, text = about(name)
    return {"name": name, "input": [channels, *spatial], "params": count_params(model), "description": text}


def run(args: argparse.Namespace) -> int:
    import json

    from ..models import list_models
    from ._grammar import flag_error

    names = [n for n in list_models() if args.filter.lower() in n]
    if not names:
        flag_error("filter", args.filter, "part of a model name (" + ", ".join(list_models()) + ")")
    for name in names:
        row = describe(name)
        if args.json:
            print(json.dumps(row))
        else:
            shape = "x".join(map(str, row["input"]))
            print(f"{name:20s} {shape:10s} {row['params']:>12,} params  {row['description']}")
    return 0
