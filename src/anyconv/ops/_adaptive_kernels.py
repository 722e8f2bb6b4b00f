"""Adaptive pooling kernels, no autograd: torch's box windows along each dim (see :mod:`anyconv.functional.adaptive`).

``average`` is the real computation of the ``anyconv::adaptive_avg`` operator (uneven windows) and of
its transpose; ``adaptive_max_raw`` gives values and torch-layout indices of adaptive max pooling.
"""

from __future__ import annotations

import functools

import torch

from ..algorithms.auto import finite
from ..core import shapes as _shapes
from ..core.pool_spec import AdaptiveSpec

KRON_MAX_OUT = 64  # one GEMM with the Kronecker matrix when the output plane is this small...
KRON_MAX_ENTRIES = 1 << 18  # ...and the matrix (prod(in) x prod(out)) has at most this many entries


def _windows(i: int, o: int) -> list[tuple[int, int]]:
    return [_shapes.adaptive_window(i, o, j) for j in range(o)]


@functools.lru_cache(maxsize=64)
def _kron_matrix(pairs: tuple[tuple[int, int], ...]) -> torch.Tensor:
    """``(prod(in), prod(out))`` float64 CPU matrix averaging every box window (cached)."""
    return functools.reduce(torch.kron, [_avg_matrix(i, o, torch.float64, torch.device("cpu")) for i, o in pairs])


def _avg_matrix(i: int, o: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``(i, o)`` matrix whose column ``j`` averages window ``j``."""
    m = torch.zeros(i, o, dtype=torch.float64)
    for j, (s, e) in enumerate(_windows(i, o)):
        m[s:e, j] = 1.0 / (e - s)
    return m.to(dtype=dtype, device=device)


def average(x: torch.Tensor, pairs: tuple[tuple[int, int], ...], transposed: bool) -> torch.Tensor:
    """``A x`` (planes ``(B, C, *in) -> (B, C, *out)``) or ``A^T x`` (``*out -> *in``), without autograd.

    Finite values take the GEMMs; NaN or Inf (one sum, ``auto.finite``) the window sums, which put
    them where torch does: a GEMM multiplies them by the matrix's zeros (``0 * Inf = NaN``) and so
    spreads them over every output of the plane.
    """
    sizes_in = [o if transposed else i for i, o in pairs]
    sizes_out = [i if transposed else o for i, o in pairs]
    exact = not finite(x)
    p_in, p_out = _shapes.prod(sizes_in), _shapes.prod(sizes_out)
    if not exact and p_in * p_out <= KRON_MAX_ENTRIES and _shapes.prod([o for _, o in pairs]) <= KRON_MAX_OUT:
        # one GEMM per call: planes (B*C, prod(in)) times the Kronecker product of the per-dim
        # averaging matrices (prod(in), prod(out)), or its transpose; no intermediate tensor
        m = _kron_matrix(pairs).to(dtype=x.dtype, device=x.device)
        y = torch.mm(x.reshape(-1, p_in), m.t() if transposed else m)
        return y.view(*x.shape[:2], *sizes_out)
    # dims from last to first, each reduced as the (contiguous) last dim, then rotated to the front
    for d in reversed(range(len(pairs))):
        i, o = pairs[d]
        x = x.contiguous()
        if i == o:
            pass
        elif i % o == 0:  # the windows tile the dim: exact for NaN and Inf too
            lead = x.shape[:-1]
            if transposed:
                x = (x / (i // o)).unsqueeze(-1).expand(*lead, o, i // o).reshape(*lead, i)
            else:
                x = x.reshape(*lead, o, i // o).mean(-1)
        elif exact:
            x = _window_sums(x, i, o, transposed)
        else:
            m = _avg_matrix(i, o, x.dtype, x.device)
            y = torch.mm(x.reshape(-1, x.shape[-1]), m.t() if transposed else m)
            x = y.view(*x.shape[:-1], y.shape[-1])  # (not -1: a batch of 0 has no -1 to infer)
        x = x.movedim(-1, 2)
    return x.contiguous()


def _window_sums(x: torch.Tensor, i: int, o: int, transposed: bool) -> torch.Tensor:
    """Averages of torch's windows along the last dim (``i -> o``), or their transpose (``o -> i``), by
    gathers and adds only: an element reaches exactly the windows holding it (NaN, Inf and its sign
    as torch's window sums). Half precisions are summed in float32."""
    wins = _windows(i, o)
    dev = x.device
    work = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    counts = torch.tensor([e - s for s, e in wins], dtype=work.dtype, device=dev)
    kmax = max(e - s for s, e in wins)
    if transposed:  # input element s_j + q receives g[j] / count_j for every q < count_j
        g = work / counts
        out = torch.zeros(*g.shape[:-1], i, dtype=g.dtype, device=dev)
        for q in range(kmax):
            js = [j for j, (s, e) in enumerate(wins) if s + q < e]
            src = g.index_select(-1, torch.tensor(js, device=dev))
            out.index_add_(-1, torch.tensor([wins[j][0] + q for j in js], device=dev), src)
        return out.to(x.dtype)
    acc = work.index_select(-1, torch.tensor([s for s, _ in wins], device=dev))  # every window has q = 0
    for q in range(1, kmax):
        v = work.index_select(-1, torch.tensor([min(s + q, e - 1) for s, e in wins], device=dev))
        short = [s + q >= e for s, e in wins]  # windows already summed: their repeated last element adds 0
        acc = acc + (torch.where(torch.tensor(short, device=dev), 0.0, v) if any(short) else v)
    return (acc / counts).to(x.dtype)


def adaptive_max_raw(x: torch.Tensor, spec: AdaptiveSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """Values and torch-layout indices of adaptive max pooling of a batched tensor (no autograd)."""
    val, arg = x, None
    st = 1
    for d in reversed(range(spec.n)):
        ax, i, o = 2 + d, spec.in_spatial[d], spec.out_spatial[d]
        wins = _windows(i, o)
        kmax = max(e - s for s, e in wins)
        shape = [1] * x.dim()
        shape[ax] = o
        best_v: torch.Tensor | None = None
        best_a: torch.Tensor | None = None
        for q in range(kmax):
            pos = torch.tensor([min(s + q, e - 1) for s, e in wins], device=x.device)
            v = val.index_select(ax, pos)
            a = pos.reshape(shape) * st
            a = a + arg.index_select(ax, pos) if arg is not None else a.expand(v.shape)
            if best_v is None or best_a is None:
                best_v, best_a = v, a.contiguous()
                continue
            upd = (v > best_v) | torch.isnan(v)
            best_v = torch.where(upd, v, best_v)
            best_a = torch.where(upd, a, best_a)
        assert best_v is not None and best_a is not None
        val, arg = best_v, best_a
        st *= i
    assert arg is not None
    return val, arg
