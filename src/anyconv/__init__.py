"""anyconv: every convolution and pooling operation, any number of dims, on PyTorch tensors."""

from __future__ import annotations

from . import algorithms, functional
from ._workspace import get_workspace_limit, set_workspace_limit, workspace_limit

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "algorithms",
    "functional",
    "get_workspace_limit",
    "set_workspace_limit",
    "workspace_limit",
]
