"""anyconv's max unpooling and fractional max pooling modules (drop-in subclasses of torch's).

``MaxUnpool1d/2d/3d`` and ``FractionalMaxPool2d/3d`` subclass torch's classes (same
constructor, defaults, attributes, buffers and ``repr``) and override only ``forward``, which
calls :func:`anyconv.functional.max_unpool` / :func:`anyconv.functional.fractional_max_pool`.
``MaxUnpoolNd`` and ``FractionalMaxPoolNd`` take N from ``len(kernel_size)`` (else the input).
``algorithm=`` is accepted and stored as ``.algorithm`` like the other pooling modules (these
ops have a single implementation).

Examples:
    >>> import torch, anyconv
    >>> pool, unpool = anyconv.nn.MaxPool2d(2, return_indices=True), anyconv.nn.MaxUnpool2d(2)
    >>> unpool
    MaxUnpool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))
    >>> y, i = pool(torch.randn(1, 4, 6, 6))
    >>> unpool(y, i).shape
    torch.Size([1, 4, 6, 6])
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch
from torch.nn.modules import pooling as tp

from .. import functional as AF

__all__ = [
    "FractionalMaxPool2d",
    "FractionalMaxPool3d",
    "FractionalMaxPoolNd",
    "MaxUnpool1d",
    "MaxUnpool2d",
    "MaxUnpool3d",
    "MaxUnpoolNd",
]


class _UnpoolMixin:
    _N: int | None = None

    def forward(self, input: torch.Tensor, indices: torch.Tensor,
                output_size: Sequence[int] | None = None) -> torch.Tensor:
        s: Any = self
        op = "max_unpool" if self._N is None else f"max_unpool{self._N}d"
        return AF.max_unpool(input, indices, s.kernel_size, s.stride, s.padding, output_size, _op=op, _n=self._N)


def _subclass(mixin: type, base: type[torch.nn.Module], n: int, fn: str) -> type[torch.nn.Module]:
    """``base``'s subclass whose forward is ``mixin``'s, with torch's constructor plus ``algorithm=``."""

    def __init__(self: Any, *args: Any, algorithm: str = "auto", **kwargs: Any) -> None:
        base.__init__(self, *args, **kwargs)
        self.algorithm = algorithm

    sig = inspect.signature(base.__init__)
    extra = inspect.Parameter("algorithm", inspect.Parameter.KEYWORD_ONLY, default="auto")
    __init__.__signature__ = sig.replace(parameters=[*sig.parameters.values(), extra])  # type: ignore[attr-defined]
    doc = f""":class:`torch.nn.{base.__name__}` computed by :func:`anyconv.functional.{fn}`."""
    return type(base.__name__, (mixin, base), {"_N": n, "__init__": __init__, "__doc__": doc, "__module__": __name__})


MaxUnpool1d = _subclass(_UnpoolMixin, torch.nn.MaxUnpool1d, 1, "max_unpool")
MaxUnpool2d = _subclass(_UnpoolMixin, torch.nn.MaxUnpool2d, 2, "max_unpool")
MaxUnpool3d = _subclass(_UnpoolMixin, torch.nn.MaxUnpool3d, 3, "max_unpool")


class MaxUnpoolNd(_UnpoolMixin, tp._MaxUnpoolNd):
    """N-d max unpooling module (N from ``len(kernel_size)``, else ``input.dim() - 2``).

    Examples:
        >>> import torch, anyconv
        >>> y, i = anyconv.functional.max_pool(torch.randn(1, 2, 4, 4, 4, 4), 2, return_indices=True)
        >>> anyconv.nn.MaxUnpoolNd((2, 2, 2, 2))(y, i).shape
        torch.Size([1, 2, 4, 4, 4, 4])
    """

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, *, algorithm: str = "auto") -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.algorithm = algorithm


class _FractionalMixin:
    _N: int | None = None

    def forward(self, input: torch.Tensor) -> Any:
        s: Any = self
        op = "fractional_max_pool" if self._N is None else f"fractional_max_pool{self._N}d"
        return AF.fractional_max_pool(input, s.kernel_size, s.output_size, s.output_ratio, s.return_indices,
                                      s._random_samples, _op=op, _n=self._N)


FractionalMaxPool2d = _subclass(_FractionalMixin, torch.nn.FractionalMaxPool2d, 2, "fractional_max_pool")
FractionalMaxPool3d = _subclass(_FractionalMixin, torch.nn.FractionalMaxPool3d, 3, "fractional_max_pool")


class FractionalMaxPoolNd(_FractionalMixin, torch.nn.Module):
    """N-d fractional max pooling module (N from ``len(kernel_size)``, else ``input.dim() - 2``).

    Arguments are checked when called, by :func:`anyconv.functional.fractional_max_pool`.

    Examples:
        >>> import torch, anyconv
        >>> anyconv.nn.FractionalMaxPoolNd((2, 2, 2, 2), output_ratio=0.5)(torch.randn(1, 2, 8, 8, 6, 6)).shape
        torch.Size([1, 2, 4, 4, 3, 3])
    """

    def __init__(self, kernel_size: Any, output_size: Any = None, output_ratio: Any = None,
                 return_indices: bool = False, _random_samples: torch.Tensor | None = None, *,
                 algorithm: str = "auto") -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.output_size = output_size
        self.output_ratio = output_ratio
        self.return_indices = return_indices
        self.register_buffer("_random_samples", _random_samples)
        self.algorithm = algorithm

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, output_size={self.output_size}, output_ratio={self.output_ratio}"


# torch.nn class -> anyconv.nn class, used by anyconv.nn.convert
TORCH_EQUIVALENTS: dict[type[torch.nn.Module], type[torch.nn.Module]] = {
    torch.nn.MaxUnpool1d: MaxUnpool1d,
    torch.nn.MaxUnpool2d: MaxUnpool2d,
    torch.nn.MaxUnpool3d: MaxUnpool3d,
    torch.nn.FractionalMaxPool2d: FractionalMaxPool2d,
    torch.nn.FractionalMaxPool3d: FractionalMaxPool3d,
}
