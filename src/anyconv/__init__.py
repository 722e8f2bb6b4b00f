"""anyconv: every convolution and pooling operation, any number of dims, on PyTorch tensors.

``import anyconv`` imports torch and numpy only; tools, models and pictures load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import algorithms, functional, nn
from ._workspace import get_workspace_limit, set_workspace_limit, workspace_limit

__version__ = "0.1.0"

_LAZY_MODULES = ("tools", "models", "viz", "data", "train")
# public name -> (module, attribute), imported on first access
_LAZY_ATTRS = {
    "summary": ("anyconv.tools.summary", "summary"),
    "choose_algorithm": ("anyconv.algorithms.choose", "choose_algorithm"),
    "explain_algorithm": ("anyconv.algorithms.choose", "explain_algorithm"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        return importlib.import_module(f"anyconv.{name}")
    if name in _LAZY_ATTRS:
        module, attr = _LAZY_ATTRS[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'anyconv' has no attribute {name!r}")


__all__ = [
    "__version__",
    "algorithms",
    "choose_algorithm",
    "explain_algorithm",
    "functional",
    "get_workspace_limit",
    "nn",
    "set_workspace_limit",
    "summary",
    "workspace_limit",
]
