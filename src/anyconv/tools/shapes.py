"""Shape calculator: output shapes, the padding that gives a wanted size, formulas with numbers.

Every number comes from the ops' own front doors (:func:`anyconv.core.spec.conv_spec`,
:func:`anyconv.core.spec.conv_transpose_spec`, :func:`anyconv.core.pool_spec.pool_spec`,
:func:`anyconv.core.pool_spec.adaptive_spec`, and ``unfold`` itself) called with tensors on the
``meta`` device, so the calculator cannot drift from the ops: it validates exactly as they do
and raises the same errors. The formulas shown are rendered from the resolved spec, and the
tests evaluate each rendered expression and compare it with the spec's result.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch

from ..core import shapes as _shapes
from ..core.args import as_int, int_tuple, torch_form
from ..core.errors import type_error, value_error
from ._shape_info import ShapeInfo

KINDS = {
    "conv": "conv",
    "conv_transpose": "conv_transpose",
    "max_pool": "pool",
    "avg_pool": "pool",
    "lp_pool": "pool",
    "adaptive_avg_pool": "adaptive",
    "adaptive_max_pool": "adaptive",
    "unfold": "unfold",
    "max_unpool": "unpool",
    "fractional_max_pool": "fractional",
}
_PARAMS = {
    "conv": ("weight_shape", "kernel_size", "out_channels", "stride", "padding", "dilation", "groups",
             "padding_mode", "flip", "algorithm"),
    "conv_transpose": ("weight_shape", "kernel_size", "out_channels", "stride", "padding", "output_padding",
                       "groups", "dilation", "output_size", "algorithm"),
    "max_pool": ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
    "avg_pool": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override",
                 "dilation"),
    "lp_pool": ("norm_type", "kernel_size", "stride", "padding", "ceil_mode", "dilation"),
    "adaptive_avg_pool": ("output_size",),
    "adaptive_max_pool": ("output_size", "return_indices"),
    "unfold": ("kernel_size", "dilation", "padding", "stride"),
    "max_unpool": ("kernel_size", "stride", "padding", "output_size"),
    "fractional_max_pool": ("kernel_size", "output_size", "output_ratio", "return_indices"),
}
_OP_RE = re.compile(r"(conv_transpose|conv|max_pool|avg_pool|lp_pool|adaptive_avg_pool|adaptive_max_pool|max_unpool"
                    r"|fractional_max_pool)"
                    r"([1-9])d|(" + "|".join(KINDS) + ")")


def parse_op(op: Any) -> tuple[str, int | None]:
    """``"conv2d"`` -> ``("conv", 2)``; ``"max_pool"`` -> ``("max_pool", None)``.

    >>> parse_op("conv_transpose3d"), parse_op("unfold")
    (('conv_transpose', 3), ('unfold', None))
    """
    expected = "one of " + ", ".join(repr(k) for k in KINDS) + " or a torch-named alias such as 'conv2d'"
    if not isinstance(op, str):
        type_error("output_shape", "op", op, expected)
    m = _OP_RE.fullmatch(op)
    if m is None:
        value_error("output_shape", "op", op, expected)
    if m.group(3):
        return m.group(3), None
    return m.group(1), int(m.group(2))


def _shape(fn: str, name: str, value: Any) -> tuple[int, ...]:
    expected = "a sequence of positive ints"
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence | torch.Size):
        type_error(fn, name, value, expected)
    out = tuple(as_int(fn, name, v, expected) for v in value)
    if any(v < 1 for v in out):
        value_error(fn, name, value, expected)
    return out


def _meta(shape: Sequence[int]) -> torch.Tensor:
    return torch.empty(tuple(shape), device="meta")


def _weight(op: str, base: str, n: int | None, x: tuple[int, ...], p: dict[str, Any]) -> tuple[int, ...]:
    """The weight shape: ``weight_shape=``, or built from ``kernel_size`` and ``out_channels``."""
    if "weight_shape" in p:
        if "kernel_size" in p or "out_channels" in p:
            value_error(op, "weight_shape", p["weight_shape"], "given alone (not with kernel_size/out_channels)")
        w = _shape(op, "weight_shape", p.pop("weight_shape"))
    else:
        if "kernel_size" not in p:
            type_error(op, "weight_shape", None, "given (or kernel_size= with optional out_channels=)")
        k = p.pop("kernel_size")
        nd = n or (len(k) if isinstance(k, Sequence) else len(x) - 2)
        kernel = int_tuple(op, "kernel_size", k, nd)
        g = as_int(op, "groups", p.get("groups", 1), "a positive int")
        c = x[-nd - 1] if len(x) > nd else 0
        out = as_int(op, "out_channels", p.pop("out_channels", c), "a positive int")
        if g < 1 or c % g or out % g:
            value_error(op, "groups", g, f"a positive divisor of the channels ({c} in, {out} out)")
        w = (c, out // g, *kernel) if base == "conv_transpose" else (out, c // g, *kernel)
    if n is not None and len(w) != n + 2:
        value_error(op, "weight_shape", w, f"{n + 2} dims (C_out, C_in // groups, *{n} kernel dims)")
    return w


def _steps(op: str, p: dict[str, Any], n: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The stride and dilation as given (already validated by the front door).

    The front door bounds steps that cannot change the result (a stride larger than the
    padded input, the dilation of a 1-tap kernel); formulas and receptive fields show the
    user's values, which give the same sizes.
    """
    return int_tuple(op, "stride", p.get("stride", 1), n), int_tuple(op, "dilation", p.get("dilation", 1), n)


def _is_empty_sequence(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and len(value) == 0


def _conv_formula(i: int, k: int, s: int, d: int, pb: int, pa: int, o: int) -> str:
    return f"floor(({i} + {pb} + {pa} - {d} * ({k} - 1) - 1) / {s}) + 1 = {o}"


def explain_shape(op: str, input_shape: Sequence[int], **params: Any) -> ShapeInfo:
    """Resolve an op call on an input shape: output shape, applied padding, formulas.

    Args:
        op: a functional op name or torch-named alias (see :func:`output_shape`).
        input_shape: ``(B, C, *spatial)`` or unbatched ``(C, *spatial)``.
        **params: the op's keyword arguments; conv ops take ``weight_shape=`` (or
            ``kernel_size=`` with optional ``out_channels=``, default ``C_in``).

    Returns:
        A :class:`ShapeInfo`.

    Raises:
        ValueError, TypeError: exactly the op's own errors for bad arguments.

    Examples:
        >>> info = explain_shape("conv2d", (1, 3, 32, 32), kernel_size=5, stride=2, padding="same")
        >>> info.output_shape, info.padding
        ((1, 3, 16, 16), ((1, 2), (1, 2)))
        >>> info.formulas[0]
        'floor((32 + 1 + 2 - 1 * (5 - 1) - 1) / 2) + 1 = 16'
        >>> explain_shape("max_pool2d", (1, 3, 32, 32), kernel_size=(3,), stride=()).output_shape  # torch's forms
        (1, 3, 10, 10)
    """
    from ..core.pool_spec import adaptive_spec, pool_spec
    from ..core.spec import conv_spec, conv_transpose_spec

    base, n = parse_op(op)
    kind = KINDS[base]
    x = _shape(op, "input_shape", input_shape)
    p = dict(params)
    unknown = sorted(set(p) - set(_PARAMS[base]))
    if unknown:
        type_error(op, unknown[0], p[unknown[0]], "one of the op's keyword arguments: " + ", ".join(_PARAMS[base]))
    if n is not None:  # a torch-named alias: torch's argument forms, as the alias itself takes them
        for key in ("stride", "padding", "dilation", "output_padding", "kernel_size"):
            if key in p:
                p[key] = torch_form(p[key], n)
        if kind == "pool" and _is_empty_sequence(p.get("stride")):
            p["stride"] = None  # torch: stride () or [] is the kernel size
    notes: list[str] = []
    if kind == "conv":
        w = _weight(op, base, n, x, p)
        spec = conv_spec(op, _meta(x), _meta(w), None, p.get("stride", 1), p.get("padding", 0),
                         p.get("dilation", 1), p.get("groups", 1), p.get("padding_mode", "zeros"),
                         p.get("flip", False), p.get("algorithm", "auto"))
        core, kernel, out = spec.core, w[2:], spec.out_spatial
        st, dl = _steps(op, p, len(kernel))
        shape = (*x[: len(x) - len(out) - 1], w[0], *out)
        formula = "out = floor((in + pad_before + pad_after - dilation * (kernel - 1) - 1) / stride) + 1"
        rows = [_conv_formula(i, k, s, d, pb, pa, o) for i, k, s, d, (pb, pa), o in
                zip(x[-len(out):], kernel, st, dl, core.padding, out)]
        if spec.padding_mode != "zeros":
            notes.append(f"padding filled in mode {spec.padding_mode!r}")
        return ShapeInfo(op, kind, x, shape, core.padding, kernel, st, dl, formula,
                         tuple(rows), tuple(notes))
    if kind == "conv_transpose":
        w = _weight(op, base, n, x, p)
        tspec = conv_transpose_spec(op, _meta(x), _meta(w), None, p.get("stride", 1), p.get("padding", 0),
                                    p.get("output_padding", 0), p.get("groups", 1), p.get("dilation", 1),
                                    p.get("output_size"), p.get("algorithm", "auto"))
        core, kernel, out = tspec.core, w[2:], tspec.out_spatial
        st, dl = _steps(op, p, len(kernel))
        c_out = w[1] * core.groups
        shape = (*x[: len(x) - len(out) - 1], c_out, *out)
        formula = ("out = (in - 1) * stride - crop_before - crop_after + dilation * (kernel - 1) "
                   "+ output_padding + 1")
        rows = []
        for i, k, s, d, (cb, ca), f, o in zip(x[-len(out):], kernel, st, dl, tspec.crop,
                                            tspec.full, out):
            op_ = f - _shapes.conv_transpose_full_size(i, k, s, d)
            rows.append(f"({i} - 1) * {s} - {cb} - {ca} + {d} * ({k} - 1) + {op_} + 1 = {o}")
        return ShapeInfo(op, kind, x, shape, tspec.crop, kernel, st, dl, formula,
                         tuple(rows), ("padding is the crop removed from the full output",))
    if kind == "pool":
        norm = p.pop("norm_type", 2.0) if base == "lp_pool" else None
        if "kernel_size" not in p:
            type_error(op, "kernel_size", None, "given")
        ps = pool_spec(op, _meta(x), p["kernel_size"], p.get("stride"), p.get("padding", 0),
                       p.get("dilation", 1), p.get("ceil_mode", False), n=n,
                       return_indices=p.get("return_indices", False),
                       count_include_pad=p.get("count_include_pad", True),
                       divisor_override=p.get("divisor_override"), norm_type=norm)
        out = ps.out_spatial
        shape = (*x[: len(x) - len(out)], *out)
        rnd = "ceil" if ps.ceil_mode else "floor"
        formula = f"out = {rnd}((in + pad_before + pad_after - dilation * (kernel - 1) - 1) / stride) + 1"
        rows = []
        pst = ps.kernel if p.get("stride") is None else int_tuple(op, "stride", p["stride"], ps.n)
        pdl = int_tuple(op, "dilation", p.get("dilation", 1), ps.n)
        for i, k, s, d, (pb, pa), o in zip(ps.in_spatial, ps.kernel, pst, pdl, ps.padding, out):
            text = f"{rnd}(({i} + {pb} + {pa} - {d} * ({k} - 1) - 1) / {s}) + 1"
            span = i + pb + pa - _shapes.effective_kernel(k, d)
            if ps.ceil_mode and -(-span // s) + 1 != o:
                text += " - 1"
                notes.append(f"ceil_mode: the last window would start in the end padding: dropped (dim {len(rows)})")
            rows.append(f"{text} = {o}")
        return ShapeInfo(op, kind, x, shape, ps.padding, ps.kernel, pst, pdl, formula,
                         tuple(rows), tuple(notes))
    if kind == "adaptive":
        if "output_size" not in p:
            type_error(op, "output_size", None, "given")
        a = adaptive_spec(op, _meta(x), p["output_size"], n=n, return_indices=p.get("return_indices", False))
        out = a.out_spatial
        shape = (*x[: len(x) - len(out)], *out)
        ones = (1,) * len(out)
        formula = "out = output_size; cell j pools [floor(j * in / out), ceil((j + 1) * in / out))"
        cells = tuple(f"{o} = {o}" for o in out)
        kern = tuple(max(e - s for s, e in (_shapes.adaptive_window(i, o, j) for j in range(o)))
                     for i, o in zip(a.in_spatial, out))
        return ShapeInfo(op, kind, x, shape, ((0, 0),) * len(out), kern, ones, ones, formula, cells,
                         ("kernel holds the largest adaptive window",))
    if kind in ("unpool", "fractional"):
        from ._shapes_unpool import explain_unpool

        return explain_unpool(op, base, n, x, p)
    # unfold: the op itself on a meta tensor, its front door for the per-dim numbers
    from ..functional import unfold
    from ..functional.fold import _spec as fold_spec

    if "kernel_size" not in p:
        type_error(op, "kernel_size", None, "given")
    y = unfold(_meta(x), p["kernel_size"], p.get("dilation", 1), p.get("padding", 0), p.get("stride", 1))
    nd = len(p["kernel_size"]) if isinstance(p["kernel_size"], Sequence) else len(x) - 2
    fs = fold_spec(op, nd, x[-nd:], p["kernel_size"], p.get("dilation", 1), p.get("padding", 0), p.get("stride", 1))
    formula = "blocks = floor((in + pad_before + pad_after - dilation * (kernel - 1) - 1) / stride) + 1; L = prod(blocks)"
    blocks = tuple(_conv_formula(i, k, s, d, pb, pa, o) for i, k, s, d, (pb, pa), o in
                   zip(fs.spatial, fs.kernel, fs.stride, fs.dilation, fs.padding, fs.blocks))
    note = "L = " + " * ".join(map(str, fs.blocks)) + f" = {_shapes.prod(fs.blocks)}"
    return ShapeInfo(op, kind, x, tuple(y.shape), fs.padding, fs.kernel, fs.stride, fs.dilation, formula,
                     blocks, (note,))


def output_shape(op: str, input_shape: Sequence[int], **params: Any) -> tuple[int, ...]:
    """The full output shape of ``op`` on an input of ``input_shape`` (batch and channels included).

    ``op`` is "conv", "conv_transpose", "max_pool", "avg_pool", "lp_pool",
    "adaptive_avg_pool", "adaptive_max_pool", "unfold" or a torch-named alias ("conv2d",
    "max_pool3d", ...). ``params`` are the op's keyword arguments; conv ops take
    ``weight_shape=`` instead of the weight (or ``kernel_size=`` and ``out_channels=``).

    Shape:
        conv: ``out_i = floor((in_i + before_i + after_i - d_i * (k_i - 1) - 1) / s_i) + 1``;
        conv_transpose: ``out_i = (in_i - 1) * s_i - before_i - after_i + d_i * (k_i - 1) + op_i + 1``;
        pooling: as conv with ``ceil`` when ``ceil_mode``; adaptive: ``output_size``.

    Raises:
        ValueError, TypeError: the op's own errors (same front door).

    Examples:
        >>> output_shape("conv2d", (8, 3, 32, 32), weight_shape=(16, 3, 5, 5), stride=2, padding=2)
        (8, 16, 16, 16)
        >>> output_shape("conv_transpose", (1, 16, 4, 4, 4), weight_shape=(16, 8, 4, 4, 4), stride=2, padding=1)
        (1, 8, 8, 8, 8)
        >>> output_shape("max_pool2d", (3, 7, 7), kernel_size=3, stride=2, ceil_mode=True)
        (3, 3, 3)
        >>> output_shape("unfold", (2, 3, 8, 8), kernel_size=3, padding=1)
        (2, 27, 64)
    """
    return explain_shape(op, input_shape, **params).output_shape
