"""Helpers shared by the tiled algorithms: output allocation and the tile loop."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence

import torch

from ..core.padding import pad
from ..core.shapes import prod
from ..core.spec import CorrSpec
from ..core.windows import input_slices, tiles, windows
from ..core.workspace import scratch_budget


def tiled_windows(
    x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, unit_bytes: int, limit: int | None = None
) -> Iterator[tuple[tuple[slice, ...], torch.Tensor]]:
    """Yield ``(output_index, window_view)`` tiles of the correlation of ``x`` with ``w``.

    ``window_view`` has shape ``(b, G, Cg, *o_tile, *k)`` and ``output_index`` indexes the
    output ``(B, O, *o)`` (channels whole). ``unit_bytes`` is the scratch cost per output
    position, used to keep every tile under the workspace limit.
    """
    kernel = tuple(w.shape[2:])
    out = spec.output_spatial(x.shape[2:], kernel)
    b, c = x.shape[:2]
    for t in tiles([b, *out], unit_bytes, scratch_budget() if limit is None else limit):
        isl = input_slices(t[1:], kernel, spec.stride, spec.dilation)  # in padded coordinates
        xs = padded_slice(x, t[0], isl, spec.padding)  # (b, C, *l_tile): no padded copy of all of x
        win = windows(xs, kernel, spec.stride, spec.dilation)  # (b, C, *o_tile, *k)
        win = win.unflatten(1, (spec.groups, c // spec.groups))  # (b, G, Cg, *o_tile, *k)
        yield (t[0], slice(None), *t[1:]), win


def flip_swap(w: torch.Tensor, groups: int) -> torch.Tensor:
    """``(G*Og, Cg, *k)`` -> ``(G*Cg, Og, *k)`` with the kernel flipped in every spatial dim: the
    weight of the transposed correlation (input and output channels trade places per group).

    Flipping every spatial dim reverses the flattened kernel (a one-dim flip of the contiguous
    weight, measured 5x faster than torch's multi-dim flip on 512x512x3x3); the channel swap is
    then one transposing copy, so the result is contiguous (what the GEMMs read)."""
    o, cg = w.shape[:2]
    wg = w.reshape(groups, o // groups, cg, -1).flip(-1).transpose(1, 2)  # (G, Cg, Og, K)
    return wg.contiguous().reshape(groups * cg, o // groups, *w.shape[2:])


def padded_slice(
    x: torch.Tensor, batch: slice, region: Sequence[slice], padding: Sequence[tuple[int, int]]
) -> torch.Tensor:
    """``pad(x, padding)[batch, :, *region]`` without padding all of ``x``: the region's part
    of ``x`` is sliced, then only the zeros that fall inside the region are added."""
    src, pads = [], []
    for sl, (pb, _), n in zip(region, padding, x.shape[2:]):
        a, z = sl.start - pb, sl.stop - pb  # the region in x's coordinates: [a, z)
        lo, hi = min(max(a, 0), n), min(max(z, 0), n)
        hi = max(hi, lo)
        before = min(max(lo - a, 0), z - a)
        src.append(slice(lo, hi))
        pads.append((before, (z - a) - before - (hi - lo)))
    return pad(x[(batch, slice(None)) + tuple(src)], pads)


def run_tiles(
    x: torch.Tensor,
    w: torch.Tensor,
    spec: CorrSpec,
    unit_bytes: int,
    tile_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    limit: int | None = None,
) -> torch.Tensor:
    """Allocate the output and fill it tile by tile with ``tile_fn(window_view, w_grouped)``.

    ``w_grouped`` is ``w`` viewed as ``(G, Og, Cg, *k)``; ``tile_fn`` returns ``(b, G, Og, *o_tile)``.
    """
    kernel = tuple(w.shape[2:])
    out = spec.output_spatial(x.shape[2:], kernel)
    g = spec.groups
    shape = (x.shape[0], w.shape[0], *out)
    trivial = trivial_result(x, w, spec)
    if trivial is not None:
        return trivial
    wg = w.unflatten(0, (g, w.shape[0] // g))  # (G, Og, Cg, *k)
    b, c = x.shape[:2]
    limit = scratch_budget() if limit is None else limit
    if unit_bytes * b * prod(out) <= limit:
        # one tile (the common small call): no tile loop, no output buffer to fill
        win = windows(pad(x, spec.padding), kernel, spec.stride, spec.dilation)  # (B, C, *o, *k)
        part = tile_fn(win.unflatten(1, (g, c // g)), wg).flatten(1, 2)  # (B, O, *o)
        return part.to(x.dtype)  # possibly a permuted view of the GEMM's output: callers copy it once
    y = x.new_empty(shape)
    for index, win in tiled_windows(x, w, spec, unit_bytes, limit):
        part = tile_fn(win, wg)  # (b, G, Og, *o_tile)
        y[index] = part.flatten(1, 2)
    return y


def phase_grid(x: torch.Tensor, padding: Sequence[tuple[int, int]], step: Sequence[int]) -> list[int]:
    """``M``: the per-dim length of every phase of the padded input split by ``step``."""
    return [-(-(v + a + b) // s) for v, (a, b), s in zip(x.shape[2:], padding, step)]


def phases(x: torch.Tensor, padding: Sequence[tuple[int, int]], step: Sequence[int]) -> torch.Tensor:
    """``(*step, B, C, *M)``: phase ``r`` is ``pad(x)[..., r::step]`` zero-extended to ``M`` (one copy).

    The flat-offset algorithms (``shifted``, ``positions``, ``depthwise``) read every tap of a
    strided or dilated window as a constant offset into one phase, flattened row-major. The
    phases are filled straight from ``x`` (one strided copy each), with no padded intermediate.

    Examples:
        >>> phases(torch.arange(1.0, 6.0).view(1, 1, 5), [(1, 0)], [2]).tolist()   # pad: 0 1 2 3 4 5
        [[[[0.0, 2.0, 4.0]]], [[[1.0, 3.0, 5.0]]]]
    """
    n = x.dim() - 2
    m = phase_grid(x, padding, step)
    if all(s == 1 for s in step):
        return pad(x, padding).contiguous().reshape(*(1,) * n, *x.shape[:2], *m)
    res = x.new_zeros((*step, *x.shape[:2], *m))
    for r in itertools.product(*(range(s) for s in step)):
        src, dst = [slice(None)] * 2, [slice(None)] * 2
        for ri, s, (pb, _), size, mm in zip(r, step, padding, x.shape[2:], m):
            # phase element t is padded position r + s t, i.e. x position r + s t - pb
            t0 = max(0, -(-(pb - ri) // s))
            i0 = ri + s * t0 - pb
            count = max(0, min(mm - t0, -(-(size - i0) // s)))
            src.append(slice(i0, i0 + s * (count - 1) + 1, s) if count else slice(0, 0))
            dst.append(slice(t0, t0 + count))
        if all(d.stop > d.start for d in dst[2:]):
            res[r][tuple(dst)] = x[tuple(src)]
    return res


def tap_reads(kernel: Sequence[int], dilation: Sequence[int], step: Sequence[int], st: Sequence[int]
              ) -> list[tuple[tuple[int, ...], int]]:
    """``(phase, flat offset)`` of every kernel tap (row-major order) in inputs split by ``step``
    into phases with flat strides ``st``: tap ``q`` reads phase ``q d mod step`` at ``q d // step``."""
    reads = []
    for q in itertools.product(*(range(k) for k in kernel)):
        idx = [qi * d for qi, d in zip(q, dilation)]
        reads.append((tuple(i % s for i, s in zip(idx, step)),
                      sum((i // s) * t for i, s, t in zip(idx, step, st))))
    return reads


def flat_output_len(out: Sequence[int], st: Sequence[int]) -> int:
    """Flat length covering every output position ``p`` at ``sum_i p_i st_i`` (0 if empty)."""
    return sum((o - 1) * s for o, s in zip(out, st)) + 1 if prod(out) else 0


def phase_tiles(x: torch.Tensor, spec: CorrSpec, per_sample_bytes: int, dtype: torch.dtype | None = None
                ) -> Iterator[tuple[slice, torch.Tensor]]:
    """Batch tiles ``(batch slice, phases (*stride, b, C, prod(M)))`` of ``x`` split by the stride,
    as many samples per tile as fit the scratch budget (at least one)."""
    chunk = max(1, scratch_budget() // max(1, per_sample_bytes))
    m = phase_grid(x, spec.padding, spec.stride)
    for b0 in range(0, x.shape[0], chunk):
        xb = x[b0 : b0 + chunk] if dtype is None else x[b0 : b0 + chunk].to(dtype)
        flat = phases(xb, spec.padding, spec.stride)
        yield slice(b0, b0 + xb.shape[0]), flat.reshape(*flat.shape[: spec.n + 2], prod(m))


def crop_flat(yf: torch.Tensor, out: Sequence[int], st: Sequence[int]) -> torch.Tensor:
    """The output ``(b, O, *out)`` (a view) of ``yf`` ``(b, O, Lf)`` computed in the padded-width
    layout: position ``p`` sits at flat index ``sum_i p_i st_i`` of its (sample, channel) row."""
    b, o, lf = yf.shape
    return yf.as_strided((b, o, *out), (o * lf, lf, *st))


def row_major_strides(shape: Sequence[int]) -> list[int]:
    """Strides (in elements) of a contiguous tensor of ``shape``."""
    return [prod(shape[i + 1 :]) for i in range(len(shape))]


def crop_then_pad(t: torch.Tensor, pairs: Sequence[tuple[int, int]]
                  ) -> tuple[torch.Tensor, tuple[tuple[int, int], ...]]:
    """``pad(t, pairs)`` split into a view of ``t`` cropped by the negative amounts and the
    non-negative amounts, to be passed as a correlation's own zero padding (no padded copy)."""
    crop = tuple(slice(max(0, -lo), size - max(0, -hi)) for (lo, hi), size in zip(pairs, t.shape[2:]))
    return t[(slice(None), slice(None)) + crop], tuple((max(0, lo), max(0, hi)) for lo, hi in pairs)


def trivial_result(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor | None:
    """The output of a call with nothing to compute (an empty output, or no channels or taps to
    sum over: zeros), else None."""
    out = spec.output_spatial(x.shape[2:], w.shape[2:])
    shape = (x.shape[0], w.shape[0], *out)
    if prod(shape) == 0:
        return x.new_empty(shape)
    if x.shape[1] == 0 or prod(w.shape[2:]) == 0:
        return x.new_zeros(shape)
    return None


def on_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A stand-in for the traced ``meta`` tensor ``t`` on the caller's ``device``: same shape and
    dtype, one element of storage (what algorithms' ``supports`` and ``auto`` look at; an
    algorithm such as ``native`` serves CPU tensors only, not ``meta`` ones)."""
    return torch.zeros((), dtype=t.dtype, device=device).expand(t.shape)
def halves_to_float32(dtype: torch.dtype) -> torch.dtype:
    """The dtype an algorithm that computes half precisions in float32 computes in (a ``COMPUTE_DTYPE``)."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def stride_split_elements(x: torch.Tensor, spec: CorrSpec) -> float:
    """Input elements split into stride phases (a strided copy) when a stride is > 1, else 0 (a cost feature)."""
    return float(x.shape[0] * x.shape[1] * prod(x.shape[2:])) if any(s > 1 for s in spec.stride) else 0.0
