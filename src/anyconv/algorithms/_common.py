"""Helpers shared by the tiled algorithms: output allocation and the tile loop."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from .._padding import pad
from .._shapes import prod
from .._spec import CorrSpec
from .._windows import input_slices, tiles, windows
from .._workspace import get_workspace_limit


def tiled_windows(
    x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, unit_bytes: int
) -> Iterator[tuple[tuple[slice, ...], torch.Tensor]]:
    """Yield ``(output_index, window_view)`` tiles of the correlation of ``x`` with ``w``.

    ``window_view`` has shape ``(b, G, Cg, *o_tile, *k)`` and ``output_index`` indexes the
    output ``(B, O, *o)`` (channels whole). ``unit_bytes`` is the scratch cost per output
    position, used to keep every tile under the workspace limit.
    """
    xp = pad(x, spec.padding)  # (B, C, *L)
    kernel = tuple(w.shape[2:])
    out = spec.output_spatial(x.shape[2:], kernel)
    b, c = x.shape[:2]
    for t in tiles([b, *out], unit_bytes, get_workspace_limit()):
        isl = input_slices(t[1:], kernel, spec.stride, spec.dilation)
        index = (t[0], slice(None), *isl)
        xs = xp[index]  # (b, C, *l_tile)
        win = windows(xs, kernel, spec.stride, spec.dilation)  # (b, C, *o_tile, *k)
        win = win.unflatten(1, (spec.groups, c // spec.groups))  # (b, G, Cg, *o_tile, *k)
        yield (t[0], slice(None), *t[1:]), win


def run_tiles(
    x: torch.Tensor,
    w: torch.Tensor,
    spec: CorrSpec,
    unit_bytes: int,
    tile_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """Allocate the output and fill it tile by tile with ``tile_fn(window_view, w_grouped)``.

    ``w_grouped`` is ``w`` viewed as ``(G, Og, Cg, *k)``; ``tile_fn`` returns ``(b, G, Og, *o_tile)``.
    """
    kernel = tuple(w.shape[2:])
    out = spec.output_spatial(x.shape[2:], kernel)
    g = spec.groups
    shape = (x.shape[0], w.shape[0], *out)
    if prod(shape) == 0:
        return x.new_empty(shape)
    if x.shape[1] == 0 or prod(kernel) == 0:
        return x.new_zeros(shape)
    wg = w.unflatten(0, (g, w.shape[0] // g))  # (G, Og, Cg, *k)
    b, c = x.shape[:2]
    if unit_bytes * b * prod(out) <= get_workspace_limit():
        # one tile (the common small call): no tile loop, no output buffer to fill
        win = windows(pad(x, spec.padding), kernel, spec.stride, spec.dilation)  # (B, C, *o, *k)
        part = tile_fn(win.unflatten(1, (g, c // g)), wg).flatten(1, 2)  # (B, O, *o)
        return part.to(x.dtype).contiguous()
    y = x.new_empty(shape)
    for index, win in tiled_windows(x, w, spec, unit_bytes):
        part = tile_fn(win, wg)  # (b, G, Og, *o_tile)
        y[index] = part.flatten(1, 2)
    return y
