"""vmap and autocast rules of the ``anyconv::corr*`` operators (registered by :mod:`anyconv.ops`).

vmap, over a dim of size ``V``:

- only the data operand batched (``x`` of ``corr``, ``g`` of ``corr_t``): ``V`` folds into the
  batch, ``(V, B, C, *L) -> (V*B, C, *L)``, one call with the shared weight;
- otherwise ``V`` folds into the groups: ``V`` problems side by side as one call with
  ``groups * V`` (channels ``(B, V*C, *L)``, weight ``(V*O, Cg, *k)``), the unbatched operands
  expanded; the result's channels (or, for ``corr_w``, output channels) split back into ``V``.

autocast: torch's convolution policy (``lower_precision_fp``): inside ``torch.autocast(device)``
every floating tensor argument other than float64 is cast to ``torch.get_autocast_dtype(device)``,
and the op runs with autocast off.
"""

from __future__ import annotations

from typing import Any

import torch

from . import corr, corr_t, corr_w


def _front(t: torch.Tensor, dim: int | None, v: int) -> torch.Tensor:
    """``t`` with the vmapped dim first (an unbatched ``t`` expanded to ``V``)."""
    return t.movedim(dim, 0) if dim is not None else t.expand(v, *t.shape)


def _into_batch(t: torch.Tensor, dim: int) -> torch.Tensor:
    t = t.movedim(dim, 0)
    return t.reshape(t.shape[0] * t.shape[1], *t.shape[2:])


def _into_channels(t: torch.Tensor) -> torch.Tensor:
    """``(V, B, C, *L) -> (B, V*C, *L)``."""
    t = t.transpose(0, 1)
    return t.reshape(t.shape[0], t.shape[1] * t.shape[2], *t.shape[3:])


def _merge(t: torch.Tensor) -> torch.Tensor:
    """``(V, O, ...) -> (V*O, ...)``."""
    return t.reshape(t.shape[0] * t.shape[1], *t.shape[2:])


def _split_channels(y: torch.Tensor, v: int) -> torch.Tensor:
    """``(B, V*O, *o) -> (B, V, O, *o)``."""
    return y.reshape(y.shape[0], v, y.shape[1] // v, *y.shape[2:])


@torch.library.register_vmap("anyconv::corr")
def _corr_vmap(info: Any, in_dims: tuple[Any, ...], x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None,
               stride: Any, padding: Any, dilation: Any, groups: int, algorithm: str, op: str) -> Any:
    xd, wd, bd = in_dims[:3]
    v = info.batch_size
    if wd is None and bd is None:
        y = corr(_into_batch(x, xd), w, bias, stride, padding, dilation, groups, algorithm, op)
        return y.reshape(v, y.shape[0] // v, *y.shape[1:]), 0
    b = None if bias is None else _merge(_front(bias, bd, v))
    y = corr(_into_channels(_front(x, xd, v)), _merge(_front(w, wd, v)), b, stride, padding, dilation,
             groups * v, algorithm, op)
    return _split_channels(y, v), 1


@torch.library.register_vmap("anyconv::corr_t")
def _corr_t_vmap(info: Any, in_dims: tuple[Any, ...], g: torch.Tensor, w: torch.Tensor, stride: Any, padding: Any,
                 dilation: Any, groups: int, in_spatial: Any, algorithm: str, op: str) -> Any:
    gd, wd = in_dims[:2]
    v = info.batch_size
    if wd is None:
        y = corr_t(_into_batch(g, gd), w, stride, padding, dilation, groups, in_spatial, algorithm, op)
        return y.reshape(v, y.shape[0] // v, *y.shape[1:]), 0
    y = corr_t(_into_channels(_front(g, gd, v)), _merge(_front(w, wd, v)), stride, padding, dilation, groups * v,
               in_spatial, algorithm, op)
    return _split_channels(y, v), 1


@torch.library.register_vmap("anyconv::corr_w")
def _corr_w_vmap(info: Any, in_dims: tuple[Any, ...], x: torch.Tensor, g: torch.Tensor, stride: Any, padding: Any,
                 dilation: Any, groups: int, kernel: Any, algorithm: str) -> Any:
    xd, gd = in_dims[:2]
    v = info.batch_size
    dw = corr_w(_into_channels(_front(x, xd, v)), _into_channels(_front(g, gd, v)), stride, padding, dilation,
                groups * v, kernel, algorithm)
    return dw.reshape(v, dw.shape[0] // v, *dw.shape[1:]), 0


def _autocast(device_type: str, name: str) -> None:
    key_name = "Autocast" + torch._C._dispatch_key_for_device(device_type)
    key = getattr(torch._C.DispatchKey, key_name)
    op = getattr(torch.ops.anyconv, name).default

    def cast(a: Any, dtype: torch.dtype) -> Any:
        eligible = isinstance(a, torch.Tensor) and a.is_floating_point() and a.dtype != torch.float64
        return a.to(dtype) if eligible else a

    def run(*args: Any) -> torch.Tensor:
        dtype = torch.get_autocast_dtype(device_type)
        with torch._C._ExcludeDispatchKeyGuard(torch._C.DispatchKeySet(key)):
            return op(*(cast(a, dtype) for a in args))  # type: ignore[no-any-return]

    if op.has_kernel_for_dispatch_key(key):
        op.py_kernels.pop(key)
    op.py_impl(key)(run)  # the Python dispatcher's (tracing) path
    from . import _LIB

    _LIB.impl(name, lambda _keyset, *args: run(*args), key_name, with_keyset=True)


for _device in ("cpu", "cuda"):
    for _name in ("corr", "corr_t", "corr_w"):
        _autocast(_device, _name)
