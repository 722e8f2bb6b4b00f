"""``direct``: the obviously-correct reference, any N.

The padded input is viewed as N-d sliding windows ``(B, G, Cg, *o, *k)`` (a strided view, no
copy) and contracted with the weight ``(G, Og, Cg, *k)`` by one ``einsum``:

    y[b, g, o, p] = sum_{c, q} windows[b, g, c, p, q] * w[g, o, c, q]

Work is split into output tiles so the einsum's scratch copy of the windows stays under the
workspace limit. There is no Python loop over output positions, only over tiles.
"""

from __future__ import annotations

import string

import torch

from ..core.shapes import prod
from ..core.spec import CorrSpec
from ._common import run_tiles

NAME = "direct"


def supports(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> str | None:
    """``direct`` serves every call."""
    if spec.n > 20:
        return f"at most 20 spatial dims are supported (got {spec.n})"
    return None


def _equation(n: int) -> str:
    letters = string.ascii_uppercase
    p, q = letters[:n], letters[n : 2 * n]
    return f"bgc{p}{q},goc{q}->bgo{p}"


def forward(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor:
    """Cross-correlate ``x`` ``(B, C, *L)`` with ``w`` ``(O, C // G, *k)``."""
    eq = _equation(spec.n)
    unit = x.shape[1] * prod(w.shape[2:]) * x.element_size()
    return run_tiles(x, w, spec, unit, lambda win, wg: torch.einsum(eq, win, wg))


# --- cost model (read by ``auto``: named features, error growth, compute dtype) ---

ERROR_GROWTH = 0.0  # a summation algorithm (auto's summation bound)
COMPUTE_DTYPE = None  # the input's dtype


def cost_features(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> dict[str, float]:
    """The first six of im2col's window features (:func:`anyconv.algorithms.im2col.window_features`)."""
    from .im2col import window_features

    f = window_features(x, w, spec, whole=False)
    return {k: f[k] for k in ("calls", "macs", "data", "narrow_macs", "copied_3d", "copied_wide")}
