"""The names of the registered algorithms: data the front door validates ``algorithm=`` against.

Each name is also the module that implements it (``anyconv/algorithms/<name>.py``), so the
registry in :mod:`anyconv.algorithms` is built from this tuple, and the front door checks a
name without importing the algorithms (``core`` imports nothing above it). Adding an
algorithm is one new module plus its name here. The order is the documentation's.
"""

from __future__ import annotations

ALGORITHMS = (
    "direct",
    "im2col",
    "fft",
    "winograd",
    "depthwise",
    "matrix",
    "kn2row",
    "positions",
    "shifted",
    "native",
)
