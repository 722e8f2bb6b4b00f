"""Convolution as a matrix: the exact linear operator of the core op, built vectorised.

For ONE sample, the core op (grouped N-d cross-correlation, :class:`anyconv.core.spec.CorrSpec`)
is a linear map ``x.flatten() -> y.flatten()``; its matrix ``A`` has shape
``(C_out * prod(out_spatial), C_in * prod(in_spatial))`` and

    A[(g Og + o) P + p, (g Cg + c) L + j] = sum_q w[g Og + o, c, q] * [idx_pad(p * s + q * d) == j]

where ``idx_pad`` maps a padded position to the input position it reads (``-1`` for a zero
pad; reflect/replicate/circular padding map to real positions, so the padding gather is
folded into the matrix and entries that hit the same input element add up).

Construction takes :func:`anyconv.core.windows.windows` of an *index tensor* instead of the
input: the window view of ``arange(C_in * L).reshape(C_in, *in_spatial)`` holds, for every
output position and kernel tap, the column the tap reads. No Python loop over positions.

The transposed convolution's matrix is the transpose of the forward one on the uncropped
output, with the crop (or zero extension) applied to its rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..core.padding import pad
from ..core.shapes import effective_kernel, prod
from ..core.spec import CorrSpec
from ..core.windows import windows


def _index_map(
    channels: int,
    spatial: Sequence[int],
    pairs: Sequence[tuple[int, int]],
    mode: str,
    device: torch.device,
) -> torch.Tensor:
    """``(channels, *padded)`` int64 map: flat input index read at each padded position, or -1."""
    idx = torch.arange(channels * prod(spatial), device=device).reshape(channels, *spatial)
    if mode == "zeros":
        return pad(idx, pairs, "zeros", value=-1)
    return pad(idx, pairs, mode)


def _assemble(
    weight: torch.Tensor,
    cols: torch.Tensor,
    groups: int,
    shape: tuple[int, int],
    dense: bool,
    transpose: bool = False,
    sorted_unique: bool = False,
) -> torch.Tensor:
    """Matrix from the window view of an index map.

    ``cols`` is ``(C_in, *o, *k)`` (column read by every output position and tap), ``weight``
    ``(C_out, C_in // groups, *k)``; ``shape`` is ``(rows, cols)`` of the forward matrix.
    ``sorted_unique``: every (row, column) occurs once (zero padding, no transpose), so the
    row-major generation order is already coalesced.
    """
    n = weight.dim() - 2
    c_out, cg = weight.shape[:2]
    og = c_out // groups
    kk = prod(weight.shape[2:])
    p = prod(cols.shape[1 : 1 + n])
    # Entries in the order (G, Og, P, Cg, K): rows ascending and, within a row, columns
    # strictly ascending, so zero-padded forward matrices are born coalesced (no sort).
    col = cols.reshape(groups, cg, p, kk).transpose(1, 2)  # (G, P, Cg, K)
    col = col.unsqueeze(1).expand(groups, og, p, cg, kk).reshape(-1)  # (G, Og, P, Cg, K) flat
    sel = (col >= 0).nonzero().squeeze(1)  # one pass; entries reading a zero pad dropped
    cols_ = col[sel]
    rows = sel // (cg * kk)  # (g Og + o) P + p
    tap = sel % (cg * kk)  # c K + q
    vals = weight.reshape(-1)[(rows // p) * (cg * kk) + tap]
    if transpose:
        rows, cols_ = cols_, rows
        shape = (shape[1], shape[0])
    a = torch.sparse_coo_tensor(
        torch.stack([rows, cols_]), vals, shape, check_invariants=False, is_coalesced=sorted_unique
    )
    if not sorted_unique:
        a = a.coalesce()
    return a.to_dense() if dense else a


def conv_operator(
    weight: torch.Tensor,
    in_spatial: Sequence[int],
    spec: CorrSpec,
    *,
    dense: bool = False,
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """The matrix of the core op for one sample: ``A @ x[b].flatten() == corr(x, w)[b].flatten()``.

    ``A[(g Og + o) P + p, (g Cg + c) L + j] = sum_q w[g Og + o, c, q] [pad(p s + q d) reads j]``
    with ``P = prod(out_spatial)``, ``L = prod(in_spatial)``. ``spec.padding`` is applied in
    ``padding_mode`` ("zeros" by default; "reflect", "replicate", "circular" fold the
    padding gather into the matrix). Entries are differentiable in ``weight``.

    Args:
        weight: ``(C_out, C_in // groups, *kernel)``.
        in_spatial: the N spatial input sizes.
        spec: stride, dilation, padding pairs and groups.
        dense: return a dense tensor instead of a coalesced sparse COO tensor.
        padding_mode: how ``spec.padding`` is filled.

    Shape:
        ``(C_out * prod(out), C_in * prod(in))`` with
        ``out_i = (in_i + before_i + after_i - (k_i - 1) * d_i - 1) // s_i + 1``.

    Examples:
        >>> w = torch.tensor([[[1.0, 2.0]]])
        >>> conv_operator(w, [3], CorrSpec((1,), (1,), ((0, 0),), 1), dense=True).tolist()
        [[1.0, 2.0, 0.0], [0.0, 1.0, 2.0]]
        >>> conv_operator(torch.ones(4, 3, 3, 3), [5, 5], CorrSpec((2, 2), (1, 1), ((1, 1),) * 2, 1)).shape
        torch.Size([36, 75])
    """
    c_in = weight.shape[1] * spec.groups
    kernel = tuple(weight.shape[2:])
    out = spec.output_spatial(in_spatial, kernel)
    idx = _index_map(c_in, in_spatial, spec.padding, padding_mode, weight.device)
    cols = windows(idx, kernel, spec.stride, spec.dilation)  # (C_in, *out, *k)
    shape = (weight.shape[0] * prod(out), c_in * prod(in_spatial))
    return _assemble(weight, cols, spec.groups, shape, dense, sorted_unique=padding_mode == "zeros")


def conv_transpose_operator(
    weight: torch.Tensor,
    in_spatial: Sequence[int],
    spec: CorrSpec,
    crop: Sequence[tuple[int, int]],
    output_padding: Sequence[int],
    *,
    dense: bool = False,
) -> torch.Tensor:
    """The matrix of a transposed convolution for one sample (the adjoint of the core op, cropped).

    The uncropped output has size ``full_i = (in_i - 1) s_i + (k_i - 1) d_i + 1 + op_i``; the
    matrix is the transpose of :func:`conv_operator` from ``full`` (no padding) to ``in``,
    after which ``crop`` pairs are removed from the rows (a negative crop adds zero rows).

    Args:
        weight: ``(C_in, C_out // groups, *kernel)`` (torch's transposed layout).
        in_spatial: the N spatial input sizes.
        spec: stride, dilation and groups (its padding is ignored: zero).
        crop: ``(before, after)`` removed from the full output per dim.
        output_padding: extra size at the end of the full output per dim.
        dense: dense instead of sparse COO.

    Shape:
        ``(C_out * prod(out), C_in * prod(in))`` with ``out_i = full_i - before_i - after_i``.

    Examples:
        >>> w = torch.tensor([[[1.0, 2.0]]])
        >>> conv_transpose_operator(w, [2], CorrSpec((1,), (1,), ((0, 0),), 1), [(0, 0)], [0], dense=True).tolist()
        [[1.0, 0.0], [2.0, 1.0], [0.0, 2.0]]
    """
    kernel = tuple(weight.shape[2:])
    c_in = weight.shape[0]
    c_out = weight.shape[1] * spec.groups
    base = tuple(
        (i - 1) * s + effective_kernel(k, d)
        for i, k, s, d in zip(in_spatial, kernel, spec.stride, spec.dilation)
    )  # the part of the full output that any input reaches
    out = tuple(b + op - cb - ca for b, op, (cb, ca) in zip(base, output_padding, crop))
    # Columns of the forward conv (from `base` to `in`) are positions in `base`; map each to
    # its row in the cropped output, or -1 when the crop removes it.
    pos = torch.arange(c_out * prod(out), device=weight.device).reshape(c_out, *out)
    back = pad(pos, list(crop), "zeros", value=-1)  # (C_out, *full)
    back = back[(slice(None),) + tuple(slice(0, b) for b in base)]  # (C_out, *base)
    grid = torch.arange(c_out * prod(base), device=weight.device).reshape(c_out, *base)
    cols = windows(grid, kernel, spec.stride, spec.dilation)  # (C_out, *in, *k)
    cols = back.reshape(-1)[cols]  # (C_out, *in, *k): output row read by each tap, or -1
    shape = (c_in * prod(in_spatial), c_out * prod(out))
    return _assemble(weight, cols, spec.groups, shape, dense, transpose=True)
