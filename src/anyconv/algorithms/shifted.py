"""``shifted``: one GEMM per kernel tap on flat, shifted views of the input (no column copy).

Output position ``p`` reads the padded input at ``p * s + q * d`` for tap ``q``. Split the
padded input into its ``prod(s)`` stride phases ``x[..., r::s]`` (one copy, each phase
zero-extended to a common shape ``M``; with stride 1 this is just the padded input), and
flatten every phase row-major with strides ``st``. Tap ``q`` then reads phase
``r = q d mod s`` at ``p + q d // s``, so with the output computed on the phase grid
("padded-width layout": rows as long as a phase's rows, the extra columns discarded at the
end) every tap is a constant flat offset ``off(q) = sum_i (q_i d_i // s_i) st_i`` and its
contribution is one matrix product on a contiguous slice:

    y_flat[b, g] += w[g, :, :, q] @ phase_r[b, g, :, off(q) : off(q) + Lf]   # (Og, Cg) @ (Cg, Lf)

``Lf = sum_i (o_i - 1) st_i + 1`` covers every output position; position ``p`` sits at flat
index ``sum_i p_i st_i`` and no read leaves the phase (``off(q) + Lf <= prod(M)``). So the
work is ``prod(kernel)`` batched GEMMs (``baddbmm_`` over ``B * G``) plus the final crop,
instead of building ``Cg * K`` columns per position (``im2col``). It wins where the column
copy dominates (3-D, dilated and 1-D kernels) and loses where a GEMM dimension is tiny
(``Cg`` = 3 for RGB input layers, short rows): ``auto``'s cost model weighs that. 1-tap
kernels are left to ``im2col``, which multiplies them with no copy at all.

Memory: the phases (one copy of the padded input) and the output in the padded-width
layout, batch-tiled under the scratch budget (half the workspace limit).

Accuracy: the same products as ``direct``, summed tap by tap; half precisions are computed
in float32 (float32 normwise relative error ~1e-7).
"""

from __future__ import annotations

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
from ._gemm import matmul

NAME = "shifted"


def supports(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> str | None:
    """Kernels of more than one tap; one sample's phases and output within the scratch budget."""
    if prod(w.shape[2:]) == 1:
        return "1-tap kernels are im2col's (one matrix product, no copy)"
    per_sample = _per_sample(x, w, spec) * x.element_size()
    if per_sample > scratch_budget():
        return (f"one sample's input phases and padded-width output ({per_sample} bytes) would exceed "
                f"the scratch budget ({scratch_budget()} bytes, half the workspace limit)")
    return None


def flat_len(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> int:
    """``Lf``: the flat length of the output in the padded-width layout (0 if empty)."""
    out = spec.output_spatial(x.shape[2:], w.shape[2:])
    return flat_output_len(out, row_major_strides(phase_grid(x, spec.padding, spec.stride)))


def _per_sample(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> int:
    """Elements of one sample's phases plus its padded-width output."""
    m = phase_grid(x, spec.padding, spec.stride)
    return int(x.shape[1]) * prod(m) * prod(spec.stride) + int(w.shape[0]) * flat_len(x, w, spec)


def forward(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor:
    """Cross-correlate ``x`` ``(B, C, *L)`` with ``w`` ``(O, C // G, *k)``.

    Shape:
        ``o_i = (L_i + before_i + after_i - d_i (k_i - 1) - 1) // s_i + 1``

    Examples:
        >>> from anyconv.core.spec import CorrSpec
        >>> x = torch.arange(6.0).reshape(1, 1, 6)
        >>> forward(x, torch.tensor([[[1.0, 10.0]]]), CorrSpec((2,), (1,), ((1, 0),), 1)).tolist()
        [[[0.0, 21.0, 43.0]]]
    """
    b, c = x.shape[:2]
    o, cg = w.shape[:2]
    g = spec.groups
    og = o // g
    kernel = tuple(w.shape[2:])
    out = spec.output_spatial(x.shape[2:], kernel)
    trivial = trivial_result(x, w, spec)
    if trivial is not None:
        return trivial
    shape = (b, o, *out)
    if x.dtype in (torch.float16, torch.bfloat16):  # accumulate half precisions in float32
        return forward(x.float(), w.float(), spec).to(x.dtype)
    m = phase_grid(x, spec.padding, spec.stride)
    st = row_major_strides(m)
    lf = flat_len(x, w, spec)
    reads = tap_reads(kernel, spec.dilation, spec.stride, st)
    taps = w.reshape(g, og, cg, -1).permute(3, 0, 1, 2)  # (K, G, Og, Cg)
    y = x.new_empty(shape)
    per_sample = _per_sample(x, w, spec) * x.element_size()
    for rows, flat in phase_tiles(x, spec, per_sample):
        nb = flat.shape[spec.n]
        xf = flat.reshape(*spec.stride, nb * g, cg, -1)
        yf = x.new_empty((nb * g, og, lf))
        for j, (phase, off) in enumerate(reads):
            wj = taps[j].expand(nb, g, og, cg).reshape(nb * g, og, cg)
            if j == 0:
                matmul(wj, xf[phase][:, :, off : off + lf], out=yf)
            else:
                matmul(wj, xf[phase][:, :, off : off + lf], out=yf, accumulate=True)
        y[rows] = crop_flat(yf.view(nb, o, lf), out, st)
    return y


# --- cost model (read by ``auto``: named features, error growth, compute dtype) ---

ERROR_GROWTH = 0.0  # a summation algorithm (auto's summation bound)
COMPUTE_DTYPE = halves_to_float32


def cost_features(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> dict[str, float]:
    """``flat_macs`` flat GEMM MACs, ``traffic`` per-tap traffic + crop, ``gemms`` (tap, sample, group)
    GEMMs, ``short_row_macs`` flat MACs * min(1, 64 / Lf), ``split`` input elements split into stride phases."""
    b = x.shape[0]
    o, cg = w.shape[:2]
    k = prod(w.shape[2:])
    p = prod(spec.output_spatial(x.shape[2:], w.shape[2:]))
    lf, g = flat_len(x, w, spec), spec.groups
    flat_macs = float(b * o * cg * k * lf)
    return {"calls": 1.0, "flat_macs": flat_macs, "traffic": float(k * b * g * (cg + 2 * (o // g)) * lf + b * o * p),
            "gemms": float(k * b * g), "short_row_macs": flat_macs * min(1.0, 64.0 / max(1, lf)),
            "split": stride_split_elements(x, spec)}
