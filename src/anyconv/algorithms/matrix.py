"""``matrix``: the convolution as an explicit sparse matrix applied to the flattened input.

For one sample the core op is linear, ``vec(y) = A vec(x)`` with ``A`` of shape
``(C_out * prod(out), C_in * prod(in))`` (zero padding included: taps that land in the padding
have no entry). Row ``(o, p)`` holds ``w[o, c, q]`` in column ``(g(o) * C_g + c, p * s + q * d - pad)``:

    A[o * P_out + p, (g C_g + c) * P_in + i] = w[o, c, q]   where i = p * s + q * d - pad_before

so ``nnz = C_out * C_g * prod(out) * prod(k)`` at most (a doubly block Toeplitz matrix in 2-D,
as the learning material draws it). The whole batch is one sparse-dense product
``A @ X`` with ``X = x.reshape(B, C * P_in).T``. Useful for tiny inputs, for teaching and for
``anyconv.tools.operator_matrix``; ``supports`` refuses calls whose matrix would exceed the
workspace limit. The matrix is built by ``anyconv.algorithms._operator.conv_operator`` (shared with the
tools), from the window view of an index map. Half precisions are computed in float32.

Accuracy: the same sums as ``direct`` (float32 normwise relative error ~1e-7).
"""

from __future__ import annotations

import torch

from ..core.shapes import prod
from ..core.spec import CorrSpec
from ..core.workspace import scratch_budget
from ._common import halves_to_float32

NAME = "matrix"
BYTES_PER_ENTRY = 24  # two int64 indices and a value (upper bound, COO)


def nnz_bound(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> int:
    """Upper bound on the number of stored entries of the operator."""
    out = spec.output_spatial(x.shape[2:], w.shape[2:])
    return w.shape[0] * w.shape[1] * prod(out) * prod(w.shape[2:])


def supports(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> str | None:
    """Any call whose sparse operator fits the workspace limit."""
    need = nnz_bound(x, w, spec) * BYTES_PER_ENTRY
    limit = scratch_budget()
    if need > limit:
        return (f"the sparse operator ({need} bytes) would exceed the scratch budget ({limit} bytes, half the "
                "workspace limit)")
    return None


def operator(w: torch.Tensor, in_spatial: tuple[int, ...], spec: CorrSpec) -> torch.Tensor:
    """The sparse COO operator ``(O * prod(out), C * prod(in_spatial))`` for one sample.

    >>> from anyconv.core.spec import CorrSpec
    >>> a = operator(torch.tensor([[[1.0, 2.0]]]), (3,), CorrSpec((1,), (1,), ((0, 0),), 1))
    >>> a.to_dense().tolist()
    [[1.0, 2.0, 0.0], [0.0, 1.0, 2.0]]
    """
    from ._operator import conv_operator

    return conv_operator(w, in_spatial, spec)


def forward(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor:
    """Cross-correlate ``x`` ``(B, C, *L)`` with ``w`` ``(O, C // G, *k)`` as ``A @ vec(x)``."""
    b, c = x.shape[:2]
    o = w.shape[0]
    out = spec.output_spatial(x.shape[2:], w.shape[2:])
    dt = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    a = operator(w.to(dt), tuple(x.shape[2:]), spec)
    y = torch.sparse.mm(a, x.to(dt).reshape(b, -1).T)  # (O * P_out, B)
    return y.T.reshape(b, o, *out).to(x.dtype)


# --- cost model (read by ``auto``: named features, error growth, compute dtype) ---

ERROR_GROWTH = 0.0  # a summation algorithm (auto's summation bound)
COMPUTE_DTYPE = halves_to_float32


def cost_features(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> dict[str, float]:
    """``products`` batch * nonzeros, ``nonzeros`` (building the operator)."""
    nnz = nnz_bound(x, w, spec)
    return {"calls": 1.0, "products": float(x.shape[0] * nnz), "nonzeros": float(nnz)}
