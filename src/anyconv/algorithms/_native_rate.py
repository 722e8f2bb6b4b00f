"""How much slower ``native`` runs in this process than the cost model expects (a slow build).

``native``'s coefficients come from a profile: the shipped one was fitted on an AVX-512 machine, where
the C kernel's 64-byte vectors are the machine's own. A build for AVX2 (``ANYCONV_NATIVE_ISA=avx2``, or
``-march=native`` on a CPU without AVX-512) splits every such vector in two and runs the kernel 5-9x
slower than on AVX-512, not 2x (measured on the development machine's AVX2 build: 3x3 32-64 channel
layers 10.9-19.7 ms against 1.5-2.2 ms); ``auto`` would keep choosing it by the profile's coefficients.
:func:`slowdown` times ``native`` once per process, profile and thread count on a small probe call
(a 3x3 32-channel layer at 24x24, well under a millisecond on AVX-512) and compares it with the
profile's prediction: a build at least :data:`MIN_SLOWDOWN` times slower has ``native``'s predictions
scaled by that factor (rounded to a power of sqrt(2), at most 16). With ``$ANYCONV_PROFILE=default``
(reproducible runs, the tests) it is 1.

Example:
    >>> import os; os.environ.get("ANYCONV_PROFILE") == "default" and slowdown(None) == 1.0  # the tests
    True
"""

from __future__ import annotations

import math
import os
import threading
import time
from typing import Any

import torch

from ..core.spec import CorrSpec
from . import native
from ._native_abi import unavailable

PROBE = ((2, 32, 24, 24), (32, 32, 3, 3))  # x, w of the probe call (padding 1)
MIN_SLOWDOWN = 2.0
_SLOW: dict[tuple[int, int], float] = {}
_LOCK = threading.Lock()


def _measure(coefficients: dict[str, float]) -> float:
    from ._gemm import _real_tensors

    spec = CorrSpec((1, 1), (1, 1), ((1, 1), (1, 1)), 1)
    with _real_tensors(), torch.no_grad():
        x, w = torch.randn(PROBE[0]), torch.randn(PROBE[1])
        predicted = sum(coefficients.get(k, 0.0) * v for k, v in native.cost_features(x, w, spec).items())
        native.forward(x, w, spec)  # (the first call builds or loads the library, and plans)
        best = math.inf
        for _ in range(3):
            t0 = time.perf_counter()
            native.forward(x, w, spec)
            best = min(best, (time.perf_counter() - t0) * 1e3)
    ratio = best / predicted if predicted > 0 else 1.0
    if ratio < MIN_SLOWDOWN:
        return 1.0
    return float(2.0 ** (min(8, round(2 * math.log2(ratio))) / 2))


def slowdown(prof: Any) -> float:
    """The factor ``native``'s predicted times are scaled by under the profile ``prof`` (1 unless the
    kernel measured at least :data:`MIN_SLOWDOWN` times slower than ``prof`` predicts)."""
    if os.environ.get("ANYCONV_PROFILE") == "default" or prof is None or unavailable() is not None:
        return 1.0
    coefficients = prof.coefficients.get("native")
    if not coefficients:
        return 1.0
    key = (prof.serial, torch.get_num_threads())
    found = _SLOW.get(key)
    if found is None:
        with _LOCK:
            found = _SLOW.get(key)
            if found is None:
                found = _SLOW[key] = _measure(coefficients)
    return found
