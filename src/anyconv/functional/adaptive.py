"""Adaptive average and max pooling for any number of spatial dims.

Output cell ``j`` of a dim of input size ``i`` and output size ``o`` pools the input range
``[floor(j * i / o), ceil((j + 1) * i / o))`` (torch's windows, ``_shapes.adaptive_window``).
Both reductions are separable over dims because every window is a box:

- average: when ``o`` divides ``i`` in every dim the windows tile the input and the op is
  one reshape-mean (global pooling included); otherwise, for small output planes, one GEMM
  of the planes with the Kronecker product of the per-dim ``(i, o)`` averaging matrices
  (measured about 2x faster than torch's loop on 15x15 -> 4x4), else each dim in turn is
  multiplied by its averaging matrix. Gradients follow from those ops (a mean's gradient is
  a broadcast, a matrix's its transpose), to any order. A GEMM multiplies a NaN or Inf by the
  matrix's zeros and spreads NaN over the plane, so a non-finite operand (one sum,
  ``auto.finite``; about 8 us on 115K elements) takes window sums by gathers instead, forward
  and backward: NaN and Inf (with its sign) reach the outputs whose windows hold them, as torch.
- max: each dim in turn keeps a running max over the window's ``max length`` offsets
  (offsets past a window's end repeat its last element, which changes neither max nor
  argmax), carrying the flat argmax; the first maximum in scan order wins and the last NaN
  is picked, torch's rule. The gradient is the scatter rule of ``_pool_autograd``.
"""

from __future__ import annotations

from typing import Any

import torch

from ..core.errors import value_error
from ..core.pool_spec import AdaptiveSpec, adaptive_spec
from ..core.types import OutputSize
from ..ops._adaptive import call_adaptive_avg
from ..ops._adaptive_kernels import adaptive_max_raw
from . import _layout
from ._pool_autograd import max_pool_from_indices


def adaptive_avg_pool(input: torch.Tensor, output_size: OutputSize, *, _op: str = "adaptive_avg_pool",
                      _n: int | None = None) -> torch.Tensor:
    r"""N-d adaptive average pooling: the mean of each of ``prod(output_size)`` boxes.

    .. math::
        y[b, c, j] = \frac{1}{\prod_d (e_d - s_d)} \sum_{s \le p < e} x[b, c, p], \quad
        s_d = \lfloor j_d i_d / o_d \rfloor,\; e_d = \lceil (j_d + 1) i_d / o_d \rceil

    Args:
        input: ``(B, C, *spatial)`` or unbatched ``(C, *spatial)``.
        output_size: an int or N ints (``None`` keeps that dim's input size); N is its length
            for a sequence, else ``input.dim() - 2``.

    Shape:
        ``(B, C, *in) -> (B, C, *output_size)``

    Raises:
        ValueError, TypeError: for bad arguments (naming the parameter), before any work.

    Examples:
        >>> import torch, anyconv.functional as AF
        >>> AF.adaptive_avg_pool(torch.arange(5.0).reshape(1, 1, 5), 3).tolist()
        [[[0.5, 2.0, 3.5]]]
        >>> AF.adaptive_avg_pool(torch.randn(2, 8, 6, 7, 5, 3), (1, 2, None, 3)).shape
        torch.Size([2, 8, 1, 2, 5, 3])
    """
    spec = adaptive_spec(_op, input, output_size, n=_n)
    fmt = _layout.channels_last(input, ranks=(4,)) if spec.batched else None  # torch: follows a 4-D input
    x = _layout.row_major(input, fmt) if spec.batched else input.unsqueeze(0)
    y = _adaptive_avg(x, spec)
    return _layout.restore(y, fmt) if spec.batched else y.squeeze(0)


def _adaptive_avg(x: torch.Tensor, spec: AdaptiveSpec) -> torch.Tensor:
    pairs = list(zip(spec.in_spatial, spec.out_spatial))
    if all(o == 1 for o in spec.out_spatial):  # global average pooling
        return x.mean(dim=tuple(range(2, x.dim())), keepdim=True)
    if all(i % o == 0 for i, o in pairs):
        if all(i == o for i, o in pairs):
            return x.clone()
        shape: list[int] = [*x.shape[:2]]
        for i, o in pairs:
            shape += [o, i // o]
        return x.reshape(shape).mean(dim=[3 + 2 * d for d in range(spec.n)])
    # uneven windows: the operator (a GEMM or, for NaN/Inf, window sums: a data-dependent choice made
    # inside its real kernel, where tracing never sees it)
    return call_adaptive_avg(x, list(spec.in_spatial), list(spec.out_spatial))


def adaptive_max_pool(input: torch.Tensor, output_size: OutputSize, return_indices: bool = False, *,
                      _op: str = "adaptive_max_pool", _n: int | None = None) -> Any:
    r"""N-d adaptive max pooling: the maximum of each of ``prod(output_size)`` boxes.

    Windows as in :func:`adaptive_avg_pool`; ties pick the first maximum in window scan order
    and NaN propagates, as in torch. ``return_indices=True`` also returns the argmax as a flat
    index into each channel's input (torch's layout).

    Args:
        input: ``(B, C, *spatial)`` or unbatched ``(C, *spatial)``.
        output_size: an int or N ints (``None`` keeps that dim's input size).
        return_indices: also return the indices.

    Shape:
        ``(B, C, *in) -> (B, C, *output_size)``

    Raises:
        ValueError, TypeError: for bad arguments (naming the parameter), before any work.

    Examples:
        >>> import torch, anyconv.functional as AF
        >>> v, i = AF.adaptive_max_pool(torch.tensor([[[1.0, 5.0, 2.0, 0.0, 3.0]]]), 2, return_indices=True)
        >>> v.tolist(), i.tolist()
        ([[[5.0, 3.0]]], [[[1, 4]]])
    """
    spec = adaptive_spec(_op, input, output_size, n=_n, return_indices=return_indices)
    if spec.batched and input.shape[1] == 0:  # torch refuses 0 channels (batch 0 is fine)
        value_error(_op, "input", input, "sizes >= 1 in every dim but the batch dim")
    fmt = _layout.channels_last(input) if spec.batched else None  # torch: the output follows the input
    x = _layout.row_major(input, fmt) if spec.batched else input.unsqueeze(0)
    with torch.no_grad():
        val, idx = adaptive_max_raw(x, spec)
    if torch.is_grad_enabled() and x.requires_grad:
        if x.numel() == 0:  # an empty batch: an empty result still connected to the input
            val = x.sum(dim=tuple(range(2, x.dim())), keepdim=True).expand(val.shape)
        else:
            val = max_pool_from_indices(x, idx)
    val, idx = _layout.restore(val, fmt), _layout.restore(idx, fmt)
    if not spec.batched:
        val, idx = val.squeeze(0), idx.squeeze(0)
    return (val, idx) if spec.return_indices else val
