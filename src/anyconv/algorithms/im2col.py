"""``im2col``: columns plus one GEMM per group.

For each output tile the windows are copied into a column matrix ``cols (G, Cg * K, b * L)``
(``K = prod(kernel)``, ``L`` output positions in the tile) and multiplied by the weight as a
matrix ``(G, Og, Cg * K)``; the batch joins the product's columns, so skinny calls such as
weight gradients (few positions, a large batch) still make one big GEMM; when the kernel has
more taps than the tile has positions the columns are laid out ``(G, b * L, Cg * K)`` instead
(kernel innermost, contiguous reads) and multiplied by the transposed weight:

    y[g] = w[g] @ cols[g]        # (Og, Cg*K) @ (Cg*K, b*L) -> (Og, b*L)

One-group float32/float64 CPU calls take the implicit product instead where the native matrix
product serves (:func:`implicit`): the same product, with each panel of columns gathered from the
padded input inside the kernel's packing (``native_c/gemm_x.c``), so no column matrix is written
(ResNet-18's 3x3 256-channel layer at 8x8, batch 4, 1 thread: 2.12 -> 1.72 ms).

A 1x1 kernel (any N) needs no columns: the (strided) input is the column matrix, so the call
is one batched matrix product, with no copy for stride 1 and no padding (with fewer than
``FOLD_BELOW`` positions per sample the batch is folded into the product's columns instead).
A call with one output position and no padding (a 1x1 layer's weight gradient) has one window, a
view of the input: with at least ``WHOLE_MIN_TAPS`` taps it is one matrix product per input channel,
summed, with no copy either.

The columns are built in chunks of about ``CHUNK_BYTES`` (2 MiB, but at least
``MIN_CHUNK_POSITIONS`` (512) positions so that the GEMMs stay wide: 256 measured 5-15% slower on
ResNet-18's 3x3 layer at 14x14 and a 3-channel 3x3 s2 layer), never above half the workspace
limit (``anyconv.set_workspace_limit``): grouped calls go through balanced chunks of whole groups
(each padding only its own channels), so that a group's GEMM keeps all of its positions, and
columns still too large are tiled over output positions. Measured (interleaved, 1 thread) as
fast as whole-call columns on the ungrouped benchmark layers, at a fraction of the memory:
ResNet-18's 3x3 weight gradient at 28x28 6.6 MiB instead of 11.4 MiB. ResNeXt's g=32 layer at
28x28 peaks at 2.9 MiB instead of 8.5 MiB (torch: 1.6 MiB) and is about 15% slower for it (four
chunks of 8 groups, each padded on its own).
"""

from __future__ import annotations

import ctypes
from dataclasses import replace

import torch

from ..core.padding import pad
from ..core.shapes import prod
from ..core.spec import CorrSpec
from ..core.windows import balanced_step
from ..core.workspace import chunk_limit
from . import _gemm
from . import _native_abi as abi
from ._common import run_tiles
from ._gemm import matmul

NAME = "im2col"
GEMM_FEATURES = ("macs", "narrow_macs")  # cost features that count matrix-product multiply-adds (auto.gemm_scale)
CHUNK_BYTES = 2 * 2**20  # columns per chunk of output positions and groups
MIN_CHUNK_POSITIONS = 512  # at least this many positions per chunk (the GEMMs' N)
FOLD_BELOW = 256  # 1x1 kernels: fold the batch into the GEMM when a sample has fewer positions
# one output position: a product per input channel (no copy) from this many taps; fewer make
# GEMMs too thin, where one copy and one product over all channels is faster (interleaved A/B, 1 thread:
# 3136 taps 0.81 vs 0.95 ms and 3.3 vs 4.2 ms, 784 taps 0.54 vs 0.57 ms; 49-196 taps 0.8-1.5x either way)
WHOLE_MIN_TAPS = 512


def supports(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> str | None:
    """``im2col`` serves every call."""
    return None


def kernel_innermost(out: tuple[int, ...], kernel: tuple[int, ...], batch: int) -> bool:
    """Whether the columns are laid out kernel-innermost ``(b*L, Cg*K)``: more taps than
    positions, or kernel rows longer than output rows (the copy's contiguous runs)."""
    return prod(kernel) > batch * prod(out) or (len(kernel) > 0 and kernel[-1] > out[-1])


def _tile(win: torch.Tensor, wg: torch.Tensor, n: int) -> torch.Tensor:
    b, g, cg = win.shape[:3]
    o_tile = win.shape[3 : 3 + n]
    big_l = b * prod(o_tile)
    if kernel_innermost(tuple(o_tile), tuple(win.shape[3 + n :]), b):
        # weight gradients (kernels larger than the output): copy with the kernel innermost, which
        # reads the input in runs of a kernel row instead of an output row (measured 5-13x
        # cheaper copies there): (b, G, Cg, *o, *k) -> (G, b, *o, Cg, *k) -> (G, b*L, Cg*K), then
        # multiplied transposed, so that the product is row-major (G, Og, b*L) as below
        perm = (1, 0, *range(3, 3 + n), 2, *range(3 + n, 3 + 2 * n))
        cols = win.permute(perm).reshape(g, big_l, -1).transpose(1, 2)
    else:
        # (b, G, Cg, *o, *k) -> (G, Cg, *k, b, *o) -> (G, Cg*K, b*L): the batch joins the GEMM's N
        perm = (1, 2, *range(3 + n, 3 + 2 * n), 0, *range(3, 3 + n))
        cols = win.permute(perm).reshape(g, -1, big_l)
    y = matmul(wg.flatten(2), cols)  # (G, Og, Cg*K) @ (G, Cg*K, b*L) -> (G, Og, b*L)
    return y.unflatten(2, (b, *o_tile)).transpose(0, 2).transpose(1, 2)  # (b, G, Og, *o)


def _pointwise(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor:
    """A 1x1 kernel: ``y[b, g] = w[g] @ x_pad[b, g, :, ::s]``, one batched matmul."""
    g = spec.groups
    b, c = x.shape[:2]
    o = w.shape[0]
    xs = pad(x, spec.padding)
    if any(s != 1 for s in spec.stride):
        xs = xs[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in spec.stride)]
    out = xs.shape[2:]
    cols = xs.reshape(b, g, c // g, prod(out))  # (B, G, Cg, L): a view when xs is contiguous
    wg = w.reshape(g, o // g, c // g)
    if b > 1 and prod(out) < FOLD_BELOW:
        # few positions (weight gradients, small feature maps): the batch joins the GEMM's N,
        # one (Og, Cg) @ (Cg, B*L) product per group instead of B tiny ones; a permuted view
        y = matmul(wg, cols.permute(1, 2, 0, 3).reshape(g, c // g, -1))  # (G, Og, B*L)
        return y.unflatten(2, (b, *out)).movedim(2, 0).flatten(1, 2)
    y = matmul(wg, cols)  # (G, Og, Cg) @ (B, G, Cg, L) -> (B, G, Og, L)
    return y.reshape(b, o, *out)


def one_window(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> bool:
    """Whether the call takes the one-window path (see ``_whole``)."""
    return (prod(w.shape[2:]) >= WHOLE_MIN_TAPS and x.shape[0] > 0 and x.shape[1] > 0
            and all(pb == pa == 0 for pb, pa in spec.padding)
            and all(v == 1 for v in spec.output_spatial(x.shape[2:], w.shape[2:])))


def _whole(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor:
    """One output position, no padding (the weight gradient of a 1x1 layer): the only window is a
    strided view of ``x``, so the call is one batched matrix product over the input channels, each
    ``(B, K) @ (K, Og)``, summed over the channels; no column copy:

        y[:, g] = sum_c x_win[:, g, c] @ w[g, :, c]^T    x_win: (B, G, Cg, K), w: (G, Og, Cg, K)
    """
    b, c = x.shape[:2]
    o, g = w.shape[0], spec.groups
    kernel = tuple(w.shape[2:])
    win = x[(slice(None), slice(None)) + tuple(slice(0, (k - 1) * d + 1, d) for k, d in zip(kernel, spec.dilation))]
    xs = win.reshape(b, g, c // g, prod(kernel)).permute(1, 2, 0, 3)  # (G, Cg, B, K): views of the rows
    ws = w.reshape(g, o // g, c // g, prod(kernel)).permute(0, 2, 3, 1)  # (G, Cg, K, Og)
    y = matmul(xs, ws).sum(1)  # (G, Cg, B, Og) -> (G, B, Og)
    return y.transpose(0, 1).reshape(b, o, *(1,) * spec.n)


def implicit(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> bool:
    """Whether a call with a kernel of more than one tap (and more than one window) takes the native
    implicit product: one group, float32/float64 CPU operands, a product the native kernel takes
    (``_gemm``'s size rule, and ``_gemm.implicit_ok``: the kernel not much slower than torch's here)."""
    cols = x.shape[0] * prod(spec.output_spatial(x.shape[2:], w.shape[2:]))
    return (spec.groups == 1 and spec.n <= 3 and x.dtype in abi.DTYPES and w.dtype == x.dtype
            and x.device.type == "cpu" and x.numel() > 0 and w.numel() > 0 and not x.is_neg() and not w.is_neg()
            and cols >= _gemm.MIN_N and w.shape[0] * prod(w.shape[1:]) * cols >= _gemm.MIN_MACS
            and _gemm.implicit_ok(x.dtype) and abi.library() is not None)


def _implicit(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor | None:
    """The call by the native implicit product (``native_c/gemm_x.c``: the same product, its panels of
    columns gathered from the padded ``x`` in the packing, no column matrix), or None where it does not
    serve (:func:`implicit`; nor for an operand recorded for autograd: the kernel records no graph)."""
    if not implicit(x, w, spec) or (torch.is_grad_enabled() and (x.requires_grad or w.requires_grad)):
        return None
    return implicit_product(x, w, spec)


def implicit_product(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor | None:
    """The correlation ``(B, O, *L_o)`` (contiguous) of a one-group call by ``gemm_x`` whatever its size (the
    small-call path asks it too), or None where the kernel declines (no library; offsets beyond 32 bits)."""
    lib = abi.library()
    if lib is None:
        return None
    w = w.contiguous()
    y = torch.empty((x.shape[0], w.shape[0], *spec.output_spatial(x.shape[2:], w.shape[2:])), dtype=x.dtype)
    x, geom = abi.padded_geometry(x, w, spec, wrap=True)  # (row-major: a channels_last input is copied)
    rc = getattr(lib, f"gemm_x_{abi.DTYPES[x.dtype]}")(ctypes.addressof(geom), x.data_ptr(), w.data_ptr(), y.data_ptr())
    if rc == 1:
        raise MemoryError("im2col: the native implicit product could not allocate its packing panels")
    return None if rc else y


def forward(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor:
    """Cross-correlate ``x`` ``(B, C, *L)`` with ``w`` ``(O, C // G, *k)``."""
    if all(k == 1 for k in w.shape[2:]) and x.shape[1] > 0:
        return _pointwise(x, w, spec)
    if one_window(x, w, spec):
        return _whole(x, w, spec)
    y = _implicit(x, w, spec)
    if y is not None:
        return y
    unit = w.shape[1] * prod(w.shape[2:]) * x.element_size()  # one group's column bytes per position
    limit = chunk_limit(0, unit, CHUNK_BYTES, MIN_CHUNK_POSITIONS)
    g = spec.groups
    out = spec.output_spatial(x.shape[2:], w.shape[2:])

    def tile(win: torch.Tensor, wg: torch.Tensor) -> torch.Tensor:
        return _tile(win, wg, spec.n)

    fit = limit // (unit * x.shape[0] * prod(out))  # groups whose columns (all positions) fit a chunk
    if fit >= g:
        return run_tiles(x, w, spec, unit, tile, limit)
    # balanced chunks of whole groups (each padded on its own), so that a group's GEMM keeps all
    # of its positions; a single group's columns beyond the limit are tiled over positions
    step = balanced_step(g, fit)
    cg, og = x.shape[1] // g, w.shape[0] // g
    y = x.new_empty((x.shape[0], w.shape[0], *out))
    for g0 in range(0, g, step):
        gn = min(step, g - g0)
        xs, ws = x[:, g0 * cg : (g0 + gn) * cg], w[g0 * og : (g0 + gn) * og]
        y[:, g0 * og : (g0 + gn) * og] = run_tiles(xs, ws, replace(spec, groups=gn), unit, tile, limit)
    return y


# --- cost model (read by ``auto``: named features, error growth, compute dtype) ---

ERROR_GROWTH = 0.0  # a summation algorithm (auto's summation bound)
COMPUTE_DTYPE = None  # the input's dtype


def window_features(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, whole: bool,
                    gathered: bool = False) -> dict[str, float]:
    """The copy-then-GEMM features (``whole``: the one-window path, no column copy; ``gathered``: the
    implicit product, whose gathers move the windows' elements (``data``) without the copy's per-run and
    strided-read costs: it pays none of ``copied_3d``, ``copied_wide``, ``runs``, ``gathered``).

    ``calls`` 1; ``macs``; ``data`` copied window elements + input and output; ``narrow_macs`` MACs *
    min(1, 64 / GEMM N); ``copied_3d`` copied elements of 3-D (and higher) windows (a slower strided
    copy); ``copied_wide`` the same when taps outnumber positions; ``runs`` the contiguous runs copied
    (elements / output row, or / kernel row kernel-innermost: torch's copy pays per run); ``gathered``
    copied elements read with a stride in the copy's inner loop (stride or dilation > 1).
    """
    b, c = x.shape[:2]
    o, cg = w.shape[:2]
    k = prod(w.shape[2:])
    out = spec.output_spatial(x.shape[2:], w.shape[2:])
    p = prod(out)
    macs = float(b * o * p * cg * k)
    cols = 0 if k == 1 or whole else b * c * k * p  # column / window copy (none for 1x1 or one window)
    k_inner = kernel_innermost(out, tuple(w.shape[2:]), b)
    gather = (spec.dilation[-1] if k_inner else spec.stride[-1]) > 1  # the copy's inner loop reads a stride
    copied = 0 if gathered else cols
    return {"calls": 1.0, "macs": macs, "data": float(cols + b * (c + o) * p),
            "narrow_macs": macs * min(1.0, 64.0 / max(1, b * p)),
            "copied_3d": float(copied) if spec.n >= 3 else 0.0, "copied_wide": float(copied) if k > b * p else 0.0,
            "runs": float(copied // max(1, int(w.shape[-1]) if k_inner else out[-1])),
            "gathered": float(copied) if gather else 0.0}


def cost_features(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> dict[str, float]:
    """:func:`window_features` of the call (no column copy on the one-window path; the implicit product's
    gathers where it serves: predicted within 0.75-1.15x of the measured time on ResNet-18's 3x3 layers
    and CIFAR's 32 -> 64 at 15x15, 1 thread, where the full copy's terms predicted up to 1.5x)."""
    kernel = tuple(w.shape[2:])
    many = any(v != 1 for v in kernel) and not one_window(x, w, spec)
    gathered = many and implicit(x, w, spec)
    f = window_features(x, w, spec, whole=one_window(x, w, spec), gathered=gathered)
    if gathered:  # the kernel's rate where torch computes the plain products (auto scales them by torch's)
        slow = _gemm.implicit_slowdown(x.dtype)
        f["macs"], f["narrow_macs"] = f["macs"] * slow, f["narrow_macs"] * slow
    return f
