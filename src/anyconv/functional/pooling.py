"""Max, average and power-average (lp) pooling for any number of spatial dims.

All three go through one front door (``anyconv.core.pool_spec.pool_spec``) and one loop over
kernel offsets (``_pool_kernels``); gradients are rules (``_pool_autograd``). Adaptive pooling
is in ``adaptive.py`` and the torch-named aliases in ``_pool_aliases.py`` (which imports this module;
``anyconv.functional`` lists them all).
"""

from __future__ import annotations

from typing import Any

import torch

from ..core.pool_spec import PoolSpec, pool_spec
from ..core.types import IntOrSeq, PaddingArg
from ..ops._pool_kernels import window_counts
from . import _layout
from ._pool_autograd import max_pool_values, window_sum_op


def _batch(x: torch.Tensor, batched: bool) -> torch.Tensor:
    return x if batched else x.unsqueeze(0)


def _unbatch(y: torch.Tensor, batched: bool) -> torch.Tensor:
    return y if batched else y.squeeze(0)


def max_pool(
    input: torch.Tensor,
    kernel_size: IntOrSeq,
    stride: IntOrSeq | None = None,
    padding: PaddingArg = 0,
    dilation: IntOrSeq = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
    *,
    _op: str = "max_pool",
    _n: int | None = None,
) -> Any:
    r"""N-d max pooling (padding counts as ``-inf``).

    .. math::
        y[b, c, p] = \max_{q < k,\; 0 \le p s - b_{pad} + q d < in} x[b, c, p s - b_{pad} + q d]

    ``N = len(kernel_size)`` for a sequence, else ``input.dim() - 2``. Ties pick the first
    maximum in window scan order and NaN propagates (the last NaN is picked), as in torch.

    Args:
        input: ``(B, C, *spatial)`` or unbatched ``(C, *spatial)``.
        kernel_size: an int or N ints.
        stride: an int or N ints; ``None`` (default) means ``kernel_size``.
        padding: an int, N ints, N ``(before, after)`` pairs (any size), ``"valid"``,
            ``"same"``/``"same_lower"`` (output ``ceil(in / stride)``) or ``"causal"``.
        dilation: an int or N ints.
        ceil_mode: round the output size up (a window starting in the end padding is dropped).
        return_indices: also return the argmax as a flat index into each channel's input.

    Shape:
        ``out_i = floor_or_ceil((in_i + before_i + after_i - dilation_i * (k_i - 1) - 1) / stride_i) + 1``

    Raises:
        ValueError, TypeError: for bad arguments (naming the parameter), before any work.

    Examples:
        >>> import torch, anyconv.functional as AF
        >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> AF.max_pool(x, 3, stride=2, padding=1).tolist()
        [[[[5.0, 7.0], [13.0, 15.0]]]]
        >>> AF.max_pool(torch.randn(2, 3, 5, 6, 7, 8), 3, stride=2, padding="same").shape
        torch.Size([2, 3, 3, 3, 4, 4])
    """
    spec = pool_spec(_op, input, kernel_size, stride, padding, dilation, ceil_mode, n=_n,
                     return_indices=return_indices)
    return max_pool_checked(input, spec)


def max_pool_checked(input: torch.Tensor, spec: PoolSpec) -> Any:
    """:func:`max_pool` of ``input`` under an already validated ``spec`` (the shared entry)."""
    fmt = _layout.channels_last(input) if spec.batched else None  # torch: the output follows the input
    out, idx = max_pool_values(_layout.row_major(_batch(input, spec.batched), fmt), spec, spec.return_indices)
    out = _layout.restore(out, fmt)
    if spec.return_indices:
        assert idx is not None
        return _unbatch(out, spec.batched), _unbatch(_layout.restore(idx, fmt), spec.batched)
    return _unbatch(out, spec.batched)


def avg_pool(
    input: torch.Tensor,
    kernel_size: IntOrSeq,
    stride: IntOrSeq | None = None,
    padding: PaddingArg = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
    dilation: IntOrSeq = 1,
    *,
    _op: str = "avg_pool",
    _n: int | None = None,
) -> torch.Tensor:
    r"""N-d average pooling (padding counts as zeros).

    .. math::
        y[b, c, p] = \frac{1}{D_p} \sum_{q < k,\; 0 \le p s - b_{pad} + q d < in} x[b, c, p s - b_{pad} + q d]

    ``D_p`` is ``divisor_override`` if given, else the number of window elements inside the
    padded input (``count_include_pad=True``; elements past the end padding, reached only by
    ``ceil_mode`` windows, never count) or inside the input (``count_include_pad=False``).
    ``dilation`` goes beyond torch (ONNX opset 19).

    Args:
        input: ``(B, C, *spatial)`` or unbatched ``(C, *spatial)``.
        kernel_size, stride, padding, dilation, ceil_mode: as in :func:`max_pool`.
        count_include_pad: count padding elements in the divisor.
        divisor_override: a positive int used as the divisor everywhere.

    Shape:
        as :func:`max_pool`.

    Raises:
        ValueError, TypeError: for bad arguments (naming the parameter), before any work.

    Examples:
        >>> import torch, anyconv.functional as AF
        >>> AF.avg_pool(torch.arange(9.0).reshape(1, 3, 3), (2, 2), stride=1).tolist()
        [[[2.0, 3.0], [5.0, 6.0]]]
        >>> AF.avg_pool(torch.ones(1, 1, 4), 3, stride=1, padding=((2, 0),), count_include_pad=False).shape
        torch.Size([1, 1, 4])
    """
    spec = pool_spec(_op, input, kernel_size, stride, padding, dilation, ceil_mode, n=_n,
                     count_include_pad=count_include_pad, divisor_override=divisor_override)
    return avg_pool_checked(input, spec)


def avg_pool_checked(input: torch.Tensor, spec: PoolSpec) -> torch.Tensor:
    """:func:`avg_pool` of ``input`` under an already validated ``spec`` (the shared entry)."""
    fmt = _layout.channels_last(input, ranks=(4,)) if spec.batched else None  # torch: follows a 4-D input
    x = _layout.row_major(_batch(input, spec.batched), fmt)
    total = window_sum_op(x, spec)
    # in place: the window sum's backward does not need its output
    if spec.divisor_override is not None:
        y = total.div_(spec.divisor_override)
    else:
        y = total.div_(window_counts(spec, spec.count_include_pad, x.device, total.dtype))
    return _unbatch(_layout.restore(y.to(input.dtype), fmt), spec.batched)


def lp_pool(
    input: torch.Tensor,
    norm_type: float,
    kernel_size: IntOrSeq,
    stride: IntOrSeq | None = None,
    padding: PaddingArg = 0,
    ceil_mode: bool = False,
    dilation: IntOrSeq = 1,
    *,
    _op: str = "lp_pool",
    _n: int | None = None,
) -> torch.Tensor:
    r"""N-d power-average pooling, computed exactly as torch does.

    .. math::
        y = \left(\operatorname{sign}(a) \operatorname{relu}(|a|) \cdot \prod k\right)^{1/p},
        \quad a = \operatorname{avg\_pool}(x^p)

    (``count_include_pad=True``; padding counts as zeros). Away from ``ceil_mode`` windows this
    is ``(sum_window x^p)^(1/p)``; a ``ceil_mode`` window cut by the input end is rescaled by
    ``prod(k) / count`` as in torch, and a negative sum gives NaN (torch's sign/abs rule).

    Args:
        input: ``(B, C, *spatial)`` or unbatched ``(C, *spatial)``.
        norm_type: the power ``p`` (non-zero); ``inf`` gives the max of ``|x|`` and ``-inf``
            the min of ``|x|`` over each window, as in torch.
        kernel_size, stride, padding, dilation, ceil_mode: as in :func:`max_pool`
            (``padding`` and ``dilation`` go beyond torch).

    Shape:
        as :func:`max_pool`.

    Raises:
        ValueError, TypeError: for bad arguments (naming the parameter), before any work.

    Examples:
        >>> import torch, anyconv.functional as AF
        >>> AF.lp_pool(torch.tensor([[[3.0, 4.0, 0.0, 5.0]]]), 2, 2).tolist()
        [[[5.0, 5.0]]]
    """
    spec = pool_spec(_op, input, kernel_size, stride, padding, dilation, ceil_mode, n=_n,
                     norm_type=norm_type)
    p = spec.norm_type
    assert p is not None
    if p in (float("inf"), float("-inf")):  # torch: max of |x| (inf) or min of |x| (-inf)
        sign = 1.0 if p > 0 else -1.0
        m = sign * max_pool_checked(sign * input.abs(), spec)  # spec: no indices
        if p < 0 and any(b or a for b, a in spec.padding):  # zero padding: a padded window's min is 0
            x = _batch(input, spec.batched)
            touches = window_counts(spec, True, x.device, x.dtype)
            inside = window_counts(spec, False, x.device, x.dtype)
            if isinstance(touches, torch.Tensor) or isinstance(inside, torch.Tensor) or touches != inside:
                keep = torch.as_tensor(touches) == torch.as_tensor(inside)
                m = torch.where(keep.to(m.device), m, torch.zeros((), dtype=m.dtype, device=m.device))
        return m
    a = avg_pool_checked(input.pow(p), spec)  # spec: count_include_pad, no divisor_override
    size = 1
    for k in spec.kernel:
        size *= k
    return (torch.sign(a) * torch.relu(torch.abs(a))).mul(size).pow(1.0 / p)

__all__ = ["avg_pool", "lp_pool", "max_pool"]
