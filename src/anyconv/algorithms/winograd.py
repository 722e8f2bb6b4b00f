"""``winograd``: minimal-filtering convolution F(m, 3) per spatial dim (Lavin & Gray, 2016).

For kernels of size 3 in every spatial dim, stride 1 and dilation 1, the output is cut into
tiles of ``m`` per dim, each read from an input tile of ``a = m + 2`` per dim. In 1-D

    y = A^T [ (G g) * (B^T d) ]        (d: a inputs, g: 3 taps, y: m outputs)

and in N-d the transforms apply along every dim (``Y = A^T [(G g G^T) * (B^T d B)] A`` in 2-D).
The matrices come from Toom-Cook with the points ``0, +-1, +-2, +-1/2, ..., inf``: ``G`` is the
Vandermonde matrix of the 3-tap polynomial, ``A`` that of the m-tap one and ``B^T`` the
inverse transposed Vandermonde of degree ``a - 1`` (rows rescaled for balance). Channels are
contracted per transform coordinate as one batched matrix product
``(a^N, G, Og, Cg) @ (a^N, G, Cg, tiles)``, an elementwise product for depthwise kernels, so
the multiplications per output drop from ``9 Cg`` to ``(a / m)^2 Cg`` in 2-D (2.25x fewer for
m = 4 than im2col). Half precisions are computed (and accumulated) in float32.

Accuracy (float32 normwise relative error ``max|y - y_64| / max|y_64|``, random normal data,
64 input channels, measured; ``u = 2^-24 = 6e-8``):

    ======  ===============  ===============  ===============
    m       1-D F(m, 3)      2-D F(m x m)     3-D F(m^3)
    ======  ===============  ===============  ===============
    2       3.5e-7 (6 u)     3.3e-7 (5 u)     2.3e-7 (4 u)
    4       1.4e-6 (23 u)    5.8e-6 (97 u)    1.2e-5 (196 u)
    6       1.6e-6 (28 u)    9.3e-6 (157 u)   -
    ======  ===============  ===============  ===============

(im2col: 5-9 u, fft: 3.5-4.5 u on the same data.) The default tile is ``M_DEFAULT[N]``;
``auto``'s accuracy guard uses :data:`WINOGRAD_GROWTH` (these values with a safety margin).

Memory: the tiles are transformed, multiplied and transformed back in chunks of about
``CHUNK_BYTES`` (3 MiB) of scratch, but at least ``MIN_CHUNK_TILES`` tiles so that the
per-frequency products stay wide; measured as fast as whole-call chunks on the benchmark
layers (faster on a loaded machine) with half the peak memory. With the native 2-D transforms
(``_winograd_native``) the chunks are ``NATIVE_CHUNK_BYTES`` (16 MiB): there the narrow per-chunk
products and the per-chunk calls cost more than the cache saves (ResNet's 64-channel 3x3 layer at
32x32, batch 4: 1.78 ms in 2 MiB chunks, 1.45 in 16 MiB ones; 32 MiB was slower on U-Net's 128x128
layers). Each chunk pads only its own
slice of the input (no padded copy of all of ``x``). A transformed kernel larger than
``KERNEL_CHUNK_BYTES`` (``(a / 3)^N`` times the kernel: 4x in 2-D for m = 4) is made in chunks of
output channels, again for each chunk of tiles (``9 / tiles`` of the products' work). Never above
half the workspace limit.
"""

from __future__ import annotations

from fractions import Fraction
from functools import cache

import torch

from ..core.shapes import prod
from ..core.spec import CorrSpec
from ..core.windows import balanced_step, tiles
from ..core.workspace import chunk_limit
from . import _winograd_native as _wn
from ._common import halves_to_float32, padded_slice
from ._gemm import matmul

NAME = "winograd"
GEMM_FEATURES = ("tile_macs",)  # cost features that count matrix-product multiply-adds (auto.gemm_scale)
KERNEL = 3
M_DEFAULT = {1: 6, 2: 4, 3: 2}
CHUNK_BYTES = 3 * 2**20  # scratch per chunk of tiles (transformed input, products, output tiles)
NATIVE_CHUNK_BYTES = 16 * 2**20  # the same with the native transforms
KERNEL_CHUNK_BYTES = 4 * 2**20  # transformed kernel per chunk of output channels
MIN_CHUNK_TILES = {1: 256, 2: 96, 3: 96}  # the N of the per-frequency products: at least this many tiles
MAX_DIMS = 3
NARROW_K = 32  # cost_features: the products' channels counted at least this many
_POINTS = (Fraction(0), Fraction(1), Fraction(-1), Fraction(2), Fraction(-2), Fraction(1, 2),
           Fraction(-1, 2), Fraction(3), Fraction(-3))


@cache
def matrices(m: int, r: int = KERNEL) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(A^T (m, a), G (a, r), B^T (a, a))`` for F(m, r) in float64, ``a = m + r - 1``.

    >>> at, g, bt = matrices(2)
    >>> d, w = torch.arange(4.0).double(), torch.tensor([1.0, 2.0, 3.0]).double()
    >>> (at @ ((g @ w) * (bt @ d))).tolist()
    [8.0, 14.0]
    """
    a = m + r - 1
    pts = _POINTS[: a - 1]

    def vander(cols: int) -> list[list[Fraction]]:
        rows = [[p**k for k in range(cols)] for p in pts]
        rows.append([Fraction(0)] * (cols - 1) + [Fraction(1)])  # the point at infinity
        return rows

    va = torch.tensor([[float(v) for v in row] for row in vander(a)], dtype=torch.float64)
    g = torch.tensor([[float(v) for v in row] for row in vander(r)], dtype=torch.float64)
    at = torch.tensor([[float(v) for v in row] for row in vander(m)], dtype=torch.float64).T
    bt = torch.linalg.inv(va).T.contiguous()  # (a, a)
    # balance: scale row j of B^T by s_j and row j of G by 1 / s_j (their product is unchanged)
    s = bt.abs().amax(dim=1)
    bt = bt / s[:, None]
    g = g * s[:, None]
    return at.contiguous(), g.contiguous(), bt


def supports(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> str | None:
    """Kernels of 3 in every dim, stride 1, dilation 1, at most 3 spatial dims."""
    if spec.n > MAX_DIMS:
        return f"at most {MAX_DIMS} spatial dims are supported (got {spec.n})"
    if any(k != KERNEL for k in w.shape[2:]):
        return f"only {KERNEL}-tap kernels in every dim are supported (got kernel {tuple(w.shape[2:])})"
    if any(s != 1 for s in spec.stride):
        return f"only stride 1 is supported (got stride {spec.stride})"
    if any(d != 1 for d in spec.dilation):
        return f"only dilation 1 is supported (got dilation {spec.dilation})"
    return None


@cache
def kron_matrices(m: int, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The N-d transforms as single matrices: ``(A^T)^{(x)N}, G^{(x)N}, (B^T)^{(x)N}`` (float64)."""
    at, g, bt = matrices(m)
    ka, kg, kb = at, g, bt
    for _ in range(n - 1):
        ka, kg, kb = torch.kron(ka, at), torch.kron(kg, g), torch.kron(kb, bt)
    return ka, kg, kb


def forward(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, m: int | None = None) -> torch.Tensor:
    """Cross-correlate ``x`` ``(B, C, *L)`` with a 3-tap ``w`` ``(O, C // G, 3, ...)``.

    Non-finite values: the transforms mix every input of a tile into all of its outputs (one Inf
    gives a tile of NaN); the registry's ``run`` checks the result (one sum) and recomputes a
    non-finite one by ``auto.exact`` (the choice without transform algorithms), also when
    ``winograd`` was named, so the NaN and Inf land where torch puts them. A finite result is
    Winograd's own.
    """
    return _transformed(x, w, spec, m)


def _transformed(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, m: int | None = None) -> torch.Tensor:
    """:func:`forward`'s Winograd computation, whatever the values."""
    n = spec.n
    m = m or M_DEFAULT[n]
    a = m + KERNEL - 1
    b, c = x.shape[:2]
    o, cg = w.shape[:2]
    g = spec.groups
    og = o // g
    out = spec.output_spatial(x.shape[2:], w.shape[2:])
    y = x.new_empty((b, o, *out))
    if y.numel() == 0:
        return y
    dt = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    ka, kg, kb = (t.to(device=x.device, dtype=dt) for t in kron_matrices(m, n))  # (m^N, A), (A, 3^N), (A, A)
    at1, _, bt1 = matrices(m)
    big_a = a**n
    nt = [-(-v // m) for v in out]  # tiles per dim
    fast = x.dtype == dt and _wn.serves(x, n, nt, m)  # the native 2-D transforms (else tensor ops below)
    # kernel transform U = (G g G^T): (A, 3^N) @ (3^N, Og*Cg) per group -> (A, G, Og, Cg). A large U
    # (a^N / 9 times the kernel) is made and used in chunks of output channels per group, remade for
    # each chunk of tiles (its cost is 9 / tiles of the products'); a small one once
    es = ka.element_size()
    step = balanced_step(og, KERNEL_CHUNK_BYTES // (big_a * g * cg * es))
    outs = [slice(j, min(j + step, og)) for j in range(0, og, step)]
    wg = w.to(dt).reshape(g, og, cg, -1)

    def transform(s: slice) -> torch.Tensor:
        ws = wg[:, s]
        return matmul(kg, ws.reshape(-1, ws.shape[-1]).T).reshape(big_a, g, ws.shape[1], cg)

    u_once = transform(outs[0]) if len(outs) == 1 else None
    fixed = big_a * g * step * cg * es
    unit = (2 * c + 3 * g * step) * big_a * es
    # cache-sized chunks (measured faster than whole-call chunks, and far less memory), but
    # never so few tiles that the batched products get narrow
    limit = chunk_limit(fixed, unit, NATIVE_CHUNK_BYTES if fast else CHUNK_BYTES, MIN_CHUNK_TILES[n])
    yg = y.view(b, g, og, *out)
    for t in tiles([b, *nt], unit, limit):
        bb, ntt = t[0].stop - t[0].start, [s.stop - s.start for s in t[1:]]
        if fast:  # the chunk's input tiles V = B^T d B: (A, G, Cg, b*P)
            v = _wn.transform_in(x, t, m, bt1, spec.padding).view(big_a, g, cg, -1)
        else:
            v = _tiles_transformed(x, t, spec, m, kb).view(big_a, g, cg, -1)
        index = [t[0], slice(None), slice(None)]
        crop = [slice(None), slice(None), slice(None)]
        for i in range(n):
            start, stop = t[1 + i].start * m, min(t[1 + i].stop * m, out[i])
            index.append(slice(start, stop))
            crop.append(slice(0, stop - start))
        for s in outs:
            u = transform(s) if u_once is None else u_once
            oc = u.shape[2]
            # (the native output transform reads whole vectors: slack after the products)
            mm = _wn.products(big_a, g * oc, v.shape[-1], v.dtype).view(big_a, g, oc, -1) if fast else None
            if cg == 1:
                mm = torch.mul(v, u, out=mm) if fast else v * u  # (A, G, 1, b*P) * (A, G, oc, 1) -> (A, G, oc, b*P)
            else:
                mm = matmul(u, v, out=mm)  # (A, G, oc, Cg) @ (A, G, Cg, b*P) -> (A, G, oc, b*P)
            del u  # before the next chunk's U is made
            if fast:
                _wn.transform_out(mm.view(big_a, g * oc, -1), t, m, at1, y, oc, og, s.start)
                continue
            yt = matmul(ka, mm.reshape(big_a, -1))  # (m^N, G*oc*b*P)
            del mm
            yt = yt.reshape(*([m] * n), g, oc, bb, *ntt)  # (*m, G, oc, b, *ntt)
            perm = [n + 2, n, n + 1]
            for i in range(n):
                perm += [n + 3 + i, i]
            yt = yt.permute(perm).reshape(bb, g, oc, *(v_ * m for v_ in ntt))  # (b, G, oc, *(ntt * m))
            index[2] = s
            yg[tuple(index)] = yt[tuple(crop)].to(y.dtype)
    return y


def _tiles_transformed(x: torch.Tensor, t: tuple[slice, ...], spec: CorrSpec, m: int, kb: torch.Tensor) -> torch.Tensor:
    """``V = B^T d B`` of the chunk ``t``'s tiles by tensor ops: ``(A, C, b*P)`` (``kb``: the N-d ``B^T``)."""
    n, a = spec.n, m + KERNEL - 1
    # the chunk's input tiles: its slice of x, zero-padded where it reaches past x's edges
    region = [slice(s.start * m, s.stop * m + KERNEL - 1) for s in t[1:]]  # padded coordinates
    xs = padded_slice(x, t[0], region, spec.padding).to(kb.dtype)  # (b, C, *(ntt * m + 2))
    for i in range(n):
        xs = xs.unfold(2 + i, a, m)  # -> (b, C, *ntt, *a)
    # (b, C, *ntt, *a) -> (*a, C, b, *ntt) -> (A, C*b*P); V = B^T d B = kb @ that
    cols = xs.permute(*range(2 + n, 2 + 2 * n), 1, 0, *range(2, 2 + n)).reshape(a**n, -1)
    return matmul(kb, cols).view(a**n, x.shape[1], -1)


# --- cost model (read by ``auto``: named features, error growth, compute dtype) ---

# growth factors (in units of u) per dims and tile: the measured errors above with a safety margin
WINOGRAD_GROWTH = {1: {2: 12.0, 4: 50.0, 6: 100.0}, 2: {2: 12.0, 4: 200.0, 6: 320.0}, 3: {2: 12.0, 4: 400.0}}
COMPUTE_DTYPE = halves_to_float32


def error_growth(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> float:
    """Predicted normwise relative error of the default tile, in units of ``u`` (:data:`WINOGRAD_GROWTH`)."""
    return WINOGRAD_GROWTH[spec.n][M_DEFAULT[spec.n]]


def cost_features(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> dict[str, float]:
    """``tile_macs`` transformed multiply-adds (at least :data:`NARROW_K` channels), ``transform`` transform work (tensor ops: ``tiles a^N (C + O)
    a^N``) or ``native_transform`` (the C transforms' units: ``(C + O) B`` tile rows, times the vectors of
    tiles per row), ``kernel_transform`` (O Cg a^N)."""
    b, c = x.shape[:2]
    o, cg = w.shape[:2]
    m = M_DEFAULT[spec.n]
    a = (m + KERNEL - 1) ** spec.n
    per_dim = [-(-v // m) for v in spec.output_spatial(x.shape[2:], w.shape[2:])]
    tiles_ = b * prod(per_dim)
    # products over fewer than NARROW_K channels cost as many (their output tiles' loads and stores and the
    # packing do not shrink with K: U-Net's 16-channel layer at 128x128 ran 1.4-2.1 ms, native 1.1)
    feats = {"calls": 1.0, "tile_macs": float(tiles_ * a * o * max(cg, NARROW_K)), "kernel_transform": float(o * cg * a)}
    if x.dtype == COMPUTE_DTYPE(x.dtype) and _wn.serves(x, spec.n, per_dim, m):
        lanes = 64 // x.element_size()  # (the C transforms run over vectors of a tile row's tiles)
        feats["native_transform"] = float((c + o) * b * prod(per_dim[:-1]) * -(-per_dim[-1] // lanes))
    else:
        feats["transform"] = float(tiles_ * a * (c + o) * a)
    return feats
