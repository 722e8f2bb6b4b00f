"""Gradients written once, as rules that call anyconv's own differentiable ops.

Three primitives, each linear in each of its two tensor arguments, close under
differentiation:

- ``corr(x, w)``: the core op ``y = A_w x`` (grouped cross-correlation, zero padding);
- ``corr_t(g, w)``: its adjoint in ``x``, ``A_w^T g`` (a transposed convolution);
- ``corr_w(x, g)``: its adjoint in ``w``, defined by ``<A_w x, g> = <w, corr_w(x, g)>``.

Backward rules (for real tensors; for complex ones the *other* operand is conjugated, which
is PyTorch's convention for holomorphic functions)::

    corr:   dx = corr_t(gy, w)      dw = corr_w(x, gy)
    corr_t: dg = corr(G, w)         dw = corr_w(G, g)
    corr_w: dx = corr_t(g, GW)      dg = corr(x, GW)

The rules are registered once, as the autograd of the operators ``torch.ops.anyconv.corr``,
``corr_t`` and ``corr_w`` (:mod:`anyconv.ops`), so second (and higher) derivatives are built from
the same rules; this module holds the operators' real computations (``*_raw``), which never track
gradients. ``corr_t`` and ``corr_w`` are themselves computed
as core correlations on rearranged tensors, so every algorithm in the registry serves them
too, and no forward buffer (im2col columns) is kept for backward: only ``x`` and ``w``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .. import algorithms
from ..core.shapes import effective_kernel
from ..core.spec import CorrSpec
from ._common import crop_then_pad, flip_swap, row_major_strides


def _run(op: str | None, algo: str, x: torch.Tensor, w: torch.Tensor, spec: CorrSpec,
         contiguous: bool = True) -> torch.Tensor:
    """``algorithms.run`` (strict, naming ``op`` in errors, unless ``op`` is None: a derived call
    such as a backward pass, where ``auto`` takes over), except that an empty input or weight (batch 0, or the channels of a
    weight-gradient correlation over batch 0) gives zeros of the output shape without work."""
    if x.numel() == 0 or w.numel() == 0:
        return x.new_zeros((x.shape[0], w.shape[0], *spec.output_spatial(x.shape[2:], w.shape[2:])))
    y = algorithms.run(op or "conv", algo, x, w, spec, strict=op is not None)
    # algorithms may return a permuted view (im2col's GEMM layout); the caller that rearranges
    # the result anyway (weight gradients) reads it as it is, everyone else gets it contiguous
    return y.contiguous() if contiguous else y


def corr_raw(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, algo: str, op: str | None = "conv") -> torch.Tensor:
    """The core op, no autograd: ``(B, C, *L), (O, C/G, *k) -> (B, O, *o)``."""
    return _run(op, algo, x, w, spec)


def corr_t_raw(
    g: torch.Tensor,
    w: torch.Tensor,
    spec: CorrSpec,
    in_spatial: Sequence[int],
    algo: str,
    op: str | None = None,
) -> torch.Tensor:
    """Adjoint of the core op in ``x``: ``(B, O, *o) -> (B, C, *in_spatial)``, by the registry.

    Computed as a stride-1 correlation of the zero-stuffed ``g`` (``s - 1`` zeros between
    elements) with the flipped, group-transposed kernel; the padding of the forward op becomes
    a crop (negative padding), any uncovered tail of the input a zero extension. (The operator
    ``corr_t``'s other ways, chosen by ``auto``, are the variants in ``algorithms/variants.py``.)
    """
    if g.numel() == 0 or w.numel() == 0:
        return g.new_zeros((g.shape[0], w.shape[1] * spec.groups, *in_spatial))
    z, wf, sub = stuffed_call(g, w, spec, in_spatial)
    return _run(op, algo, z, wf, sub)


def stuffed_call(g: torch.Tensor, w: torch.Tensor, spec: CorrSpec, in_spatial: Sequence[int],
                 shapes_only: bool = False) -> tuple[torch.Tensor, torch.Tensor, CorrSpec]:
    """``(z, w', spec')``: the stride-1 correlation that :func:`corr_t_raw` runs (``shapes_only``:
    one-element stand-ins of the same shapes, for the chooser)."""
    n = spec.n
    kernel = w.shape[2:]
    out = g.shape[2:]
    if any(s > 1 for s in spec.stride):
        size = (*g.shape[:2], *((o - 1) * s + 1 for o, s in zip(out, spec.stride)))
        if shapes_only:
            stuffed = g.new_zeros(()).expand(size)
        else:
            stuffed = g.new_zeros(size)
            stuffed[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in spec.stride)] = g
    else:
        stuffed = g
    pads = []
    for i in range(n):
        eff = effective_kernel(kernel[i], spec.dilation[i])
        pb, pa = spec.padding[i]
        padded_len = in_spatial[i] + pb + pa
        extra = padded_len - ((out[i] - 1) * spec.stride[i] + eff)
        pads.append((eff - 1 - pb, eff - 1 + extra - pa))
    # the algorithms pad per tile or per phase, so the padded gradient is never copied here
    z, sub_pads = crop_then_pad(stuffed, pads)
    sub = CorrSpec((1,) * n, spec.dilation, sub_pads, spec.groups)
    if shapes_only:
        o, cg = w.shape[:2]
        wf = w.new_zeros(()).expand((spec.groups * cg, o // spec.groups, *kernel))
        return z, wf, sub
    return z, flip_swap(w, spec.groups), sub


def swapped_call(x: torch.Tensor, g: torch.Tensor, spec: CorrSpec, kernel: Sequence[int]
                 ) -> tuple[torch.Tensor, torch.Tensor, CorrSpec]:
    """``(x5, g2, spec')`` of the weight gradient as a correlation with the roles swapped:
    ``x5 (Cg, G, B, *L)`` the batch/channel-swapped view of ``x`` (:func:`flat` makes it the
    correlation's input ``(Cg, G*B, *L)``: a copy when the batch and the groups are both above 1),
    ``g2 (G*Og, B, *o)``.

    Channels of ``x`` become the batch, the batch becomes channels, ``g`` is the kernel, stride
    and dilation trade places; the padding becomes the sub-call's own (no padded copy of x); the
    tail that no window reads is dropped from the trailing padding first, then from x.
    """
    n = spec.n
    G = spec.groups
    b, c = x.shape[:2]
    o = g.shape[1]
    out = g.shape[2:]
    need = [(out[i] - 1) * spec.stride[i] + effective_kernel(kernel[i], spec.dilation[i]) for i in range(n)]
    pads, keep = [], []
    for size, (pb, pa), m in zip(x.shape[2:], spec.padding, need):
        excess = max(0, size + pb + pa - m)
        cut = min(pa, excess)
        pads.append((pb, pa - cut))
        keep.append(slice(0, size - (excess - cut)))
    xp = x[(slice(None), slice(None)) + tuple(keep)]
    sp = list(range(3, 3 + n))
    # (B, G, Cg, *L) -> (Cg, G, B, *L) -> (Cg, G*B, *L)
    x5 = xp.reshape(b, G, c // G, *xp.shape[2:]).permute(2, 1, 0, *sp)
    # (B, G, Og, *o) -> (G, Og, B, *o) -> (G*Og, B, *o)
    g2 = g.reshape(b, G, o // G, *out).permute(1, 2, 0, *sp).reshape(o, b, *out)
    return x5, g2, CorrSpec(spec.dilation, spec.stride, tuple(pads), G)


def flat(x5: torch.Tensor) -> torch.Tensor:
    """``(Cg, G, B, *L) -> (Cg, G*B, *L)``."""
    return x5.reshape(x5.shape[0], x5.shape[1] * x5.shape[2], *x5.shape[3:])


def corr_w_raw(
    x: torch.Tensor, g: torch.Tensor, spec: CorrSpec, kernel: Sequence[int], algo: str
) -> torch.Tensor:
    """Adjoint of the core op in ``w``: ``(B, C, *L), (B, O, *o) -> (O, C/G, *kernel)``, by the
    registry on the swapped correlation (:func:`swapped_call`)."""
    x5, g2, sub = swapped_call(x, g, spec, kernel)
    return weight_layout(_run(None, algo, flat(x5), g2, sub, contiguous=False))  # (Cg, O, *kernel)


def weight_layout(r: torch.Tensor) -> torch.Tensor:
    """The swapped correlation's ``(Cg, O, *kernel)`` result as the weight gradient ``(O, Cg, *kernel)``,
    row-major: `.contiguous()` would keep odd strides on a size-1 dim (C/G == 1), which
    DistributedDataParallel warns about when it buckets gradients. im2col's GEMM output often
    is that layout already (a fresh tensor nobody else holds): then it is returned as it is."""
    t = r.transpose(0, 1)
    whole = t.storage_offset() == 0 and t.untyped_storage().nbytes() == t.numel() * t.element_size()
    if whole and list(t.stride()) == row_major_strides(t.shape):
        return t
    return r.new_empty(t.shape).copy_(t)


def _drop_unread(t: torch.Tensor, spec: CorrSpec, kernel: Sequence[int], out: Sequence[int]) -> torch.Tensor:
    """``t`` without the trailing elements that no window of ``corr(t, w)`` with output ``out`` reads.

    A transposed convolution whose ``output_padding`` is at least the stride (allowed when it is
    below the dilation) has an output longer than the correlation with that output size reads;
    the unread tail gets no gradient, and is dropped so that ``corr`` returns ``out`` positions.
    """
    index: list[slice] = [slice(None), slice(None)]
    for i in range(spec.n):
        pb, pa = spec.padding[i]
        read = (out[i] - 1) * spec.stride[i] + effective_kernel(kernel[i], spec.dilation[i])
        extra = t.shape[2 + i] + pb + pa - read
        index.append(slice(0, t.shape[2 + i] - max(0, extra - pa)))
    return t[tuple(index)]
