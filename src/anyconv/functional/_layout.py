"""Memory format: a channels_last call gives its output and gradients in the layout torch gives.

torch's rule (read from ATen's ``Convolution.cpp`` and checked by experiment, CPU, every float
dtype, 1 and 2 threads, batch 1-3, groups, strides, dilations, output padding, input and/or
weight channels_last, C = 1: 2865 random calls, all as predicted):

- a tensor is channels_last when its strides say so (torch's ``suggest_memory_format``: the
  strides decide, so a ``(N, 1, H, W)`` tensor made by ``.contiguous(memory_format=channels_last)``
  stays row-major, as ``.contiguous()`` of it returns it unchanged, while one with channels-last
  strides ``(HW, 1, W, 1)`` is channels_last), see :func:`channels_last`;
- a convolution or transposed convolution asks for channels_last when its input or its weight
  is; in 2-D it gets it (torch's oneDNN and slow 2-D kernels both keep it); in 3-D only when torch
  computes it by oneDNN (its slow 3-D kernels are row-major): ``float32`` unless a single-thread
  1x1 call or a batch-1, ungrouped call with small kernels and input (``_uses_mkldnn`` mirrors
  torch's ``use_mkldnn``), ``bfloat16``/``float16`` where the CPU's oneDNN supports them (on this
  machine bfloat16 yes, float16 no), never ``float64``, never a transposed call whose
  ``output_padding`` reaches its stride; on CUDA (cuDNN) any dtype but ``float64``; complex as
  its real dtype; see :func:`conv_format`;
- a pooling's output and input gradient follow its input; in 3-D, torch's average and adaptive
  average pooling and max unpooling give row-major results whatever the layout; max unpooling's
  input gradient is row-major.

anyconv's algorithms compute on row-major tensors, so an op whose call is channels_last reads its
operands through :func:`row_major` (a copy whose backward hands the gradient back in the
channels_last layout) and gives its output in that layout with :func:`restore`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch

from ..core.tracing import untraced

_F = TypeVar("_F", bound=Callable[..., Any])


def _shape_logic(fn: _F) -> _F:
    """Run ``fn`` (it reads strides and sizes as plain ints) with ``torch.jit.trace``'s recording
    paused: the layout decided for the traced shapes is a constant of the trace, like its shapes."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return untraced(lambda: fn(*args, **kwargs))

    return wrapper  # type: ignore[return-value]

_FORMATS = {4: torch.channels_last, 5: torch.channels_last_3d}


def strides_like_channels_last(t: torch.Tensor) -> bool:
    """Whether ``t``'s strides are channels_last ones (torch's ``is_channels_last_strides_2d/3d``:
    channels innermost, then the spatial dims from the last, then the batch; a size-1 dim's stride
    only has to be no smaller than the ones inside it; an ambiguous N111 tensor is row-major)."""
    if t.dim() not in _FORMATS or t.stride(1) == 0:
        return False
    low = 0
    for d in (1, *range(t.dim() - 1, 1, -1), 0):
        size, stride = t.shape[d], t.stride(d)
        if size == 0 or stride < low or (d == 0 and low == t.stride(1)):
            return False
        low = stride * size if size > 1 else stride
    return True


@_shape_logic
def channels_last(*tensors: torch.Tensor, ranks: tuple[int, ...] = (4, 5)) -> torch.memory_format | None:
    """The channels_last format of the first of ``tensors`` whose strides are channels_last (torch's
    ``suggest_memory_format``: :func:`strides_like_channels_last`), else None. ``ranks``: the tensor
    ranks whose layout the op keeps (torch's 3-D average and adaptive average pooling give row-major
    results).

    Examples:
        >>> x = torch.randn(1, 2, 3, 3)
        >>> channels_last(x), channels_last(x.contiguous(memory_format=torch.channels_last))
        (None, torch.channels_last)
        >>> one = torch.randn(1, 1, 3, 3)  # C = 1: the strides decide
        >>> channels_last(one.contiguous(memory_format=torch.channels_last)), channels_last(one.permute(0, 2, 3, 1).permute(0, 3, 1, 2))
        (None, None)
        >>> channels_last(torch.randn(1, 3, 3, 1).permute(0, 3, 1, 2))
        torch.channels_last
    """
    for t in tensors:
        if t.dim() in ranks and strides_like_channels_last(t):
            return _FORMATS[t.dim()]
    return None


@functools.cache
def _onednn_supports(dtype: torch.dtype) -> bool:
    """Whether this CPU's oneDNN computes ``dtype`` (torch's ``mkldnn_bf16/fp16_device_check``)."""
    try:
        if dtype == torch.bfloat16:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        return bool(torch.ops.mkldnn._is_mkldnn_fp16_supported())
    except (AttributeError, RuntimeError):  # a torch without the query (or without oneDNN)
        return False


def _uses_mkldnn(
    x: torch.Tensor, w: torch.Tensor, stride: Sequence[int], dilation: Sequence[int], groups: int,
    seen: Sequence[int], output_padding: Sequence[int] | None,
) -> bool:
    """Whether torch's CPU convolution would compute this call by oneDNN (ATen's
    ``ConvParams::use_mkldnn``); ``seen``: the spatial input sizes torch's kernel sees."""
    if not (torch._C._has_mkldnn and torch._C._get_mkldnn_enabled()):
        return False
    if output_padding is not None and any(o >= s for o, s in zip(output_padding, stride)):
        return False
    dtype = x.real.dtype if x.is_complex() else x.dtype
    if dtype in (torch.bfloat16, torch.float16):
        return _onednn_supports(dtype)
    if dtype != torch.float32:
        return False
    b, k = x.shape[0], w.shape
    small_kernel = k[-1] == 1 and k[-2] == 1
    strided, dilated = any(s != 1 for s in stride), any(d != 1 for d in dilation)
    return (strided or dilated or b >= 16 or not small_kernel or torch.get_num_threads() > 1) and (
        groups > 1 or (k[-1] > 3 and k[-2] > 3) or b > 1 or b * x.shape[1] * seen[0] * seen[1] > 20480
    )


def per_dim(value: int | Sequence[int], n: int) -> tuple[int, ...]:
    """A validated ``stride``/``dilation`` argument as N ints, as the user gave it (the specs bound
    them by what they can change; torch's kernel choice reads them as given)."""
    if isinstance(value, int):
        return (value,) * n
    return tuple(int(v) for v in value) * (n if len(value) == 1 else 1)


@_shape_logic
def conv_format(
    x: torch.Tensor, w: torch.Tensor, stride: Sequence[int], dilation: Sequence[int], groups: int,
    seen: Sequence[int], output_padding: Sequence[int] | None = None,
) -> torch.memory_format | None:
    """The layout torch gives a (transposed, with ``output_padding``) convolution of batched ``x``
    by ``w``: channels_last when either is and torch's kernel keeps it (see the module docstring),
    else None. ``stride``, ``dilation``: as the user gave them (:func:`per_dim`); ``seen``: the
    spatial input sizes torch's kernel sees (after explicit padding).

    Examples:
        >>> x = torch.randn(2, 3, 4, 4, 4).contiguous(memory_format=torch.channels_last_3d)
        >>> w = torch.randn(5, 3, 3, 3, 3)
        >>> conv_format(x, w, (1,) * 3, (1,) * 3, 1, (4,) * 3), conv_format(x.double(), w.double(), (1,) * 3, (1,) * 3, 1, (4,) * 3)
        (torch.channels_last_3d, None)
    """
    fmt = channels_last(x, w)
    if fmt is None:
        return None
    if x.device.type == "cuda":  # cuDNN's cudnn_conv_suggest_memory_format (not measured here)
        return None if (x.real.dtype if x.is_complex() else x.dtype) == torch.float64 else fmt
    if x.dim() == 4:
        return fmt
    return fmt if _uses_mkldnn(x, w, stride, dilation, groups, seen, output_padding) else None


class _RowMajor(torch.autograd.Function):
    """``t.contiguous()`` whose gradient is given back in the layout ``fmt``."""

    @staticmethod
    def forward(ctx: Any, t: torch.Tensor, fmt: torch.memory_format) -> torch.Tensor:  # type: ignore[override]
        ctx.fmt = fmt
        return t.contiguous()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        return grad.contiguous(memory_format=ctx.fmt), None


def row_major(t: torch.Tensor, fmt: torch.memory_format | None) -> torch.Tensor:
    """``t`` as a row-major tensor for the algorithms; its gradient comes back in ``fmt`` (None: ``t``)."""
    if fmt is None or t.dim() != next(k for k, v in _FORMATS.items() if v == fmt):
        return t
    return _RowMajor.apply(t, fmt) if t.requires_grad else t.contiguous()  # type: ignore[no-any-return]


def restore(y: torch.Tensor, fmt: torch.memory_format | None) -> torch.Tensor:
    """The op's output ``y`` in the layout ``fmt`` (None, or another rank: ``y`` as it is).

    Examples:
        >>> y = restore(torch.randn(1, 2, 3, 3), torch.channels_last)
        >>> y.is_contiguous(memory_format=torch.channels_last)
        True
    """
    if fmt is None or _FORMATS.get(y.dim()) != fmt:
        return y
    return y.contiguous(memory_format=fmt)
