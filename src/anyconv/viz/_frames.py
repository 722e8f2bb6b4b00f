"""What each animation frame shows, computed from anyconv itself (no drawing here).

A :class:`Plan` describes one 1-D or 2-D call of ``conv``, ``conv_transpose``, ``max_pool`` or
``avg_pool`` step by step. The call is validated by the op's own front door (so bad arguments
raise the op's own message, before anything is drawn), the numbers come from the op itself,
and the cells each output reads come from :func:`anyconv.core.windows.windows` applied to an
index tensor laid out like the padded input:

- conv: the grid is the input padded by the resolved ``(before, after)`` pairs;
- conv_transpose: the grid is the input with ``stride - 1`` zeros inserted between elements,
  padded by ``(k - 1) * d - crop`` on each side (plus ``output_padding`` at the end); it is
  read by a stride-1 window with the flipped kernel (transposed conv = conv on a zero-stuffed
  input);
- pooling: the grid is the input padded by the resolved pairs (plus the extra end cells that
  ``ceil_mode`` lets the last window reach).

Everything is lifted to 2-D (a 1-D call gets a leading spatial dim of size 1), so the drawing
code handles one case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..core import shapes as _shapes
from ..core.args import int_tuple, padding_arg
from ..core.padding import pad
from ..core.spec import conv_spec, conv_transpose_spec, resolve_padding
from ..core.windows import windows

OPS = ("conv", "conv_transpose", "max_pool", "avg_pool")
PAD, INSERTED, BEYOND = -1, -2, -3  # source codes of grid cells that are not input elements
# BEYOND: cells past the end padding that a ceil_mode pooling window reaches (never counted)


@dataclass(frozen=True)
class Step:
    """One output position: where it is and which grid cells its window reads (kernel order)."""

    out_index: tuple[int, int]
    cells: tuple[tuple[int, int], ...]
    sources: tuple[int, ...]  # flat input index per cell, PAD or INSERTED


@dataclass(frozen=True)
class Plan:
    """A call, lifted to 2-D, with its grid, kernel, output and steps.

    Attributes:
        op: ``"conv"``, ``"conv_transpose"``, ``"max_pool"`` or ``"avg_pool"``.
        n: number of spatial dims of the call (1 or 2).
        grid_source: ``(Hg, Wg)`` int tensor: flat input index per grid cell, ``PAD`` or ``INSERTED``.
        grid_values: ``(C_in, Hg, Wg)`` values shown on the grid (padding and inserted cells 0).
        kernel: ``(C_out, C_in // groups, kh, kw)`` weights as applied to the grid (flipped for
            conv_transpose), or None for pooling.
        output: ``(C_out, oh, ow)`` the op's output.
        groups: channel groups (pooling: one group per channel).
        stride, dilation: of the window on the grid (conv_transpose: stride 1).
        padding: the resolved padding pairs of the call (conv_transpose: its crop pairs).
        steps: one :class:`Step` per output position, row-major.
        title: a one-line description of the call, with every parameter.
        padding_mode: conv's padding mode (the padding cells show the values it copies).
    """

    op: str
    n: int
    grid_source: torch.Tensor
    grid_values: torch.Tensor
    kernel: torch.Tensor | None
    output: torch.Tensor
    groups: int
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: tuple[tuple[int, int], ...]
    steps: list[Step]
    title: str
    count_include_pad: bool = True
    padding_mode: str = "zeros"

    @property
    def in_channels(self) -> int:
        return self.grid_values.shape[0]

    @property
    def out_channels(self) -> int:
        return self.output.shape[0]

    def group_of_input(self, c: int) -> int:
        return c // (self.in_channels // self.groups)

    def group_of_output(self, o: int) -> int:
        return o // (self.out_channels // self.groups)


def _lift(t: tuple[int, ...], fill: int) -> tuple[int, int]:
    return (fill, t[0]) if len(t) == 1 else (t[0], t[1])


def _grid_steps(
    source: torch.Tensor, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int]
) -> tuple[torch.Tensor, list[Step]]:
    """Steps of a window over the N-d grid ``source`` (N = 1 or 2), lifted to 2-D."""
    n = source.dim()
    shape = tuple(source.shape)
    cells = torch.arange(source.numel()).reshape(shape)
    pos = windows(cells, kernel, stride, dilation)  # (*o, *k): grid cell index per window element
    src = windows(source, kernel, stride, dilation)
    out = tuple(pos.shape[:n])
    width = shape[-1]
    pos2 = pos.reshape(_shapes.prod(out), -1)
    src2 = src.reshape(_shapes.prod(out), -1)
    out2 = _lift(out, 1)
    steps = []
    for j in range(pos2.shape[0]):
        idx = (j // out2[1], j % out2[1])
        c = tuple((int(p) // width, int(p) % width) for p in pos2[j])
        steps.append(Step(idx, c, tuple(int(s) for s in src2[j])))
    return source.reshape(_lift(shape, 1)), steps


def _values(x: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """Grid values ``(C, Hg, Wg)``: input values where the grid holds an input element, else 0."""
    flat = x.reshape(x.shape[0], -1)
    idx = source.clamp(min=0).reshape(-1)
    vals = flat[:, idx].reshape(x.shape[0], *source.shape)
    return torch.where(source >= 0, vals, torch.zeros_like(vals))


def _fmt_padding(pairs: Sequence[tuple[int, int]]) -> str:
    return ", ".join(f"({b}, {a})" for b, a in pairs)


def conv_plan(
    x: torch.Tensor, w: torch.Tensor, stride: object, padding: object, dilation: object, groups: object,
    padding_mode: str = "zeros",
) -> Plan:
    """Plan of ``conv(x, w, ...)`` for unbatched ``x`` of 1 or 2 spatial dims.

    With a ``padding_mode`` other than ``"zeros"`` the padding cells show the values that mode
    copies in (reflected, replicated or wrapped input elements), still marked as padding.
    """
    from ..functional import conv

    spec = conv_spec("conv", x, w, None, stride, padding, dilation, groups, padding_mode, False, "auto")
    out = conv(x, w, None, stride, padding, dilation, groups, padding_mode)  # type: ignore[arg-type]
    core, n = spec.core, spec.core.n
    index = torch.arange(_shapes.prod(x.shape[1:])).reshape(x.shape[1:])
    src = pad(index, core.padding, value=PAD)
    grid, steps = _grid_steps(src, w.shape[2:], core.stride, core.dilation)
    values = _values(x, src)
    if padding_mode != "zeros":  # the input element each padding cell copies
        values = _values(x, pad(index, core.padding, mode=padding_mode))
    title = _title(f"conv{n}d", x.shape, w.shape, [
        ("stride", _show(core.stride)), ("padding", _show_pad(padding, core.padding)),
        ("dilation", _show(core.dilation)), ("groups", str(core.groups)), ("padding_mode", padding_mode),
    ], out.shape)
    return Plan(
        "conv", n, grid, values.reshape(x.shape[0], *grid.shape), _lift4(w), _lift3(out),
        core.groups, _lift(core.stride, 1), _lift(core.dilation, 1), core.padding, steps, title,
        padding_mode=padding_mode,
    )


def _title(name: str, x: Sequence[int], w: Sequence[int] | None, params: list[tuple[str, str]], out: Sequence[int]) -> str:
    """``conv2d  in 1x5x5  weight 2x1x3x3  stride 2  ...  ->  out 2x3x3`` (every parameter)."""
    shape = lambda t: "x".join(map(str, t))  # noqa: E731
    head = f"{name}  in {shape(x)}" + (f"  weight {shape(w)}" if w is not None else "")
    return head + "".join(f"  {k} {v}" for k, v in params) + f"  ->  out {shape(out)}"


def conv_transpose_plan(
    x: torch.Tensor,
    w: torch.Tensor,
    stride: object,
    padding: object,
    output_padding: object,
    groups: object,
    dilation: object,
) -> Plan:
    """Plan of ``conv_transpose(x, w, ...)`` as a stride-1 conv over the zero-stuffed input."""
    from ..functional import conv_transpose

    spec = conv_transpose_spec(
        "conv_transpose", x, w, None, stride, padding, output_padding, groups, dilation, None, "auto"
    )
    out = conv_transpose(x, w, None, stride, padding, output_padding, groups, dilation)  # type: ignore[arg-type]
    core, n = spec.core, spec.core.n
    kernel, insize = tuple(w.shape[2:]), tuple(x.shape[1:])
    stuffed_size = tuple((i - 1) * s + 1 for i, s in zip(insize, core.stride))
    src = torch.full(stuffed_size, INSERTED, dtype=torch.long)
    src[tuple(slice(None, None, s) for s in core.stride)] = torch.arange(_shapes.prod(insize)).reshape(insize)
    pairs = []
    for i in range(n):
        span = _shapes.effective_kernel(kernel[i], core.dilation[i]) - 1
        extra = spec.full[i] - _shapes.conv_transpose_full_size(insize[i], kernel[i], core.stride[i], core.dilation[i])
        pairs.append((span - spec.crop[i][0], span - spec.crop[i][1] + extra))
    src = pad(src, pairs, value=PAD)
    grid, steps = _grid_steps(src, kernel, (1,) * n, core.dilation)
    g = core.groups
    cg, og = x.shape[0] // g, w.shape[1]
    # equivalent forward weight: wc[o, c] = w[group * cg + c, o % og] flipped
    wc = torch.stack([
        torch.stack([w[(o // og) * cg + c, o % og] for c in range(cg)]) for o in range(og * g)
    ]).flip(list(range(2, 2 + n)))
    title = _title(f"conv_transpose{n}d", x.shape, w.shape, [
        ("stride", _show(core.stride)), ("padding", _show_pad(padding, spec.crop)),
        ("output_padding", _show(_op_tuple(spec.full, insize, kernel, core))),
        ("dilation", _show(core.dilation)), ("groups", str(g)),
    ], out.shape)
    return Plan(
        "conv_transpose", n, grid, _values(x, src).reshape(x.shape[0], *grid.shape), _lift4(wc),
        _lift3(out), g, (1, 1), _lift(core.dilation, 1), spec.crop, steps, title,
    )


def pool_plan(
    op: str, x: torch.Tensor, kernel_size: object, stride: object, padding: object, dilation: object,
    ceil_mode: bool, count_include_pad: bool,
) -> Plan:
    """Plan of ``max_pool``/``avg_pool`` (needs ``anyconv.functional.<op>``)."""
    from .. import functional

    fn = getattr(functional, op, None)
    if fn is None:
        raise ValueError(f"animate_conv: `op` must be an op this version of anyconv has; got op={op!r} "
                         f"(anyconv.functional.{op} is not available yet)")
    n = x.dim() - 1
    kwargs: dict[str, object] = dict(kernel_size=kernel_size, stride=stride, padding=padding,
                                     dilation=dilation, ceil_mode=ceil_mode)
    if op == "avg_pool":
        kwargs["count_include_pad"] = count_include_pad
    out = fn(x.unsqueeze(0), **kwargs)[0]  # batched, so N = x.dim() - 1; the op validates first
    try:  # the pooling front door, where this version has it
        from ..core.pool_spec import pool_spec
    except ImportError:
        k = int_tuple(op, "kernel_size", kernel_size, n)
        s = k if stride is None else int_tuple(op, "stride", stride, n)
        d = int_tuple(op, "dilation", dilation, n)
        pairs = list(resolve_padding(op, padding_arg(op, padding, n), x.shape[1:], k, s, d))
    else:
        spec = pool_spec(op, x.unsqueeze(0), kernel_size, stride, padding, dilation, ceil_mode)
        k, s, d, pairs = spec.kernel, spec.stride, spec.dilation, list(spec.padding)
    extra = []
    for i in range(n):  # ceil_mode: the last window may reach past the end padding
        reach = (out.shape[1 + i] - 1) * s[i] + _shapes.effective_kernel(k[i], d[i])
        extra.append((0, max(0, reach - x.shape[1 + i] - sum(pairs[i]))))
    src = torch.arange(_shapes.prod(x.shape[1:])).reshape(x.shape[1:])
    src = pad(pad(src, pairs, value=PAD), extra, value=BEYOND)
    grid, steps = _grid_steps(src, k, s, d)
    params = [("kernel", "x".join(map(str, k))), ("stride", _show(s)), ("padding", _show_pad(padding, pairs)),
              ("dilation", _show(d)), ("ceil_mode", str(ceil_mode))]
    if op == "avg_pool":
        params.append(("count_include_pad", str(count_include_pad)))
    title = _title(f"{op}{n}d", x.shape, None, params, out.shape)
    return Plan(
        op, n, grid, _values(x, src).reshape(x.shape[0], *grid.shape), None, _lift3(out),
        x.shape[0], _lift(s, 1), _lift(d, 1), tuple(pairs), steps, title, count_include_pad,
    )


def check_steps(plan: Plan) -> None:
    """Internal consistency: one step per output position (raises RuntimeError otherwise)."""
    positions = plan.output.shape[1] * plan.output.shape[2]
    if len(plan.steps) != positions:
        raise RuntimeError(f"animate_conv: internal error, {len(plan.steps)} windows for {positions} outputs")


def _op_tuple(full: Sequence[int], insize: Sequence[int], kernel: Sequence[int], core: object) -> tuple[int, ...]:
    """The output_padding of a transposed call: its full size less the size without it."""
    return tuple(f - _shapes.conv_transpose_full_size(i, k, s, d)
                 for f, i, k, s, d in zip(full, insize, kernel, core.stride, core.dilation))  # type: ignore[attr-defined]


def _show(t: Sequence[int]) -> str:
    return str(t[0]) if len(set(t)) == 1 else str(tuple(t))


def _show_pad(arg: object, pairs: Sequence[tuple[int, int]]) -> str:
    if isinstance(arg, str):
        return f"'{arg}' = {_fmt_padding(pairs)}"
    if all(b == a for b, a in pairs):
        return _show([b for b, _ in pairs])
    return _fmt_padding(pairs)


def _lift3(t: torch.Tensor) -> torch.Tensor:
    return t.unsqueeze(1) if t.dim() == 2 else t


def _lift4(t: torch.Tensor) -> torch.Tensor:
    return t.unsqueeze(2) if t.dim() == 3 else t
