"""``positions``: one GEMM per output position over flat views, for few outputs and a big kernel.

The weight gradient of a convolution is itself a correlation whose "kernel" is the output
gradient (large) and whose output is the original kernel (a few positions). Looping over the
``P`` output positions, each is one batched matrix product over the whole kernel, read
straight from the input with no window copy:

- the padded input is flattened per (sample, group) row-major over ``(Cg, *M)`` (``S = prod(M)``
  elements per channel, spatial strides ``st``); with dilation ``d > 1`` it is first split
  into its ``prod(d)`` phases ``x[..., r::d]`` (one copy of the input, each phase padded to a
  common shape ``M``), so that a window's taps are contiguous-stride elements of one phase;
- the kernel is scattered once into the same flat layout: ``W[g, o, cg * S + sum_i q_i st_i] =
  w[g, o, cg, q]``, zeros elsewhere, ``Kc = (Cg - 1) S + Lk`` rows (``Lk = sum_i (k_i - 1) st_i + 1``);
- the window at position ``p`` is then the contiguous slice ``[off(p), off(p) + Kc)`` of every
  flat (sample, group) row (``off(p) = sum_i (p_i s_i // d_i) st_i`` in phase ``p s mod d``):

    y[b, g, :, p] = X_p[g, b] @ W[g]^T    X_p[g]: (B, Kc) strided view, W[g]: (Og, Kc)

  one ``bmm`` over the groups per position, summing over channels and taps at once.

Zeros in ``W`` multiply the elements that wrap around a row or lie between channels, so they
never contribute (the wasted work is ``S / Lk``, a few percent for weight gradients). This is
how im2col-based libraries compute weight gradients, minus their window copy. ``supports``
limits it to ``P <= MAX_POSITIONS`` and a flat kernel within the scratch budget.

Accuracy: the same products as ``direct``; half precisions are computed in float32 (float32
normwise relative error ~1e-7).
"""

from __future__ import annotations

import torch

from ..core.shapes import prod
from ..core.spec import CorrSpec
from ..core.workspace import scratch_budget
from ._common import halves_to_float32, phase_grid, phases, row_major_strides, tap_reads, trivial_result

NAME = "positions"
MAX_POSITIONS = 512


def supports(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> str | None:
    """Calls with at most ``MAX_POSITIONS`` output positions whose flat kernel fits the scratch budget."""
    p = prod(spec.output_spatial(x.shape[2:], w.shape[2:]))
    if p > MAX_POSITIONS:
        return f"at most {MAX_POSITIONS} output positions are supported (got {p})"
    need = (w.shape[0] * _plan(x, w, spec)[3] + x.numel()) * x.element_size()
    if need > scratch_budget():
        return (f"the flat kernel and the input copy ({need} bytes) would exceed the scratch budget "
                f"({scratch_budget()} bytes, half the workspace limit)")
    return None


def _plan(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> tuple[list[int], list[int], int, int]:
    """``(phase shape M, flat strides st, Lk, Kc)`` of the call."""
    m = phase_grid(x, spec.padding, spec.dilation)
    st = row_major_strides(m)
    lk = sum((k - 1) * s for k, s in zip(w.shape[2:], st)) + 1
    return m, st, lk, (w.shape[1] - 1) * prod(m) + lk


def forward(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor:
    """Cross-correlate ``x`` ``(B, C, *L)`` with ``w`` ``(O, C // G, *k)``, position by position.

    Shape:
        ``o_i = (L_i + before_i + after_i - d_i (k_i - 1) - 1) // s_i + 1``

    Examples:
        >>> from anyconv.core.spec import CorrSpec
        >>> x = torch.arange(8.0).reshape(1, 1, 2, 4)
        >>> forward(x, torch.ones(1, 1, 2, 2), CorrSpec((1, 2), (1, 1), ((0, 0), (0, 0)), 1)).tolist()
        [[[[10.0, 18.0]]]]
    """
    trivial = trivial_result(x, w, spec)
    if trivial is not None:
        return trivial
    if x.dtype in (torch.float16, torch.bfloat16):  # accumulate half precisions in float32
        return forward(x.float(), w.float(), spec).to(x.dtype)
    kernel, out = tuple(w.shape[2:]), spec.output_spatial(x.shape[2:], w.shape[2:])
    b, (o, cg), g = x.shape[0], w.shape[:2], spec.groups
    og = o // g
    m, st, _, kc = _plan(x, w, spec)
    size = prod(m)
    flat = phases(x, spec.padding, spec.dilation).reshape(*spec.dilation, b, g, cg * size)
    wf = x.new_zeros((g, og, kc))  # read as (G, Kc, Og) column-major: measured 5x faster for Og = 1
    wf.as_strided((g, og, cg, *kernel), (og * kc, kc, size, *st)).copy_(w.reshape(g, og, cg, *kernel))
    y = x.new_empty((prod(out), g, b, og))  # (P, G, B, Og)
    # position p reads phase p s mod d at p s // d: the taps' rule with stride and dilation swapped
    for j, (phase, off) in enumerate(tap_reads(out, spec.stride, spec.dilation, st)):
        torch.bmm(flat[phase][..., off : off + kc].transpose(0, 1), wf.transpose(1, 2), out=y[j])  # (G, B, Kc) @ (G, Kc, Og)
    # (P, G, B, Og) -> (B, G, Og, P) -> (B, O, *out)
    return y.permute(2, 1, 3, 0).reshape(b, o, *out)


# --- cost model (read by ``auto``: named features, error growth, compute dtype) ---

ERROR_GROWTH = 0.0  # a summation algorithm (auto's summation bound)
COMPUTE_DTYPE = halves_to_float32


def cost_features(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> dict[str, float]:
    """``flat_macs`` flat GEMM MACs, ``rows_read`` flat rows read, ``gemms`` (position, group) GEMMs,
    ``small_gemm_macs`` flat MACs of GEMMs with fewer than 16 rows or columns, ``split_3d`` input
    elements split into dilation phases in 3-D and up."""
    b, c = x.shape[:2]
    o = w.shape[0]
    p = prod(spec.output_spatial(x.shape[2:], w.shape[2:]))
    kc, g = _plan(x, w, spec)[3], spec.groups
    flat = float(p * b * o * kc)
    split3 = float(b * c * prod(x.shape[2:])) if spec.n >= 3 and any(d > 1 for d in spec.dilation) else 0.0
    return {"calls": 1.0, "flat_macs": flat, "rows_read": float(p * g * (b + o // g) * kc), "gemms": float(p * g),
            "small_gemm_macs": flat if min(b, o // g) < 16 else 0.0, "split_3d": split3}
