"""Torch-named aliases with torch's own signatures (plus anyconv's extra keywords)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..core.args import torch_form
from ..core.errors import value_error
from ..core.types import IntOrSeq, PaddingArg, PaddingMode
from .conv import conv
from .conv_transpose import conv_transpose


def _check_n(op: str, weight: Any, n: int) -> None:
    if isinstance(weight, torch.Tensor) and weight.dim() != n + 2:
        value_error(op, "weight", weight, f"a {n + 2}-d tensor (C_out, C_in // groups, *{n} kernel dims)")


def _make_conv(n: int) -> Any:
    name = f"conv{n}d"

    def fn(
        input: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None = None,
        stride: IntOrSeq = 1,
        padding: PaddingArg = 0,
        dilation: IntOrSeq = 1,
        groups: int = 1,
        *,
        padding_mode: PaddingMode = "zeros",
        flip: bool = False,
        algorithm: str = "auto",
    ) -> torch.Tensor:
        _check_n(name, weight, n)
        stride, padding, dilation = torch_form(stride, n), torch_form(padding, n), torch_form(dilation, n)
        return conv(input, weight, bias, stride, padding, dilation, groups, padding_mode, flip, algorithm, _op=name)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"""{n}-d convolution with ``torch.nn.functional.{name}``'s signature.

    See :func:`anyconv.functional.conv` (every padding form, ``padding_mode``, ``flip`` and
    ``algorithm`` are accepted as keywords). A one-element ``stride``, ``padding`` or
    ``dilation`` sequence is broadcast to every spatial dim, as torch.
    """
    return fn


def _make_conv_transpose(n: int) -> Any:
    name = f"conv_transpose{n}d"

    def fn(
        input: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None = None,
        stride: IntOrSeq = 1,
        padding: PaddingArg = 0,
        output_padding: IntOrSeq = 0,
        groups: int = 1,
        dilation: IntOrSeq = 1,
        *,
        output_size: Sequence[int] | None = None,
        algorithm: str = "auto",
    ) -> torch.Tensor:
        _check_n(name, weight, n)
        stride, padding, dilation = torch_form(stride, n), torch_form(padding, n), torch_form(dilation, n)
        output_padding = torch_form(output_padding, n)
        return conv_transpose(
            input, weight, bias, stride, padding, output_padding, groups, dilation, output_size, algorithm, _op=name
        )

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"""{n}-d transposed convolution with ``torch.nn.functional.{name}``'s signature.

    See :func:`anyconv.functional.conv_transpose`. A one-element ``stride``, ``padding``,
    ``output_padding`` or ``dilation`` sequence is broadcast to every spatial dim, as torch.
    """
    return fn


conv1d = _make_conv(1)
conv2d = _make_conv(2)
conv3d = _make_conv(3)
conv_transpose1d = _make_conv_transpose(1)
conv_transpose2d = _make_conv_transpose(2)
conv_transpose3d = _make_conv_transpose(3)
