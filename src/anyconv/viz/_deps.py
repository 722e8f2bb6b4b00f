"""Optional dependencies of ``anyconv.viz``: imported on first use, one-line message if missing."""

from __future__ import annotations

import importlib
from types import ModuleType

EXTRA_HINT = "pip install anyconv[viz]"


def require(module: str, what: str) -> ModuleType:
    """Import ``module`` or raise ImportError naming the extra that provides it.

    >>> require("math", "sums").__name__
    'math'
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        package = {"PIL": "Pillow"}.get(top, top)
        raise ImportError(f"{what} needs {package}, which is not installed: {EXTRA_HINT}") from None
