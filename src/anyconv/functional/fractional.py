"""Fractional max pooling (Graham, 2014, arXiv:1412.6071) for any number of spatial dims.

Along a dim of input size ``i``, kernel ``k`` and output size ``o``, output cell ``j`` pools
``[start_j, start_j + k)`` with, for one sample ``u`` in ``[0, 1)`` per (batch, channel, dim),

.. math::
    \\alpha = (i - k) / (o - 1), \\quad
    start_j = \\lfloor (j + u) \\alpha \\rfloor - \\lfloor u \\alpha \\rfloor \\; (j < o - 1),
    \\quad start_{o-1} = i - k

computed in the input's dtype, operation by operation, exactly as torch's kernel does, so that
with the same ``_random_samples`` the outputs and indices equal torch's bit for bit. Sample
column ``d`` drives spatial dim ``d``, except for N = 2 where torch's 2-d kernel reads column
0 for the width and 1 for the height; anyconv follows it there. The max over each box keeps
the first maximum in scan order and the last NaN (torch's rule); the gradient is the
scatter rule of ``_pool_autograd`` (``anyconv::index_gather``), to any order.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch

from ..core.types import IntOrSeq, RatioArg
from ..core.unpool_spec import FractionalSpec, check_index_range, fractional_spec
from ._pool_autograd import max_pool_from_indices


def interval_starts(u: torch.Tensor, i: int, k: int, o: int) -> torch.Tensor:
    """Window starts ``(..., o)`` (int64) for samples ``u`` ``(...)``, torch's rule in ``u.dtype``.

    Examples:
        >>> interval_starts(torch.tensor([0.5]), 10, 2, 5).tolist()
        [[0, 2, 4, 6, 8]]
    """
    last = torch.full((*u.shape, 1), i - k, dtype=torch.int64, device=u.device)
    if o == 1:
        return last
    alpha = torch.tensor(i - k, dtype=u.dtype, device=u.device) / torch.tensor(o - 1, dtype=u.dtype, device=u.device)
    j = torch.arange(o - 1, device=u.device).to(u.dtype)
    first = ((j + u.unsqueeze(-1)) * alpha).to(torch.int64)  # C++ static_cast<int>: truncation
    shift = (u * alpha).to(torch.int64).unsqueeze(-1)
    return torch.cat([first - shift, last], dim=-1)


def fractional_raw(x: torch.Tensor, samples: torch.Tensor, spec: FractionalSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """Values and flat indices ``(B, C, *out)`` of fractional max pooling of a batched ``x`` (no autograd)."""
    b, c = x.shape[:2]
    nd = spec.n
    steps = [1] * nd  # flat stride of each spatial dim in a channel's plane
    for d in reversed(range(nd - 1)):
        steps[d] = steps[d + 1] * spec.in_spatial[d + 1]
    base = torch.zeros((b, c) + (1,) * nd, dtype=torch.int64, device=x.device)
    for d in range(nd):
        col = nd - 1 - d if nd == 2 else d  # torch's 2-d kernel: column 0 is the width
        starts = interval_starts(samples[:, :, col], spec.in_spatial[d], spec.kernel[d], spec.out_spatial[d])
        shape = [b, c] + [1] * nd
        shape[2 + d] = spec.out_spatial[d]
        base = base + starts.view(shape) * steps[d]  # (B, C, *out) by broadcasting
    base = base.flatten(2)  # (flatten, not reshape(b, c, -1): a batch of 0 has no -1 to infer)
    planes = x.flatten(2)
    best_v: torch.Tensor | None = None
    best_i = base
    for q in itertools.product(*(range(k) for k in spec.kernel)):
        idx = base + sum(qd * sd for qd, sd in zip(q, steps))
        v = planes.gather(2, idx)
        if best_v is None:
            best_v = v
            continue
        upd = (v > best_v) | torch.isnan(v)
        best_v = torch.where(upd, v, best_v)
        best_i = torch.where(upd, idx, best_i)
    assert best_v is not None
    return best_v.reshape(b, c, *spec.out_spatial), best_i.reshape(b, c, *spec.out_spatial)


def fractional_max_pool(
    input: torch.Tensor,
    kernel_size: IntOrSeq,
    output_size: IntOrSeq | None = None,
    output_ratio: RatioArg | None = None,
    return_indices: bool = False,
    _random_samples: torch.Tensor | None = None,
    *,
    _op: str = "fractional_max_pool",
    _n: int | None = None,
) -> Any:
    r"""N-d fractional max pooling: the max of ``kernel``-sized boxes at pseudo-random starts.

    .. math::
        y[b, c, j] = \max_{q < k} x[b, c, start(j) + q]

    with per-dim starts as in the module docstring (torch's rule: same ``_random_samples``,
    same output and indices). ``N = len(kernel_size)`` for a sequence, else ``input.dim() - 2``.

    Args:
        input: ``(B, C, *spatial)`` or unbatched ``(C, *spatial)``.
        kernel_size: an int or N ints.
        output_size: an int or N ints (exactly one of ``output_size`` and ``output_ratio``).
        output_ratio: a number or N numbers in ``(0, 1)``: ``out = int(in * ratio)``.
        return_indices: also return the argmax as a flat index into each channel's input.
        _random_samples: ``(B, C, N)`` samples in ``[0, 1]`` of the input's dtype (``B = 1``
            for an unbatched input); ``None`` draws ``torch.rand`` of that shape, like torch.

    Shape:
        ``(B, C, *in) -> (B, C, *out)`` with ``out_i + kernel_i - 1 <= in_i``.

    Raises:
        ValueError, TypeError: for bad arguments (naming the parameter), before any work;
            samples outside ``[0, 1]`` are a ValueError (a data check, skipped on meta tensors).

    Examples:
        >>> import torch, anyconv.functional as AF
        >>> x = torch.arange(10.0).reshape(1, 1, 10)
        >>> AF.fractional_max_pool(x, 2, output_size=5, _random_samples=torch.tensor([[[0.5]]])).tolist()
        [[[1.0, 3.0, 5.0, 7.0, 9.0]]]
        >>> AF.fractional_max_pool(torch.randn(2, 3, 9, 8, 7, 6), 2, output_ratio=0.5).shape
        torch.Size([2, 3, 4, 4, 3, 3])
    """
    spec = fractional_spec(_op, input, kernel_size, output_size, output_ratio, return_indices, _random_samples,
                           n=_n)
    x = input if spec.batched else input.unsqueeze(0)
    samples = _random_samples
    if samples is None:
        samples = torch.rand(x.shape[0], x.shape[1], spec.n, dtype=x.dtype, device=x.device)
    else:
        check_index_range(spec.op, "_random_samples", samples, 0.0, 1.0, "samples in [0, 1]", closed=True)
    with torch.no_grad():
        val, idx = fractional_raw(x, samples.detach(), spec)
    if torch.is_grad_enabled() and x.requires_grad:
        val = max_pool_from_indices(x, idx)
    if not spec.batched:
        val, idx = val.squeeze(0), idx.squeeze(0)
    return (val, idx) if spec.return_indices else val


def _make(n: int) -> Any:
    def fn(input: torch.Tensor, kernel_size: IntOrSeq, output_size: IntOrSeq | None = None,
           output_ratio: RatioArg | None = None, return_indices: bool = False,
           _random_samples: torch.Tensor | None = None) -> Any:
        return fractional_max_pool(input, kernel_size, output_size, output_ratio, return_indices, _random_samples,
                                   _op=f"fractional_max_pool{n}d", _n=n)

    fn.__name__ = fn.__qualname__ = f"fractional_max_pool{n}d"
    fn.__doc__ = f"""{n}-d fractional max pooling with ``torch.nn.functional.fractional_max_pool{n}d``'s signature.

    See :func:`anyconv.functional.fractional_max_pool`.
    """
    return fn


fractional_max_pool2d, fractional_max_pool3d = (_make(n) for n in (2, 3))

__all__ = ["fractional_max_pool", "fractional_max_pool2d", "fractional_max_pool3d"]
