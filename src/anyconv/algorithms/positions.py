"""``positions``: one GEMM per output position over flat views, for few outputs and a big kernel.

The weight gradient of a convolution is itself a correlation whose "kernel" is the output
gradient (large) and whose output is the original kernel (a few positions). Looping over the
``P`` output positions, each is one batched matrix product over the whole kernel, read
straight from the input with no window copy:

- the padded input is flattened per (sample, channel) row-major, with spatial strides ``st``;
  with dilation ``d > 1`` it is first split into its ``prod(d)`` phases ``x[..., r::d]`` (one
  copy of the input, each phase padded to a common shape), so that a window's taps are
  contiguous-stride elements of one phase;
- the kernel is scattered once into the same flat layout: ``W'[g, cg, o, sum_i q_i st_i] =
  w[g, o, cg, q]`` (zeros elsewhere), length ``Lk = sum_i (k_i - 1) st_i + 1``;
- the window at position ``p`` is then the contiguous slice ``[off(p), off(p) + Lk)`` of every
  flat row (``off(p) = sum_i (p_i s_i // d_i) st_i`` in phase ``p s mod d``), and

    y[b, g, o, p] = sum_cg (X_p[g, cg] @ W'[g, cg])[b, o]   X_p[g, cg]: (B, Lk), W'[g, cg]: (Lk, Og)

  is one ``bmm`` over the ``G * Cg`` (group, input channel) pairs followed by a sum over ``cg``.

Zeros in ``W'`` multiply the elements that wrap around a row, so they never contribute.
This is how im2col-based libraries compute weight gradients, minus their window copy.
``supports`` limits it to ``P <= MAX_POSITIONS``; the per-position products are buffered in
chunks under the workspace limit.

Accuracy: the same products as ``direct`` (half precisions computed in float32) (float32 normwise relative error ~1e-7).
"""

from __future__ import annotations

import itertools

import torch

from .._shapes import prod
from .._spec import CorrSpec
from .._workspace import scratch_budget
from ._common import phase_grid, phases, row_major_strides, trivial_result

NAME = "positions"
MAX_POSITIONS = 512


def supports(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> str | None:
    """Calls with at most ``MAX_POSITIONS`` output positions whose flat kernel fits the scratch budget."""
    p = prod(spec.output_spatial(x.shape[2:], w.shape[2:]))
    if p > MAX_POSITIONS:
        return f"at most {MAX_POSITIONS} output positions are supported (got {p})"
    need = (w.shape[0] * w.shape[1] * _plan(x, w, spec)[2] + x.numel()) * x.element_size()
    if need > scratch_budget():
        return (f"the flat kernel and the input copy ({need} bytes) would exceed the scratch budget "
                f"({scratch_budget()} bytes, half the workspace limit)")
    return None


def _plan(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> tuple[list[int], list[int], int]:
    """``(phase shape M, flat strides st, Lk)`` of the call."""
    m = phase_grid(x, spec.padding, spec.dilation)
    st = row_major_strides(m)
    lk = sum((k - 1) * s for k, s in zip(w.shape[2:], st)) + 1
    return m, st, lk


def forward(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor:
    """Cross-correlate ``x`` ``(B, C, *L)`` with ``w`` ``(O, C // G, *k)``, position by position."""
    trivial = trivial_result(x, w, spec)
    if trivial is not None:
        return trivial
    if x.dtype in (torch.float16, torch.bfloat16):  # accumulate half precisions in float32
        return forward(x.float(), w.float(), spec).to(x.dtype)
    kernel, out = tuple(w.shape[2:]), spec.output_spatial(x.shape[2:], w.shape[2:])
    b, (o, cg), g = x.shape[0], w.shape[:2], spec.groups
    og = o // g
    m, st, lk = _plan(x, w, spec)
    flat = phases(x, spec.padding, spec.dilation).reshape(*spec.dilation, b, g, cg, prod(m))
    wf = x.new_zeros((g, cg, og, lk))
    wf.as_strided((g, cg, og, *kernel), (cg * og * lk, og * lk, lk, *st)).copy_(
        w.reshape(g, og, cg, *kernel).transpose(1, 2))
    wt = wf.reshape(g * cg, og, lk).transpose(1, 2)  # (G*Cg, Lk, Og)
    positions = list(itertools.product(*(range(v) for v in out)))

    def rows(p: tuple[int, ...]) -> torch.Tensor:  # (G, Cg, B, Lk): the window at p, a view
        idx = [pi * s for pi, s in zip(p, spec.stride)]
        phase = tuple(i % d for i, d in zip(idx, spec.dilation))
        off = sum((i // d) * s for i, d, s in zip(idx, spec.dilation, st))
        return flat[phase][..., off : off + lk].permute(1, 2, 0, 3)

    y = x.new_empty((len(positions), g, b, og))  # (P, G, B, Og)
    full = g * cg * b * og * x.element_size()  # one position's products before the sum over cg
    if full <= scratch_budget():
        chunk = min(len(positions), scratch_budget() // full)
        for p0 in range(0, len(positions), chunk):
            part = positions[p0 : p0 + chunk]
            buf = x.new_empty((len(part), g, cg, b, og))
            for j, p in enumerate(part):
                torch.bmm(rows(p).reshape(g * cg, b, lk), wt, out=buf[j].view(g * cg, b, og))
            torch.sum(buf, dim=2, out=y[p0 : p0 + len(part)])
    else:
        cc = max(1, cg * scratch_budget() // full)
        wv = wt.view(g, cg, lk, og)
        for j, p in enumerate(positions):
            r, acc = rows(p), y[j]
            acc.zero_()
            for c0 in range(0, cg, cc):
                k = min(cc, cg - c0)
                prods = torch.bmm(r[:, c0 : c0 + k].reshape(g * k, b, lk), wv[:, c0 : c0 + k].reshape(g * k, lk, og))
                acc += prods.view(g, k, b, og).sum(1)
    # (P, G, B, Og) -> (B, G, Og, P) -> (B, O, *out)
    return y.permute(2, 1, 3, 0).reshape(b, o, *out)
