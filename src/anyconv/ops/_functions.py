"""The correlation operators' autograd: backward rules and jvps in terms of the three operators,
registered at the dispatcher's Autograd key (see :mod:`anyconv.ops`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.autograd.forward_ad as _fwad
from torch import _C
from torch._C._functorch import (
    get_single_level_autograd_function_allowed as _single_level_allowed,
)
from torch._C._functorch import (
    set_single_level_autograd_function_allowed as _allow_single_level,
)

from .. import algorithms
from ..algorithms import _adjoints as raw
from ..algorithms import _small_gemm as _small
from ..algorithms import variants
from ..core.spec import CorrSpec
from . import _LIB, _eager, _spec, call_corr, call_corr_t, call_corr_w, corr, corr_t, corr_w
from ._kernels import KERNELS, _corr_real, _corr_t_real, _corr_w_real

_BACKENDS = (_C.DispatchKey.CPU, _C.DispatchKey.CUDA)


def _below(op: Any, keyset: Any, *args: Any) -> Any:
    """``op`` below autograd: its real kernel straight away when nothing but the backend is left
    (a compiled graph's call: one Python call, not a second trip through the dispatcher), else the
    dispatcher's next key (fake tensors, functionalization, Python modes, vmap)."""
    rest = keyset & _C._after_autograd_keyset
    if rest.highestPriorityTypeId() in _BACKENDS:
        return KERNELS[op._opname](*args)
    with _C._AutoDispatchBelowAutograd():
        return op.redispatch(rest, *args)


def _conj(t: torch.Tensor) -> torch.Tensor:
    return t.conj() if t.is_complex() else t


def _drop_unread(t: torch.Tensor, spec: CorrSpec, kernel: Sequence[int], out: Sequence[int]) -> torch.Tensor:
    return raw._drop_unread(t, spec, kernel, out)


class _Corr(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, via: Any, x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None,  # type: ignore[override]
                *args: Any) -> torch.Tensor:
        # via: the dispatcher's keyset (the operator's Autograd kernel) or the call's CorrSpec (eager)
        ctx.save_for_backward(x, w)
        ctx.args = args
        ctx.eager = isinstance(via, CorrSpec)
        if ctx.eager:  # the eager fast path: the kernel here
            y = _corr_real(x, w, bias, *args)
        else:  # the operator's Autograd kernel: below autograd (forward AD may need the tangents)
            ctx.save_for_forward(x, w)
            y = _below(corr, via, x, w, bias, *args)
        ctx.out_shape = y.shape
        return y

    @staticmethod
    def backward(ctx: Any, gy: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        x, w = ctx.saved_tensors
        stride, padding, dilation, groups, algorithm, _ = ctx.args
        need = ctx.needs_input_grad
        if ctx.eager and not _C.is_grad_enabled() and _eager(gy, x, w):
            # first order, eager: a small call's three gradients from one column layout (two GEMMs),
            # the variants small_t and small_w that serve its gradients computed together
            spec = _spec(stride, padding, dilation, groups)
            plan = variants.route("corr", algorithm, x, w, spec, True).plan
            if plan is not None:
                for form, name, needed in (("corr_t", "small_t", need[1]), ("corr_w", "small_w", need[2])):
                    if needed:
                        algorithms.begin(form)
                        algorithms.executed(name)
                dx, dw, db = _small.backward(x, w, gy, spec, need[1], need[2], None, need[3], plan)
                return None, dx, dw, db, *([None] * len(ctx.args))
        dx = call_corr_t(gy, _conj(w), stride, padding, dilation, groups, x.shape[2:], algorithm, "") if need[1] else None
        dw = call_corr_w(_conj(x), gy, stride, padding, dilation, groups, w.shape[2:], algorithm) if need[2] else None
        db = gy.sum([0, *range(2, gy.dim())]) if need[3] else None
        return None, dx, dw, db, *([None] * len(ctx.args))

    @staticmethod
    def jvp(ctx: Any, _k: Any, tx: torch.Tensor | None, tw: torch.Tensor | None, tb: torch.Tensor | None,
            *_: Any) -> torch.Tensor:
        x, w = ctx.saved_tensors
        stride, padding, dilation, groups, algorithm, _op = ctx.args
        parts = []  # bilinear: corr(tx, w) + corr(x, tw) + tb, the bias tangent fused into the first
        if tx is not None:
            parts.append(corr(tx, w, tb, stride, padding, dilation, groups, algorithm, ""))
        if tw is not None:
            parts.append(corr(x, tw, None if parts else tb, stride, padding, dilation, groups, algorithm, ""))
        if not parts:  # only the bias carries a tangent
            shape = ctx.out_shape
            return tb.reshape(1, -1, *([1] * (len(shape) - 2))).expand(shape).contiguous()  # type: ignore[union-attr]
        return _sum(parts)


def _adjoint_forward(ctx: Any, keyset: Any, op: Any, real: Any, a: torch.Tensor, b: torch.Tensor,
                     args: tuple[Any, ...]) -> torch.Tensor:
    """``corr_t``'s and ``corr_w``'s forward: save both operands, then the real kernel (``keyset``
    None: the eager fast path) or the operator below autograd (forward AD may need the tangents)."""
    ctx.save_for_backward(a, b)
    ctx.args = args
    if keyset is None:
        return real(a, b, *args)
    ctx.save_for_forward(a, b)
    return _below(op, keyset, a, b, *args)


def _sum(parts: list[torch.Tensor]) -> torch.Tensor:
    """A bilinear op's tangent: the sum of its one or two terms."""
    return parts[0] if len(parts) == 1 else parts[0] + parts[1]


class _CorrT(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, keyset: Any, g: torch.Tensor, w: torch.Tensor, *args: Any) -> torch.Tensor:  # type: ignore[override]
        return _adjoint_forward(ctx, keyset, corr_t, _corr_t_real, g, w, args)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        g, w = ctx.saved_tensors
        stride, padding, dilation, groups, _, algorithm, _op = ctx.args
        need = ctx.needs_input_grad
        grad = _drop_unread(grad, _spec(stride, padding, dilation, groups), w.shape[2:], g.shape[2:])
        dg = call_corr(grad, _conj(w), None, _spec(stride, padding, dilation, groups), algorithm, "") if need[1] else None
        dw = call_corr_w(grad, _conj(g), stride, padding, dilation, groups, w.shape[2:], algorithm) if need[2] else None
        return None, dg, dw, *([None] * len(ctx.args))

    @staticmethod
    def jvp(ctx: Any, _k: Any, tg: torch.Tensor | None, tw: torch.Tensor | None, *_: Any) -> torch.Tensor:
        g, w = ctx.saved_tensors
        stride, padding, dilation, groups, in_spatial, algorithm, _op = ctx.args
        parts = []
        if tg is not None:
            parts.append(corr_t(tg, w, stride, padding, dilation, groups, in_spatial, algorithm, ""))
        if tw is not None:
            parts.append(corr_t(g, tw, stride, padding, dilation, groups, in_spatial, algorithm, ""))
        return _sum(parts)


class _CorrW(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, keyset: Any, x: torch.Tensor, g: torch.Tensor, *args: Any) -> torch.Tensor:  # type: ignore[override]
        return _adjoint_forward(ctx, keyset, corr_w, _corr_w_real, x, g, args)

    @staticmethod
    def backward(ctx: Any, gw: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        x, g = ctx.saved_tensors
        stride, padding, dilation, groups, _, algorithm = ctx.args
        need = ctx.needs_input_grad
        dx = call_corr_t(_conj(g), gw, stride, padding, dilation, groups, x.shape[2:], algorithm, "") if need[1] else None
        dg = call_corr(_conj(x), gw, None, _spec(stride, padding, dilation, groups), algorithm, "") if need[2] else None
        return None, dx, dg, *([None] * len(ctx.args))

    @staticmethod
    def jvp(ctx: Any, _k: Any, tx: torch.Tensor | None, tg: torch.Tensor | None, *_: Any) -> torch.Tensor:
        x, g = ctx.saved_tensors
        stride, padding, dilation, groups, kernel, algorithm = ctx.args
        parts = []
        if tx is not None:
            parts.append(corr_w(tx, g, stride, padding, dilation, groups, kernel, algorithm))
        if tg is not None:
            parts.append(corr_w(x, tg, stride, padding, dilation, groups, kernel, algorithm))
        return _sum(parts)


def _autograd_kernel(op: Any, fn: type[torch.autograd.Function]) -> Any:
    # Function.apply's Python checks send any Function to functorch's own rule while a transform
    # is active; inside the dispatcher the tensors are already unwrapped to this level, so the
    # C++ apply runs it as a single-level Function (what functorch's rule does per level)
    apply = super(torch.autograd.Function, fn).apply  # type: ignore[misc]

    def kernel(keyset: Any, *args: Any) -> torch.Tensor:
        if _C._are_functorch_transforms_active():
            prev = _single_level_allowed()
            _allow_single_level(True)
            try:
                return apply(keyset, *args)  # type: ignore[no-any-return]
            finally:
                _allow_single_level(prev)
        if (_C.is_grad_enabled() and _C._any_requires_grad(*args)) or _fwad._current_level >= 0:
            return apply(keyset, *args)  # type: ignore[no-any-return]
        return _below(op, keyset, *args)  # nothing to differentiate: no Function's bookkeeping

    return kernel


for _name, _fn_cls in (("corr", _Corr), ("corr_t", _CorrT), ("corr_w", _CorrW)):
    _LIB.impl(_name, _autograd_kernel(getattr(torch.ops.anyconv, _name).default, _fn_cls), "Autograd",
              with_keyset=True)


_APPLY_CORR = super(torch.autograd.Function, _Corr).apply  # type: ignore[misc]
_APPLY_CORR_T = super(torch.autograd.Function, _CorrT).apply  # type: ignore[misc]
_APPLY_CORR_W = super(torch.autograd.Function, _CorrW).apply  # type: ignore[misc]
