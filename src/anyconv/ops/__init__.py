"""anyconv's core as genuine PyTorch operators (``torch.ops.anyconv.*``), registered once.

The pooling primitives are registered the same way in :mod:`anyconv.ops._pool`, their vmap and the
correlations' vmap and autocast rules in :mod:`anyconv.ops._batch_cast`.

Three correlation operators, each linear in each of its two tensor arguments, close under differentiation
(see :mod:`anyconv.algorithms._adjoints` for the algebra)::

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

Registrations, per operator (the kernels in :mod:`anyconv.ops._kernels`, the autograd in
:mod:`anyconv.ops._functions`):

- **CPU / CUDA kernel**: ``algorithms.run`` with the operator as its ``form`` (the one dispatch:
  a variant such as the small-call GEMM, or the registry, as ``auto`` chooses; plan caches, NaN
  checks): it runs only on real tensors, so tracing never sees it.
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

from typing import Any

import torch
import torch.autograd.forward_ad as _fwad
from torch import _C

from .. import algorithms
from ..core.spec import CorrSpec
from ..core.tracing import untraced as untraced
from ..core.types import Ints

_LIB: torch.library.Library = torch.library.Library("anyconv", "DEF")
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


def call_corr(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, spec: CorrSpec, algorithm: str,
              op: str) -> torch.Tensor:
    """``torch.ops.anyconv.corr(x, w, bias, *flat(spec), algorithm, op)`` (the same Function and
    kernel, see :func:`_eager`)."""
    if not _eager(x, w, bias):
        return corr(x, w, bias, *flat(spec), algorithm, op)  # type: ignore[no-any-return]
    if _grad(x, w, bias):
        return _functions._APPLY_CORR(spec, x, w, bias, *flat(spec), algorithm, op)  # type: ignore[no-any-return]
    return algorithms.run(op, algorithm, x, w, spec, bool(op), form="corr", bias=bias)


def call_corr_t(g: torch.Tensor, w: torch.Tensor, *args: Any) -> torch.Tensor:
    """``torch.ops.anyconv.corr_t(g, w, *args)`` (see :func:`call_corr`)."""
    if not _eager(g, w):
        return corr_t(g, w, *args)  # type: ignore[no-any-return]
    if _grad(g, w):
        return _functions._APPLY_CORR_T(None, g, w, *args)  # type: ignore[no-any-return]
    return _kernels._corr_t_real(g, w, *args)


def call_corr_w(x: torch.Tensor, g: torch.Tensor, *args: Any) -> torch.Tensor:
    """``torch.ops.anyconv.corr_w(x, g, *args)`` (see :func:`call_corr`)."""
    if not _eager(x, g):
        return corr_w(x, g, *args)  # type: ignore[no-any-return]
    if _grad(x, g):
        return _functions._APPLY_CORR_W(None, x, g, *args)  # type: ignore[no-any-return]
    return _kernels._corr_w_real(x, g, *args)


from . import _kernels  # noqa: E402,I001  the real and fake kernels
from . import _functions  # noqa: E402,I001  the autograd rules
from ._kernels import KERNELS  # noqa: E402,I001
from . import _batch_cast  # noqa: E402,F401,I001  vmap and autocast rules
from . import _pool  # noqa: E402,F401,I001  the pooling operators
KERNELS.update(_pool.KERNELS)
from . import _adaptive  # noqa: E402,I001  adaptive average pooling (uneven windows)
KERNELS.update(_adaptive.KERNELS)
