"""anyconv's operators for the TorchScript-based ONNX exporter (``torch.onnx.export(..., dynamo=False)``).

:func:`register` (called at ``import anyconv``) registers one symbolic function per operator with
``torch.onnx.register_custom_op_symbolic``, so a plain ``torch.onnx.export(model, args, f, dynamo=False)``
of a converted model writes standard ONNX nodes, as :mod:`anyconv.onnx` does for the dynamo exporter:

=========================  ======================================================================
``anyconv::corr``          ``Conv`` (a negative pad, a crop, is a ``Slice`` first)
``anyconv::corr_t``        ``ConvTranspose`` (``output_padding`` from the recorded input size)
``anyconv::max_pool``      ``MaxPool`` (``ceil_mode`` from the output size; indices made per-channel)
``anyconv::window_sum``    ``Conv`` with a constant all-ones depthwise kernel (exact window sums)
``anyconv::index_gather``  ``GatherElements`` on the flattened planes
=========================  ======================================================================

The gradient operators have no translation (the exporter reports them as unsupported). Shapes are
read from the traced graph's static sizes; a call whose sizes the trace did not record raises an
error naming the operator. No torch convolution or pooling kernel is called: these functions only
add ONNX nodes to the graph.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from .core.shapes import conv_output_size, effective_kernel, prod

OPSET = 18  # the lowest opset the symbolics are registered for (MaxPool dilations, ceil_mode: opset 10+)


def _ints(v: Any) -> list[int]:
    from torch.onnx import symbolic_helper

    return [int(i) for i in symbolic_helper._parse_arg(v, "is")]


def _int(v: Any) -> int:
    from torch.onnx import symbolic_helper

    return int(symbolic_helper._parse_arg(v, "i"))


def _sizes(v: Any, what: str, op: str) -> list[int]:
    sizes = v.type().sizes() if v.type().kind() == "TensorType" else None
    if not sizes or any(s is None for s in sizes):
        raise NotImplementedError(f"anyconv.onnx: anyconv::{op} needs the static shape of {what} "
                                  f"(export with fixed sizes); got {sizes}")
    return [int(s) for s in sizes]


def _split(padding: Sequence[int]) -> tuple[list[int], list[int]]:
    return [int(v) for v in padding[0::2]], [int(v) for v in padding[1::2]]


def output_padding(gs: Sequence[int], ws: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
                   before: Sequence[int], after: Sequence[int], in_spatial: Sequence[int], padding: Any) -> list[int]:
    """``ConvTranspose``'s ``output_padding`` that gives ``in_spatial`` (shared by both exporters)."""
    outpad = [int(in_spatial[i]) - ((gs[2 + i] - 1) * s + effective_kernel(ws[2 + i], dilation[i]) - before[i] - after[i])
              for i, s in enumerate(stride)]
    if any(v < 0 for v in [*before, *after, *outpad]):
        raise NotImplementedError("anyconv.onnx: anyconv::corr_t with a crop beyond the output has no "
                                  f"ConvTranspose form (pads {list(padding)}, output_padding {outpad})")
    return outpad


def max_pool_ceil(xs: Sequence[int], kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
                  before: Sequence[int], after: Sequence[int], out: Sequence[int], padding: Any) -> int:
    """``MaxPool``'s ``ceil_mode`` that gives ``out`` (shared by both exporters)."""
    ceil = 0
    for i, k in enumerate(kernel):
        eff = effective_kernel(k, dilation[i])
        if before[i] >= eff or after[i] >= eff:
            raise NotImplementedError(f"anyconv.onnx: anyconv::max_pool with padding {list(padding)} not smaller "
                                      "than the dilated kernel has no MaxPool form (ONNX runtimes refuse it)")
        if conv_output_size(xs[2 + i], k, stride[i], dilation[i], before[i], after[i]) != out[i]:
            ceil = 1
    return ceil


def window_after(xs: Sequence[int], kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
                 before: Sequence[int], after: Sequence[int], out: Sequence[int]) -> list[int]:
    """End pads that give ``ceil_mode`` windows past the end padding zeros to read."""
    return [a + max(0, (out[i] - 1) * stride[i] + effective_kernel(k, dilation[i]) - (xs[2 + i] + before[i] + a))
            for i, (k, a) in enumerate(zip(kernel, after))]


def _i64(g: Any, values: Sequence[int]) -> Any:
    return g.op("Constant", value_t=torch.tensor(list(values), dtype=torch.int64))


def _corr(g: Any, x: Any, w: Any, bias: Any, stride: Any, padding: Any, dilation: Any, groups: Any,
          algorithm: Any, name: Any) -> Any:
    st, pad, dil = _ints(stride), _ints(padding), _ints(dilation)
    before, after = _split(pad)
    if any(v < 0 for v in before + after):  # a crop first: ONNX pads are >= 0
        n = len(st)
        x = g.op("Slice", x, _i64(g, [max(0, -b) for b in before]), _i64(g, [a if a < 0 else 2**62 for a in after]),
                 _i64(g, [2 + i for i in range(n)]))
        before, after = [max(0, b) for b in before], [max(0, a) for a in after]
    args = (x, w) if bias.node().mustBeNone() else (x, w, bias)
    return g.op("Conv", *args, strides_i=st, pads_i=before + after, dilations_i=dil, group_i=_int(groups))


def _corr_t(g: Any, gy: Any, w: Any, stride: Any, padding: Any, dilation: Any, groups: Any, in_spatial: Any,
            algorithm: Any, name: Any) -> Any:
    st, pad, dil, insp = _ints(stride), _ints(padding), _ints(dilation), _ints(in_spatial)
    before, after = _split(pad)
    gs, ws = _sizes(gy, "the input", "corr_t"), _sizes(w, "the weight", "corr_t")
    outpad = output_padding(gs, ws, st, dil, before, after, insp, pad)
    return g.op("ConvTranspose", gy, w, strides_i=st, pads_i=before + after, dilations_i=dil,
                group_i=_int(groups), output_padding_i=outpad)


def _max_pool(g: Any, x: Any, kernel: Any, stride: Any, padding: Any, dilation: Any, out: Any,
              need_indices: Any) -> Any:
    k, st, pad, dil, o = _ints(kernel), _ints(stride), _ints(padding), _ints(dilation), _ints(out)
    before, after = _split(pad)
    xs = _sizes(x, "the input", "max_pool")
    ceil = max_pool_ceil(xs, k, st, dil, before, after, o, pad)
    vals, idx = g.op("MaxPool", x, kernel_shape_i=k, strides_i=st, pads_i=before + after, dilations_i=dil,
                     ceil_mode_i=ceil, outputs=2)
    plane = g.op("Constant", value_t=torch.tensor(prod(xs[2:]), dtype=torch.int64))
    return vals, g.op("Mod", idx, plane)  # ONNX's indices are flat over (N, C, *in); torch's per plane


def _window_sum(g: Any, x: Any, kernel: Any, stride: Any, padding: Any, dilation: Any, out: Any, acc: Any) -> Any:
    from torch.onnx import symbolic_helper

    k, st, pad, dil, o = _ints(kernel), _ints(stride), _ints(padding), _ints(dilation), _ints(out)
    before, after = _split(pad)
    xs = _sizes(x, "the input", "window_sum")
    after = window_after(xs, k, st, dil, before, after, o)
    dtype = _DTYPES[symbolic_helper._parse_arg(acc, "i")]
    xc = g.op("Cast", x, to_i=_ONNX_TYPE[dtype])
    ones = g.op("Constant", value_t=torch.ones((xs[1], 1, *k), dtype=dtype))
    return g.op("Conv", xc, ones, strides_i=st, pads_i=before + after, dilations_i=dil, group_i=xs[1])


def _index_gather(g: Any, x: Any, idx: Any) -> Any:
    lead = g.op("Shape", x, start_i=0, end_i=2)
    flat_x = g.op("Reshape", x, g.op("Concat", lead, _i64(g, [-1]), axis_i=0))
    flat_i = g.op("Reshape", idx, g.op("Concat", g.op("Shape", idx, start_i=0, end_i=2), _i64(g, [-1]), axis_i=0))
    return g.op("Reshape", g.op("GatherElements", flat_x, flat_i, axis_i=2), g.op("Shape", idx))


def adaptive_refusal(*args: Any, **kwargs: Any) -> Any:
    """``anyconv::adaptive_avg`` (adaptive average pooling whose windows do not tile the input): ONNX
    has no operator for it, and a fixed averaging matrix would turn one NaN or Inf into a plane of NaN."""
    raise NotImplementedError("anyconv.onnx: anyconv::adaptive_avg (adaptive average pooling with uneven windows: "
                              "the output size does not divide the input size) has no ONNX operator; use an "
                              "output size that divides the input size (global pooling included) or a fixed AvgPool")


# torch's ScalarType enum values (as the schema's ``ScalarType acc`` arrives) -> dtype, and ONNX's types
_DTYPES = {5: torch.float16, 6: torch.float32, 7: torch.float64, 15: torch.bfloat16}
_ONNX_TYPE = {torch.float16: 10, torch.float32: 1, torch.float64: 11, torch.bfloat16: 16}

SYMBOLICS: dict[str, Callable[..., Any]] = {
    "anyconv::corr": _corr, "anyconv::corr_t": _corr_t, "anyconv::max_pool": _max_pool,
    "anyconv::window_sum": _window_sum, "anyconv::index_gather": _index_gather,
    "anyconv::adaptive_avg": adaptive_refusal}


def register() -> None:
    """Register the symbolic functions with the TorchScript-based exporter (idempotent)."""
    for name, fn in SYMBOLICS.items():
        torch.onnx.register_custom_op_symbolic(name, fn, OPSET)
