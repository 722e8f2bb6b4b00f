"""Shape calculator entries for max unpooling and fractional max pooling.

Called by :func:`anyconv.tools.shapes.explain_shape`; every number comes from the ops' own
front door (``anyconv.core.unpool_spec``) on meta tensors, like the other ops.
"""

from __future__ import annotations

from typing import Any

import torch

from ..core.errors import type_error
from ..core.unpool_spec import fractional_spec, unpool_spec
from ._shape_info import ShapeInfo


def explain_unpool(op: str, base: str, n: int | None, x: tuple[int, ...], p: dict[str, Any]) -> ShapeInfo:
    """ShapeInfo of ``max_unpool`` / ``fractional_max_pool`` (or an alias) on an input of shape ``x``.

    Examples:
        >>> explain_unpool("max_unpool2d", "max_unpool", 2, (1, 3, 4, 4), {"kernel_size": 3, "stride": 2,
        ...                "padding": 1}).formulas[0]
        '(4 - 1) * 2 - 1 - 1 + 3 = 7'
    """
    if "kernel_size" not in p:
        type_error(op, "kernel_size", None, "given")
    meta = torch.empty(x, device="meta")
    if base == "max_unpool":
        s = unpool_spec(op, meta, meta.long(), p["kernel_size"], p.get("stride"), p.get("padding", 0),
                        p.get("output_size"), n=n)
        rows: list[str] = []
        for i, k, st, (pb, pa), o in zip(s.in_spatial, s.kernel, s.stride, s.padding, s.out_spatial):
            default = (i - 1) * st - pb - pa + k
            rows.append(f"({i} - 1) * {st} - {pb} - {pa} + {k} = {default}" + ("" if o == default else
                        f"; output_size: {o}"))
        return ShapeInfo(op, "unpool", x, (*x[: len(x) - s.n], *s.out_spatial), s.padding, s.kernel, s.stride,
                         (1,) * s.n, "out = (in - 1) * stride - pad_before - pad_after + kernel (or output_size, "
                         "strictly within stride of it)", tuple(rows),
                         ("padding is the crop of the unpooled output (as a transposed conv)",))
    f = fractional_spec(op, meta, p["kernel_size"], p.get("output_size"), p.get("output_ratio"),
                        p.get("return_indices", False), n=n)
    by_ratio = p.get("output_size") is None
    cells = tuple(f"int({i} * ratio) = {o}" if by_ratio else f"{o} = {o}" for i, o in zip(f.in_spatial, f.out_spatial))
    ones = (1,) * f.n
    return ShapeInfo(op, "fractional", x, (*x[: len(x) - f.n], *f.out_spatial), ((0, 0),) * f.n, f.kernel, ones,
                     ones, "out = output_size or int(in * output_ratio); window j starts at "
                     "int((j + u) * alpha) - int(u * alpha), alpha = (in - kernel) / (out - 1), the last at in - kernel",
                     cells, ("stride varies (pseudo-random, mean alpha); stride shows 1",))
