"""``conv``: N-d convolution (cross-correlation) with every padding form and mode."""

from __future__ import annotations

import torch

from .. import ops
from ..core.padding import pad
from ..core.spec import CorrSpec, conv_spec
from ..core.types import IntOrSeq, PaddingArg, PaddingMode
from . import _layout


def conv(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntOrSeq = 1,
    padding: PaddingArg = 0,
    dilation: IntOrSeq = 1,
    groups: int = 1,
    padding_mode: PaddingMode = "zeros",
    flip: bool = False,
    algorithm: str = "auto",
    *,
    _op: str = "conv",
) -> torch.Tensor:
    r"""N-d convolution (cross-correlation, as in PyTorch) for any number of spatial dims.

    .. math::
        y[b, g O_g + o, p] = \text{bias}[g O_g + o] + \sum_{c < C_g} \sum_{q}
            x_{pad}[b, g C_g + c, p \cdot s + q \cdot d] \; w[g O_g + o, c, q]

    ``N = weight.dim() - 2``; ``flip=True`` flips the kernel along every spatial dim first
    (true convolution).

    Args:
        input: ``(B, C_in, *spatial)`` or unbatched ``(C_in, *spatial)``.
        weight: ``(C_out, C_in // groups, *kernel)``.
        bias: optional ``(C_out,)``.
        stride: an int or N ints.
        padding: an int, N ints, N ``(before, after)`` pairs, ``"valid"``, ``"same"``
            (output ``ceil(in / stride)``, any stride; extra element at the end),
            ``"same_lower"`` (extra element at the start) or ``"causal"`` (all at the start).
        dilation: an int or N ints.
        groups: number of channel groups (``C_in`` and ``C_out`` divisible by it).
        padding_mode: ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``.
        flip: compute true convolution instead of cross-correlation.
        algorithm: ``"auto"`` or a registered algorithm (``anyconv.algorithms.names()``).

    Shape:
        ``out_i = floor((in_i + before_i + after_i - dilation_i * (k_i - 1) - 1) / stride_i) + 1``

    Raises:
        ValueError, TypeError: for bad arguments, naming the parameter, before any work.

    Examples:
        >>> import torch, anyconv.functional as AF
        >>> x = torch.arange(9.0).reshape(1, 1, 3, 3)
        >>> w = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
        >>> AF.conv(x, w).tolist()
        [[[[19.0, 25.0], [37.0, 43.0]]]]
        >>> AF.conv(torch.randn(2, 3, 7, 7, 7, 7), torch.randn(4, 3, 3, 3, 3, 3), stride=2, padding="same").shape
        torch.Size([2, 4, 4, 4, 4, 4])
    """
    input, weight, bias = ops.autocast(input, weight, bias)  # torch's conv autocast policy
    spec = ops.untraced(
        conv_spec, _op, input, weight, bias, stride, padding, dilation, groups, padding_mode, flip, algorithm
    )
    n = spec.core.n
    # torch's layout rule (see _layout): channels_last output and gradients when the input or the
    # weight is and torch's kernel for the call keeps it; torch pads a padding_mode or an uneven
    # zero padding explicitly, so its kernel sees the padded sizes
    fmt = None
    if spec.batched:
        seen = [i + (b + a if spec.padding_mode != "zeros" else abs(a - b))
                for i, (b, a) in zip(input.shape[2:], spec.core.padding)]
        fmt = _layout.conv_format(input, weight, _layout.per_dim(stride, n), _layout.per_dim(dilation, n),
                                  spec.core.groups, seen)
    x = _layout.row_major(input, fmt) if spec.batched else input.unsqueeze(0)
    weight = _layout.row_major(weight, fmt)
    w = weight.flip(list(range(2, 2 + n))) if spec.flip else weight
    core = spec.core
    if spec.padding_mode != "zeros":
        x = pad(x, core.padding, spec.padding_mode)
        core = CorrSpec(core.stride, core.dilation, ((0, 0),) * n, core.groups)
    y = ops.call_corr(x, w, bias, core, spec.algorithm, _op)
    return _layout.restore(y, fmt) if spec.batched else y.squeeze(0)
