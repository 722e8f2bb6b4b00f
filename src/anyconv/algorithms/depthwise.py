"""``depthwise``: shift-and-multiply-accumulate for depthwise kernels (``C_in / groups == 1``).

With one input channel per group every output channel is a weighted sum of shifted,
strided views of its own input plane:

    y[b, g, o, p] = sum_q w[g, o, q] * x_pad[b, g, p * s + q * d]

computed as ``prod(kernel)`` in-place ``addcmul_`` passes over the output, no Python loop
per channel and no column buffer. (Processing the planes in cache-sized chunks was measured
slower: the Python overhead per pass outweighs the cache gain.) The work is ``prod(kernel)`` passes, so ``auto`` uses it for small kernels only
(large kernels go to ``fft``). Half precisions are accumulated in float32.

Accuracy: the same sums as ``direct`` in a fixed order; float32 normwise relative error
~1e-7 (growth ~ prod(kernel) * u in the worst case).
"""

from __future__ import annotations

import itertools

import torch

from .._padding import pad
from .._shapes import prod
from .._spec import CorrSpec

NAME = "depthwise"
MAX_TAPS = 1024


def supports(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> str | None:
    """Depthwise calls only (one input channel per group), at most ``MAX_TAPS`` taps."""
    if w.shape[1] != 1:
        return f"only depthwise kernels (C_in / groups == 1) are supported (got {w.shape[1]})"
    if prod(w.shape[2:]) > MAX_TAPS:
        return f"at most {MAX_TAPS} kernel taps are supported (got {prod(w.shape[2:])})"
    return None


def forward(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor:
    """Cross-correlate ``x`` ``(B, C, *L)`` with a depthwise ``w`` ``(C * Og, 1, *k)``."""
    n = spec.n
    b, c = x.shape[:2]
    o = w.shape[0]
    og = o // c
    kernel = tuple(w.shape[2:])
    out = spec.output_spatial(x.shape[2:], kernel)
    dt = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    xp = pad(x, spec.padding).to(dt).reshape(b * c, 1, *(v + sum(p) for v, p in zip(x.shape[2:], spec.padding)))
    wt = w.to(dt).reshape(c, og, -1)  # (C, Og, K)
    y = torch.zeros((b * c, og, *out), dtype=dt, device=x.device)  # (B*C, Og, *o)
    if y.numel() == 0:
        return y.reshape(b, o, *out).to(x.dtype)
    ones = (1,) * n
    wc = wt.reshape(c, og, -1)  # (C, Og, K)
    yv = y.reshape(b, c, og, *out)  # (B, C, Og, *o)
    xv = xp.reshape(b, c, 1, *xp.shape[2:])  # (B, C, 1, *L)
    for j, q in enumerate(itertools.product(*(range(k) for k in kernel))):
        view = xv[(slice(None), slice(None), slice(None)) + tuple(
            slice(qi * d, qi * d + (oi - 1) * s + 1, s)
            for qi, d, s, oi in zip(q, spec.dilation, spec.stride, out)
        )]  # (B, C, 1, *o)
        yv.addcmul_(view, wc[:, :, j].reshape(c, og, *ones))
    return y.reshape(b, o, *out).to(x.dtype)
