"""``positions``: one GEMM per output position, for calls with few outputs and a big kernel.

The weight gradient of a convolution is itself a correlation whose "kernel" is the output
gradient (large) and whose output is the original kernel (a few positions). Looping over the
``P`` output positions, each is one well-shaped matrix product over the whole kernel:

    y[b, g, o, p] = sum_r x_pad[b, g, r-th element of the window at p] * w[g, o, r]
                  = (X_p[g] @ W[g]^T)[b, o]        X_p: (G, B, Cg*K), W: (G, Og, Cg*K)

(the window at ``p`` is a strided view; its copy is ``Cg*K`` elements per sample). This is how
im2col-based libraries compute weight gradients, and it avoids im2col's ``(Cg*K) x P``
column matrix with tiny ``P``. ``supports`` limits it to ``P <= MAX_POSITIONS``.

Accuracy: the same products as ``direct`` (float32 normwise relative error ~1e-7).
"""

from __future__ import annotations

import itertools

import torch

from .._padding import pad
from .._shapes import effective_kernel, prod
from .._spec import CorrSpec

NAME = "positions"
MAX_POSITIONS = 512


def supports(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> str | None:
    """Calls with at most ``MAX_POSITIONS`` output positions."""
    p = prod(spec.output_spatial(x.shape[2:], w.shape[2:]))
    if p > MAX_POSITIONS:
        return f"at most {MAX_POSITIONS} output positions are supported (got {p})"
    return None


def forward(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor:
    """Cross-correlate ``x`` ``(B, C, *L)`` with ``w`` ``(O, C // G, *k)``, position by position."""
    b, c = x.shape[:2]
    o, cg = w.shape[:2]
    g = spec.groups
    kernel = tuple(w.shape[2:])
    out = spec.output_spatial(x.shape[2:], kernel)
    y = x.new_empty((b, o, *out))
    if y.numel() == 0:
        return y
    xp = pad(x, spec.padding)  # (B, C, *L)
    wt = w.reshape(g, o // g, -1).transpose(1, 2)  # (G, Cg*K, Og)
    eff = [effective_kernel(k, d) for k, d in zip(kernel, spec.dilation)]
    for p in itertools.product(*(range(v) for v in out)):
        win = xp[(slice(None), slice(None)) + tuple(
            slice(pi * s, pi * s + e, d) for pi, s, e, d in zip(p, spec.stride, eff, spec.dilation)
        )]  # (B, C, *k)
        xs = win.reshape(b, g, -1).transpose(0, 1)  # (G, B, Cg*K)
        res = torch.matmul(xs, wt)  # (G, B, Og)
        y[(slice(None), slice(None)) + p] = res.transpose(0, 1).reshape(b, o)
    return y
