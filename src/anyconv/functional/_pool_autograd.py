"""Pooling gradients written once, as rules that call differentiable anyconv pooling primitives.

Four primitives, each linear in its tensor argument (given fixed indices), close under
differentiation:

- ``max_pool(x)``: values and argmax indices; ``d/dx = scatter(g, idx)`` (the input gradient
  is grad_output added at the argmax, zero elsewhere);
- ``scatter(g, idx)``: its adjoint is ``gather(gg, idx)``, and ``gather``'s is ``scatter``;
- ``window_sum(x)``: the sum over each window (avg pooling = window_sum / count, a depthwise
  correlation with a constant kernel); its adjoint ``window_sum_t(g)`` (the transposed op)
  spreads each output over its window, and the adjoint of that is ``window_sum`` again.

The primitives are the operators ``torch.ops.anyconv.max_pool``, ``index_scatter``,
``index_gather``, ``window_sum`` and ``window_sum_t`` (:mod:`anyconv.ops._pool`), whose autograd
is these rules, so second and higher derivatives come from the same rules; only indices (max) or
nothing (sums) are saved. This module is the pooling functions' entry to them.
"""

from __future__ import annotations

import torch

from ..core.pool_spec import PoolSpec
from ..ops import _eager, _grad
from ..ops._pool import call_index_gather, call_index_scatter, call_max_pool, call_window_sum, geometry

__all__ = ["call_index_gather", "call_index_scatter", "max_pool_from_indices", "max_pool_values", "window_sum_op"]


def max_pool_values(x: torch.Tensor, spec: PoolSpec, need_indices: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Max pooling of a batched tensor, differentiable (indices are computed whenever a gradient
    may be asked for: always, but in plain eager inference without ``need_indices``)."""
    need = need_indices or _grad(x) or not _eager(x, None)
    vals, idx = call_max_pool(x, spec, need)
    return vals, idx if need_indices else None


def window_sum_op(x: torch.Tensor, spec: PoolSpec) -> torch.Tensor:
    """Differentiable window sum, accumulated in float32 for half types (float64 stays)."""
    acc = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    return call_window_sum(x, *geometry(spec), acc)


def max_pool_from_indices(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Differentiable ``gather(x, idx)`` (used by adaptive and fractional max pooling)."""
    return call_index_gather(x, idx)
