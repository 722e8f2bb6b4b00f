"""Torch-named pooling aliases with torch's own signatures (plus anyconv's extra keywords).

``max_pool2d(x, 3, 2, 1)`` is ``max_pool(x, 3, 2, 1)`` with N fixed to 2: an int
``kernel_size`` means the same size in both dims, a sequence must have 2 entries, and the
input must be ``(B, C, H, W)`` or ``(C, H, W)``.
"""

from __future__ import annotations

from typing import Any

import torch

from ..core.types import IntOrSeq, OutputSize, PaddingArg
from .adaptive import adaptive_avg_pool, adaptive_max_pool
from .pooling import avg_pool, lp_pool, max_pool


def _name(fn: Any, name: str, doc: str) -> Any:
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    return fn


def _make_max(n: int) -> Any:
    def fn(input: torch.Tensor, kernel_size: IntOrSeq, stride: IntOrSeq | None = None, padding: PaddingArg = 0,
           dilation: IntOrSeq = 1, ceil_mode: bool = False, return_indices: bool = False) -> Any:
        return max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
                        _op=f"max_pool{n}d", _n=n)

    return _name(fn, f"max_pool{n}d", f"""{n}-d max pooling with ``torch.nn.functional.max_pool{n}d``'s signature.

    See :func:`anyconv.functional.max_pool` (every padding form is accepted).
    """)


def _make_avg(n: int) -> Any:
    def fn(input: torch.Tensor, kernel_size: IntOrSeq, stride: IntOrSeq | None = None, padding: PaddingArg = 0,
           ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: int | None = None, *,
           dilation: IntOrSeq = 1) -> torch.Tensor:

        return avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
                        dilation, _op=f"avg_pool{n}d", _n=n)

    return _name(fn, f"avg_pool{n}d", f"""{n}-d average pooling with ``torch.nn.functional.avg_pool{n}d``'s signature.

    See :func:`anyconv.functional.avg_pool` (every padding form and ``dilation=`` are accepted;
    ``divisor_override`` also in 1-d).
    """)


def _make_lp(n: int) -> Any:
    def fn(input: torch.Tensor, norm_type: float, kernel_size: IntOrSeq, stride: IntOrSeq | None = None,
           ceil_mode: bool = False, *, padding: PaddingArg = 0, dilation: IntOrSeq = 1) -> torch.Tensor:

        return lp_pool(input, norm_type, kernel_size, stride, padding, ceil_mode, dilation,
                       _op=f"lp_pool{n}d", _n=n)

    return _name(fn, f"lp_pool{n}d", f"""{n}-d power-average pooling with ``torch.nn.functional.lp_pool{n}d``'s signature.

    See :func:`anyconv.functional.lp_pool` (``padding=`` and ``dilation=`` go beyond torch).
    """)


def _make_adaptive_avg(n: int) -> Any:
    def fn(input: torch.Tensor, output_size: OutputSize) -> torch.Tensor:

        return adaptive_avg_pool(input, output_size, _op=f"adaptive_avg_pool{n}d", _n=n)

    return _name(fn, f"adaptive_avg_pool{n}d", f"""{n}-d adaptive average pooling (torch's signature).

    See :func:`anyconv.functional.adaptive_avg_pool`.
    """)


def _make_adaptive_max(n: int) -> Any:
    def fn(input: torch.Tensor, output_size: OutputSize, return_indices: bool = False) -> Any:

        return adaptive_max_pool(input, output_size, return_indices, _op=f"adaptive_max_pool{n}d", _n=n)

    return _name(fn, f"adaptive_max_pool{n}d", f"""{n}-d adaptive max pooling (torch's signature).

    See :func:`anyconv.functional.adaptive_max_pool`.
    """)


max_pool1d, max_pool2d, max_pool3d = (_make_max(n) for n in (1, 2, 3))
avg_pool1d, avg_pool2d, avg_pool3d = (_make_avg(n) for n in (1, 2, 3))
lp_pool1d, lp_pool2d, lp_pool3d = (_make_lp(n) for n in (1, 2, 3))
adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d = (_make_adaptive_avg(n) for n in (1, 2, 3))
adaptive_max_pool1d, adaptive_max_pool2d, adaptive_max_pool3d = (_make_adaptive_max(n) for n in (1, 2, 3))

__all__ = [
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "lp_pool1d",
    "lp_pool2d",
    "lp_pool3d",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
]
