"""The pooling primitives as operators (registered by :mod:`anyconv.ops`).

Five operators, each linear in its tensor argument given the indices (the algebra of
:mod:`anyconv.functional._pool_autograd`), with the window geometry ``G = SymInt[] kernel,
SymInt[] stride, SymInt[] padding (flattened pairs), SymInt[] dilation, SymInt[] out_spatial``::

    anyconv::max_pool(Tensor x, G, bool need_indices) -> (Tensor values, Tensor indices)
    anyconv::index_scatter(Tensor g, Tensor idx, SymInt[] in_spatial) -> Tensor
    anyconv::index_gather(Tensor x, Tensor idx) -> Tensor
    anyconv::window_sum(Tensor x, G, ScalarType acc) -> Tensor
    anyconv::window_sum_t(Tensor g, G, SymInt[] in_spatial) -> Tensor

``max_pool`` without ``need_indices`` gives an empty ``(0,)`` index tensor. Gradients::

    max_pool:      dx = index_scatter(g, idx)         jvp: index_gather(tx, idx)
    index_scatter: dg = index_gather(G, idx)          jvp: index_scatter(tg, idx)
    index_gather:  dx = index_scatter(g, idx)         jvp: index_gather(tx, idx)
    window_sum:    dx = window_sum_t(g)               jvp: window_sum(tx)
    window_sum_t:  dg = window_sum(G)                 jvp: window_sum_t(tg)

Real kernels: the buffered/running pooling kernels (thread counts, NaN checks inside); fake
kernels: shapes only; vmap: every op is per channel plane, so the vmapped dim folds into the batch.
"""

from __future__ import annotations

from typing import Any

import torch

from ..core.pool_spec import PoolSpec
from ..core.types import Ints
from . import _LIB, _eager, _grad, pairs
from ._functions import _autograd_kernel, _below
from ._pool_buffered import max_pool_raw, window_sum
from ._pool_kernels import gather_at, scatter_at, window_sum_t

_G = "SymInt[] kernel, SymInt[] stride, SymInt[] padding, SymInt[] dilation, SymInt[] out_spatial"
_LIB.define(f"max_pool(Tensor x, {_G}, bool need_indices) -> (Tensor, Tensor)")
_LIB.define("index_scatter(Tensor g, Tensor idx, SymInt[] in_spatial) -> Tensor")
_LIB.define("index_gather(Tensor x, Tensor idx) -> Tensor")
_LIB.define(f"window_sum(Tensor x, {_G}, ScalarType acc) -> Tensor")
_LIB.define(f"window_sum_t(Tensor g, {_G}, SymInt[] in_spatial) -> Tensor")

max_pool = torch.ops.anyconv.max_pool.default
index_scatter = torch.ops.anyconv.index_scatter.default
index_gather = torch.ops.anyconv.index_gather.default
window_sum_op = torch.ops.anyconv.window_sum.default
window_sum_t_op = torch.ops.anyconv.window_sum_t.default


def geometry(spec: PoolSpec) -> tuple[list[int], list[int], list[int], list[int], list[int]]:
    """``spec``'s window geometry as the operators' ``kernel, stride, padding, dilation, out_spatial``."""
    return (list(spec.kernel), list(spec.stride), [v for p in spec.padding for v in p], list(spec.dilation),
            list(spec.out_spatial))


def _spec(in_spatial: Ints, kernel: Ints, stride: Ints, padding: Ints, dilation: Ints, out: Ints) -> PoolSpec:
    return PoolSpec("pool", tuple(kernel), tuple(stride), tuple(dilation), pairs(padding), False, True,
                    tuple(in_spatial), tuple(out))


# ---- real and fake kernels ------------------------------------------------------------------


def _max_pool_real(x: torch.Tensor, kernel: Ints, stride: Ints, padding: Ints, dilation: Ints, out: Ints,
                   need_indices: bool) -> tuple[torch.Tensor, torch.Tensor]:
    vals, idx = max_pool_raw(x, _spec(x.shape[2:], kernel, stride, padding, dilation, out), need_indices)
    return vals, idx if idx is not None else x.new_empty((0,), dtype=torch.int64)


def _window_sum_real(x: torch.Tensor, kernel: Ints, stride: Ints, padding: Ints, dilation: Ints, out: Ints,
                     acc: torch.dtype) -> torch.Tensor:
    return window_sum(x, _spec(x.shape[2:], kernel, stride, padding, dilation, out), acc)


def _window_sum_t_real(g: torch.Tensor, kernel: Ints, stride: Ints, padding: Ints, dilation: Ints, out: Ints,
                       in_spatial: Ints) -> torch.Tensor:
    return window_sum_t(g, _spec(in_spatial, kernel, stride, padding, dilation, out)).contiguous()


def _index_scatter_real(g: torch.Tensor, idx: torch.Tensor, in_spatial: Ints) -> torch.Tensor:
    return scatter_at(g, idx, in_spatial)


def _index_gather_real(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    return gather_at(x, idx).contiguous()


KERNELS: dict[str, Any] = {"max_pool": _max_pool_real, "index_scatter": _index_scatter_real, "index_gather": _index_gather_real,
           "window_sum": _window_sum_real, "window_sum_t": _window_sum_t_real}
for _name, _fn in KERNELS.items():
    _LIB.impl(_name, _fn, "CPU")
    _LIB.impl(_name, _fn, "CUDA")


@torch.library.register_fake("anyconv::max_pool", lib=_LIB)
def _max_pool_fake(x: torch.Tensor, kernel: Ints, stride: Ints, padding: Ints, dilation: Ints, out: Ints,
                   need_indices: bool) -> tuple[torch.Tensor, torch.Tensor]:
    shape = (*x.shape[:2], *out)
    return x.new_empty(shape), x.new_empty(shape if need_indices else (0,), dtype=torch.int64)


@torch.library.register_fake("anyconv::index_scatter", lib=_LIB)
def _index_scatter_fake(g: torch.Tensor, idx: torch.Tensor, in_spatial: Ints) -> torch.Tensor:
    return g.new_empty((*g.shape[:2], *in_spatial))


@torch.library.register_fake("anyconv::index_gather", lib=_LIB)
def _index_gather_fake(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    return x.new_empty(idx.shape)


@torch.library.register_fake("anyconv::window_sum", lib=_LIB)
def _window_sum_fake(x: torch.Tensor, kernel: Ints, stride: Ints, padding: Ints, dilation: Ints, out: Ints,
                     acc: torch.dtype) -> torch.Tensor:
    return x.new_empty((*x.shape[:2], *out), dtype=acc)


@torch.library.register_fake("anyconv::window_sum_t", lib=_LIB)
def _window_sum_t_fake(g: torch.Tensor, kernel: Ints, stride: Ints, padding: Ints, dilation: Ints, out: Ints,
                       in_spatial: Ints) -> torch.Tensor:
    return g.new_empty((*g.shape[:2], *in_spatial))


# ---- autograd -------------------------------------------------------------------------------


class _MaxPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, keyset: Any, x: torch.Tensor, *args: Any) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        vals, idx = _max_pool_real(x, *args) if keyset is None else _below(max_pool, keyset, x, *args)
        ctx.save_for_backward(idx)
        ctx.idx = idx  # (the jvp's: indices carry no gradient)
        ctx.in_spatial = tuple(x.shape[2:])
        ctx.mark_non_differentiable(idx)
        ctx.set_materialize_grads(False)  # no zero gradient for the indices
        return vals, idx

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor | None, _gi: Any) -> tuple[Any, ...]:  # type: ignore[override]
        if g is None:
            return (None,) * 8
        (idx,) = ctx.saved_tensors
        return None, call_index_scatter(g, idx, ctx.in_spatial), *([None] * 6)

    @staticmethod
    def jvp(ctx: Any, _k: Any, tx: torch.Tensor, *_: Any) -> tuple[torch.Tensor, None]:
        return index_gather(tx, ctx.idx), None


class _IndexScatter(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, keyset: Any, g: torch.Tensor, idx: torch.Tensor, in_spatial: Ints) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(idx)
        ctx.idx, ctx.in_spatial = idx, in_spatial
        return _index_scatter_real(g, idx, in_spatial) if keyset is None else _below(
            index_scatter, keyset, g, idx, in_spatial)

    @staticmethod
    def backward(ctx: Any, gg: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        (idx,) = ctx.saved_tensors
        return None, call_index_gather(gg, idx), None, None

    @staticmethod
    def jvp(ctx: Any, _k: Any, tg: torch.Tensor, *_: Any) -> torch.Tensor:
        return index_scatter(tg, ctx.idx, ctx.in_spatial)  # type: ignore[no-any-return]


class _IndexGather(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, keyset: Any, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(idx)
        ctx.idx, ctx.in_spatial = idx, tuple(x.shape[2:])
        return _index_gather_real(x, idx) if keyset is None else _below(index_gather, keyset, x, idx)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        (idx,) = ctx.saved_tensors
        return None, call_index_scatter(g, idx, ctx.in_spatial), None

    @staticmethod
    def jvp(ctx: Any, _k: Any, tx: torch.Tensor, *_: Any) -> torch.Tensor:
        return index_gather(tx, ctx.idx)  # type: ignore[no-any-return]


class _WindowSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, keyset: Any, x: torch.Tensor, *args: Any) -> torch.Tensor:  # type: ignore[override]
        ctx.args, ctx.in_spatial, ctx.in_dtype = args, tuple(x.shape[2:]), x.dtype
        return _window_sum_real(x, *args) if keyset is None else _below(window_sum_op, keyset, x, *args)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        kernel, stride, padding, dilation, out = ctx.args[:5]
        dx = call_window_sum_t(g, kernel, stride, padding, dilation, out, ctx.in_spatial).to(ctx.in_dtype)
        return None, dx, *([None] * len(ctx.args))

    @staticmethod
    def jvp(ctx: Any, _k: Any, tx: torch.Tensor, *_: Any) -> torch.Tensor:
        return window_sum_op(tx, *ctx.args)  # type: ignore[no-any-return]


class _WindowSumT(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, keyset: Any, g: torch.Tensor, *args: Any) -> torch.Tensor:  # type: ignore[override]
        ctx.args = args
        return _window_sum_t_real(g, *args) if keyset is None else _below(window_sum_t_op, keyset, g, *args)

    @staticmethod
    def backward(ctx: Any, gg: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        kernel, stride, padding, dilation, out = ctx.args[:5]
        return None, call_window_sum(gg, kernel, stride, padding, dilation, out, gg.dtype), *([None] * len(ctx.args))

    @staticmethod
    def jvp(ctx: Any, _k: Any, tg: torch.Tensor, *_: Any) -> torch.Tensor:
        return window_sum_t_op(tg, *ctx.args)  # type: ignore[no-any-return]


_FUNCTIONS: dict[str, type[torch.autograd.Function]] = {
    "max_pool": _MaxPool, "index_scatter": _IndexScatter, "index_gather": _IndexGather,
    "window_sum": _WindowSum, "window_sum_t": _WindowSumT}
for _name, _cls in _FUNCTIONS.items():
    _LIB.impl(_name, _autograd_kernel(getattr(torch.ops.anyconv, _name).default, _cls), "Autograd",
              with_keyset=True)


# ---- calls: the eager fast path or the operator (see anyconv.ops.call_corr) ---------------------


def _call(name: str, t: torch.Tensor, idx: torch.Tensor | None, *args: Any) -> Any:
    lead = (t,) if idx is None else (t, idx)
    if not _eager(t, idx):
        return getattr(torch.ops.anyconv, name).default(*lead, *args)
    if _grad(t):
        return super(torch.autograd.Function, _FUNCTIONS[name]).apply(None, *lead, *args)  # type: ignore[misc]
    return KERNELS[name](*lead, *args)


def call_max_pool(x: torch.Tensor, spec: PoolSpec, need_indices: bool) -> tuple[torch.Tensor, torch.Tensor]:
    return _call("max_pool", x, None, *geometry(spec), need_indices)  # type: ignore[no-any-return]


def call_index_scatter(g: torch.Tensor, idx: torch.Tensor, in_spatial: Ints) -> torch.Tensor:
    return _call("index_scatter", g, idx, list(in_spatial))  # type: ignore[no-any-return]


def call_index_gather(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    return _call("index_gather", x, idx)  # type: ignore[no-any-return]


def call_window_sum(x: torch.Tensor, kernel: Ints, stride: Ints, padding: Ints, dilation: Ints, out: Ints,
                    acc: torch.dtype) -> torch.Tensor:
    return _call("window_sum", x, None, kernel, stride, padding, dilation, out, acc)  # type: ignore[no-any-return]


def call_window_sum_t(g: torch.Tensor, kernel: Ints, stride: Ints, padding: Ints, dilation: Ints, out: Ints,
                      in_spatial: Ints) -> torch.Tensor:
    return _call("window_sum_t", g, None, kernel, stride, padding, dilation, out,  # type: ignore[no-any-return]
                 list(in_spatial))


# ---- vmap: the vmapped dim folds into the batch -----------------------------------------------


def _fold(t: torch.Tensor, dim: int | None, v: int) -> torch.Tensor:
    t = t.movedim(dim, 0) if dim is not None else t.expand(v, *t.shape)
    return t.reshape(t.shape[0] * t.shape[1], *t.shape[2:])


def _unfold(y: torch.Tensor, v: int) -> torch.Tensor:
    return y.reshape(v, y.shape[0] // v, *y.shape[1:])


@torch.library.register_vmap("anyconv::max_pool")
def _max_pool_vmap(info: Any, in_dims: tuple[Any, ...], x: torch.Tensor, *args: Any) -> Any:
    vals, idx = max_pool(_fold(x, in_dims[0], info.batch_size), *args)
    v = info.batch_size
    return (_unfold(vals, v), _unfold(idx, v) if idx.numel() else idx.expand(v, 0)), (0, 0)


@torch.library.register_vmap("anyconv::index_scatter")
def _index_scatter_vmap(info: Any, in_dims: tuple[Any, ...], g: torch.Tensor, idx: torch.Tensor,
                        in_spatial: Ints) -> Any:
    v = info.batch_size
    return _unfold(index_scatter(_fold(g, in_dims[0], v), _fold(idx, in_dims[1], v), in_spatial), v), 0


@torch.library.register_vmap("anyconv::index_gather")
def _index_gather_vmap(info: Any, in_dims: tuple[Any, ...], x: torch.Tensor, idx: torch.Tensor) -> Any:
    v = info.batch_size
    return _unfold(index_gather(_fold(x, in_dims[0], v), _fold(idx, in_dims[1], v)), v), 0


@torch.library.register_vmap("anyconv::window_sum")
def _window_sum_vmap(info: Any, in_dims: tuple[Any, ...], x: torch.Tensor, *args: Any) -> Any:
    v = info.batch_size
    return _unfold(window_sum_op(_fold(x, in_dims[0], v), *args), v), 0


@torch.library.register_vmap("anyconv::window_sum_t")
def _window_sum_t_vmap(info: Any, in_dims: tuple[Any, ...], g: torch.Tensor, *args: Any) -> Any:
    v = info.batch_size
    return _unfold(window_sum_t_op(_fold(g, in_dims[0], v), *args), v), 0
