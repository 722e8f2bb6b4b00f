"""``kn2row``: one GEMM over the whole input per group, then shifted adds (Vasudevan et al., 2017).

Every kernel tap ``q`` is a 1x1 convolution; all taps at once are one matrix product over
the (padded) input, with the kernel as ``(K * O_g, C_g)``:

    Z[b, g, q, o, j] = sum_c w[g O_g + o, c, q] * x_pad[b, g C_g + c, j]
    y[b, g, o, p]    = sum_q Z[b, g, q, o, p * s + q * d]

so the scratch buffer is ``K * O`` planes of the input size instead of im2col's ``K * C``
planes of the output size: it wins when few output channels read many input channels (the
input gradient of a first layer, a transposed conv that reduces channels), and on strided
calls whose skipped positions im2col would copy. The ``K`` shifted adds are in-place
``add_`` passes over the output. Tiles over the batch keep ``Z`` and the tile's padded input
(copied straight into the product's layout ``(G, Cg, b * L)``, never all of ``x`` padded at once)
within the scratch budget (half the workspace limit), one tile's buffers at a time: 8x64x64x64
with a 3x3 kernel under a 64 MiB limit peaked 69 MiB above its input and output (a padded copy of
all of ``x``, and the previous tile's ``Z`` still held while the next was made), 32 MiB now.

Accuracy: the same products as ``direct``, summed in another order (float32 normwise
relative error ~1e-7).
"""

from __future__ import annotations

import itertools

import torch

from ..core.shapes import prod
from ..core.spec import CorrSpec
from ..core.workspace import scratch_budget
from ._gemm import matmul

NAME = "kn2row"
GEMM_FEATURES = ("gemm_macs",)  # cost features that count matrix-product multiply-adds (auto.gemm_scale)


def scratch_bytes_per_sample(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> int:
    """Scratch bytes for one sample: ``Z`` (``K * O * prod(padded input)`` elements) and the padded
    input (``C * prod(padded input)`` elements)."""
    padded = prod([v + sum(p) for v, p in zip(x.shape[2:], spec.padding)])
    return (prod(w.shape[2:]) * w.shape[0] + x.shape[1]) * padded * x.element_size()


def supports(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> str | None:
    """Kernels of more than one tap whose ``Z`` for one sample fits the workspace limit."""
    if prod(w.shape[2:]) == 1:
        return "1x1 kernels are one matrix product already (im2col serves them with no copy)"
    need = scratch_bytes_per_sample(x, w, spec)
    limit = scratch_budget()
    if need > limit:
        return (f"the tap products and padded input of one sample ({need} bytes) exceed the scratch "
                f"budget ({limit} bytes, half the workspace limit)")
    return None


def forward(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor:
    """Cross-correlate ``x`` ``(B, C, *L)`` with ``w`` ``(O, C // G, *k)``."""
    n = spec.n
    b, c = x.shape[:2]
    o, cg = w.shape[:2]
    g = spec.groups
    og = o // g
    kernel = tuple(w.shape[2:])
    k = prod(kernel)
    out = spec.output_spatial(x.shape[2:], kernel)
    y = x.new_zeros((b, o, *out))
    if y.numel() == 0:
        return y
    big_l = [v + a + z for v, (a, z) in zip(x.shape[2:], spec.padding)]  # the padded input's size
    inner = tuple(slice(a, a + v) for v, (a, _) in zip(x.shape[2:], spec.padding))
    # (O, Cg, *k) -> (G, Og, Cg, K) -> (G, K, Og, Cg) -> (G, K*Og, Cg)
    wk = w.reshape(g, og, cg, k).permute(0, 3, 1, 2).reshape(g, k * og, cg)
    per = max(1, scratch_budget() // max(1, scratch_bytes_per_sample(x, w, spec)))
    taps = list(itertools.product(*(range(v) for v in kernel)))
    for start in range(0, b, per):
        stop = min(b, start + per)
        bb = stop - start
        # the tile padded straight into the product's layout: (b, G, Cg, *l) -> (G, Cg, b, *L)
        xs = x.new_zeros((g, cg, bb, *big_l))
        xt = x[start:stop].reshape(bb, g, cg, *x.shape[2:]).permute(1, 2, 0, *range(3, 3 + n))
        xs[(slice(None),) * 3 + inner] = xt
        xs = xs.reshape(g, cg, -1)  # (G, Cg, b*L)
        z = matmul(wk, xs)  # (G, K*Og, b*L)
        z = z.reshape(g, k, og, bb, *big_l)  # (G, K, Og, b, *L)
        ys = y[start:stop].reshape(bb, g, og, *out).permute(1, 2, 0, *range(3, 3 + n))  # (G, Og, b, *o) view
        for j, q in enumerate(taps):
            view = z[(slice(None), j, slice(None), slice(None)) + tuple(
                slice(qi * d, qi * d + (oi - 1) * s + 1, s)
                for qi, d, s, oi in zip(q, spec.dilation, spec.stride, out)
            )]  # (G, Og, b, *o)
            ys.add_(view)
        del xs, z, view  # freed before the next tile's are made: one tile's scratch at a time
    return y


# --- cost model (read by ``auto``: named features, error growth, compute dtype) ---

ERROR_GROWTH = 0.0  # a summation algorithm (auto's summation bound)
COMPUTE_DTYPE = None  # the input's dtype


def cost_features(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> dict[str, float]:
    """``gemm_macs`` (per tap over the padded input), ``tap_products`` elements, ``shifted_adds`` elements."""
    b = x.shape[0]
    o, cg = w.shape[:2]
    k = prod(w.shape[2:])
    p = prod(spec.output_spatial(x.shape[2:], w.shape[2:]))
    padded = prod([v + sum(pp) for v, pp in zip(x.shape[2:], spec.padding)])
    return {"calls": 1.0, "gemm_macs": float(b * o * k * cg * padded), "tap_products": float(b * o * k * padded),
            "shifted_adds": float(b * o * k * p)}
