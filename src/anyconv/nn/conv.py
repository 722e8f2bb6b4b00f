"""Convolution modules: drop-in replacements for ``torch.nn.Conv*d`` built on anyconv.

``Conv1d``, ``Conv2d`` and ``Conv3d`` subclass torch's classes (``isinstance(m, torch.nn.Conv2d)``
holds), ``ConvNd`` subclasses torch's ``_ConvNd`` base; all four have torch's constructor
arguments and defaults, parameter names and shapes, ``state_dict`` keys, initialisation and
``repr``, plus ``algorithm=`` and every padding form of :func:`anyconv.functional.conv`.
torch's own ``__init__`` refuses some of these (a strided ``'same'``, ``(before, after)``
pairs), so it is called with ``padding=0`` and the real padding is stored afterwards.

The forward reads only torch's attributes (plus ``algorithm``, ``'auto'`` when absent), so a
layer built by torch whose ``__class__`` is swapped (:func:`anyconv.nn.convert`) works too.
The transposed modules live in :mod:`anyconv.nn.conv_transpose` and are re-exported here.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch.nn.modules.conv import _ConvNd

from ..core.types import PaddingMode
from ..functional.conv import conv
from ._conv_args import algorithm_repr, conv_args, finish_init, forward_args, is_lazy, kernel_dims
from .conv_transpose import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d, ConvTransposeNd

__all__ = [
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvNd",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "ConvTransposeNd",
]


class _ConvForward:
    """forward, ``_conv_forward`` and ``extra_repr`` shared by the convolution modules."""

    algorithm: str = "auto"

    def _conv_forward(
        self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        m = cast(_ConvNd, self)
        stride, padding, dilation = forward_args(m)
        return conv(
            input, weight, bias, stride, padding, dilation, m.groups, m.padding_mode,
            False, self.algorithm, _op=type(self).__name__,
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        m = cast(_ConvNd, self)
        return self._conv_forward(input, m.weight, m.bias)

    def extra_repr(self) -> str:
        m = cast(_ConvNd, self)
        return algorithm_repr(m, _ConvNd.extra_repr(m))


_CONV_DOC = """
    Computes, for every batch element ``b`` and output channel ``o`` in group ``g``::

        out[b, o, p] = bias[o] + sum_{c in group g} sum_q x_pad[b, c, p * stride + q * dilation] * weight[o, c, q]

    Args:
        in_channels, out_channels: channel counts (both divisible by ``groups``).
        kernel_size: an int or N ints{kernel_note}.
        stride, dilation: an int or N ints.
        padding: an int, N ints, N ``(before, after)`` pairs, ``'valid'``, ``'same'`` (output
            ``ceil(in / stride)`` for any stride), ``'same_lower'`` or ``'causal'``.
        groups: channel groups. bias: learn a bias (default True).
        padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``, with any padding.
        device, dtype: of the parameters.
        algorithm: ``'auto'`` or a registered algorithm (``anyconv.algorithms.names()``).

    Shape:
        Input ``(B, C_in, *in)`` or ``(C_in, *in)``; output ``(B, C_out, *out)`` or ``(C_out, *out)`` with
        ``out_i = floor((in_i + before_i + after_i - dilation_i * (k_i - 1) - 1) / stride_i) + 1``.
        ``weight``: ``(C_out, C_in // groups, *kernel_size)``, ``bias``: ``(C_out,)``; both
        ``U(-sqrt(k), sqrt(k))``, ``k = groups / (C_in * prod(kernel_size))``, as torch.

    Raises:
        ValueError, TypeError: bad constructor or forward arguments (named, before any work).
"""


class Conv1d(_ConvForward, torch.nn.Conv1d):
    __doc__ = (
        "1-d convolution layer, a drop-in ``torch.nn.Conv1d`` (see :mod:`anyconv.nn.conv`).\n"
        + _CONV_DOC.replace("{kernel_note}", "")
        + """
    Examples:
        >>> import torch, anyconv
        >>> m = anyconv.nn.Conv1d(2, 4, 3, stride=2, padding="causal")
        >>> m(torch.randn(8, 2, 9)).shape
        torch.Size([8, 4, 5])
    """
    )

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: PaddingMode = "zeros",
        device: Any = None,
        dtype: torch.dtype | None = None,
        algorithm: str = "auto",
    ) -> None:
        a = conv_args("Conv1d", 1, in_channels, out_channels, kernel_size, stride, padding, dilation,
                      groups, bias, padding_mode, algorithm, lazy=is_lazy(self))
        super().__init__(a.in_channels, a.out_channels, a.kernel_size, a.stride, 0, a.dilation, a.groups,  # type: ignore[arg-type]
                         a.bias, padding_mode, device=device, dtype=dtype)
        finish_init(self, a)


class Conv2d(_ConvForward, torch.nn.Conv2d):
    __doc__ = (
        "2-d convolution layer, a drop-in ``torch.nn.Conv2d`` (see :mod:`anyconv.nn.conv`).\n"
        + _CONV_DOC.replace("{kernel_note}", "")
        + """
    Examples:
        >>> import torch, anyconv
        >>> m = anyconv.nn.Conv2d(3, 8, 3, stride=2, padding="same")
        >>> isinstance(m, torch.nn.Conv2d), m(torch.randn(1, 3, 7, 7)).shape
        (True, torch.Size([1, 8, 4, 4]))
        >>> anyconv.nn.Conv2d(3, 8, 3, padding=((0, 2), (1, 1)), algorithm="direct")
        Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=((0, 2), (1, 1)), algorithm='direct')
    """
    )

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: PaddingMode = "zeros",
        device: Any = None,
        dtype: torch.dtype | None = None,
        algorithm: str = "auto",
    ) -> None:
        a = conv_args("Conv2d", 2, in_channels, out_channels, kernel_size, stride, padding, dilation,
                      groups, bias, padding_mode, algorithm, lazy=is_lazy(self))
        super().__init__(a.in_channels, a.out_channels, a.kernel_size, a.stride, 0, a.dilation, a.groups,  # type: ignore[arg-type]
                         a.bias, padding_mode, device=device, dtype=dtype)
        finish_init(self, a)


class Conv3d(_ConvForward, torch.nn.Conv3d):
    __doc__ = (
        "3-d convolution layer, a drop-in ``torch.nn.Conv3d`` (see :mod:`anyconv.nn.conv`).\n"
        + _CONV_DOC.replace("{kernel_note}", "")
        + """
    Examples:
        >>> import torch, anyconv
        >>> m = anyconv.nn.Conv3d(2, 4, (1, 3, 3), padding=(0, 1, 1), padding_mode="circular")
        >>> m(torch.randn(2, 5, 6, 6)).shape
        torch.Size([4, 5, 6, 6])
    """
    )

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: PaddingMode = "zeros",
        device: Any = None,
        dtype: torch.dtype | None = None,
        algorithm: str = "auto",
    ) -> None:
        a = conv_args("Conv3d", 3, in_channels, out_channels, kernel_size, stride, padding, dilation,
                      groups, bias, padding_mode, algorithm, lazy=is_lazy(self))
        super().__init__(a.in_channels, a.out_channels, a.kernel_size, a.stride, 0, a.dilation, a.groups,  # type: ignore[arg-type]
                         a.bias, padding_mode, device=device, dtype=dtype)
        finish_init(self, a)


class ConvNd(_ConvForward, _ConvNd):
    __doc__ = (
        "N-d convolution layer for any N >= 1 (N = ``len(kernel_size)``), torch's ``_ConvNd`` family.\n"
        + _CONV_DOC.replace("{kernel_note}", " (must be a sequence: its length is N)")
        + """
    Examples:
        >>> import torch, anyconv
        >>> m = anyconv.nn.ConvNd(2, 4, (3, 3, 3, 3), padding="same")
        >>> m
        ConvNd(2, 4, kernel_size=(3, 3, 3, 3), stride=(1, 1, 1, 1), padding=same)
        >>> m(torch.randn(1, 2, 5, 5, 5, 5)).shape
        torch.Size([1, 4, 5, 5, 5, 5])
    """
    )

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: PaddingMode = "zeros",
        device: Any = None,
        dtype: torch.dtype | None = None,
        algorithm: str = "auto",
    ) -> None:
        n = kernel_dims("ConvNd", kernel_size)
        a = conv_args("ConvNd", n, in_channels, out_channels, kernel_size, stride, padding, dilation,
                      groups, bias, padding_mode, algorithm, lazy=is_lazy(self))
        super().__init__(a.in_channels, a.out_channels, a.kernel_size, a.stride, (0,) * n, a.dilation,
                         False, (0,) * n, a.groups, a.bias, padding_mode, device=device, dtype=dtype)
        finish_init(self, a)


# torch.nn class -> anyconv.nn class, used by anyconv.nn.convert
TORCH_EQUIVALENTS: dict[type[torch.nn.Module], type[torch.nn.Module]] = {
    torch.nn.Conv1d: Conv1d,
    torch.nn.Conv2d: Conv2d,
    torch.nn.Conv3d: Conv3d,
    torch.nn.ConvTranspose1d: ConvTranspose1d,
    torch.nn.ConvTranspose2d: ConvTranspose2d,
    torch.nn.ConvTranspose3d: ConvTranspose3d,
}
