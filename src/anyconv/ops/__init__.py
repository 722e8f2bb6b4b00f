"""anyconv's core as genuine PyTorch operators (``torch.ops.anyconv.*``), registered once.

The pooling primitives are registered the same way in :mod:`anyconv.ops._pool`, their vmap and the
correlations' vmap and autocast rules in :mod:`anyconv.ops._batch_cast`.

Three correlation operators, each linear in each of its two tensor arguments, close under differentiation
(see :mod:`anyconv.ops._autograd` for the algebra)::

    anyconv::corr(Tensor x, Tensor w, Tensor? bias, SymInt[] stride, SymInt[] padding,
                  SymInt[] dilation, SymInt groups, str algorithm, str op) -> Tensor
    anyconv::corr_t(Tensor g, Tensor w, SymInt[] stride, SymInt[] padding, SymInt[] dilation,
                    SymInt groups, SymInt[] in_spatial, str algorithm, str op) -> Tensor
    anyconv::corr_w(Tensor x, Tensor g, SymInt[] stride, SymInt[] padding, SymInt[] dilation,
                    SymInt groups, SymInt[] kernel, str algorithm) -> Tensor

``corr`` is the grouped N-d cross-correlation with zero padding (``padding`` holds the flattened
``(before, after)`` pairs, negative = crop) plus an optional bias; ``corr_t`` is its adjoint in
``x`` (a transposed convolution onto an input of ``in_spatial``); ``corr_w`` its adjoint in ``w``
(the weight gradient, a kernel of ``kernel``). ``algorithm`` is ``"auto"`` or a registered name;
``op`` names the public function in errors of a named algorithm that cannot serve the call
(``""``: a derived call, where ``auto`` takes over).

Registrations, per operator:

- **CPU / CUDA kernel**: today's dispatch (the small-call GEMM, ``auto``'s choice, plan caches,
  NaN checks, thread counts): it runs only on real tensors, so tracing never sees it.
- **fake kernel**: shapes only, from :mod:`anyconv.core.shapes` (``explain_algorithm``'s meta trace,
  which records the core calls, takes the real path).
- **autograd**: one ``Autograd`` kernel wrapping an ``autograd.Function`` whose backward calls the
  three operators (``corr: dx = corr_t(gy, w), dw = corr_w(x, gy), db = sum gy``; ``corr_t:
  dg = corr(G, w), dw = corr_w(G, g)``; ``corr_w: dx = corr_t(g, GW), dg = corr(x, GW)``), so
  derivatives of every order are anyconv's own ops, and whose ``jvp`` (bilinearity: two calls)
  serves forward-mode AD. It is registered at the dispatcher's Autograd key rather than with
  ``torch.library.register_autograd`` because that one has no forward-mode formula and refuses
  ``torch.func`` transforms; running inside the dispatcher, at each functorch level, the Function
  is a single-level one (as functorch's own per-level autograd.Function rule is).
- **vmap**: the vmapped dim folds into the batch (only the data operand batched) or into the
  groups (``V`` problems side by side: ``groups * V``).
- **autocast** (``AutocastCPU``/``AutocastCUDA``): torch's conv policy, floating inputs other than
  float64 cast to the autocast dtype.

The public functions (``anyconv.functional.conv``/``conv_transpose``) validate their arguments,
then call :func:`call_corr`/:func:`call_corr_t`: the operator, except in plain eager use (no
compile/export/jit trace, no torch.func transform or forward AD, no dispatch or function mode, plain
CPU/CUDA tensors), where they run the same autograd Function and kernel directly, without the C++
dispatcher's round trip into Python (about 11 us per call, measured); a small call then keeps its
plan for a joint first-order backward. Everything any PyTorch 2 subsystem sees is the operator.
"""

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
from ..core.shapes import conv_output_size
from ..core.spec import CorrSpec
from ..core.tracing import untraced as untraced
from ..core.types import Ints
from . import _autograd as raw
from . import _small

_LIB = torch.library.Library("anyconv", "DEF")
_ARGS = "SymInt[] stride, SymInt[] padding, SymInt[] dilation, SymInt groups"
_LIB.define(f"corr(Tensor x, Tensor w, Tensor? bias, {_ARGS}, str algorithm, str op) -> Tensor")
_LIB.define(f"corr_t(Tensor g, Tensor w, {_ARGS}, SymInt[] in_spatial, str algorithm, str op) -> Tensor")
_LIB.define(f"corr_w(Tensor x, Tensor g, {_ARGS}, SymInt[] kernel, str algorithm) -> Tensor")

corr = torch.ops.anyconv.corr.default
corr_t = torch.ops.anyconv.corr_t.default
corr_w = torch.ops.anyconv.corr_w.default


def pairs(padding: Ints) -> tuple[tuple[int, int], ...]:
    """Flattened ``(before, after)`` pads back to pairs: ``[1, 2, 0, 0] -> ((1, 2), (0, 0))``."""
    return tuple((padding[i], padding[i + 1]) for i in range(0, len(padding), 2))


def flat(spec: CorrSpec) -> tuple[list[int], list[int], list[int], int]:
    """``spec`` as the operators' ``stride, padding, dilation, groups`` arguments."""
    return list(spec.stride), [v for p in spec.padding for v in p], list(spec.dilation), spec.groups


def _spec(stride: Ints, padding: Ints, dilation: Ints, groups: int) -> CorrSpec:
    return CorrSpec(tuple(stride), tuple(dilation), pairs(padding), groups)


_AUTOCAST = {d: torch.amp.is_autocast_available(d) for d in ("cpu", "cuda", "xpu", "mps")}


def autocast(*tensors: Any) -> tuple[Any, ...]:
    """``tensors`` as torch's convolution autocast policy has them: inside ``torch.autocast`` on the
    first one's device, every floating tensor other than float64 cast to the autocast dtype (the
    public functions call this before their dtype checks; the operators' own autocast rule does the
    same for direct calls). Outside autocast, ``tensors`` unchanged."""
    x = tensors[0]
    if not isinstance(x, torch.Tensor):
        return tensors
    device = x.device.type
    if not _AUTOCAST.get(device, False) or not torch.is_autocast_enabled(device):
        return tensors  # (meta, or a device without autocast)
    dtype = torch.get_autocast_dtype(device)
    return tuple(t.to(dtype) if isinstance(t, torch.Tensor) and t.is_floating_point() and t.dtype != torch.float64
                 else t for t in tensors)


# ---- real kernels (CPU and CUDA) ----------------------------------------------------------


def _stand_in(t: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """A tensor of ``shape`` with ``t``'s dtype and device and one element of storage (the small
    path reads only the shape of the operand it does not differentiate)."""
    return t.new_zeros(()).expand(tuple(shape))


def _corr_real(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, stride: Ints, padding: Ints,
               dilation: Ints, groups: int, algorithm: str, op: str) -> torch.Tensor:
    return _corr_planned(x, w, bias, _spec(stride, padding, dilation, groups), algorithm, op)[0]


def _corr_planned(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, spec: CorrSpec, algorithm: str,
                  op: str) -> tuple[torch.Tensor, _small.Plan | None]:
    """``corr``'s result, and the small-call plan that computed it (None: the general path)."""
    if algorithm == "auto":
        p = _small.plan(x, w, spec)
        if p is not None:  # a small im2col call: one GEMM, bias fused
            return _small.forward(x, w, bias, p), p
    y = raw.corr_raw(x, w, spec, algorithm, op or None)
    if bias is not None:
        y = y + bias.reshape(1, -1, *([1] * spec.n))
    return y, None


def _corr_t_real(g: torch.Tensor, w: torch.Tensor, stride: Ints, padding: Ints, dilation: Ints, groups: int,
                 in_spatial: Ints, algorithm: str, op: str) -> torch.Tensor:
    spec = _spec(stride, padding, dilation, groups)
    if algorithm == "auto" and not op and g.numel() and w.numel():
        shape = (g.shape[0], w.shape[1] * groups, *in_spatial)
        x = _stand_in(g, shape)
        p = _small.plan(x, w, spec)
        if p is not None or _small.col2im_pays(x, w, g, spec):
            # the small call's input gradient (w^T @ gy, then col2im): no flipped weight copy
            return _small.backward(x, w, g, spec, True, False, p=p)[0]  # type: ignore[return-value]
    return raw.corr_t_raw(g, w, spec, tuple(in_spatial), algorithm, op or None)


def _corr_w_real(x: torch.Tensor, g: torch.Tensor, stride: Ints, padding: Ints, dilation: Ints, groups: int,
                 kernel: Ints, algorithm: str) -> torch.Tensor:
    spec = _spec(stride, padding, dilation, groups)
    if algorithm == "auto" and x.numel() and g.numel():
        w = _stand_in(x, (g.shape[1], x.shape[1] // groups, *kernel))
        p = _small.plan(x, w, spec)
        if p is not None:  # the small call's weight gradient: gy @ cols^T
            dw = _small.backward(x, w, g, spec, False, True, p=p)[1]
            return dw.contiguous()  # type: ignore[union-attr]
    return raw.corr_w_raw(x, g, spec, tuple(kernel), algorithm)


# operator name -> its real kernel (also what a test's dispatch mode runs to see inside the operator)
KERNELS: dict[str, Any] = {"corr": _corr_real, "corr_t": _corr_t_real, "corr_w": _corr_w_real}
for _name, _fn in KERNELS.items():
    _LIB.impl(_name, _fn, "CPU")
    _LIB.impl(_name, _fn, "CUDA")


# ---- fake kernels: shapes only ------------------------------------------------------------


@torch.library.register_fake("anyconv::corr", lib=_LIB)
def _corr_fake(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, stride: Ints, padding: Ints,
               dilation: Ints, groups: int, algorithm: str, op: str) -> torch.Tensor:
    if algorithms.tracing():  # explain_algorithm's meta trace: record the core calls
        return _corr_real(x, w, bias, stride, padding, dilation, groups, algorithm, op)
    out = [conv_output_size(i, k, s, d, pad[0], pad[1])
           for i, k, s, d, pad in zip(x.shape[2:], w.shape[2:], stride, dilation, pairs(padding))]
    return x.new_empty((x.shape[0], w.shape[0], *out))


@torch.library.register_fake("anyconv::corr_t", lib=_LIB)
def _corr_t_fake(g: torch.Tensor, w: torch.Tensor, stride: Ints, padding: Ints, dilation: Ints, groups: int,
                 in_spatial: Ints, algorithm: str, op: str) -> torch.Tensor:
    if algorithms.tracing():
        return _corr_t_real(g, w, stride, padding, dilation, groups, in_spatial, algorithm, op)
    return g.new_empty((g.shape[0], w.shape[1] * groups, *in_spatial))


@torch.library.register_fake("anyconv::corr_w", lib=_LIB)
def _corr_w_fake(x: torch.Tensor, g: torch.Tensor, stride: Ints, padding: Ints, dilation: Ints, groups: int,
                 kernel: Ints, algorithm: str) -> torch.Tensor:
    if algorithms.tracing():
        return _corr_w_real(x, g, stride, padding, dilation, groups, kernel, algorithm)
    return x.new_empty((g.shape[1], x.shape[1] // groups, *kernel))


# ---- autograd: backward rules and jvp, in terms of the three operators ----------------------


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
        if isinstance(via, CorrSpec):  # the eager fast path: the kernel here, its small-call plan kept
            y, ctx.small = _corr_planned(x, w, bias, via, args[-2], args[-1])
            ctx.spec = via
        else:  # the operator's Autograd kernel: below autograd (forward AD may need the tangents)
            ctx.save_for_forward(x, w)
            y, ctx.small = _below(corr, via, x, w, bias, *args), None
        ctx.out_shape = y.shape
        return y

    @staticmethod
    def backward(ctx: Any, gy: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        x, w = ctx.saved_tensors
        stride, padding, dilation, groups, algorithm, _ = ctx.args
        need = ctx.needs_input_grad
        if ctx.small is not None and not _C.is_grad_enabled() and _eager(gy, x, w):
            # first order, eager: a small call's three gradients from one column layout (two GEMMs)
            dx, dw, db = _small.backward(x, w, gy, ctx.spec, need[1], need[2], None, need[3], ctx.small)
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


# ---- calls: the eager fast path or the operator ------------------------------------------

_PLAIN = (torch.Tensor, torch.nn.Parameter)


def _eager(a: Any, b: Any, c: Any = None) -> bool:
    """Whether a call may run the operator's autograd Function and kernel without the C++
    dispatcher's round trip (about 11 us per call, measured): plain eager tensors on CPU/CUDA, and
    nothing that must see the operator (compile, export, jit.trace, torch.func, forward AD,
    dispatch or function modes such as FakeTensorMode or ``with torch.device``)."""
    if torch.compiler.is_compiling():
        return False
    if (_C._get_tracing_state() is not None or _C._are_functorch_transforms_active()
            or _fwad._current_level >= 0 or _C._len_torch_dispatch_stack()
            or _C._is_torch_function_mode_enabled()):
        return False
    for t in (a, b, c):
        if t is not None and (type(t) not in _PLAIN or not (t.is_cpu or t.is_cuda)):
            return False
    return True


def _grad(*tensors: torch.Tensor | None) -> bool:
    return _C.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


_APPLY_CORR = super(torch.autograd.Function, _Corr).apply  # type: ignore[misc]
_APPLY_CORR_T = super(torch.autograd.Function, _CorrT).apply  # type: ignore[misc]
_APPLY_CORR_W = super(torch.autograd.Function, _CorrW).apply  # type: ignore[misc]


def call_corr(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, spec: CorrSpec, algorithm: str,
              op: str) -> torch.Tensor:
    """``torch.ops.anyconv.corr(x, w, bias, *flat(spec), algorithm, op)`` (the same Function and
    kernel, see :func:`_eager`)."""
    if not _eager(x, w, bias):
        return corr(x, w, bias, *flat(spec), algorithm, op)  # type: ignore[no-any-return]
    if _grad(x, w, bias):
        return _APPLY_CORR(spec, x, w, bias, *flat(spec), algorithm, op)  # type: ignore[no-any-return]
    return _corr_planned(x, w, bias, spec, algorithm, op)[0]


def call_corr_t(g: torch.Tensor, w: torch.Tensor, *args: Any) -> torch.Tensor:
    """``torch.ops.anyconv.corr_t(g, w, *args)`` (see :func:`call_corr`)."""
    if not _eager(g, w):
        return corr_t(g, w, *args)  # type: ignore[no-any-return]
    if _grad(g, w):
        return _APPLY_CORR_T(None, g, w, *args)  # type: ignore[no-any-return]
    return _corr_t_real(g, w, *args)


def call_corr_w(x: torch.Tensor, g: torch.Tensor, *args: Any) -> torch.Tensor:
    """``torch.ops.anyconv.corr_w(x, g, *args)`` (see :func:`call_corr`)."""
    if not _eager(x, g):
        return corr_w(x, g, *args)  # type: ignore[no-any-return]
    if _grad(x, g):
        return _APPLY_CORR_W(None, x, g, *args)  # type: ignore[no-any-return]
    return _corr_w_real(x, g, *args)


from . import _batch_cast  # noqa: E402,F401,I001  vmap and autocast rules
from . import _pool  # noqa: E402,F401,I001  the pooling operators
KERNELS.update(_pool.KERNELS)
