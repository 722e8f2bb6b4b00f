"""Small im2col correlations with little Python around them (a per-call-overhead fast path).

``conv`` calls whose core correlation ``auto`` serves with im2col (or ``native``, whose kernel is
faster but whose general-path Python costs more on calls this small) and whose columns have at
most ``MAX_COLUMN_ELEMENTS`` entries (the layers of small models) run here: the forward is
im2col's own computation (the same columns and GEMM) with the bias added while the output is
reordered, inside the ``anyconv::corr`` operator's kernel, instead of the general chain
(``algorithms.run`` -> ``auto`` -> ``im2col`` -> tile loop) plus a separate bias add.

Backward: for ``y = corr(x, w)`` computed as ``y[g] = w[g] @ cols[g]`` (``cols (G, Cg*K, B*L)``, the
im2col columns of the padded input), with ``gy`` viewed as ``(G, Og, B*L)``::

    dw[g]   = gy[g] @ cols[g]^T                     # (Og, B*L) @ (B*L, Cg*K)
    dcols[g]^T = gy[g]^T @ w[g]                     # (B*L, Og) @ (Og, Cg*K), i.e. w[g]^T @ gy[g]
    dx_pad  = col2im(dcols)                         # scatter-add every column entry to its input position

Only ``x`` and ``w`` are saved (the backward never keeps the forward's columns alive): the weight
gradient rebuilds the columns from the saved input. ``col2im`` is one ``index_add_``
with an index (made once per call shape) that maps each entry of ``dcols`` to its flat position
in the padded input (measured faster than one strided add per tap), so a call costs two GEMMs and
a few copies instead of the polyphase split's ``prod(stride)`` correlations plus the
weight-gradient rearrangements; the results are the same sums in another order. The
``anyconv::corr_t`` and ``corr_w`` kernels (the input and weight gradients) use it for small
calls; their autograd is the operators' rules, so higher derivatives are unchanged.

One-group float32/float64 calls in 1-3 dims take the native implicit products instead where the native
matrix product serves this machine: the forward's columns are gathered inside the kernel's packing
(``gemm_x``), the weight gradient is ``gemm_w``'s and a stride-1 input gradient with a finite weight
``gemm_t``'s, so no column matrix is gathered or scattered (a 8x16x8x8 3x3 layer, 1 thread, interleaved:
forward 145 -> 87 us, forward and backward 422 -> 360 us; torch 50 and 193).

Each call shape's :class:`Plan` (view sizes and strides, permutation, GEMM shapes) is worked out
once and cached, so a call of a small model's layer is a handful of tensor ops with little
Python around them (MNIST-1D training step: 0.91-0.98x torch's, measured in docs/speed.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import torch
import torch.nn.functional as F

from ..core.cache import BoundedCache
from ..core.shapes import prod
from ..core.spec import CorrSpec
from . import _gemm
from . import _native_abi as abi
from ._common import row_major_strides
from ._gemm import matmul
from .im2col import implicit_product

MAX_COLUMN_ELEMENTS = 2**18  # small calls only: above this, arithmetic dominates the overhead
# the native implicit products take a product with at least this many rows (the forward's output
# channels, the input gradient's input channels, the weight gradient's output channels) and a weight
# gradient with at least NATIVE_MIN_COLUMNS input channels x taps: narrower ones fill a fraction of the
# 12 x 32 register tile (MNIST-1D's 1 -> 32 k5 layer, forward and backward: 216-293 us by the columns,
# 341-446 natively)
NATIVE_MIN_ROWS = 8
NATIVE_MIN_COLUMNS = 32
# and a weight gradient with at least this many output positions per sample: gemm_w sums sample by sample,
# so short rows of positions reload dw's tiles per sample (MNIST-1D's 25-channel layers at 10 and 5
# positions, batch 32: 19 us slower than the columns' one product)
NATIVE_MIN_POSITIONS = 64
INDEX_BUDGET = 64 * 2**20  # bytes of cached gather/scatter indices, all plans together


@dataclass(frozen=True, slots=True, eq=False)
class Plan:
    """The shapes of one small call, worked out once: a call then costs its tensor ops only.

    For ``x (B, C, *L)``, ``w (O, Cg, *k)`` with ``G`` groups, ``K = prod(k)``, output ``*o``
    (``L_o = prod(o)``) and zero-padded input ``(B, C, *P)``: the columns are the padded input's
    windows ``(B, G, Cg, *o, *k)`` (one strided view) reordered to ``(G, Cg*K, B*L_o)``, so
    ``y = w (G, Og, Cg*K) @ cols`` is one GEMM per group with the batch in its N (no leading
    ``G`` when ``G == 1``: a plain matrix product).

    Immutable and shared by every thread that makes the call: its index tensors are not fields
    but entries of their own bounded cache (:func:`_indices`, keyed on the plan's identity; a plan
    serves one device, which its cache key includes), so no thread can see a half-updated plan.
    """

    pad: tuple[int, ...] | None  # torch.nn.functional.pad's argument
    size: tuple[int, ...]
    stride: tuple[int, ...]
    perm: tuple[int, ...]
    cols: tuple[int, ...]
    wg: tuple[int, ...]
    y: tuple[int, ...]
    out: tuple[int, ...]
    bias: tuple[int, ...]
    gy: tuple[int, ...]
    g2: tuple[int, ...]
    padded: tuple[int, ...]
    crop: tuple[slice, ...]
    kernel: tuple[int, ...]
    groups: int
    spec: CorrSpec  # the call's
    native: tuple[bool, bool, bool] = (False, False, False)  # forward, weight and input gradient natively

    @staticmethod
    def of(x_shape: Sequence[int], w_shape: Sequence[int], spec: CorrSpec) -> Plan:
        """The plan of ``corr(x, w)`` for ``x`` and ``w`` of these shapes."""
        n, g = spec.n, spec.groups
        b, c, *length = x_shape
        o, cg, *kernel = w_shape
        out = spec.output_spatial(length, kernel)
        padded = [i + pb + pa for i, (pb, pa) in zip(length, spec.padding)]
        flat: list[int] = []
        for pb, pa in reversed(spec.padding):
            flat += [pb, pa]
        rs = row_major_strides(padded)
        sp = prod(padded)
        lead = (g,) if g > 1 else ()
        big_l = b * prod(out)
        return Plan(
            pad=tuple(flat) if any(flat) else None,
            size=(b, g, cg, *out, *kernel),
            stride=(c * sp, cg * sp, sp, *(r * s for r, s in zip(rs, spec.stride)),
                    *(r * d for r, d in zip(rs, spec.dilation))),
            perm=(1, 2, *range(3 + n, 3 + 2 * n), 0, *range(3, 3 + n)),  # (G, Cg, *k, B, *o)
            cols=lead + (cg * prod(kernel), big_l),
            wg=lead + (o // g, cg * prod(kernel)),
            y=(o, b, *out),
            out=(b, o, *out),
            bias=(o,) + (1,) * n,
            gy=(b, g, o // g, prod(out)),
            g2=lead + (o // g, big_l),
            padded=(b, c, *padded),
            crop=(slice(None), slice(None), *(slice(pb, pb + i) for i, (pb, _) in zip(length, spec.padding))),
            kernel=tuple(kernel),
            groups=g,
            spec=spec,
        )


# per call and auto.state(): the call's plan, or False when it takes the general path
_PLANS: BoundedCache[tuple[object, ...], Plan | Literal[False]] = BoundedCache(1024)
# the general path's col2im (see col2im_pays), per call shape
_COL2IM_PLANS: BoundedCache[tuple[object, ...], Plan] = BoundedCache(256)
# (plan, kind) -> flat positions in the padded input: kind 0 the columns' entries (G, Cg*K, B*L_o)
# (the gather), kind 1 dcols' entries (G, B*L_o, Cg*K) (col2im's scatter); made on first use
_INDICES: BoundedCache[tuple[Plan, int], torch.Tensor] = BoundedCache(
    4096, max_weight=INDEX_BUDGET, weight=lambda t: t.numel() * t.element_size())


def plan(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> Plan | None:
    """The :class:`Plan` of ``corr(x, w)`` if it is a small call that ``auto`` serves with
    im2col's column GEMM or the ``native`` kernel, else ``None`` (cached on the call and
    :func:`auto.state`).

    ``meta`` tensors take the general path: ``anyconv.explain_algorithm`` traces a call's core
    correlations on them by replacing ``algorithms.run``.
    """
    from . import auto

    key = (x.shape, w.shape, x.dtype, x.device, x.is_meta, spec, auto.state())
    p = _PLANS.get(key)
    if p is None:
        p = _PLANS.get_or_make(key, lambda: _serves(x, w, spec) and _natively(Plan.of(x.shape, w.shape, spec), x, w))
    return p or None


def _serves(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> bool:
    if x.numel() == 0 or w.numel() == 0 or x.is_complex() or x.is_meta:
        return False
    if any(pb < 0 or pa < 0 for pb, pa in spec.padding):
        return False  # cropping: the general path
    kernel = w.shape[2:]
    taps = prod(kernel)
    if taps == 1:
        return False  # im2col multiplies 1x1 kernels without columns
    positions = x.shape[0] * prod(spec.output_spatial(x.shape[2:], kernel))
    if taps > positions or positions * x.shape[1] * taps > MAX_COLUMN_ELEMENTS:
        return False  # im2col's kernel-innermost layout, or a call large enough to tile
    from .auto import choose

    # native's C kernel is faster than im2col on the call itself, but on calls this small the general
    # path's Python around it costs more than the fused path saves (MNIST-1D training step 1.28 ms
    # with these calls here, 1.70 ms through native, interleaved)
    return choose(x, w, spec, values=False).name in ("im2col", "native")  # cached per shape: not the values


def col2im_pays(x: torch.Tensor, w: torch.Tensor, gy: torch.Tensor, spec: CorrSpec) -> bool:
    """Whether ``corr(x, w)``'s input gradient is cheaper as ``w^T @ gy`` plus col2im (first
    order, real): when each group has more output channels than the batch has output positions,
    the column gradient ``(C*K, B*L)`` is smaller than the weight, whose flipped and transposed
    copy (the transposed correlation's kernel) would cost more than the scatter-add."""
    if torch.is_grad_enabled() or x.is_complex() or x.is_meta or gy.numel() == 0 or w.numel() == 0:
        return False
    if any(pb < 0 or pa < 0 for pb, pa in spec.padding):
        return False
    return w.shape[0] // spec.groups > gy.shape[0] * prod(gy.shape[2:])


def forward(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, p: Plan) -> torch.Tensor:
    """``corr(x, w) + bias`` as im2col computes it: ``y[g] = w[g] @ cols[g]``, batch in the GEMM's N.

    Shape:
        ``x (B, C, *L)``, ``w (O, C // G, *k)``, ``bias (O,)`` -> ``(B, O, *o)`` (contiguous).

    Examples:
        >>> from anyconv.core.spec import CorrSpec
        >>> x, w = torch.ones(1, 1, 4), torch.tensor([[[1.0, 2.0, 3.0]]])
        >>> p = Plan.of(x.shape, w.shape, CorrSpec((2,), (1,), ((1, 1),), 1))
        >>> forward(x, w, torch.tensor([10.0]), p).tolist()
        [[[15.0, 16.0]]]
    """
    y = implicit_product(x, w, p.spec) if p.native[0] and not (x.is_neg() or w.is_neg()) else None
    if y is None:
        return _finish(matmul(w.reshape(p.wg), _columns(x, p)), bias, p)
    return y if bias is None else y.add_(bias.view(p.bias))  # (B, O, *o) already


def _natively(p: Plan, x: torch.Tensor, w: torch.Tensor) -> Plan:
    """``p`` with the products the native implicit products take (``native_c/gemm_x.c``: one group, 1-3
    dims, float32/float64 CPU, the native matrix product the faster on this machine, and the sizes of
    ``NATIVE_MIN_*``): no columns built, gathered or scattered for those."""
    if not (p.groups == 1 and len(p.kernel) <= 3 and x.dtype in abi.DTYPES and w.dtype == x.dtype
            and x.device.type == "cpu" and abi.library() is not None and _gemm.implicit_ok(x.dtype)):
        return p
    rows = w.shape[0] >= NATIVE_MIN_ROWS
    dw = rows and w[0].numel() >= NATIVE_MIN_COLUMNS and prod(p.y[2:]) >= NATIVE_MIN_POSITIONS
    dx = x.shape[1] >= NATIVE_MIN_ROWS and all(s == 1 for s in p.spec.stride)
    return replace(p, native=(rows, dw, dx))


def _columns(x: torch.Tensor, p: Plan) -> torch.Tensor:
    """im2col's columns ``(G, Cg*K, B*L_o)`` of the zero-padded ``x``: one ``index_select`` of
    the flat padded input (measured 1.5-2x faster than copying the permuted window view)."""
    xp = x.contiguous() if p.pad is None else F.pad(x, p.pad)
    # reshape: a row-major copy of an input in another layout (channels_last, a permuted view)
    return xp.reshape(-1).index_select(0, _indices(p, 0, x.device)).view(p.cols)


def _indices(p: Plan, kind: int, device: torch.device) -> torch.Tensor:
    """The plan's gather (``kind`` 0) or col2im scatter index (1), from the bounded cache
    (``INDEX_BUDGET`` bytes for all plans together; an evicted index is made again). The caller
    holds the tensor it gets, so an eviction by another thread never reaches a call in flight."""
    index = _INDICES.get((p, kind))
    if index is None:
        index = _INDICES.get_or_make((p, kind), lambda: _make_index(p, kind, device))
    return index


def _make_index(p: Plan, kind: int, device: torch.device) -> torch.Tensor:
    """``(G, Cg, *k, B, *o)`` flattened: the flat position in the padded input ``(B, C, *P)`` of every
    column entry; for ``kind`` 1 laid out as ``dcols`` ``(G, B*L_o, Cg*K)``."""
    pos = torch.arange(prod(p.padded), device=device).as_strided(p.size, p.stride).permute(p.perm)
    if kind == 0:
        return pos.reshape(-1)
    c = p.padded[1]
    return pos.reshape(p.groups, (c // p.groups) * prod(p.kernel), -1).transpose(1, 2).reshape(-1)


def _finish(product: torch.Tensor, bias: torch.Tensor | None, p: Plan) -> torch.Tensor:
    """The product ``w[g] @ cols[g]`` (+ bias) reordered to a contiguous ``(B, O, *o)``."""
    y = product.view(p.y).transpose(0, 1)  # (B, O, *o), a view
    res = y.new_empty(p.out)
    if bias is None:
        return res.copy_(y)
    return torch.add(y, bias.view(p.bias), out=res)


def backward(
    x: torch.Tensor, w: torch.Tensor, gy: torch.Tensor, spec: CorrSpec, need_x: bool, need_w: bool,
    cols: torch.Tensor | None = None, need_b: bool = False, p: Plan | None = None,
) -> tuple[torch.Tensor | None, ...]:
    """``(dx, dw, db)`` of ``y = corr(x, w) (+ bias)`` for the output gradient ``gy`` (``None``
    where not needed; ``db`` is ``gy`` summed over batch and positions).

    With ``y[g] = w[g] @ cols[g]`` (``cols (G, Cg*K, B*L_o)``, the columns of the padded input;
    rebuilt when not given) and ``gy`` viewed as ``g2 (G, Og, B*L_o)``: ``dw[g] = g2[g] @ cols[g]^T``,
    ``dcols[g] = g2[g]^T @ w[g]`` (``(B*L_o, Cg*K)``; measured 4x faster than ``w^T @ gy`` when
    ``B*L_o`` is small) and ``dx`` is col2im of ``dcols``: one ``index_add_`` into the padded input,
    then a crop.

    Shape:
        ``x (B, C, *L)``, ``w (O, C // G, *k)``, ``gy (B, O, *o)`` -> ``dx (B, C, *L)``, ``dw`` like ``w``.

    Examples:
        >>> from anyconv.core.spec import CorrSpec
        >>> s = CorrSpec((2,), (1,), ((1, 1),), 1)
        >>> dx, dw, _ = backward(torch.ones(1, 1, 4), torch.tensor([[[1.0, 2.0, 3.0]]]), torch.ones(1, 1, 2), s, True, True)
        >>> dx.tolist(), dw.tolist()
        ([[[2.0, 4.0, 2.0, 3.0]]], [[[1.0, 2.0, 2.0]]])
    """
    if p is None:  # the general path's col2im (see col2im_pays): its own cached plan
        p = _COL2IM_PLANS.get_or_make((x.shape, w.shape, x.device, spec), lambda: Plan.of(x.shape, w.shape, spec))
    # (B, G, Og, L_o) -> (G, Og, B, L_o) -> (G, Og, B*L_o), or (O, B*L_o) for one group
    g2 = gy.reshape(p.gy).permute(1, 2, 0, 3).reshape(p.g2)
    dx = dw = db = None
    native = (False, False, False) if x.is_neg() or w.is_neg() or gy.is_neg() else p.native
    if need_w and native[1]:  # the implicit products (gemm_w, gemm_t): no columns built or scattered
        from .gemm_w import serve as implicit_w

        dw, need_w = implicit_w(x, w, p.spec, gy, None), False
    if need_x and native[2]:
        from .auto import finite

        if finite(w):  # (padding zeros times an Inf: col2im's real products only)
            from .gemm_t import serve as implicit_t

            dx, need_x = implicit_t(x, w, p.spec, gy, None), False
    if need_w:
        if cols is None:
            cols = _columns(x, p)
        dw = matmul(g2, cols.transpose(-1, -2)).view(w.shape)
    if need_x:
        dcols = matmul(g2.transpose(-1, -2), w.reshape(p.wg))  # (G, B*L_o, Cg*K)
        index = _indices(p, 1, x.device)
        flat = dcols.new_zeros(prod(p.padded)).index_add_(0, index, dcols.reshape(-1))
        dx = flat.view(p.padded)[p.crop]
        dx = dx if p.pad is None else dx.contiguous()  # row-major, as torch's (a crop is not)
    if need_b:
        db = g2.sum(-1).reshape(-1)
    return dx, dw, db
