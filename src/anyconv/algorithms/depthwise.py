"""``depthwise``: shift-and-multiply-accumulate for depthwise kernels (``C_in / groups == 1``).

With one input channel per group every output channel is a weighted sum of shifted,
strided views of its own input plane:

    y[b, g, o, p] = sum_q w[g, o, q] * x_pad[b, g, p * s + q * d]

computed as ``prod(kernel)`` in-place ``addcmul_`` passes over the output, no Python loop
per channel and no column buffer. At stride 1 each pass covers only the output positions whose
tap lands inside ``x``, on views of ``x`` and ``y`` (no padded copy, no crop: :func:`_clipped`).
Otherwise the passes run over long contiguous rows: the padded input is split into its stride
phases and flattened, so that every tap is a constant offset into one
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

from ..core.shapes import prod
from ..core.spec import CorrSpec
from ..core.workspace import scratch_budget
from ._common import (
    crop_flat,
    flat_output_len,
    halves_to_float32,
    phase_grid,
    phase_tiles,
    row_major_strides,
    stride_split_elements,
    tap_reads,
    trivial_result,
)

NAME = "depthwise"
MAX_TAPS = 1024


def supports(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> str | None:
    """Depthwise calls only (one input channel per group), at most ``MAX_TAPS`` taps, one sample's
    phases and padded-width output within the scratch budget."""
    if w.shape[1] != 1:
        return f"only depthwise kernels (C_in / groups == 1) are supported (got {w.shape[1]})"
    if prod(w.shape[2:]) > MAX_TAPS:
        return f"at most {MAX_TAPS} kernel taps are supported (got {prod(w.shape[2:])})"
    per_sample = _per_sample(x, w, spec)
    if per_sample > scratch_budget():
        return (f"one sample's input phases and padded-width output ({per_sample} bytes) would exceed "
                f"the scratch budget ({scratch_budget()} bytes, half the workspace limit)")
    return None


def _per_sample(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> int:
    """Bytes of one sample's phases plus its padded-width output (computed in float32 at least)."""
    m = phase_grid(x, spec.padding, spec.stride)
    lf = flat_output_len(spec.output_spatial(x.shape[2:], w.shape[2:]), row_major_strides(m))
    return (int(x.shape[1]) * prod(m) * prod(spec.stride) + int(w.shape[0]) * lf) * max(4, x.element_size())


def forward(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor:
    """Cross-correlate ``x`` ``(B, C, *L)`` with a depthwise ``w`` ``(C * Og, 1, *k)``."""
    trivial = trivial_result(x, w, spec)
    if trivial is not None:
        return trivial
    b, c = x.shape[:2]
    o = w.shape[0]
    og = o // c
    kernel = tuple(w.shape[2:])
    out = spec.output_spatial(x.shape[2:], kernel)
    dt = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    if all(v == 1 for v in spec.stride) and all(pb >= 0 and pa >= 0 for pb, pa in spec.padding):
        return _clipped(x, w, spec, out, dt)
    m = phase_grid(x, spec.padding, spec.stride)
    st = row_major_strides(m)
    lf = flat_output_len(out, st)
    reads = tap_reads(kernel, spec.dilation, spec.stride, st)
    wt = w.to(dt).reshape(c, og, -1, 1)  # (C, Og, K, 1)
    y = x.new_empty((b, o, *out))
    for rows, flat in phase_tiles(x, spec, _per_sample(x, w, spec), dt):
        yf = flat.new_empty((flat.shape[spec.n], c, og, lf))
        for j, (phase, off) in enumerate(reads):
            view, wj = flat[phase][:, :, None, off : off + lf], wt[:, :, j]  # (b, C, 1, Lf), (C, Og, 1)
            if j == 0:
                torch.mul(view, wj, out=yf)
            else:
                yf.addcmul_(view, wj)
        y[rows] = crop_flat(yf.view(yf.shape[0], o, lf), out, st)
    return y


def _clipped(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, out: tuple[int, ...], dt: torch.dtype) -> torch.Tensor:
    """Stride 1: every tap is one pass ``y[dst] += w_q * x[src]`` over the output positions whose
    window tap lands inside ``x`` (the zero padding contributes nothing), on views of ``x`` and
    ``y``: no padded or phase-split copy, no crop, no scratch. A tap that reaches every output
    position (the centre tap of a 'same' layer) writes ``y`` first, so ``y`` is never zero-filled.

    Measured against the phase-split passes: 0.4-0.9x the time at stride 1 (the passes there
    were cheaper than the two copies around them), slower at stride 2 (strided reads).
    """
    n = spec.n
    b, c = x.shape[:2]
    og = w.shape[0] // c
    length = x.shape[2:]
    xd = x.to(dt)
    wv = w.to(dt).reshape(c, og, -1)
    y = torch.empty((b, c, og, *out), dtype=dt, device=x.device)
    taps: list[tuple[bool, int, tuple[slice, ...], tuple[slice, ...]]] = []
    for j, q in enumerate(itertools.product(*(range(k) for k in w.shape[2:]))):
        dst: list[slice] = []
        src: list[slice] = []
        for i in range(n):
            off = q[i] * spec.dilation[i] - spec.padding[i][0]  # y[p] += x[p + off]
            lo, hi = max(0, -off), min(out[i], length[i] - off)
            if hi <= lo:
                break
            dst.append(slice(lo, hi))
            src.append(slice(lo + off, hi + off))
        else:
            whole = all(d.start == 0 and d.stop == o for d, o in zip(dst, out))
            taps.append((whole, j, tuple(dst), tuple(src)))
    first = next((t for t in taps if t[0]), None)
    if first is None:
        y.zero_()
    else:
        taps.remove(first)
        torch.mul(xd[(slice(None), slice(None)) + first[3]].unsqueeze(2), wv[:, :, first[1]].view(c, og, *(1,) * n), out=y)
    for _, j, dst_t, src_t in taps:
        yv = y[(slice(None), slice(None), slice(None)) + dst_t]
        yv.addcmul_(xd[(slice(None), slice(None)) + src_t].unsqueeze(2), wv[:, :, j].view(c, og, *(1,) * n))
    return y.view(b, c * og, *out).to(x.dtype)


# --- cost model (read by ``auto``: named features, error growth, compute dtype) ---

ERROR_GROWTH = 0.0  # a summation algorithm (auto's summation bound)
COMPUTE_DTYPE = halves_to_float32


def cost_features(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> dict[str, float]:
    """``tap_outputs`` output elements * taps, ``taps`` (passes), ``split`` input elements split into
    stride phases (stride > 1)."""
    k = prod(w.shape[2:])
    p = prod(spec.output_spatial(x.shape[2:], w.shape[2:]))
    return {"calls": 1.0, "tap_outputs": float(x.shape[0] * w.shape[0] * p * k), "taps": float(k),
            "split": stride_split_elements(x, spec)}
