"""``depthwise``: shift-and-multiply-accumulate for depthwise kernels (``C_in / groups == 1``).

With one input channel per group every output channel is a weighted sum of shifted,
strided views of its own input plane:

    y[b, g, o, p] = sum_q w[g, o, q] * x_pad[b, g, p * s + q * d]

computed as ``prod(kernel)`` in-place ``addcmul_`` passes over the output, no Python loop
per channel and no column buffer. The passes run over long contiguous rows: the padded input
is split into its stride phases and flattened, so that every tap is a constant offset into one
phase and the output is computed in the phases' padded-width layout, then cropped (the
flat-offset scheme of ``shifted``). (Processing the planes in cache-sized chunks was measured
slower: the Python overhead per pass outweighs the cache gain.) The work is ``prod(kernel)`` passes, so ``auto`` uses it for small kernels only
(large kernels go to ``fft``). Half precisions are accumulated in float32.

Accuracy: the same sums as ``direct`` in a fixed order; float32 normwise relative error
~1e-7 (growth ~ prod(kernel) * u in the worst case).
"""

from __future__ import annotations

import itertools

import torch

from .._shapes import prod
from .._spec import CorrSpec
from ._common import phase_grid, phases, row_major_strides

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
    b, c = x.shape[:2]
    o = w.shape[0]
    og = o // c
    kernel = tuple(w.shape[2:])
    out = spec.output_spatial(x.shape[2:], kernel)
    if b * o * prod(out) == 0:
        return x.new_zeros((b, o, *out))
    dt = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    m = phase_grid(x, spec.padding, spec.stride)
    st = row_major_strides(m)
    lf = sum((v - 1) * s for v, s in zip(out, st)) + 1
    flat = phases(x.to(dt), spec.padding, spec.stride).reshape(*spec.stride, b, c, 1, prod(m))
    wt = w.to(dt).reshape(c, og, -1, 1)  # (C, Og, K, 1)
    yf = flat.new_empty((b, c, og, lf))
    for j, q in enumerate(itertools.product(*(range(k) for k in kernel))):
        idx = [qi * d for qi, d in zip(q, spec.dilation)]
        phase = tuple(i % s for i, s in zip(idx, spec.stride))
        off = sum((i // s) * t for i, s, t in zip(idx, spec.stride, st))
        view, wj = flat[phase][..., off : off + lf], wt[:, :, j]  # (B, C, 1, Lf), (C, Og, 1)
        if j == 0:
            torch.mul(view, wj, out=yf)
        else:
            yf.addcmul_(view, wj)
    # position p of the output sits at flat index sum_i p_i st_i of its (sample, channel) row
    return yf.as_strided((b, o, *out), (o * lf, lf, *st)).contiguous().to(x.dtype)
