"""Shared by ``anyconv summary`` and ``anyconv norm``: a model from a zoo name or ``file.py:Class``."""

from __future__ import annotations

from typing import Any

from ._grammar import CommandError, batched, parse_sizes

INPUT_HELP = ("input shape N x C x spatial (1x3x224x224); one sample C x spatial (3x224x224) or its "
              "spatial size (224x224, 224) is read as batch 1; sizes as 5x5, 5,5 or 5")


def first_conv(model: Any) -> Any:
    """The model's first conv or transposed-conv layer (``None`` without one)."""
    import torch

    return next((m for m in model.modules() if isinstance(m, torch.nn.modules.conv._ConvNd)), None)


def model_and_input(spec: str, text: str) -> tuple[Any, tuple[int, ...], str | None]:
    """``MODEL`` and ``--input`` of summary/norm: the model and the batched input shape.

    The rank comes from the model's first conv layer: one size short of ``(N, C, *spatial)``
    is one sample (batch 1), the spatial size alone is one sample with the model's channels
    (the third result says how it was read, for :func:`._grammar.reading`). A zoo model is
    rebuilt for other channels.
    """
    sizes = parse_sizes(text, "--input")
    model = load_model(spec, None)
    conv = first_conv(model)
    if conv is None:
        if len(sizes) < 2:
            raise CommandError(f"`--input` must be N x C x spatial sizes (the model has no conv layer to "
                               f"tell its rank); got --input={text!r}")
        return model, sizes, None
    n = len(conv.kernel_size)
    channels = int(conv.in_channels)
    shape, note = batched(sizes, n, channels, "--input", f"{spec} (a {n}-D model taking {channels} channels)")
    if shape[1] != channels and ":" not in spec:
        model = load_model(spec, shape[1])
    return model, shape, note


def load_model(spec: str, in_channels: int | None) -> Any:
    """A zoo model (``anyconv.models.create_model``) or ``path/to/module.py:ClassName`` (no-arg constructor)."""
    import importlib.util
    import os

    if ":" in spec and spec.split(":", 1)[0].endswith(".py"):
        path, cls = spec.rsplit(":", 1)
        if not os.path.isfile(path):
            raise CommandError(f"no such file: {path!r}")
        mod_spec = importlib.util.spec_from_file_location("_anyconv_user_model", path)
        if mod_spec is None or mod_spec.loader is None:
            raise CommandError(f"cannot import {path!r}")
        module = importlib.util.module_from_spec(mod_spec)
        try:
            mod_spec.loader.exec_module(module)
        except Exception as e:  # noqa: BLE001 - the user's file: report in one line
            raise CommandError(f"importing {path!r} failed: {type(e).__name__}: {e}") from None
        if not hasattr(module, cls):
            raise CommandError(f"{path!r} has no attribute {cls!r}")
        try:
            return getattr(module, cls)()
        except Exception as e:  # noqa: BLE001
            raise CommandError(f"{cls}() failed: {type(e).__name__}: {e}") from None
    try:
        from ..models import create_model
    except ImportError:
        raise CommandError("the model zoo (anyconv.models) is not available; pass path/to/module.py:ClassName") from None
    if in_channels is None:
        return create_model(spec)
    try:
        return create_model(spec, in_channels=in_channels)
    except TypeError:
        return create_model(spec)
