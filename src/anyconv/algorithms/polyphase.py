"""Strided transposed correlation without zero-stuffing: the polyphase (sub-pixel) split.

The adjoint of ``y[p] = sum_q x_pad[p * s + q * d] w[q]`` in ``x`` is, at padded position
``j = J * s + r`` (``0 <= r < s``),

    x_pad'[J * s + r] = sum_{q : q d = r (mod s)} g[J - (q d - r) / s] * w[q]

With ``h = gcd(d, s)`` the taps of phase ``r`` are ``q = q0, q0 + s/h, ...`` (none when
``h`` does not divide ``r``), and their offsets ``(q d - r) / s`` step by ``d / h``: each phase is
a *stride-1* correlation of ``g`` with a sub-kernel (dilation ``d / h``, flipped), on ``1 / s``
of the positions per dim. ``prod(s)`` small correlations replace one correlation of an input
zero-stuffed to ``s`` times the size per dim (``s^N`` times the work, almost all on zeros),
and they go through the algorithm registry like any other call (so ``auto`` picks each).
When the kernel equals the stride (non-overlapping windows) every phase has one tap and all
of them are one GEMM plus one interleaving copy (:func:`patches`). Small kernels (at most
``COL2IM_MAX_TAPS`` taps) with more than one gradient channel per group go by columns instead
(:func:`col2im`): one 1x1 correlation makes every tap's contribution, the taps of each output
phase are summed in a contiguous buffer and each phase is copied once into the result (fewer,
larger GEMMs than the phases: measured 1.1-2.2x faster on strided 3x3, 4x4 and 7x7 layers).
Kernels with one output channel per group (depthwise: a "GEMM" of one channel) go to the C
kernel's one-pass transposed correlation (``native.corr_t``) when it is built; they and large
kernels (whose phases may go by FFT) otherwise keep the phases.

``corr_t`` has the signature of ``anyconv.algorithms._adjoints.corr_t_raw`` and the same result.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch

from ..core.spec import CorrSpec
from ..core.windows import balanced_step
from ..core.workspace import chunk_limit
from ._common import crop_then_pad, flip_swap

COL2IM_MAX_TAPS = 64  # larger kernels go by phases (each phase's call may use an FFT)
COL2IM_CHUNK_BYTES = 2 * 2**20  # columns per chunk of gradient channels


def _phase(r: int, k: int, s: int, d: int) -> tuple[int, int, int, int] | None:
    """``(q0, step, a0, count)`` of phase ``r`` in one dim, or ``None`` when it has no taps."""
    h = math.gcd(d, s)
    if r % h:
        return None
    m = s // h
    q0 = (r // h) * pow(d // h, -1, m) % m if m > 1 else 0
    if q0 >= k:
        return None
    count = len(range(q0, k, m))
    return q0, m, (q0 * d - r) // s, count


def _slots(r: Sequence[int], rows: Sequence[int], spec: CorrSpec, in_spatial: Sequence[int]
           ) -> tuple[tuple[slice, ...], tuple[slice, ...], bool] | None:
    """Where phase ``r`` (rows ``J`` at padded positions ``r + J * s``, ``rows`` of them per dim)
    lands in the unpadded result: ``(result index, phase index, covers every result position
    of the phase)``, or ``None`` when it lands nowhere."""
    dst, src, full = [], [], True
    for i, (ri, m) in enumerate(zip(r, rows)):
        st, off = spec.stride[i], ri - spec.padding[i][0]  # row J at result position off + J * st
        j0 = -(off // st) if off < 0 else 0  # the first J with off + J * st >= 0
        last = (in_spatial[i] - 1 - off) // st + 1 if in_spatial[i] > off else 0  # J < last lands
        j1 = min(m, last)
        if j1 <= j0:
            return None
        full = full and j1 == last
        start = off + j0 * st
        dst.append(slice(start, start + (j1 - j0 - 1) * st + 1, st))
        src.append(slice(j0, j1))
    return tuple(dst), tuple(src), full


def corr_t(
    g: torch.Tensor,
    w: torch.Tensor,
    spec: CorrSpec,
    in_spatial: Sequence[int],
    algo: str,
    strict: bool = False,
) -> torch.Tensor:
    """Adjoint of the core op in ``x``: ``(B, O, *o) -> (B, C, *in_spatial)``, by phases (each
    a stride-1 correlation through the registry with ``algo``).

    Shape:
        ``g (B, O, *o)``, ``w (O, C // G, *k)`` -> ``(B, C, *in_spatial)``.

    Examples:
        >>> from anyconv.core.spec import CorrSpec
        >>> s = CorrSpec((2,), (1,), ((0, 0),), 1)
        >>> corr_t(torch.tensor([[[1.0, 10.0]]]), torch.tensor([[[1.0, 2.0, 3.0]]]), s, (5,), "direct").tolist()
        [[[1.0, 2.0, 13.0, 20.0, 30.0]]]
    """
    from . import run

    n = spec.n
    b = g.shape[0]
    c = w.shape[1] * spec.groups
    kernel = w.shape[2:]
    out = g.shape[2:]
    full = [i + pb + pa for i, (pb, pa) in zip(in_spatial, spec.padding)]
    per_dim = [[(r, _phase(r, kernel[i], spec.stride[i], spec.dilation[i])) for r in range(spec.stride[i])]
               for i in range(n)]
    combos = list(itertools.product(*per_dim))
    # the gradient of the unpadded input, written phase by phase (every position belongs to one
    # phase): zero-filled only when some phase gets no tap
    skipped = any(ph is None for combo in combos for _, ph in combo)
    res = (g.new_zeros if skipped else g.new_empty)((b, c, *in_spatial))
    for combo in combos:
        if any(ph is None for _, ph in combo):
            continue  # no tap reaches these positions: their gradient is zero
        sub_w = w[(slice(None), slice(None)) + tuple(slice(ph[0], None, ph[1]) for _, ph in combo)]  # type: ignore[index]
        pairs, rows, dil = [], [], []
        for i, (r, ph) in enumerate(combo):
            _, _, a0, cnt = ph  # type: ignore[misc]
            dd = spec.dilation[i] // math.gcd(spec.dilation[i], spec.stride[i])
            rows_i = len(range(r, full[i], spec.stride[i]))
            left = a0 + (cnt - 1) * dd
            pairs.append((left, rows_i + (cnt - 1) * dd - out[i] - left))
            rows.append(rows_i)
            dil.append(dd)
        if any(v == 0 for v in rows):
            continue
        gc, sub_pads = crop_then_pad(g, pairs)
        sub = CorrSpec((1,) * n, tuple(dil), sub_pads, spec.groups)
        z = run("conv_transpose", algo, gc, flip_swap(sub_w, spec.groups), sub, strict=strict)
        slot = _slots([r for r, _ in combo], rows, spec, in_spatial)
        if slot is not None:
            res[(slice(None), slice(None)) + slot[0]] = z[(slice(None), slice(None)) + slot[1]]
    return res


def col2im(g: torch.Tensor, w: torch.Tensor, spec: CorrSpec, in_spatial: Sequence[int], algo: str,
            strict: bool) -> torch.Tensor:
    """Small kernels, more than one gradient channel per group: the columns of every tap are
    one 1x1 correlation of ``g`` with ``w^T`` (one GEMM per group, through the registry), and
    each tap's column block is added where it lands:

        x_pad'[b, g, c, J * s + q * d] += sum_o w[g, o, c, q] g[b, g, o, J]

    Tap ``q`` lands in output phase ``r = q d mod s`` at row offset ``q d // s``: the taps of a
    phase are summed in a contiguous buffer (``K`` vectorised adds in all), and each phase is
    copied once into its strided positions of the result. The columns are made for chunks of
    ``Cg`` (all groups) of about ``COL2IM_CHUNK_BYTES``. Measured (1 thread, interleaved) faster
    than the phases' sub-calls on ResNet-18's 3x3 s2 input gradient (3.4 vs 4.7 ms), a
    3-channel 3x3 s2 first layer (0.65 vs 1.47 ms), a 4x4 s2 transposed layer (2.5 vs 3.2 ms)
    and the 7x7 s2 stem (5.6 vs 5.9 ms); per-phase sums measured 10-30% faster than one
    strided add per tap (which torch cannot vectorise) on the 4x4 and 7x7 layers.
    """
    from . import run

    n = spec.n
    b = g.shape[0]
    out = g.shape[2:]
    kernel = tuple(w.shape[2:])
    G, cg, og = spec.groups, w.shape[1], w.shape[0] // spec.groups
    taps = math.prod(kernel)
    wt = w.reshape(G, og, cg, taps).permute(0, 2, 3, 1)  # (G, Cg, K, Og)
    unit = CorrSpec((1,) * n, (1,) * n, ((0, 0),) * n, G)
    per_row = G * taps * b * math.prod(out) * g.element_size()  # column bytes of one c in every group
    step = balanced_step(cg, chunk_limit(0, per_row, COL2IM_CHUNK_BYTES, 1) // per_row)
    # the taps by output phase: tap q adds its columns at rows a + J of phase r (q d = a s + r)
    by_phase: dict[tuple[int, ...], list[tuple[int, tuple[int, ...]]]] = {}
    for t, q in enumerate(itertools.product(*(range(k) for k in kernel))):
        qd = [qi * di for qi, di in zip(q, spec.dilation)]
        key = tuple(v % st for v, st in zip(qd, spec.stride))
        by_phase.setdefault(key, []).append((t, tuple(v // st for v, st in zip(qd, spec.stride))))
    plan = []
    for r, members in by_phase.items():
        rows = [o_ + max(a[i] for _, a in members) for i, o_ in enumerate(out)]
        plan.append((members, rows, _slots(r, rows, spec, in_spatial)))
    covered = len(by_phase) == math.prod(spec.stride) and all(sl is not None and sl[2] for _, _, sl in plan)
    res = (g.new_empty if covered else g.new_zeros)((b, G, cg, *in_spatial))
    for c0 in range(0, cg, step):
        cn = min(step, cg - c0)
        w1 = wt[:, c0 : c0 + cn].reshape(G * cn * taps, og, *(1,) * n)
        cols = run("conv_transpose", algo, g, w1, unit, strict=strict)  # (B, G*cn*K, *o)
        cols = cols.reshape(b, G, cn, taps, *out)
        for members, rows, slot in plan:
            if slot is None:
                continue
            # the phase's taps summed in a contiguous buffer (vectorised adds), then one strided copy
            acc = cols.new_zeros((b, G, cn, *rows))
            for t, a in members:
                acc[(slice(None),) * 3 + tuple(slice(ai, ai + o_) for ai, o_ in zip(a, out))].add_(cols[:, :, :, t])
            res[(slice(None), slice(None), slice(c0, c0 + cn)) + slot[0]] = acc[(slice(None),) * 3 + slot[1]]
        del cols  # before the next chunk's columns are made
    return res.reshape(b, G * cg, *in_spatial)


def patches(g: torch.Tensor, w: torch.Tensor, spec: CorrSpec, in_spatial: Sequence[int], algo: str,
             strict: bool) -> torch.Tensor:
    """Kernel == stride, dilation 1 (non-overlapping windows: patchify layers and their transposes):
    every phase has one tap, so all phases are one 1x1 correlation of ``g`` with ``w^T`` (one GEMM
    per group, through the registry), and the phases are interleaved by one permuting copy.

        x_pad'[b, g, c, J * s + a] = sum_o w[g, o, c, a] g[b, g, o, J]
    """
    from . import native, run

    n = spec.n
    b, o = g.shape[:2]
    out = g.shape[2:]
    kernel = w.shape[2:]
    G = spec.groups
    cg = w.shape[1]
    # the 1x1 weight (G*Cg*K, Og, 1, ...): output channel (g, c, a) of group g
    w1 = w.reshape(G, o // G, -1).transpose(1, 2).reshape(-1, o // G, *(1,) * n)
    unit = CorrSpec((1,) * n, (1,) * n, ((0, 0),) * n, G)
    cols = run("conv_transpose", algo, g, w1, unit, strict=strict)  # (B, G*Cg*K, *o)
    cols = cols.reshape(b, G * cg, *kernel, *out)  # (B, C, *k, *o)
    # (B, C, k0, k1, .., o0, o1, ..) -> (B, C, o0, k0, o1, k1, ..) -> (B, C, o0 * k0, ..)
    perm = [0, 1] + [v for i in range(n) for v in (2 + n + i, 2 + i)]
    covered = native.contiguous(cols.permute(perm)).reshape(b, G * cg, *(v * k for v, k in zip(out, kernel)))
    full = [i + pb + pa for i, (pb, pa) in zip(in_spatial, spec.padding)]
    if list(covered.shape[2:]) != full:  # an uncovered tail of the padded input: zero gradient
        res = covered.new_zeros((b, G * cg, *full))
        res[(slice(None), slice(None)) + tuple(slice(0, v) for v in covered.shape[2:])] = covered
        covered = res
    return covered[(slice(None), slice(None)) + tuple(slice(pb, pb + i) for i, (pb, _) in zip(in_spatial, spec.padding))]
