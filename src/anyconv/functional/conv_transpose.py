"""``conv_transpose``: N-d transposed convolution, the adjoint of ``conv`` in its input."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .. import ops
from ..core.padding import pad
from ..core.spec import conv_transpose_spec
from ..core.types import IntOrSeq, PaddingArg
from . import _layout


def conv_transpose(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntOrSeq = 1,
    padding: PaddingArg = 0,
    output_padding: IntOrSeq = 0,
    groups: int = 1,
    dilation: IntOrSeq = 1,
    output_size: Sequence[int] | None = None,
    algorithm: str = "auto",
    *,
    _op: str = "conv_transpose",
) -> torch.Tensor:
    r"""N-d transposed convolution (PyTorch's ``conv_transpose*d`` for any N).

    The adjoint of :func:`anyconv.functional.conv` in its input: every input element scatters
    ``input[b, c, p] * weight[c, o, q]`` to output position ``p * stride + q * dilation``, then
    ``padding`` is cropped from the full result (of size
    ``(in - 1) * stride + (k - 1) * dilation + 1 + output_padding``).

    Args:
        input: ``(B, C_in, *spatial)`` or unbatched ``(C_in, *spatial)``.
        weight: ``(C_in, C_out // groups, *kernel)``.
        bias: optional ``(C_out,)``.
        stride, dilation: an int or N ints.
        padding: an int, N ints, N ``(before, after)`` crop pairs, ``"valid"`` (no crop) or
            ``"same"`` (output ``in * stride``).
        output_padding: extra size at the end of each dim (< stride or < dilation).
        groups: channel groups.
        output_size: N spatial ints (or the full shape); chooses ``output_padding``: any size
            between the ``output_padding=0`` size and that plus ``max(stride, dilation) - 1``.
        algorithm: ``"auto"`` or a registered algorithm name.

    Shape:
        ``out_i = (in_i - 1) * stride_i - before_i - after_i + dilation_i * (k_i - 1) + output_padding_i + 1``

    Raises:
        ValueError, TypeError: for bad arguments, naming the parameter, before any work.

    Examples:
        >>> import torch, anyconv.functional as AF
        >>> AF.conv_transpose(torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2)).tolist()
        [[[[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]]]
        >>> AF.conv_transpose(torch.randn(1, 4, 5, 5, 5, 5), torch.randn(4, 2, 3, 3, 3, 3), stride=2, padding="same").shape
        torch.Size([1, 2, 10, 10, 10, 10])
    """
    input, weight, bias = ops.autocast(input, weight, bias)  # torch's conv autocast policy
    spec = ops.untraced(
        conv_transpose_spec, _op, input, weight, bias, stride, padding, output_padding, groups, dilation, output_size, algorithm
    )
    n = spec.core.n
    fmt = None
    if spec.batched:  # torch's layout rule (see _layout), with the output_padding torch's call would have
        st, dil = _layout.per_dim(stride, n), _layout.per_dim(dilation, n)
        outpad = [o - ((i - 1) * s - b - a + d * (k - 1) + 1) for o, i, s, (b, a), d, k
                  in zip(spec.out_spatial, input.shape[2:], st, spec.crop, dil, weight.shape[2:])]
        fmt = _layout.conv_format(input, weight, st, dil, spec.core.groups, input.shape[2:], outpad)
    x = _layout.row_major(input, fmt) if spec.batched else input.unsqueeze(0)
    stride, padding, dilation, groups = ops.flat(spec.core)
    y = ops.call_corr_t(x, _layout.row_major(weight, fmt), stride, padding, dilation, groups, list(spec.full),
                   spec.algorithm, _op)
    if any(b or a for b, a in spec.crop):
        y = pad(y, [(-b, -a) for b, a in spec.crop])
        if bias is None:
            y = y.contiguous()  # a contiguous result, as torch's (the bias add makes one anyway)
    if bias is not None:
        y = y + bias.reshape(1, -1, *([1] * n))
    return _layout.restore(y, fmt) if spec.batched else y.squeeze(0)
