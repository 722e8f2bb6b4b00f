"""ONNX export of anyconv models: the operators translated to standard ONNX operators.

``translation_table()`` maps anyconv's operators to onnxscript functions for
``torch.onnx.export(model, args, dynamo=True, custom_translation_table=...)``, and :func:`export`
is that call with the table filled in. No custom domain appears in the graph:

=======================  =====================================================================
``anyconv::corr``        ``Conv`` (explicit pads; a negative pad, a crop, is a ``Slice`` first)
``anyconv::corr_t``      ``ConvTranspose`` (pads and ``output_padding`` from the input size)
``anyconv::max_pool``    ``MaxPool`` (``ceil_mode`` from the output size; the indices made
                         per-channel, torch's layout, with ``Mod``)
``anyconv::window_sum``  ``Conv`` with a constant all-ones depthwise kernel (exact window sums,
                         ``ceil_mode`` windows included; the public function divides)
``anyconv::index_gather`` ``GatherElements`` on the flattened planes
=======================  =====================================================================

Padding modes, ``flip``, unbatched inputs and the avg-pool divisor are ordinary tensor ops in the
public functions, exported as the ONNX ops they trace to. The backward operators
(``index_scatter``, ``window_sum_t``) have no translation: exporting one raises an error naming it.
onnxscript (and onnx) are imported only when a table is made.

Examples:
    >>> import torch, anyconv
    >>> m = anyconv.nn.Conv2d(3, 4, 3, padding=1)
    >>> program = anyconv.onnx.export(m, (torch.randn(1, 3, 8, 8),))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ._onnx_legacy import adaptive_refusal, max_pool_ceil, output_padding, window_after
from .core.shapes import prod


def _split(padding: Sequence[int]) -> tuple[list[int], list[int]]:
    return [int(v) for v in padding[0::2]], [int(v) for v in padding[1::2]]


def _static(value: Any, what: str, op: str) -> list[int]:
    shape = getattr(value, "shape", None)
    dims = list(shape) if shape is not None else []
    if not dims or not all(isinstance(d, int) for d in dims[2:]):
        raise NotImplementedError(f"anyconv.onnx: {op} needs a static spatial shape of {what}; got {shape}")
    return [int(d) for d in dims]


def _make_table() -> dict[Any, Any]:
    import onnxscript

    op: Any = onnxscript.opset18  # (dynamically typed here: the exporter traces these functions)

    def i64(values: Sequence[int]) -> Any:
        return op.Constant(value_ints=[int(v) for v in values])

    def corr(x: Any, w: Any, bias: Any = None, stride: Sequence[int] = (), padding: Sequence[int] = (),
             dilation: Sequence[int] = (), groups: int = 1, algorithm: str = "auto", name: str = "") -> Any:
        n = len(stride)
        before, after = _split(padding)
        if any(v < 0 for v in before + after):  # a crop first: ONNX pads are >= 0
            axes = [2 + i for i in range(n)]
            starts = [max(0, -b) for b in before]
            ends = [a if a < 0 else 2**62 for a in after]
            x = op.Slice(x, i64(starts), i64(ends), i64(axes))
            before, after = [max(0, b) for b in before], [max(0, a) for a in after]
        attrs = dict(strides=list(stride), pads=before + after, dilations=list(dilation), group=int(groups))
        return op.Conv(x, w, **attrs) if bias is None else op.Conv(x, w, bias, **attrs)

    def corr_t(g: Any, w: Any, stride: Sequence[int] = (), padding: Sequence[int] = (), dilation: Sequence[int] = (),
               groups: int = 1, in_spatial: Sequence[int] = (), algorithm: str = "auto", name: str = "") -> Any:
        before, after = _split(padding)
        gs, ws = _static(g, "the input", "anyconv::corr_t"), _static(w, "the weight", "anyconv::corr_t")
        outpad = output_padding(gs, ws, stride, dilation, before, after, in_spatial, padding)
        return op.ConvTranspose(g, w, strides=list(stride), pads=before + after, dilations=list(dilation),
                                group=int(groups), output_padding=outpad)

    def max_pool(x: Any, kernel: Sequence[int] = (), stride: Sequence[int] = (), padding: Sequence[int] = (),
                 dilation: Sequence[int] = (), out: Sequence[int] = (), need_indices: bool = False) -> Any:
        before, after = _split(padding)
        xs = _static(x, "the input", "anyconv::max_pool")
        ceil = max_pool_ceil(xs, kernel, stride, dilation, before, after, out, padding)
        vals, idx = op.MaxPool(x, kernel_shape=list(kernel), strides=list(stride), pads=before + after,
                               dilations=list(dilation), ceil_mode=ceil)
        if not need_indices:
            return vals, op.Constant(value_ints=[])
        return vals, op.Mod(idx, op.Constant(value_int=prod(xs[2:])))  # ONNX's are flat over (N, C, *in)

    def window_sum(x: Any, kernel: Sequence[int] = (), stride: Sequence[int] = (), padding: Sequence[int] = (),
                   dilation: Sequence[int] = (), out: Sequence[int] = (), acc: Any = None) -> Any:
        import numpy as np
        import onnx

        before, after = _split(padding)
        xs = _static(x, "the input", "anyconv::window_sum")
        after = window_after(xs, kernel, stride, dilation, before, after, out)  # ceil_mode windows read zeros
        # the exporter hands the accumulation dtype over as an ONNX data type (an int enum)
        to = int(onnx.TensorProto.FLOAT if acc is None else acc)
        ones = onnx.numpy_helper.from_array(np.ones((xs[1], 1, *kernel), dtype=onnx.helper.tensor_dtype_to_np_dtype(to)))
        xc = op.Cast(x, to=to)
        return op.Conv(xc, op.Constant(value=ones), strides=list(stride), pads=before + after,
                       dilations=list(dilation), group=xs[1])

    def index_gather(x: Any, idx: Any) -> Any:
        lead = op.Shape(x, start=0, end=2)
        flat_x = op.Reshape(x, op.Concat(lead, i64([-1]), axis=0))
        flat_i = op.Reshape(idx, op.Concat(op.Shape(idx, start=0, end=2), i64([-1]), axis=0))
        return op.Reshape(op.GatherElements(flat_x, flat_i, axis=2), op.Shape(idx))

    def refuse(name: str) -> Any:
        def translation(*args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError(f"anyconv.onnx: anyconv::{name} (a gradient operator) has no ONNX translation; "
                                      "export an inference graph (model.eval(), no autograd in forward)")
        return translation

    ops = torch.ops.anyconv
    return {ops.adaptive_avg.default: adaptive_refusal,
        ops.corr.default: corr, ops.corr_t.default: corr_t, ops.max_pool.default: max_pool,
        ops.window_sum.default: window_sum, ops.index_gather.default: index_gather,
        ops.index_scatter.default: refuse("index_scatter"), ops.window_sum_t.default: refuse("window_sum_t"),
        ops.corr_w.default: refuse("corr_w"),
    }


def register_with_torch() -> bool:
    """Add the translations to torch's own exporter registry, so that a plain
    ``torch.onnx.export(model, args, dynamo=True)`` translates anyconv's operators after
    ``import anyconv.onnx`` (done at import). torch has no public hook for this: the entries go into
    the list its exporter reads its ATen translations from (``torch.onnx._internal.exporter._torchlib``),
    marked as custom. Returns False (and :func:`export` still works) where that internal is absent."""
    try:
        from torch.onnx._internal.exporter import _registration
        from torch.onnx._internal.exporter._torchlib import _torchlib_registry
    except ImportError:
        return False
    known = {id(m.onnx_function) for m in _torchlib_registry._registry}
    for target, fn in _table().items():
        if id(fn) not in known:
            _torchlib_registry._registry.append(_registration.OnnxDecompMeta(
                onnx_function=fn, fx_target=target, signature=None, is_custom=True))
    return True


_TABLE: dict[Any, Any] = {}


def _table() -> dict[Any, Any]:
    if not _TABLE:
        _TABLE.update(_make_table())
    return _TABLE


def translation_table() -> dict[Any, Any]:
    """``{anyconv operator: onnxscript translation}`` for ``torch.onnx.export(..., dynamo=True,
    custom_translation_table=...)`` (imports onnxscript)."""
    return dict(_table())


def export(model: torch.nn.Module, args: tuple[Any, ...], f: Any = None, **kwargs: Any) -> Any:
    """``torch.onnx.export(model, args, f, dynamo=True, **kwargs)`` with anyconv's translations added
    to ``custom_translation_table`` (entries given there win)."""
    table = {**translation_table(), **(kwargs.pop("custom_translation_table", None) or {})}
    kwargs.setdefault("dynamo", True)
    return torch.onnx.export(model, args, f, custom_translation_table=table, **kwargs)


try:  # onnxscript is an optional extra: without it only the TorchScript exporter's symbolics serve
    import onnxscript as _onnxscript  # noqa: F401
except ImportError:
    pass
else:
    register_with_torch()
