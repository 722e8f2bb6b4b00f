"""Variant ``wino_w`` of ``corr_w``: the weight gradient of a 3x3 stride-1 2-D correlation by Winograd.

The forward's trilinear form ``sum y*[i, j] w[k, l] d[i + k, j + l]`` over a tile is, in Winograd's
F(m x m, 3 x 3), ``sum_xi (A y* A^T)_xi (G w G^T)_xi (B^T d B)_xi``; its derivative in ``w`` is the
weight gradient of the tile, with the same matrices:

    dw[o, c] = G^T [ sum_tiles (A gy_t A^T) (.) (B^T d_t B) ] G        (m x m tiles t of gy)

so ``x``'s tiles are transformed as in the forward (the native 2-D transforms, ``_winograd_native``),
``gy``'s ``m x m`` tiles by ``A (.) A`` through the same input transform (an ``a x a`` patch at each tile's
corner and ``A`` zero-extended to ``a x a``: the patch's 2 extra rows and columns count zero times), and
for each of the ``a^2`` transform coordinates the tiles are
summed by one matrix product ``(O, tiles) @ (tiles, C)``: ``(a / m)^2 = 2.25`` multiplies per
output-gradient element and input channel for m = 4, where the direct sum needs 9. The products are
accumulated over chunks of tiles (``winograd.NATIVE_CHUNK_BYTES`` of scratch) into ``(a^2, O, C)`` sums (4x
the weight for m = 4; calls where that exceeds half the scratch budget are declined), so memory stays
bounded.

Serves one-group float32/float64 CPU calls with 3x3 kernels, stride 1 and dilation 1 in 2-D, at least
:data:`MIN_CHANNELS` input and output channels, whose
forward correlation ``auto`` gives to ``winograd`` (the same transforms and products, transposed: it
wins where the forward does) and whose accuracy passes the same guard (the forward's error growth).
NaN/Inf operands take the registry route (a tile's transform spreads one Inf over the whole tile).

Example:
    >>> import torch
    >>> from anyconv.core.spec import CorrSpec
    >>> x, gy = torch.randn(2, 3, 8, 8, dtype=torch.float64), torch.randn(2, 4, 8, 8, dtype=torch.float64)
    >>> spec = CorrSpec((1, 1), (1, 1), ((1, 1), (1, 1)), 1)
    >>> dw = gradient(x, gy, spec)
    >>> ref = torch.einsum("bohw,bchwkl->ockl", gy,
    ...                    torch.nn.functional.pad(x, (1, 1, 1, 1)).unfold(2, 3, 1).unfold(3, 3, 1))
    >>> torch.allclose(dw, ref)
    True
"""

from __future__ import annotations

from typing import Any

import torch

from ..core.spec import CorrSpec
from ..core.windows import tiles
from ..core.workspace import chunk_limit, scratch_budget
from . import _native_abi as abi
from . import _winograd_native as _wn
from . import winograd
from ._gemm import kernel_matmul, matmul

NAME = "wino_w"
OP = "corr_w"
M = winograd.M_DEFAULT[2]
ERROR_GROWTH = winograd.WINOGRAD_GROWTH[2][M]
COMPUTE_DTYPE = None
ALGORITHM = "winograd"  # the registry algorithm whose computation it is (choose_algorithm reports it)
GEMM_FEATURES = winograd.GEMM_FEATURES
# the products are (O, tiles) @ (tiles, C): with few channels the packing of their long operands costs more
# than the multiply-adds (U-Net's 16-32 channels at 128x128: 18-60 GFLOP/s, slower than gemm_w or native)
MIN_CHANNELS = 64


def supports(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, algorithm: str = "auto") -> str | None:
    """None for a one-group 3x3 stride-1 2-D float32/float64 CPU call whose forward ``auto`` gives to winograd."""
    if x.device.type != "cpu" or x.dtype not in abi.DTYPES or w.dtype != x.dtype:
        return "float32/float64 CPU tensors"
    if spec.n != 2 or spec.groups != 1:
        return "one group, 2 spatial dims"
    reason = winograd.supports(x, w, spec)
    if reason is not None:
        return reason
    if x.numel() == 0 or w.numel() == 0:
        return "an empty operand"
    if min(w.shape[0], w.shape[1]) < MIN_CHANNELS:
        return f"fewer than {MIN_CHANNELS} input or output channels (narrow products: packing outweighs the work)"
    products = (M + 2) ** 2 * w.shape[0] * w.shape[1] * x.element_size()
    if products > scratch_budget() // 2:
        return f"the transformed gradient ({products / 2**20:.0f} MiB) would exceed half the scratch budget"
    out = spec.output_spatial(x.shape[2:], w.shape[2:])
    if not _wn.serves(x, 2, [-(-v // M) for v in out], M):
        return f"the native 2-D transforms do not serve it (at most {_wn.MAX_TILE_COLUMNS} tiles per row)"
    from .auto import choose

    name = choose(x, w, spec, values=False).name
    return None if name == winograd.NAME else f"auto's choice for the forward correlation is {name}, not winograd"


def hazard(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, algorithm: str = "auto") -> bool:
    """Non-finite operands take the registry route (the transforms spread them over whole tiles)."""
    return True


def cost_features(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> dict[str, float]:
    """The forward winograd's features (the same transforms and products)."""
    return winograd.cost_features(x, w, spec)


def serve(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, g: torch.Tensor | None, bias: torch.Tensor | None,
          plan: Any = None) -> torch.Tensor:
    """The weight gradient ``(O, C, 3, 3)`` of ``y = corr(x, w)`` for the output gradient ``g``."""
    assert g is not None
    return gradient(x, g, spec)


def gradient(x: torch.Tensor, gy: torch.Tensor, spec: CorrSpec, m: int = M) -> torch.Tensor:
    """``dw[o, c, k, l] = sum_{b, i, j} gy[b, o, i, j] pad(x)[b, c, i + k, j + l]`` for 3x3 ``dw``.

    ``x (B, C, H, W)``, ``gy (B, O, Ho, Wo)`` with ``Ho = H + pads - 2`` (``spec``: stride 1, dilation 1).
    """
    b, c = x.shape[:2]
    o = gy.shape[1]
    oh, ow = gy.shape[2:]
    a = m + 2
    a2 = a * a
    at1, _, bt1 = (t.to(x.dtype) for t in winograd.matrices(m))
    kg = winograd.kron_matrices(m, 2)[1].to(x.dtype)  # G (x) G: (a^2, 9)
    # A gy A^T by the input transform: an a x a patch at each tile's corner (reaching 2 past the tile) with
    # A zero-extended to a x a, so that the 2 extra rows and columns count zero times
    ap = torch.zeros((a, a), dtype=x.dtype)
    ap[:, :m] = at1.T
    nt = [-(-oh // m), -(-ow // m)]
    mm = torch.zeros((a2, o, c), dtype=x.dtype)
    es = x.element_size()
    unit = (c + o) * a2 * es  # per tile: its transformed x and gy
    limit = chunk_limit(mm.numel() * es, unit, winograd.NATIVE_CHUNK_BYTES, winograd.MIN_CHUNK_TILES[2])
    for t in tiles([b, *nt], unit, limit):
        # (a^2, C, tiles); the product reads it transposed (a column of channels per tile): its rows an odd
        # number of cache lines apart (2048 tiles, 8 KiB apart, thrashed one cache set: 16 GFLOP/s)
        v = _wn.transform_in(x, t, m, bt1, spec.padding, rows_apart=True)
        z = _wn.transform_in(gy, t, m, ap, ((0, 0), (0, 0)), slot="wino_w.gy")  # (a^2, O, tiles), zeros past gy
        matmul(z, v.transpose(1, 2), out=mm, accumulate=True)  # (a^2, O, C) += (a^2, O, T) @ (a^2, T, C)
        del v, z
    # G^T M G: (9, a^2) @ (a^2, O C), then transposed (the product the other way round, with mm's a^2 rows
    # read across, ran 1.6 ms on a 128-channel layer)
    dw = kernel_matmul(kg.T, mm.view(a2, -1))  # (bit-identical at every thread count, unlike MKL's here)
    return dw.T.contiguous().view(o, c, 3, 3)
