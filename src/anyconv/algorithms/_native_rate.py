"""How much slower ``native`` runs in this process than the cost model expects (a slow build).

``native``'s coefficients come from a profile: the shipped one was fitted on an AVX-512 machine, where
the C kernel's 64-byte vectors are the machine's own. A build for AVX2 (``ANYCONV_NATIVE_ISA=avx2``, or
``-march=native`` on a CPU without AVX-512) splits every such vector in two and runs the kernel 5-9x
slower than on AVX-512, not 2x (measured on the development machine's AVX2 build: 3x3 32-64 channel
layers 10.9-19.7 ms against 1.5-2.2 ms); ``auto`` would keep choosing it by the profile's coefficients.
:func:`slowdown` times ``native`` once per process, profile and thread count on a small probe call
(a 3x3 32-channel layer at 24x24, well under a millisecond on AVX-512) and compares it with the
profile's prediction: a build at least :data:`MIN_SLOWDOWN` times slower has ``native``'s predictions
scaled by that factor (rounded to a power of sqrt(2), at most 16). Calls of fewer than 4 output channels
per group (depthwise layers: the kernel's one-channel blocks, or the groups in the vector lanes) have a
probe of their own (a 3x3 depthwise layer of 64 channels at 24x24): the slowdowns differ, on an AVX2
AMD EPYC 13-18x for blocks of 4 channels (the 64-byte vectors spilled from 16 registers) against 2x for one
channel, and one factor for both had ``auto`` pass over the depthwise kernel that was the fastest there.
With ``$ANYCONV_PROFILE=default`` (reproducible runs, the tests) it is 1.

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
DEPTHWISE_PROBE = ((2, 64, 24, 24), (64, 1, 3, 3))  # the probe of calls with one-channel blocks (groups 64)
MIN_SLOWDOWN = 2.0
_SLOW: dict[tuple[int, int, bool], float] = {}
_LOCK = threading.Lock()


def depthwise(w: torch.Tensor, spec: CorrSpec) -> bool:
    """Whether a call takes the depthwise probe's factor: fewer than 4 output channels per group."""
    return int(w.shape[0]) // spec.groups < 4


def _measure(coefficients: dict[str, float], dw: bool) -> float:
    from ._gemm import _real_tensors

    xs, ws = DEPTHWISE_PROBE if dw else PROBE
    spec = CorrSpec((1, 1), (1, 1), ((1, 1), (1, 1)), xs[1] if dw else 1)
    with _real_tensors(), torch.no_grad():
        x, w = torch.randn(xs), torch.randn(ws)
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


def slowdown(prof: Any, dw: bool = False) -> float:
    """The factor ``native``'s predicted times are scaled by under the profile ``prof`` (1 unless the
    kernel measured at least :data:`MIN_SLOWDOWN` times slower than ``prof`` predicts), for calls of
    at least 4 output channels per group or (``dw``, :func:`depthwise`) fewer."""
    if os.environ.get("ANYCONV_PROFILE") == "default" or prof is None or unavailable() is not None:
        return 1.0
    coefficients = prof.coefficients.get("native")
    if not coefficients:
        return 1.0
    key = (prof.serial, torch.get_num_threads(), dw)
    found = _SLOW.get(key)
    if found is None:
        with _LOCK:
            found = _SLOW.get(key)
            if found is None:
                found = _SLOW[key] = _measure(coefficients, dw)
    return found
