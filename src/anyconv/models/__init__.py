"""Model zoo built on anyconv's layers: ``list_models()`` and ``create_model(name, ...)``.

Every conv and pooling layer is anyconv's (``anyconv.nn``), with ``algorithm=`` passed to
each. The torchvision-named models (alexnet, vgg*, resnet*, mobilenet_*) have torchvision's
state_dict keys and shapes, so its weights load with ``model.load_state_dict``.

Examples:
    >>> import torch, anyconv
    >>> "resnet18" in anyconv.models.list_models()
    True
    >>> m = anyconv.models.create_model("cifar_cnn", in_channels=1, num_classes=10)
    >>> m(torch.zeros(2, 1, 16, 16)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import importlib
from typing import Any

from torch import nn

from ._common import count_params, with_torch_layers

# name -> (module, builder): modules are imported when a model is created.
_REGISTRY: dict[str, tuple[str, str]] = {
    "lenet5": ("lenet", "lenet5"),
    "cifar_cnn": ("cifar", "cifar_cnn"),
    "mnist1d_cnn": ("mnist1d", "mnist1d_cnn"),
    "alexnet": ("alexnet", "alexnet"),
    **{f"vgg{d}{bn}": ("vgg", f"vgg{d}{bn}") for d in (11, 13, 16, 19) for bn in ("", "_bn")},
    **{f"resnet{d}": ("resnet", f"resnet{d}") for d in (18, 34, 50, 101, 152)},
    "mobilenet_v2": ("mobilenet", "mobilenet_v2"),
    "mobilenet_v3_small": ("mobilenet", "mobilenet_v3_small"),
    "mobilenet_v3_large": ("mobilenet", "mobilenet_v3_large"),
    "unet": ("unet", "unet"),
}


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`, sorted."""
    return sorted(_REGISTRY)


def create_model(
    name: str, *, in_channels: int | None = None, num_classes: int | None = None, algorithm: str = "auto",
    **kwargs: Any,
) -> nn.Module:
    """Build a model of the zoo with anyconv layers.

    Args:
        name: one of :func:`list_models`.
        in_channels: input channels (default: the model's own, 1 for lenet5/mnist1d_cnn/unet, else 3).
        num_classes: number of outputs (default: 1000 for torchvision models, 10 for lenet5,
            cifar_cnn and mnist1d_cnn, 2 for unet).
        algorithm: anyconv algorithm given to every conv and pooling layer.
        **kwargs: model-specific options (e.g. ``dropout``, ``width_mult``, ``seq_len``).

    Raises:
        ValueError: unknown name (the message lists the known ones) or bad sizes.
        TypeError: wrong argument types.

    Examples:
        >>> create_model("mnist1d_cnn").linear.in_features
        125
    """
    from ..core.args import as_int
    from ..core.errors import type_error, value_error
    from ..core.spec import check_algorithm

    if not isinstance(name, str):
        type_error("create_model", "name", name, "a str")
    key = name.lower()
    if key not in _REGISTRY:
        value_error("create_model", "name", name, "one of " + ", ".join(list_models()))
    check_algorithm("create_model", algorithm)
    options: dict[str, Any] = dict(kwargs)
    for arg, value in (("in_channels", in_channels), ("num_classes", num_classes)):
        if value is not None:
            options[arg] = as_int("create_model", arg, value, "a positive int")
            if options[arg] < 1:
                value_error("create_model", arg, value, "a positive int")
    module, builder = _REGISTRY[key]
    fn = getattr(importlib.import_module(f"{__name__}.{module}"), builder)
    try:
        return fn(algorithm=algorithm, **options)
    except TypeError as e:
        if "unexpected keyword" in str(e):
            raise TypeError(f"create_model: model {key!r} does not take these options: {sorted(kwargs)}") from e
        raise


__all__ = ["count_params", "create_model", "list_models", "with_torch_layers"]
