"""Memory format: a channels_last input gives a channels_last output and gradients, as in torch.

torch's rule (measured, CPU float32 and float64): a convolution's output, input gradient and weight
gradient are ``channels_last`` (``channels_last_3d`` in 3-D) when its input or its weight is; a
pooling's output and input gradient follow its input; in 3-D, torch's transposed convolution,
average and adaptive average pooling give row-major results whatever the layout. anyconv's algorithms compute on row-major
tensors, so an op whose call is channels_last reads its operands through :func:`row_major` (a copy
whose backward hands the gradient back in the channels_last layout) and gives its output in that
layout with :func:`restore`.
"""

from __future__ import annotations

from typing import Any

import torch

_FORMATS = {4: torch.channels_last, 5: torch.channels_last_3d}


def channels_last(*tensors: torch.Tensor, ranks: tuple[int, ...] = (4, 5)) -> torch.memory_format | None:
    """The channels_last format of the first of ``tensors`` laid out in it (and not also row-major,
    where the two coincide), else None. ``ranks``: the tensor ranks whose layout the op keeps (torch's
    transposed convolution, average and adaptive average pooling give row-major results in 3-D).

    Examples:
        >>> x = torch.randn(1, 2, 3, 3)
        >>> channels_last(x), channels_last(x.contiguous(memory_format=torch.channels_last))
        (None, torch.channels_last)
    """
    for t in tensors:
        fmt = _FORMATS.get(t.dim()) if t.dim() in ranks else None
        if fmt is not None and not t.is_contiguous() and t.is_contiguous(memory_format=fmt):
            return fmt
    return None


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
