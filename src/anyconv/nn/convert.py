"""``convert(model)``: a copy of a torch model with its conv and pooling layers swapped for anyconv's."""

from __future__ import annotations

import copy

import torch

from . import conv, fold, lazy, pooling, unpool


def convert(module: torch.nn.Module, algorithm: str = "auto") -> torch.nn.Module:
    """Return a deep copy of ``module`` whose torch conv/pooling layers are anyconv's.

    Parameters, buffers, hooks and training mode are kept (the layer objects are copied and
    their class changed to anyconv's subclass of the same torch class). Layers anyconv has no
    equivalent for are left as they are.

    Examples:
        >>> import torch, anyconv
        >>> m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU())
        >>> type(anyconv.nn.convert(m)[0]).__module__
        'anyconv.nn.conv'
    """
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"convert: `module` must be a torch.nn.Module; got module={type(module).__name__}")
    from ..core.spec import check_algorithm

    check_algorithm("convert", algorithm)
    table = {**conv.TORCH_EQUIVALENTS, **pooling.TORCH_EQUIVALENTS, **unpool.TORCH_EQUIVALENTS,
             **lazy.TORCH_EQUIVALENTS, **fold.TORCH_EQUIVALENTS}
    model = copy.deepcopy(module)
    for m in model.modules():
        target = table.get(type(m))
        if target is not None:
            m.__class__ = target
            m.algorithm = algorithm  # type: ignore[assignment]
    return model
