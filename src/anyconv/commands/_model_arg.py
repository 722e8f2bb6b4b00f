"""Shared by ``anyconv summary`` and ``anyconv norm``: a model from a zoo name or ``file.py:Class``."""

from __future__ import annotations

from typing import Any


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1x3x32x32"`` -> ``(1, 3, 32, 32)``."""
    from ..cli import CommandError

    try:
        shape = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        raise CommandError(f"--input must look like 1x3x32x32; got {text!r}") from None
    if len(shape) < 3 or min(shape) < 1:
        raise CommandError(f"--input must be (B, C, *spatial) positive sizes like 1x3x32x32; got {text!r}")
    return shape


def load_model(spec: str, in_channels: int) -> Any:
    """A zoo model (``anyconv.models.create_model``) or ``path/to/module.py:ClassName`` (no-arg constructor)."""
    import importlib.util
    import os

    from ..cli import CommandError

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
    try:
        return create_model(spec, in_channels=in_channels)
    except TypeError:
        return create_model(spec)
