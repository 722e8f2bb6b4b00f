"""Small im2col correlations with little Python around them (a per-call-overhead fast path).

``conv`` calls whose core correlation ``auto`` serves with im2col and whose columns have at
most ``MAX_COLUMN_ELEMENTS`` entries (the layers of small models) run here: the forward is
im2col's own computation (the same columns and GEMM) with the bias added while the output is
reordered, inside one autograd Function (:class:`SmallCorr`) instead of the general chain
(``Corr`` -> ``algorithms.run`` -> ``auto`` -> ``im2col`` -> tile loop) plus a separate bias add.

Backward: for ``y = corr(x, w)`` computed as ``y[g] = w[g] @ cols[g]`` (``cols (G, Cg*K, B*L)``, the
im2col columns of the padded input), with ``gy`` viewed as ``(G, Og, B*L)``::

    dw[g]   = gy[g] @ cols[g]^T                     # (Og, B*L) @ (B*L, Cg*K)
    dcols[g]^T = gy[g]^T @ w[g]                     # (B*L, Og) @ (Og, Cg*K), i.e. w[g]^T @ gy[g]
    dx_pad  = col2im(dcols)                         # scatter-add every column entry to its input position

The columns are not kept from the forward (only ``x`` and ``w`` are saved); the weight gradient
rebuilds them in the kernel-innermost layout. ``col2im`` is one ``index_add_`` with an index (cached per shape) that maps each entry of
``dcols`` to its flat position in the padded input (measured faster than one strided add per tap), so a call costs two GEMMs and a few copies
instead of the polyphase split's ``prod(stride)`` correlations plus the weight-gradient
rearrangements; the results are the same sums in another order. Only first-order gradients
take this path: under ``create_graph`` the general rules (``CorrT``/``CorrW``, differentiable)
are used, so higher derivatives are unchanged. ``Corr.backward`` uses it too for small calls.
"""

from __future__ import annotations

from typing import Any

import torch

from .._padding import pad
from .._shapes import prod
from .._spec import CorrSpec
from .._windows import windows

MAX_COLUMN_ELEMENTS = 2**18  # small calls only: above this, arithmetic dominates the overhead

_INDEX_CACHE: dict[tuple[object, ...], torch.Tensor] = {}
_INDEX_CACHE_SIZE = 256


def serves(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> bool:
    """Whether ``corr(x, w)`` is a small call that ``auto`` serves with im2col's column GEMM.

    ``meta`` tensors take the general path: ``anyconv.explain_algorithm`` traces a call's core
    correlations on them by replacing ``algorithms.run``.
    """
    if x.numel() == 0 or w.numel() == 0 or x.is_complex() or x.is_meta:
        return False
    kernel = w.shape[2:]
    taps = prod(kernel)
    if taps == 1:
        return False  # im2col multiplies 1x1 kernels without columns
    positions = x.shape[0] * prod(spec.output_spatial(x.shape[2:], kernel))
    if taps > positions or positions * x.shape[1] * taps > MAX_COLUMN_ELEMENTS:
        return False  # im2col's kernel-innermost layout, or a call large enough to tile
    from ..algorithms.auto import choose

    return choose(x, w, spec).name == "im2col"


def col2im_pays(x: torch.Tensor, w: torch.Tensor, gy: torch.Tensor, spec: CorrSpec) -> bool:
    """Whether ``corr(x, w)``'s input gradient is cheaper as ``w^T @ gy`` plus col2im (first
    order, real): when each group has more output channels than the batch has output positions,
    the column gradient ``(C*K, B*L)`` is smaller than the weight, whose flipped and transposed
    copy (the transposed correlation's kernel) would cost more than the scatter-add."""
    if torch.is_grad_enabled() or x.is_complex() or x.is_meta or gy.numel() == 0 or w.numel() == 0:
        return False
    return w.shape[0] // spec.groups > gy.shape[0] * prod(gy.shape[2:])


def applies(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> bool:
    """Whether the backward fast path serves ``corr(x, w)``'s first-order gradients."""
    return not torch.is_grad_enabled() and serves(x, w, spec)


def forward(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, spec: CorrSpec) -> torch.Tensor:
    """``corr(x, w) + bias`` as im2col computes it: ``y[g] = w[g] @ cols[g]``, batch in the GEMM's N.

    Shape:
        ``x (B, C, *L)``, ``w (O, C // G, *k)``, ``bias (O,)`` -> ``(B, O, *o)`` (contiguous).

    Examples:
        >>> from anyconv._spec import CorrSpec
        >>> s = CorrSpec((2,), (1,), ((1, 1),), 1)
        >>> forward(torch.ones(1, 1, 4), torch.tensor([[[1.0, 2.0, 3.0]]]), torch.tensor([10.0]), s).tolist()
        [[[15.0, 16.0]]]
    """
    return _product(_columns(x, w, spec), w, bias, x.shape[0], spec)


def _columns(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor:
    """im2col's columns ``(G, Cg*K, B, *o)`` of the padded ``x`` (one copy)."""
    n = spec.n
    win = windows(pad(x, spec.padding), w.shape[2:], spec.stride, spec.dilation)  # (B, C, *o, *k)
    # (B, G, Cg, *o, *k) -> (G, Cg, *k, B, *o) -> (G, Cg*K, B, *o)
    perm = (1, 2, *range(3 + n, 3 + 2 * n), 0, *range(3, 3 + n))
    cols = win.unflatten(1, (spec.groups, x.shape[1] // spec.groups)).permute(perm)
    return cols.reshape(spec.groups, -1, *cols.shape[-1 - n :])


def _product(cols: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, b: int, spec: CorrSpec) -> torch.Tensor:
    """``w[g] @ cols[g]`` (+ bias) reordered to a contiguous ``(B, O, *o)``."""
    g, o = spec.groups, w.shape[0]
    out = cols.shape[3:]
    y = torch.matmul(w.reshape(g, o // g, -1), cols.flatten(2))  # (G, Og, B*L)
    y = y.view(o, b, *out).transpose(0, 1)  # (B, O, *o), a view
    res = y.new_empty((b, o, *out))
    if bias is None:
        return res.copy_(y)
    return torch.add(y, bias.view(o, *[1] * spec.n), out=res)


class SmallCorr(torch.autograd.Function):
    """``corr(x, w) + bias`` for calls that :func:`serves` accepts, with the gradients above."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, spec: CorrSpec) -> torch.Tensor:  # type: ignore[override]
        # only x and w are saved: the weight gradient rebuilds its columns (no forward buffer is
        # kept alive between forward and backward, as for every other path)
        ctx.save_for_backward(x, w)
        ctx.spec = spec
        return _product(_columns(x, w, spec), w, bias, x.shape[0], spec)

    @staticmethod
    def backward(ctx: Any, gy: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        x, w = ctx.saved_tensors
        spec = ctx.spec
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        if torch.is_grad_enabled():  # create_graph: the differentiable rules
            from ._autograd import CorrT, CorrW

            db = gy.sum([0, *range(2, gy.dim())]) if need_b else None
            dx = CorrT.apply(gy, w, spec, tuple(x.shape[2:]), "auto", None) if need_x else None
            dw = CorrW.apply(x, gy, spec, tuple(w.shape[2:]), "auto") if need_w else None
            return dx, dw, db, None
        cols = _columns(x, w, spec) if need_w else None  # rebuilt, in the forward's layout
        grads = backward(x, w, gy, spec, need_x, need_w, cols, need_b)
        return grads[0], grads[1], (grads[2] if need_b else None), None


def _col2im_index(
    b: int, c: int, groups: int, padded: tuple[int, ...], kernel: tuple[int, ...], spec: CorrSpec,
    device: torch.device,
) -> torch.Tensor:
    """Flat index into ``(B, C, *padded)`` of every entry of ``dcols`` laid out ``(G, B, *o, Cg, *k)``."""
    key = (b, c, groups, padded, kernel, spec.stride, spec.dilation, device)
    hit = _INDEX_CACHE.get(key)
    if hit is None:
        n = len(kernel)
        pos = windows(torch.arange(prod(padded), device=device).view(padded), kernel, spec.stride, spec.dilation)
        pos = pos.permute(*range(n, 2 * n), *range(n))  # (*k, *o): flat padded positions
        base = torch.arange(b, device=device).view(b, *[1] * n) * (c * prod(padded))  # (B, 1...)
        per_b = pos.unsqueeze(n) + base  # (*k, B, *o)
        chan = torch.arange(c, device=device).view(c, *[1] * (2 * n + 1)) * prod(padded)
        hit = (chan + per_b.unsqueeze(0)).reshape(groups, (c // groups) * prod(kernel), -1)  # (G, Cg*K, B*L)
        hit = hit.transpose(1, 2).reshape(-1)  # (G, B*L, Cg*K)
        if len(_INDEX_CACHE) >= _INDEX_CACHE_SIZE:
            _INDEX_CACHE.clear()
        _INDEX_CACHE[key] = hit
    return hit


def backward(
    x: torch.Tensor, w: torch.Tensor, gy: torch.Tensor, spec: CorrSpec, need_x: bool, need_w: bool,
    cols: torch.Tensor | None = None, need_b: bool = False,
) -> tuple[torch.Tensor | None, ...]:
    """``(dx, dw)`` of ``y = corr(x, w)`` for the output gradient ``gy`` (``None`` where not needed),
    plus ``db`` (the bias gradient, ``gy`` summed over batch and positions) when ``need_b``.

    ``cols`` are the forward's columns ``(G, Cg*K, B, *o)`` when kept (else recomputed for ``dw``).

    Shape:
        ``x (B, C, *L)``, ``w (O, C // G, *k)``, ``gy (B, O, *o)`` -> ``dx (B, C, *L)``, ``dw`` like ``w``.

    Examples:
        >>> from anyconv._spec import CorrSpec
        >>> s = CorrSpec((2,), (1,), ((1, 1),), 1)
        >>> dx, dw = backward(torch.ones(1, 1, 4), torch.tensor([[[1.0, 2.0, 3.0]]]), torch.ones(1, 1, 2), s, True, True)
        >>> dx.tolist(), dw.tolist()
        ([[[2.0, 4.0, 2.0, 3.0]]], [[[1.0, 2.0, 2.0]]])
    """
    n = spec.n
    g = spec.groups
    b, c = x.shape[:2]
    o = w.shape[0]
    kernel = tuple(w.shape[2:])
    out = tuple(gy.shape[2:])
    big_l = b * prod(out)
    # (B, G, Og, *o) -> (G, Og, B, *o) -> (G, Og, B*L)
    g2 = gy.reshape(b, g, o // g, prod(out)).permute(1, 2, 0, 3).reshape(g, o // g, big_l)
    wg = w.reshape(g, o // g, (c // g) * prod(kernel))  # (G, Og, Cg*K)
    dx = dw = None
    if need_w and cols is not None:
        dw = torch.matmul(g2, cols.flatten(2).transpose(1, 2)).reshape(w.shape)  # (G, Og, Cg*K)
    elif need_w:
        xp = pad(x, spec.padding)
        win = windows(xp, kernel, spec.stride, spec.dilation)  # (B, C, *o, *k)
        win = win.unflatten(1, (g, c // g))  # (B, G, Cg, *o, *k)
        # kernel innermost: (B, G, Cg, *o, *k) -> (G, B, *o, Cg, *k) -> (G, B*L, Cg*K)
        perm = (1, 0, *range(3, 3 + n), 2, *range(3 + n, 3 + 2 * n))
        cols = win.permute(perm).reshape(g, big_l, -1)
        dw = torch.matmul(g2, cols).reshape(w.shape)  # (G, Og, Cg*K) -> (O, Cg, *k)
    if need_x:
        padded = tuple(i + pb + pa for i, (pb, pa) in zip(x.shape[2:], spec.padding))
        # (G, B*L, Cg*K): computed as gy^T @ w, measured 4x faster than w^T @ gy when B*L is small
        dcols = torch.matmul(g2.transpose(1, 2), wg)
        index = _col2im_index(b, c, g, padded, kernel, spec, x.device)  # (G, B*L, Cg*K) order
        flat = dcols.new_zeros(b * c * prod(padded)).index_add_(0, index, dcols.reshape(-1))
        crop = (slice(None), slice(None), *(slice(pb, pb + i) for i, (pb, _) in zip(x.shape[2:], spec.padding)))
        dx = flat.view(b, c, *padded)[crop]
    if need_b:
        return dx, dw, g2.sum(-1).reshape(o)  # (G, Og, B*L) -> (O,)
    return dx, dw
