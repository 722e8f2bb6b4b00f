"""Pooling gradients written once, as rules that call differentiable anyconv pooling primitives.

Four primitives, each linear in its tensor argument (given fixed indices), close under
differentiation:

- ``max_pool(x)``: values and argmax indices; ``d/dx = scatter(g, idx)`` (the input gradient
  is grad_output added at the argmax, zero elsewhere);
- ``scatter(g, idx)``: its adjoint is ``gather(gg, idx)``, and ``gather``'s is ``scatter``;
- ``window_sum(x)``: the sum over each window (avg pooling = window_sum / count, a depthwise
  correlation with a constant kernel); its adjoint ``window_sum_t(g)`` (the transposed op)
  spreads each output over its window, and the adjoint of that is ``window_sum`` again.

Each backward calls the primitives through ``Function.apply``, so second and higher
derivatives come from the same rules; only indices (max) or nothing (sums) are saved.
"""

from __future__ import annotations

from typing import Any

import torch

from .._pool_spec import PoolSpec
from ._pool_buffered import max_pool_raw, window_sum
from ._pool_kernels import gather_at, scatter_at, window_sum_t


class MaxPool(torch.autograd.Function):
    """``(values, indices) = max_pool(x)``; gradient: scatter of grad_output at the argmax."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, spec: PoolSpec) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        out, idx = max_pool_raw(x, spec, True)
        assert idx is not None
        ctx.save_for_backward(idx)
        ctx.in_spatial = spec.in_spatial
        ctx.mark_non_differentiable(idx)
        ctx.set_materialize_grads(False)  # no zero gradient for the indices
        return out, idx

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor | None, _gi: Any) -> tuple[Any, ...]:  # type: ignore[override]
        if g is None:
            return None, None
        (idx,) = ctx.saved_tensors
        return IndexScatter.apply(g, idx, ctx.in_spatial), None


class IndexScatter(torch.autograd.Function):
    """``scatter(g, idx)``: ``g`` added at flat indices into a zero input-shaped tensor."""

    @staticmethod
    def forward(ctx: Any, g: torch.Tensor, idx: torch.Tensor, in_spatial: tuple[int, ...]) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(idx)
        return scatter_at(g, idx, in_spatial)

    @staticmethod
    def backward(ctx: Any, gg: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        (idx,) = ctx.saved_tensors
        return IndexGather.apply(gg, idx), None, None


class IndexGather(torch.autograd.Function):
    """``gather(x, idx)``: ``x`` read at flat indices (the adjoint of ``scatter``)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(idx)
        ctx.in_spatial = tuple(x.shape[2:])
        return gather_at(x, idx)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        (idx,) = ctx.saved_tensors
        return IndexScatter.apply(g, idx, ctx.in_spatial), None


class WindowSum(torch.autograd.Function):
    """``window_sum(x)`` accumulated in ``acc_dtype``; gradient: ``window_sum_t``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, spec: PoolSpec, acc_dtype: torch.dtype) -> torch.Tensor:  # type: ignore[override]
        ctx.spec, ctx.in_dtype = spec, x.dtype
        return window_sum(x, spec, acc_dtype)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        return WindowSumT.apply(g, ctx.spec).to(ctx.in_dtype), None, None


class WindowSumT(torch.autograd.Function):
    """``window_sum_t(g)``: the transposed constant-kernel op; gradient: ``window_sum``."""

    @staticmethod
    def forward(ctx: Any, g: torch.Tensor, spec: PoolSpec) -> torch.Tensor:  # type: ignore[override]
        ctx.spec = spec
        return window_sum_t(g, spec)

    @staticmethod
    def backward(ctx: Any, gg: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        return WindowSum.apply(gg, ctx.spec, gg.dtype), None


def max_pool_values(x: torch.Tensor, spec: PoolSpec, need_indices: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Max pooling of a batched tensor, differentiable when ``x`` needs a gradient."""
    if torch.is_grad_enabled() and x.requires_grad:
        out, idx = MaxPool.apply(x, spec)
        return out, idx
    return max_pool_raw(x, spec, need_indices)


def window_sum_op(x: torch.Tensor, spec: PoolSpec) -> torch.Tensor:
    """Differentiable window sum, accumulated in float32 for half types (float64 stays)."""
    acc = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    if torch.is_grad_enabled() and x.requires_grad:
        return WindowSum.apply(x, spec, acc)  # type: ignore[no-any-return]
    return window_sum(x, spec, acc)


def max_pool_from_indices(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Differentiable ``gather(x, idx)`` (used by adaptive max pooling)."""
    if torch.is_grad_enabled() and x.requires_grad:
        return IndexGather.apply(x, idx)  # type: ignore[no-any-return]
    return gather_at(x, idx)
