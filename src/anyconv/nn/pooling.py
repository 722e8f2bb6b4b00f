"""anyconv's pooling modules: drop-in subclasses of torch.nn's pooling layers.

Each class subclasses torch's (same constructor, defaults, attributes and ``repr``) and
overrides only ``forward``, which calls ``anyconv.functional``. Every padding form is
accepted (``padding=((1, 0), (0, 1))``, ``"same"``...), ``dilation=`` also for average and
lp pooling, ``padding=`` also for lp pooling, and ``algorithm=`` is accepted and stored as
``.algorithm`` (pooling has a single implementation, so it is not used). The ``Nd`` classes
take the number of spatial dims from ``len(kernel_size)`` (or the input when it is an int).

Examples:
    >>> import torch, anyconv
    >>> pool = anyconv.nn.MaxPool2d(3, stride=2, padding="same")
    >>> pool
    MaxPool2d(kernel_size=3, stride=2, padding=same, dilation=1, ceil_mode=False)
    >>> pool(torch.randn(1, 8, 7, 7)).shape
    torch.Size([1, 8, 4, 4])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.nn.modules import pooling as tp

from .. import functional as AF

__all__ = [
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "AvgPoolNd",
    "LPPool1d",
    "LPPool2d",
    "LPPool3d",
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "MaxPoolNd",
]


def _raw_padding(padding: Any) -> bool:
    """True for padding forms torch's constructors would mangle (strings, pairs)."""
    return isinstance(padding, str) or (
        isinstance(padding, Sequence) and any(isinstance(p, Sequence) for p in padding)
    )


class _MaxMixin:
    _N: int | None = None

    def forward(self, input: torch.Tensor) -> Any:
        op = "max_pool" if self._N is None else f"max_pool{self._N}d"
        s: Any = self
        return AF.max_pool(input, s.kernel_size, s.stride, s.padding, s.dilation, s.ceil_mode,
                           s.return_indices, _op=op, _n=self._N)


class _MaxBase(_MaxMixin, tp._MaxPoolNd):
    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                 return_indices: bool = False, ceil_mode: bool = False, *, algorithm: str = "auto") -> None:
        tp._MaxPoolNd.__init__(self, kernel_size, stride, padding, dilation, return_indices, ceil_mode)
        self.algorithm = algorithm


class MaxPool1d(_MaxMixin, torch.nn.MaxPool1d):
    """:class:`torch.nn.MaxPool1d` computed by :func:`anyconv.functional.max_pool` (any padding form)."""

    _N = 1
    __init__ = _MaxBase.__init__  # type: ignore[assignment]


class MaxPool2d(_MaxMixin, torch.nn.MaxPool2d):
    """:class:`torch.nn.MaxPool2d` computed by :func:`anyconv.functional.max_pool` (any padding form)."""

    _N = 2
    __init__ = _MaxBase.__init__  # type: ignore[assignment]


class MaxPool3d(_MaxMixin, torch.nn.MaxPool3d):
    """:class:`torch.nn.MaxPool3d` computed by :func:`anyconv.functional.max_pool` (any padding form)."""

    _N = 3
    __init__ = _MaxBase.__init__  # type: ignore[assignment]


class MaxPoolNd(_MaxBase):
    """N-d max pooling module (N from ``len(kernel_size)``, else ``input.dim() - 2``)."""


class _AvgMixin:
    _N: int | None = None

    def _init_avg(self, kernel_size: Any, stride: Any, padding: Any, ceil_mode: bool, count_include_pad: bool,
                  divisor_override: int | None, dilation: Any, algorithm: str) -> None:
        s: Any = self
        if _raw_padding(padding):
            s.padding = padding
        s.divisor_override = divisor_override
        s.dilation = dilation
        s.algorithm = algorithm

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        s: Any = self
        op = "avg_pool" if self._N is None else f"avg_pool{self._N}d"
        return AF.avg_pool(input, s.kernel_size, s.stride, s.padding, s.ceil_mode, s.count_include_pad,
                           getattr(s, "divisor_override", None), getattr(s, "dilation", 1), _op=op, _n=self._N)


class AvgPool1d(_AvgMixin, torch.nn.AvgPool1d):
    """:class:`torch.nn.AvgPool1d` computed by :func:`anyconv.functional.avg_pool` (+ dilation, divisor)."""

    _N = 1

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True, *, divisor_override: int | None = None, dilation: Any = 1,
                 algorithm: str = "auto") -> None:
        super().__init__(kernel_size, stride, 0 if _raw_padding(padding) else padding, ceil_mode, count_include_pad)
        self._init_avg(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, dilation,
                       algorithm)


class _AvgBase(_AvgMixin, tp._AvgPoolNd):
    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None, *, dilation: Any = 1,
                 algorithm: str = "auto") -> None:
        torch.nn.Module.__init__(self)
        s: Any = self
        s.kernel_size = kernel_size
        s.stride = stride if stride is not None else kernel_size
        s.padding = padding
        s.ceil_mode = ceil_mode
        s.count_include_pad = count_include_pad
        self._init_avg(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, dilation,
                       algorithm)


class AvgPool2d(_AvgMixin, torch.nn.AvgPool2d):
    """:class:`torch.nn.AvgPool2d` computed by :func:`anyconv.functional.avg_pool` (+ dilation)."""

    _N = 2
    __init__ = _AvgBase.__init__  # type: ignore[assignment]


class AvgPool3d(_AvgMixin, torch.nn.AvgPool3d):
    """:class:`torch.nn.AvgPool3d` computed by :func:`anyconv.functional.avg_pool` (+ dilation)."""

    _N = 3
    __init__ = _AvgBase.__init__  # type: ignore[assignment]


class AvgPoolNd(_AvgBase):
    """N-d average pooling module (N from ``len(kernel_size)``, else ``input.dim() - 2``)."""


class _LPMixin:
    _N: int = 1

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        s: Any = self
        return AF.lp_pool(input, s.norm_type, s.kernel_size, s.stride, getattr(s, "padding", 0), s.ceil_mode,
                          getattr(s, "dilation", 1), _op=f"lp_pool{self._N}d", _n=self._N)


def _lp_init(self: Any, norm_type: float, kernel_size: Any, stride: Any = None, ceil_mode: bool = False, *,
             padding: Any = 0, dilation: Any = 1, algorithm: str = "auto") -> None:
    tp._LPPoolNd.__init__(self, norm_type, kernel_size, stride, ceil_mode)
    self.padding = padding
    self.dilation = dilation
    self.algorithm = algorithm


class LPPool1d(_LPMixin, torch.nn.LPPool1d):
    """:class:`torch.nn.LPPool1d` computed by :func:`anyconv.functional.lp_pool` (+ padding, dilation)."""

    _N = 1
    __init__ = _lp_init


class LPPool2d(_LPMixin, torch.nn.LPPool2d):
    """:class:`torch.nn.LPPool2d` computed by :func:`anyconv.functional.lp_pool` (+ padding, dilation)."""

    _N = 2
    __init__ = _lp_init


class LPPool3d(_LPMixin, torch.nn.LPPool3d):
    """:class:`torch.nn.LPPool3d` computed by :func:`anyconv.functional.lp_pool` (+ padding, dilation)."""

    _N = 3
    __init__ = _lp_init


def _adaptive(base: type[torch.nn.Module], n: int, kind: str) -> type[torch.nn.Module]:
    def init_max(self: Any, output_size: Any, return_indices: bool = False, *, algorithm: str = "auto") -> None:
        base.__init__(self, output_size, return_indices)
        self.algorithm = algorithm

    def init_avg(self: Any, output_size: Any, *, algorithm: str = "auto") -> None:
        base.__init__(self, output_size)
        self.algorithm = algorithm

    def forward(self: Any, input: torch.Tensor) -> Any:
        if kind == "max":
            return AF.adaptive_max_pool(input, self.output_size, self.return_indices,
                                        _op=f"adaptive_max_pool{n}d", _n=n)
        return AF.adaptive_avg_pool(input, self.output_size, _op=f"adaptive_avg_pool{n}d", _n=n)

    name = f"Adaptive{kind.capitalize()}Pool{n}d"
    doc = f""":class:`torch.nn.{name}` computed by :func:`anyconv.functional.adaptive_{kind}_pool`."""
    return type(name, (base,), {"__init__": init_max if kind == "max" else init_avg, "forward": forward, "__doc__": doc, "__module__": __name__})


AdaptiveAvgPool1d = _adaptive(torch.nn.AdaptiveAvgPool1d, 1, "avg")
AdaptiveAvgPool2d = _adaptive(torch.nn.AdaptiveAvgPool2d, 2, "avg")
AdaptiveAvgPool3d = _adaptive(torch.nn.AdaptiveAvgPool3d, 3, "avg")
AdaptiveMaxPool1d = _adaptive(torch.nn.AdaptiveMaxPool1d, 1, "max")
AdaptiveMaxPool2d = _adaptive(torch.nn.AdaptiveMaxPool2d, 2, "max")
AdaptiveMaxPool3d = _adaptive(torch.nn.AdaptiveMaxPool3d, 3, "max")

# torch.nn class -> anyconv.nn class, used by anyconv.nn.convert
TORCH_EQUIVALENTS: dict[type[torch.nn.Module], type[torch.nn.Module]] = {
    torch.nn.MaxPool1d: MaxPool1d,
    torch.nn.MaxPool2d: MaxPool2d,
    torch.nn.MaxPool3d: MaxPool3d,
    torch.nn.AvgPool1d: AvgPool1d,
    torch.nn.AvgPool2d: AvgPool2d,
    torch.nn.AvgPool3d: AvgPool3d,
    torch.nn.LPPool1d: LPPool1d,
    torch.nn.LPPool2d: LPPool2d,
    torch.nn.LPPool3d: LPPool3d,
    torch.nn.AdaptiveAvgPool1d: AdaptiveAvgPool1d,
    torch.nn.AdaptiveAvgPool2d: AdaptiveAvgPool2d,
    torch.nn.AdaptiveAvgPool3d: AdaptiveAvgPool3d,
    torch.nn.AdaptiveMaxPool1d: AdaptiveMaxPool1d,
    torch.nn.AdaptiveMaxPool2d: AdaptiveMaxPool2d,
    torch.nn.AdaptiveMaxPool3d: AdaptiveMaxPool3d,
}
