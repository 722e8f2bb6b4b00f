"""anyconv: every convolution and pooling operation, any number of dims, on PyTorch tensors.

``import anyconv`` imports torch and numpy only; tools, models and pictures load on first use.
"""

from __future__ import annotations

import importlib as _importlib
from typing import Any as _Any

from . import algorithms, functional, nn
from ._onnx_legacy import register as _register_onnx_symbolics
from .core.workspace import get_workspace_limit, set_workspace_limit, workspace_limit

_register_onnx_symbolics()  # plain torch.onnx.export(..., dynamo=False) of converted models

__version__ = "0.1.0"

_LAZY_MODULES = ("tools", "models", "viz", "data", "train", "onnx")
# public name -> (module, attribute), imported on first access
_LAZY_ATTRS = {
    "summary": ("anyconv.tools.summary", "summary"),
    "choose_algorithm": ("anyconv.tools.choose", "choose_algorithm"),
    "explain_algorithm": ("anyconv.tools.choose", "explain_algorithm"),
    "set_autotune": ("anyconv.algorithms.autotune", "set_autotune"),
}


def __getattr__(name: str) -> _Any:  # lazy attributes (PEP 562)
    if name in _LAZY_MODULES:
        return _importlib.import_module(f"anyconv.{name}")
    if name in _LAZY_ATTRS:
        module, attr = _LAZY_ATTRS[name]
        return getattr(_importlib.import_module(module), attr)
    raise AttributeError(f"module 'anyconv' has no attribute {name!r}")


__all__ = [
    "__version__",
    "algorithms",
    "choose_algorithm",
    "explain_algorithm",
    "functional",
    "get_workspace_limit",
    "nn",
    "set_autotune",
    "set_workspace_limit",
    "summary",
    "workspace_limit",
]


def __dir__() -> list[str]:
    """``dir(anyconv)``: the public API (``__all__``) and the lazily imported subpackages only."""
    return sorted({*__all__, *_LAZY_MODULES})


del annotations  # the __future__ import binds it: not API
