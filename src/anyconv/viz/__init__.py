"""Seeing convolution: animations (Pillow), plots (matplotlib) and an offline playground page.

``import anyconv.viz`` imports neither Pillow nor matplotlib; they load when a function that
draws is called, and a missing one gives a one-line ``ImportError`` naming the extra
(``pip install anyconv[viz]``).

- :func:`animate_conv`: GIF/APNG/WebP/MP4 of a 1-D or 2-D conv, transposed conv or pooling;
- :func:`plot_signal`, :func:`plot_filter`, :func:`plot_kernels`, :func:`plot_feature_maps`,
  :func:`synthetic_image`: matplotlib figures;
- :func:`playground_html`: the self-contained playground page (``anyconv playground``).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "animate_conv": "anyconv.viz.animate",
    "Animation": "anyconv.viz.animate",
    "plot_signal": "anyconv.viz.plots",
    "plot_filter": "anyconv.viz.plots",
    "plot_kernels": "anyconv.viz.model_plots",
    "plot_feature_maps": "anyconv.viz.model_plots",
    "synthetic_image": "anyconv.viz.plots",
    "FILTERS": "anyconv.viz.plots",
    "playground_html": "anyconv.viz.playground",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'anyconv.viz' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = sorted(_LAZY)
