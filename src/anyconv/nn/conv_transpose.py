"""Transposed convolution modules: drop-in replacements for ``torch.nn.ConvTranspose*d``.

``ConvTranspose1d/2d/3d`` subclass torch's classes, ``ConvTransposeNd`` torch's
``_ConvTransposeNd`` base (N = ``len(kernel_size)``, any N >= 1). Same constructor arguments,
defaults, parameters, initialisation and ``repr`` as torch, plus ``algorithm=`` and the padding
forms of :func:`anyconv.functional.conv_transpose`: ints, ``(before, after)`` crop pairs,
``'valid'`` and ``'same'`` (output ``in * stride``). ``forward(input, output_size=None)``
chooses ``output_padding`` from ``output_size`` as torch does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch.nn.modules.conv import _ConvNd, _ConvTransposeNd

from ..core.args import torch_form
from ..core.errors import value_error
from ..core.types import PaddingMode
from ..functional.conv_transpose import conv_transpose
from ._conv_args import algorithm_repr, conv_args, finish_init, forward_args, is_lazy, kernel_dims

__all__ = ["ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "ConvTransposeNd"]


class _ConvTransposeForward:
    """forward and ``extra_repr`` shared by the transposed convolution modules."""

    algorithm: str = "auto"

    def forward(self, input: torch.Tensor, output_size: Sequence[int] | None = None) -> torch.Tensor:
        m = cast(_ConvNd, self)
        op = type(self).__name__
        if m.padding_mode != "zeros":
            value_error(op, "padding_mode", m.padding_mode, "'zeros' (the only padding mode of a transposed convolution)")
        stride, padding, dilation = forward_args(m)
        outpad = torch_form(m.output_padding, len(m.kernel_size))
        return conv_transpose(
            input, m.weight, m.bias, stride, padding, outpad, m.groups, dilation,
            output_size, self.algorithm, _op=op,
        )

    def extra_repr(self) -> str:
        m = cast(_ConvNd, self)
        return algorithm_repr(m, _ConvNd.extra_repr(m))


_DOC = """
    The adjoint of the matching convolution in its input: every input element scatters
    ``input[b, c, p] * weight[c, o, q]`` to output position ``p * stride + q * dilation``; then
    ``padding`` is cropped from the full result.

    Args:
        in_channels, out_channels: channel counts (both divisible by ``groups``).
        kernel_size: an int or N ints{kernel_note}.
        stride, dilation: an int or N ints.
        padding: an int, N ints, N ``(before, after)`` crop pairs, ``'valid'`` or ``'same'``
            (output ``in * stride``).
        output_padding: extra size at the end of each dim (smaller than stride or dilation).
        groups: channel groups. bias: learn a bias (default True).
        padding_mode: only ``'zeros'`` (as torch). device, dtype: of the parameters.
        algorithm: ``'auto'`` or a registered algorithm (``anyconv.algorithms.names()``).

    Shape:
        Input ``(B, C_in, *in)`` or ``(C_in, *in)``; output ``(B, C_out, *out)`` or ``(C_out, *out)`` with
        ``out_i = (in_i - 1) * stride_i - before_i - after_i + dilation_i * (k_i - 1) + output_padding_i + 1``.
        ``weight``: ``(C_in, C_out // groups, *kernel_size)``, ``bias``: ``(C_out,)``, initialised as torch.

    Raises:
        ValueError, TypeError: bad constructor or forward arguments (named, before any work).
"""


class ConvTranspose1d(_ConvTransposeForward, torch.nn.ConvTranspose1d):
    __doc__ = (
        "1-d transposed convolution, a drop-in ``torch.nn.ConvTranspose1d``.\n"
        + _DOC.replace("{kernel_note}", "")
        + """
    Examples:
        >>> import torch, anyconv
        >>> anyconv.nn.ConvTranspose1d(2, 3, 4, stride=2, padding="same")(torch.randn(2, 5)).shape
        torch.Size([3, 10])
    """
    )

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Any = 1,
        padding_mode: PaddingMode = "zeros",
        device: Any = None,
        dtype: torch.dtype | None = None,
        algorithm: str = "auto",
    ) -> None:
        a = conv_args("ConvTranspose1d", 1, in_channels, out_channels, kernel_size, stride, padding, dilation,
                      groups, bias, padding_mode, algorithm, transposed=True, output_padding=output_padding,
                      lazy=is_lazy(self))
        super().__init__(a.in_channels, a.out_channels, a.kernel_size, a.stride, 0, a.output_padding,  # type: ignore[arg-type]
                         a.groups, a.bias, a.dilation, "zeros", device=device, dtype=dtype)  # type: ignore[arg-type]
        finish_init(self, a)


class ConvTranspose2d(_ConvTransposeForward, torch.nn.ConvTranspose2d):
    __doc__ = (
        "2-d transposed convolution, a drop-in ``torch.nn.ConvTranspose2d``.\n"
        + _DOC.replace("{kernel_note}", "")
        + """
    Examples:
        >>> import torch, anyconv
        >>> m = anyconv.nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1)
        >>> m
        ConvTranspose2d(4, 2, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))
        >>> m(torch.randn(1, 4, 5, 5), output_size=(10, 10)).shape
        torch.Size([1, 2, 10, 10])
    """
    )

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Any = 1,
        padding_mode: PaddingMode = "zeros",
        device: Any = None,
        dtype: torch.dtype | None = None,
        algorithm: str = "auto",
    ) -> None:
        a = conv_args("ConvTranspose2d", 2, in_channels, out_channels, kernel_size, stride, padding, dilation,
                      groups, bias, padding_mode, algorithm, transposed=True, output_padding=output_padding,
                      lazy=is_lazy(self))
        super().__init__(a.in_channels, a.out_channels, a.kernel_size, a.stride, 0, a.output_padding,  # type: ignore[arg-type]
                         a.groups, a.bias, a.dilation, "zeros", device=device, dtype=dtype)  # type: ignore[arg-type]
        finish_init(self, a)


class ConvTranspose3d(_ConvTransposeForward, torch.nn.ConvTranspose3d):
    __doc__ = (
        "3-d transposed convolution, a drop-in ``torch.nn.ConvTranspose3d``.\n"
        + _DOC.replace("{kernel_note}", "")
        + """
    Examples:
        >>> import torch, anyconv
        >>> m = anyconv.nn.ConvTranspose3d(2, 2, 2, stride=2, padding=((0, 1), 0, 0))
        >>> m(torch.randn(1, 2, 3, 3, 3)).shape
        torch.Size([1, 2, 5, 6, 6])
    """
    )

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Any = 1,
        padding_mode: PaddingMode = "zeros",
        device: Any = None,
        dtype: torch.dtype | None = None,
        algorithm: str = "auto",
    ) -> None:
        a = conv_args("ConvTranspose3d", 3, in_channels, out_channels, kernel_size, stride, padding, dilation,
                      groups, bias, padding_mode, algorithm, transposed=True, output_padding=output_padding,
                      lazy=is_lazy(self))
        super().__init__(a.in_channels, a.out_channels, a.kernel_size, a.stride, 0, a.output_padding,  # type: ignore[arg-type]
                         a.groups, a.bias, a.dilation, "zeros", device=device, dtype=dtype)  # type: ignore[arg-type]
        finish_init(self, a)


class ConvTransposeNd(_ConvTransposeForward, _ConvTransposeNd):
    __doc__ = (
        "N-d transposed convolution for any N >= 1 (N = ``len(kernel_size)``).\n"
        + _DOC.replace("{kernel_note}", " (must be a sequence: its length is N)")
        + """
    Examples:
        >>> import torch, anyconv
        >>> m = anyconv.nn.ConvTransposeNd(2, 3, (2, 2, 2, 2), stride=2)
        >>> m
        ConvTransposeNd(2, 3, kernel_size=(2, 2, 2, 2), stride=(2, 2, 2, 2))
        >>> m(torch.randn(1, 2, 3, 3, 3, 3)).shape
        torch.Size([1, 3, 6, 6, 6, 6])
    """
    )

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Any = 1,
        padding_mode: PaddingMode = "zeros",
        device: Any = None,
        dtype: torch.dtype | None = None,
        algorithm: str = "auto",
    ) -> None:
        n = kernel_dims("ConvTransposeNd", kernel_size)
        a = conv_args("ConvTransposeNd", n, in_channels, out_channels, kernel_size, stride, padding, dilation,
                      groups, bias, padding_mode, algorithm, transposed=True, output_padding=output_padding,
                      lazy=is_lazy(self))
        super().__init__(a.in_channels, a.out_channels, a.kernel_size, a.stride, (0,) * n, a.dilation, True,
                         a.output_padding, a.groups, a.bias, "zeros", device=device, dtype=dtype)
        finish_init(self, a)
