"""Mult-adds of one module call, twice: by torchinfo 1.8.0's rule and by the true count.

torchinfo (``LayerInfo.calculate_macs``) counts, for each parameter tensor of a leaf module:

- a tensor named ``weight`` or ``bias`` of a class whose name contains ``Conv``:
  ``numel * B * prod(output spatial)``;
- any other ``weight`` / ``bias``: ``numel * B`` (``B`` = the output's first dim);
- other tensors whose name contains ``weight`` or ``bias`` (RNNs): ``numel * out[0] * out[1]``.

A pruned tensor (``weight_orig`` with a ``weight_mask`` buffer) counts the mask's ones.

The true count is one mult-add per use of a parameter element (torchinfo's unit: a bias
addition counts as one). It equals torchinfo's for convs, batched 2-d ``Linear`` and
layers without a rule below; it differs for:

- transposed convs: each weight tap is applied once per *input* position,
  ``numel(weight) * B * prod(input spatial)`` (torchinfo multiplies by the output size,
  which overcounts by about ``prod(stride)``); the bias once per output element;
- ``Linear`` on ``(B, ..., F)``: once per row, ``prod(out[:-1]) * (numel(weight) + F_out)``
  (torchinfo multiplies by ``B`` only);
- normalization layers (batch, instance, group, layer norm): the affine weight and bias are
  applied to every element, ``out.numel()`` each (torchinfo counts them once per sample).
"""

from __future__ import annotations

import torch

from ..core.shapes import prod

_NORMS = (torch.nn.modules.batchnorm._NormBase, torch.nn.GroupNorm, torch.nn.LayerNorm)
REASONS = {
    "conv_transpose": "transposed conv: weight taps per input position (torchinfo: per output position)",
    "linear": "Linear on (B, ..., F): per row (torchinfo: per batch entry)",
    "norm": "normalization: affine per element (torchinfo: per sample)",
}


def _param_counts(m: torch.nn.Module) -> list[tuple[str, int]]:
    """``(name, count)`` per parameter, as torchinfo's ``get_param_count`` (pruning masks)."""
    out = []
    for name, p in m.named_parameters():
        count = p.numel()
        if name.endswith("_orig"):
            mask = getattr(m, name[:-5] + "_mask", None)
            if isinstance(mask, torch.Tensor):
                count, name = int(mask.sum()), name[:-5]
        out.append((name, count))
    return out


def torchinfo_mult_adds(m: torch.nn.Module, output_shape: tuple[int, ...]) -> int:
    """torchinfo 1.8.0's mult-adds of one call of leaf module ``m`` with this output shape."""
    total = 0
    conv = "Conv" in type(m).__name__
    for name, count in _param_counts(m):
        if name in ("weight", "bias"):
            total += count * (prod(output_shape[:1] + output_shape[2:]) if conv else output_shape[0])
        elif "weight" in name or "bias" in name:
            total += prod(output_shape[:2]) * count
    return total


def true_mult_adds(m: torch.nn.Module, input_shape: tuple[int, ...], output_shape: tuple[int, ...],
                   torchinfo: int) -> tuple[int, str | None]:
    """The true count of one call and, where it differs from ``torchinfo``'s, the reason key."""
    counts = dict(_param_counts(m))
    weight, bias = counts.get("weight", 0), counts.get("bias", 0)
    true, kind = torchinfo, None
    if isinstance(m, torch.nn.modules.conv._ConvNd) and m.transposed:
        n = len(m.kernel_size)
        batch = prod(input_shape[: len(input_shape) - n - 1])
        true, kind = weight * batch * prod(input_shape[-n:]) + bias * batch * prod(output_shape[-n:]), "conv_transpose"
    elif isinstance(m, torch.nn.Linear) and output_shape:
        true, kind = prod(output_shape[:-1]) * (weight + bias), "linear"
    elif isinstance(m, _NORMS):
        per_element = prod(output_shape)
        true, kind = per_element * ((weight > 0) + (bias > 0)), "norm"
    return true, (kind if true != torchinfo else None)
