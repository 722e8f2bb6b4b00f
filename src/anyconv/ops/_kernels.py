"""The operators' real (CPU/CUDA) and fake (shapes-only) kernels: each real kernel is one
``algorithms.run`` call with the operator as its ``form`` (see :mod:`anyconv.algorithms.variants`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .. import algorithms
from ..core.shapes import conv_output_size
from . import _LIB, Ints, _spec, pairs


def _stand_in(t: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """A tensor of ``shape`` with ``t``'s dtype and device and one element of storage (the operand of
    the forward correlation that an adjoint operator does not read: only its shape is used)."""
    return t.new_zeros(()).expand(tuple(shape))


def _corr_real(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, stride: Ints, padding: Ints,
               dilation: Ints, groups: int, algorithm: str, op: str) -> torch.Tensor:
    spec = _spec(stride, padding, dilation, groups)
    return algorithms.run(op, algorithm, x, w, spec, bool(op), form="corr", bias=bias)


def _corr_t_real(g: torch.Tensor, w: torch.Tensor, stride: Ints, padding: Ints, dilation: Ints, groups: int,
                 in_spatial: Ints, algorithm: str, op: str) -> torch.Tensor:
    x = _stand_in(g, (g.shape[0], w.shape[1] * groups, *in_spatial))
    return algorithms.run(op, algorithm, x, w, _spec(stride, padding, dilation, groups), bool(op), form="corr_t", g=g)


def _corr_w_real(x: torch.Tensor, g: torch.Tensor, stride: Ints, padding: Ints, dilation: Ints, groups: int,
                 kernel: Ints, algorithm: str) -> torch.Tensor:
    w = _stand_in(x, (g.shape[1], x.shape[1] // groups, *kernel))
    return algorithms.run("", algorithm, x, w, _spec(stride, padding, dilation, groups), False, form="corr_w", g=g)


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
