"""Lazy convolution modules: ``in_channels`` inferred from the first input, as torch's.

``LazyConv1d/2d/3d`` and ``LazyConvTranspose1d/2d/3d`` take torch's constructor arguments
(``in_channels`` left out) plus ``algorithm=`` and every padding form of anyconv's modules.
Until the first call ``weight`` and ``bias`` are ``torch.nn.UninitializedParameter``; the first
forward (or :meth:`initialize_parameters`) reads ``in_channels`` from the input, materialises
the parameters with torch's initialisation (same random draws as torch's lazy modules), and
the module becomes anyconv's ``Conv*d``/``ConvTranspose*d`` (``cls_to_become``). Loading a
``state_dict`` into an uninitialised module materialises it too (torch's ``LazyModuleMixin``).

Examples:
    >>> import torch, anyconv
    >>> m = anyconv.nn.LazyConv2d(8, 3, stride=2, padding="same")
    >>> m.has_uninitialized_params()
    True
    >>> m(torch.randn(1, 3, 7, 7)).shape, type(m).__name__, m.weight.shape
    (torch.Size([1, 8, 4, 4]), 'Conv2d', torch.Size([8, 3, 3, 3]))
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn.modules.conv import _LazyConvXdMixin
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import UninitializedParameter

from ..core.errors import value_error
from ..core.spec import CONV_DTYPES, check_input_rank, check_tensor
from .conv import Conv1d, Conv2d, Conv3d
from .conv_transpose import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d

__all__ = [
    "LazyConv1d",
    "LazyConv2d",
    "LazyConv3d",
    "LazyConvTranspose1d",
    "LazyConvTranspose2d",
    "LazyConvTranspose3d",
]


class _LazyConv(_LazyConvXdMixin):
    """torch's lazy convolution mixin with the first input checked in anyconv's error shape."""

    _N = 1

    def _get_num_spatial_dims(self) -> int:
        return self._N

    def _lazy_params(self, out_channels: int, bias: bool, device: Any, dtype: torch.dtype | None) -> None:
        """Replace the placeholder parameters built with 0 channels by uninitialised ones."""
        self.weight = UninitializedParameter(device=device, dtype=dtype)  # type: ignore[call-arg]
        self.out_channels = out_channels
        if bias:
            self.bias = UninitializedParameter(device=device, dtype=dtype)  # type: ignore[call-arg]

    def initialize_parameters(self, input: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        """Materialise ``weight``/``bias`` for ``input``'s channel count, initialised as torch."""
        if self.has_uninitialized_params():  # type: ignore[misc]
            op = type(self).__name__
            check_tensor(op, "input", input, CONV_DTYPES)
            n = self._N
            check_input_rank(op, input, n)
            c = input.shape[-n - 1]
            if c < 1 or c % self.groups != 0:
                value_error(op, "input", input, f"a positive number of channels divisible by groups "
                            f"({self.groups}) in dim {input.dim() - n - 1}")
        super().initialize_parameters(input, *args, **kwargs)


def _lazy_conv(base: type[torch.nn.Module], n: int) -> type[torch.nn.Module]:
    name = f"LazyConv{n}d"

    def __init__(self: Any, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device: Any = None, dtype: torch.dtype | None = None, algorithm: str = "auto") -> None:
        from ._conv_args import conv_args

        # every argument checked under this class's name (in_channels stands in as `groups`)
        conv_args(name, n, groups, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                  padding_mode, algorithm)
        LazyModuleMixin.__init__(self, 0, 0, kernel_size, stride, padding, dilation, groups, False, padding_mode,
                      device=device, dtype=dtype, algorithm=algorithm)
        self._lazy_params(out_channels, bias, device, dtype)

    doc = f"""A :class:`anyconv.nn.Conv{n}d` whose ``in_channels`` is read from the first input.

    Drop-in ``torch.nn.LazyConv{n}d``: ``LazyConv{n}d(out_channels, kernel_size, stride=1,
    padding=0, dilation=1, groups=1, bias=True, padding_mode='zeros', device=None, dtype=None,
    algorithm='auto')``; see :mod:`anyconv.nn.lazy`.
    """
    return type(name, (_LazyConv, base), {"__init__": __init__, "__doc__": doc, "_N": n,
                                          "cls_to_become": base, "__module__": __name__})


def _lazy_conv_transpose(base: type[torch.nn.Module], n: int) -> type[torch.nn.Module]:
    name = f"LazyConvTranspose{n}d"

    def __init__(self: Any, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 output_padding: Any = 0, groups: int = 1, bias: bool = True, dilation: Any = 1,
                 padding_mode: str = "zeros", device: Any = None, dtype: torch.dtype | None = None,
                 algorithm: str = "auto") -> None:
        from ._conv_args import conv_args

        conv_args(name, n, groups, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                  padding_mode, algorithm, transposed=True, output_padding=output_padding)
        LazyModuleMixin.__init__(self, 0, 0, kernel_size, stride, padding, output_padding, groups, False, dilation,
                      padding_mode, device=device, dtype=dtype, algorithm=algorithm)
        self._lazy_params(out_channels, bias, device, dtype)

    doc = f"""A :class:`anyconv.nn.ConvTranspose{n}d` whose ``in_channels`` is read from the first input.

    Drop-in ``torch.nn.LazyConvTranspose{n}d``: ``LazyConvTranspose{n}d(out_channels,
    kernel_size, stride=1, padding=0, output_padding=0, groups=1, bias=True, dilation=1,
    padding_mode='zeros', device=None, dtype=None, algorithm='auto')``; see :mod:`anyconv.nn.lazy`.
    """
    return type(name, (_LazyConv, base), {"__init__": __init__, "__doc__": doc, "_N": n,
                                          "cls_to_become": base, "__module__": __name__})


LazyConv1d = _lazy_conv(Conv1d, 1)
LazyConv2d = _lazy_conv(Conv2d, 2)
LazyConv3d = _lazy_conv(Conv3d, 3)
LazyConvTranspose1d = _lazy_conv_transpose(ConvTranspose1d, 1)
LazyConvTranspose2d = _lazy_conv_transpose(ConvTranspose2d, 2)
LazyConvTranspose3d = _lazy_conv_transpose(ConvTranspose3d, 3)

# torch.nn class -> anyconv.nn class, used by anyconv.nn.convert (an uninitialised torch lazy
# layer; an initialised one is already torch's Conv*d and swapped by the conv table)
TORCH_EQUIVALENTS: dict[type[torch.nn.Module], type[torch.nn.Module]] = {
    torch.nn.LazyConv1d: LazyConv1d,
    torch.nn.LazyConv2d: LazyConv2d,
    torch.nn.LazyConv3d: LazyConv3d,
    torch.nn.LazyConvTranspose1d: LazyConvTranspose1d,
    torch.nn.LazyConvTranspose2d: LazyConvTranspose2d,
    torch.nn.LazyConvTranspose3d: LazyConvTranspose3d,
}
