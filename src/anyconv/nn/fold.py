"""``Fold`` and ``Unfold`` modules: drop-in ``torch.nn.Fold``/``torch.nn.Unfold`` for any N.

Both subclass torch's classes (same constructor arguments, attributes and ``repr``) and
forward to :func:`anyconv.functional.fold` / :func:`anyconv.functional.unfold`, which serve
any number of spatial dims and every padding form. N is the length of a sequence
``kernel_size`` (or ``output_size`` for ``Fold``); with ints, ``Fold`` is 2-d as torch's and
``Unfold`` reads N from the input: 2 for a 3-d (unbatched image, as torch) or 4-d input,
``input.dim() - 2`` for larger ones.

Examples:
    >>> import torch, anyconv
    >>> unfold = anyconv.nn.Unfold(kernel_size=(2, 2, 2), stride=2)
    >>> cols = unfold(torch.randn(1, 3, 4, 4, 4))
    >>> cols.shape
    torch.Size([1, 24, 8])
    >>> anyconv.nn.Fold(output_size=(4, 4, 4), kernel_size=(2, 2, 2), stride=2)(cols).shape
    torch.Size([1, 3, 4, 4, 4])
    >>> anyconv.nn.Unfold(3, padding=1)
    Unfold(kernel_size=3, dilation=1, padding=1, stride=1)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..functional.fold import fold, unfold

__all__ = ["Fold", "Unfold"]


class Fold(torch.nn.Fold):
    """Combine sliding blocks into an N-d tensor (col2im, overlaps summed), as ``torch.nn.Fold``.

    Args:
        output_size: the spatial size of the result (an int: 2-d; or N ints).
        kernel_size, dilation, stride: an int or N ints.
        padding: an int, N ints, N ``(before, after)`` pairs or a padding string.

    Shape:
        ``(B, C * prod(kernel_size), L) -> (B, C, *output_size)``, unbatched
        ``(C * prod(kernel_size), L) -> (C, *output_size)``; ``L`` is the number of blocks
        (see :func:`anyconv.functional.fold`).
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return fold(input, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride)


class Unfold(torch.nn.Unfold):
    """Extract sliding blocks (im2col) from an N-d input, as ``torch.nn.Unfold``.

    Args:
        kernel_size, dilation, stride: an int or N ints.
        padding: an int, N ints, N ``(before, after)`` pairs or a padding string.

    Shape:
        ``(B, C, *spatial) -> (B, C * prod(kernel_size), L)``, unbatched
        ``(C, *spatial) -> (C * prod(kernel_size), L)`` (see :func:`anyconv.functional.unfold`).
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        kernel = self.kernel_size
        if not isinstance(kernel, Sequence) and isinstance(input, torch.Tensor) and input.dim() == 3:
            kernel = (kernel, kernel)  # torch's Unfold: a 3-d input is one unbatched image
        return unfold(input, kernel, self.dilation, self.padding, self.stride)


# torch.nn class -> anyconv.nn class, used by anyconv.nn.convert
TORCH_EQUIVALENTS: dict[type[torch.nn.Module], type[torch.nn.Module]] = {
    torch.nn.Fold: Fold,
    torch.nn.Unfold: Unfold,
}
