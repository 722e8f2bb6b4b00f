"""Adaptive average pooling with uneven windows as an operator (registered by :mod:`anyconv.ops`).

::

    anyconv::adaptive_avg(Tensor x, SymInt[] in_spatial, SymInt[] out_spatial, bool transposed) -> Tensor

``transposed=False`` averages torch's adaptive windows, ``(B, C, *in_spatial) -> (B, C, *out_spatial)``
(``y = A x``); ``transposed=True`` is the adjoint ``g -> A^T g``, ``(B, C, *out_spatial) ->
(B, C, *in_spatial)``. Each is the other's gradient and its own jvp (the op is linear), so derivatives
of every order are this operator. The real kernel chooses between one GEMM and window sums from the
data (NaN/Inf, ``auto.finite``), which is why this is an operator: traced, compiled or exported, that
choice stays inside the kernel. Fake kernel: shapes only; vmap: the vmapped dim folds into the batch.
The evenly tiled and global cases stay reshape-means in the public function.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from . import _LIB, _eager, _grad
from ._adaptive_kernels import average
from ._functions import _autograd_kernel, _below

Ints = Sequence[int]
_LIB.define("adaptive_avg(Tensor x, SymInt[] in_spatial, SymInt[] out_spatial, bool transposed) -> Tensor")
adaptive_avg = torch.ops.anyconv.adaptive_avg.default


def _adaptive_avg_real(x: torch.Tensor, in_spatial: Ints, out_spatial: Ints, transposed: bool) -> torch.Tensor:
    return average(x.contiguous(), tuple(zip(in_spatial, out_spatial)), transposed)


KERNELS: dict[str, Any] = {"adaptive_avg": _adaptive_avg_real}
_LIB.impl("adaptive_avg", _adaptive_avg_real, "CPU")
_LIB.impl("adaptive_avg", _adaptive_avg_real, "CUDA")


@torch.library.register_fake("anyconv::adaptive_avg", lib=_LIB)
def _adaptive_avg_fake(x: torch.Tensor, in_spatial: Ints, out_spatial: Ints, transposed: bool) -> torch.Tensor:
    return x.new_empty((*x.shape[:2], *(in_spatial if transposed else out_spatial)))


class _AdaptiveAvg(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, keyset: Any, x: torch.Tensor, in_spatial: Ints, out_spatial: Ints,  # type: ignore[override]
                transposed: bool) -> torch.Tensor:
        ctx.args = (in_spatial, out_spatial, transposed)
        args = (x, in_spatial, out_spatial, transposed)
        return _adaptive_avg_real(*args) if keyset is None else _below(adaptive_avg, keyset, *args)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        in_spatial, out_spatial, transposed = ctx.args
        return None, call_adaptive_avg(g, in_spatial, out_spatial, not transposed), None, None, None

    @staticmethod
    def jvp(ctx: Any, _k: Any, tx: torch.Tensor, *_: Any) -> torch.Tensor:
        return adaptive_avg(tx, *ctx.args)  # type: ignore[no-any-return]


_LIB.impl("adaptive_avg", _autograd_kernel(adaptive_avg, _AdaptiveAvg), "Autograd", with_keyset=True)


def call_adaptive_avg(x: torch.Tensor, in_spatial: Ints, out_spatial: Ints, transposed: bool = False) -> torch.Tensor:
    """``torch.ops.anyconv.adaptive_avg`` (in plain eager use its Function or kernel directly, as
    :func:`anyconv.ops.call_corr`)."""
    args = (list(in_spatial), list(out_spatial), transposed)
    if not _eager(x, None):
        return adaptive_avg(x, *args)  # type: ignore[no-any-return]
    if _grad(x):
        return super(torch.autograd.Function, _AdaptiveAvg).apply(None, x, *args)  # type: ignore[no-any-return,misc]
    return _adaptive_avg_real(x, *args)


@torch.library.register_vmap("anyconv::adaptive_avg")
def _adaptive_avg_vmap(info: Any, in_dims: tuple[Any, ...], x: torch.Tensor, *args: Any) -> Any:
    v, dim = info.batch_size, in_dims[0]
    t = x.movedim(dim, 0) if dim is not None else x.expand(v, *x.shape)
    y = adaptive_avg(t.reshape(t.shape[0] * t.shape[1], *t.shape[2:]), *args)
    return y.reshape(v, y.shape[0] // v, *y.shape[1:]), 0
