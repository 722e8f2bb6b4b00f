"""``im2col``: columns plus one GEMM per group.

For each output tile the windows are copied into a column matrix
``cols (b, G, Cg * K, L)`` (``K = prod(kernel)``, ``L`` output positions in the tile) and
multiplied by the weight as a matrix ``(G, Og, Cg * K)``:

    y[b, g] = w[g] @ cols[b, g]        # (Og, Cg*K) @ (Cg*K, L) -> (Og, L)

The columns are built in tiles so the buffer never exceeds the workspace limit
(``anyconv.set_workspace_limit``, default 256 MiB).
"""

from __future__ import annotations

import torch

from .._shapes import prod
from .._spec import CorrSpec
from ._common import run_tiles

NAME = "im2col"


def supports(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> str | None:
    """``im2col`` serves every call."""
    return None


def _tile(win: torch.Tensor, wg: torch.Tensor, n: int) -> torch.Tensor:
    b, g, cg = win.shape[:3]
    o_tile = win.shape[3 : 3 + n]
    # (b, G, Cg, *o, *k) -> (b, G, Cg, *k, *o) -> (b, G, Cg*K, L)
    perm = (0, 1, 2, *range(3 + n, 3 + 2 * n), *range(3, 3 + n))
    cols = win.permute(perm).reshape(b, g, -1, prod(o_tile))
    y = torch.matmul(wg.flatten(2), cols)  # (G, Og, Cg*K) @ (b, G, Cg*K, L) -> (b, G, Og, L)
    return y.unflatten(3, o_tile)


def forward(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor:
    """Cross-correlate ``x`` ``(B, C, *L)`` with ``w`` ``(O, C // G, *k)``."""
    unit = x.shape[1] * prod(w.shape[2:]) * x.element_size()
    return run_tiles(x, w, spec, unit, lambda win, wg: _tile(win, wg, spec.n))
