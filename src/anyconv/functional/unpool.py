"""Max unpooling for any number of spatial dims: the partial inverse of max pooling.

Each input value goes to the flat position its index names in its channel's output plane;
every other output element is zero. When two inputs name the same position the later one
in memory order wins (torch's CPU loop writes them in that order), found deterministically
with a ``scatter_reduce(amax)`` of input positions. The gradient is torch's: grad_input is
grad_output read at the indices (``anyconv::index_gather``, whose own gradient is the scatter-add
``anyconv::index_scatter``), so second derivatives come from the same rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..core import shapes as _shapes
from ..core.types import IntOrSeq, IntPadding
from ..core.unpool_spec import UnpoolSpec, check_index_range, unpool_spec
from . import _layout
from ._pool_autograd import call_index_gather


def _unpool_raw(x: torch.Tensor, idx: torch.Tensor, out_spatial: tuple[int, ...]) -> torch.Tensor:
    """``(B, C, *in)`` values placed at flat indices of zeros ``(B, C, *out_spatial)`` (last one wins)."""
    b, c = x.shape[:2]
    flat_idx = idx.flatten(2)  # (flatten: a batch of 0 has no -1 to infer)
    pos = torch.arange(flat_idx.shape[2], device=x.device).expand_as(flat_idx)
    # the last input position writing each output position; -1 where none does
    last = torch.full((b, c, _shapes.prod(out_spatial)), -1, dtype=torch.int64, device=x.device)
    last.scatter_reduce_(2, flat_idx, pos, "amax")
    vals = x.flatten(2).gather(2, last.clamp(min=0))
    out = torch.where(last >= 0, vals, torch.zeros((), dtype=x.dtype, device=x.device))
    return out.reshape(b, c, *out_spatial)


class MaxUnpool(torch.autograd.Function):
    """``y = unpool(x, idx)``; gradient: ``gather(g, idx)`` (torch's rule)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, idx: torch.Tensor, out_spatial: tuple[int, ...]) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(idx)
        ctx.mark_non_differentiable(idx)
        return _unpool_raw(x, idx, out_spatial)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        (idx,) = ctx.saved_tensors
        return call_index_gather(g, idx), None, None


def _run(input: torch.Tensor, indices: torch.Tensor, spec: UnpoolSpec) -> torch.Tensor:
    size = _shapes.prod(spec.out_spatial)
    check_index_range(spec.op, "indices", indices, 0, size,
                      f"flat per-channel indices into the output plane, in [0, {size}) for output {spec.out_spatial}")
    x = input if spec.batched else input.unsqueeze(0)
    idx = indices if spec.batched else indices.unsqueeze(0)
    if torch.is_grad_enabled() and x.requires_grad:
        y = MaxUnpool.apply(x, idx, spec.out_spatial)
    else:
        y = _unpool_raw(x, idx, spec.out_spatial)
    # torch's layout: a 2-D output follows its input's (the values'), a 3-D one is row-major
    return _layout.restore(y, _layout.channels_last(input, ranks=(4,))) if spec.batched else y.squeeze(0)


def max_unpool(
    input: torch.Tensor,
    indices: torch.Tensor,
    kernel_size: IntOrSeq,
    stride: IntOrSeq | None = None,
    padding: IntPadding = 0,
    output_size: Sequence[int] | None = None,
    *,
    _op: str = "max_unpool",
    _n: int | None = None,
) -> torch.Tensor:
    r"""N-d max unpooling: the partial inverse of :func:`max_pool` with ``return_indices=True``.

    .. math::
        y[b, c, \mathrm{idx}[b, c, p]] = x[b, c, p], \quad y = 0 \text{ elsewhere}

    (flat indices into each channel's output plane, torch's layout; when indices repeat, the
    last input in memory order wins, as torch's CPU kernel). ``N = len(kernel_size)`` for a
    sequence, else ``input.dim() - 2``. The gradient is torch's: ``grad_input =
    grad_output`` read at ``indices``; ``indices`` is not differentiable.

    Args:
        input: ``(B, C, *spatial)`` or unbatched ``(C, *spatial)``.
        indices: int64, the shape of ``input``, values in ``[0, prod(output spatial))``.
        kernel_size: an int or N ints (of the max pooling being inverted).
        stride: an int or N ints; ``None``, ``()`` or ``[]`` (default) means ``kernel_size``.
        padding: an int, N ints, or N ``(before, after)`` pairs.
        output_size: N spatial sizes (or N + 2 with batch and channels, as torch), each
            strictly between ``default - stride`` and ``default + stride``.

    Shape:
        ``out_i = (in_i - 1) * stride_i + kernel_i - before_i - after_i`` (the default).

    Raises:
        ValueError, TypeError: for bad arguments (naming the parameter), before any work;
            ``indices`` out of range is a ValueError (a data check, skipped on meta tensors).

    Examples:
        >>> import torch, anyconv.functional as AF
        >>> x = torch.tensor([[[1.0, 4.0, 2.0, 3.0]]])
        >>> y, i = AF.max_pool(x, 2, return_indices=True)
        >>> AF.max_unpool(y, i, 2).tolist()
        [[[0.0, 4.0, 0.0, 3.0]]]
        >>> y, i = AF.max_pool(torch.randn(2, 3, 8, 7, 6, 5), 2, return_indices=True)
        >>> AF.max_unpool(y, i, 2, output_size=(8, 7, 6, 5)).shape
        torch.Size([2, 3, 8, 7, 6, 5])
    """
    spec = unpool_spec(_op, input, indices, kernel_size, stride, padding, output_size, n=_n)
    return _run(input, indices, spec)


def _make(n: int) -> Any:
    def fn(input: torch.Tensor, indices: torch.Tensor, kernel_size: IntOrSeq, stride: IntOrSeq | None = None,
           padding: IntPadding = 0, output_size: Sequence[int] | None = None) -> torch.Tensor:
        return max_unpool(input, indices, kernel_size, stride, padding, output_size, _op=f"max_unpool{n}d", _n=n)

    fn.__name__ = fn.__qualname__ = f"max_unpool{n}d"
    fn.__doc__ = f"""{n}-d max unpooling with ``torch.nn.functional.max_unpool{n}d``'s signature.

    See :func:`anyconv.functional.max_unpool` (``padding`` also takes ``(before, after)`` pairs).
    """
    return fn


max_unpool1d, max_unpool2d, max_unpool3d = (_make(n) for n in (1, 2, 3))

__all__ = ["max_unpool", "max_unpool1d", "max_unpool2d", "max_unpool3d"]
