"""Pillow drawing of a :class:`~anyconv.viz._frames.Plan`, one frame per output position.

Layout (left to right): the input channels stacked (padding cells grey and dashed, inserted
zeros of a transposed conv white and dotted), the kernels of every output channel, the output
channels. Each role has its own hue family (input blue, kernel orange, output green) and each
channel group its own hue within it, named in the labels. In each frame the window cells are
filled with the strong colour (kernel weights in their corner), gaps of a dilated window stay
light, and the output cell being written is strong; cells written before keep their value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ._deps import require
from ._frames import BEYOND, INSERTED, PAD, Plan, Step


def _pair(strong: tuple[int, int, int]) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(light, strong): the light one is the strong one mixed 75% with white."""
    return tuple(round(c + (255 - c) * 0.75) for c in strong), strong  # type: ignore[return-value]


# one hue family per role (input blue/purple, kernel orange/brown, output green), one hue per group
INPUT_COLOURS = tuple(_pair(c) for c in ((49, 130, 189), (117, 107, 177), (8, 81, 156), (158, 154, 200)))
KERNEL_COLOURS = tuple(_pair(c) for c in ((217, 95, 2), (140, 81, 10), (191, 129, 45), (227, 74, 51)))
OUTPUT_COLOURS = tuple(_pair(c) for c in ((27, 158, 119), (35, 139, 69), (102, 166, 30), (0, 109, 44)))
GROUP_COLOURS = INPUT_COLOURS  # (light, strong) per group of the input channels
WHITE, INK, GRID, FAINT = (255, 255, 255), (25, 25, 25), (110, 110, 110), (165, 165, 165)
PAD_FILL, WEIGHT_INK = (238, 238, 238), (255, 236, 130)


def role_colour(role: str, group: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(light, strong) colour of ``role`` ("input", "kernel" or "output") for channel group ``group``."""
    table = {"input": INPUT_COLOURS, "kernel": KERNEL_COLOURS, "output": OUTPUT_COLOURS}[role]
    return table[group % len(table)]


@dataclass(frozen=True)
class Layout:
    """Pixel positions of the drawn grids (top-left corners of cell (0, 0))."""

    cell: int
    size: tuple[int, int]
    inputs: tuple[tuple[int, int], ...]
    kernels: tuple[tuple[int, int], ...]
    outputs: tuple[tuple[int, int], ...]


def fmt(v: float) -> str:
    """A short label for a value: integers plainly, others with 3 significant digits.

    >>> fmt(3.0), fmt(-0.0), fmt(0.125), fmt(float("-inf"))
    ('3', '0', '0.125', '-inf')
    """
    if math.isinf(v) or math.isnan(v):
        return str(v)
    if v == int(v) and abs(v) < 1e5:
        return str(int(v)) if v != 0 else "0"
    return f"{v:.3g}"


def _fonts(cell: int) -> dict[str, Any]:
    font = require("PIL.ImageFont", "drawing an animation")
    def load(size: int) -> Any:
        try:
            return font.load_default(size=size)
        except (TypeError, OSError, ImportError):  # old Pillow or no FreeType: the bitmap font
            return font.load_default()
    return {
        "value": load(max(10, round(cell * 0.38))),
        "small": load(max(10, round(cell * 0.3))),
        "label": load(max(13, round(cell * 0.34))),
        "title": load(max(14, round(cell * 0.38))),
    }


def layout(plan: Plan, cell: int, min_width: int = 0) -> Layout:
    """Where every grid goes, and the image size."""
    m, gap = max(10, cell // 2), max(12, round(cell * 0.7))
    lab = max(18, round(cell * 0.55))
    top = m + 2 * max(20, round(cell * 0.62))
    hg, wg = plan.grid_source.shape
    oh, ow = plan.output.shape[1:]
    x0 = m
    inputs = tuple((x0, top + c * (lab + hg * cell + gap) + lab) for c in range(plan.in_channels))
    x1 = x0 + wg * cell + max(cell, 24)
    kernels: tuple[tuple[int, int], ...] = ()
    kw_total = 0
    if plan.kernel is not None:
        cg, kh, kw = plan.kernel.shape[1:]
        kernels = tuple((x1, top + o * (lab + kh * cell + gap) + lab) for o in range(plan.out_channels))
        kw_total = cg * kw * cell + (cg - 1) * (cell // 3)
    x2 = x1 + (kw_total + max(cell, 24) if kernels else 0)
    outputs = tuple((x2, top + o * (lab + oh * cell + gap) + lab) for o in range(plan.out_channels))
    bottom = max(
        inputs[-1][1] + hg * cell,
        outputs[-1][1] + oh * cell,
        kernels[-1][1] + plan.kernel.shape[2] * cell if plan.kernel is not None else 0,
    )
    width = max(x2 + ow * cell + m, min_width + 2 * m, 360)
    height = bottom + gap + max(18, round(cell * 0.7)) + m
    return Layout(cell, (width, height), inputs, kernels, outputs)


def _text(draw: Any, xy: tuple[float, float], text: str, font: Any, fill: Any, anchor: str = "mm") -> None:
    draw.text(xy, text, font=font, fill=fill, anchor=anchor)


def _dashed_rect(draw: Any, box: tuple[int, int, int, int], fill: Any, colour: Any, dash: int) -> None:
    x0, y0, x1, y1 = box
    draw.rectangle(box, fill=fill)
    for a, b, horizontal, fixed in ((x0, x1, True, y0), (x0, x1, True, y1), (y0, y1, False, x0), (y0, y1, False, x1)):
        for p in range(a, b, 2 * dash):
            q = min(p + dash, b)
            draw.line((p, fixed, q, fixed) if horizontal else (fixed, p, fixed, q), fill=colour)


def _cell_box(origin: tuple[int, int], rc: tuple[int, int], cell: int) -> tuple[int, int, int, int]:
    x, y = origin[0] + rc[1] * cell, origin[1] + rc[0] * cell
    return (x, y, x + cell, y + cell)


def _background(plan: Plan, lay: Layout, fonts: dict[str, Any], numbers: bool) -> Any:
    image = require("PIL.Image", "drawing an animation")
    draw_mod = require("PIL.ImageDraw", "drawing an animation")
    im = image.new("RGB", lay.size, WHITE)
    draw = draw_mod.Draw(im)
    c = lay.cell
    _text(draw, (max(10, c // 2), max(10, c // 2)), plan.title, fonts["title"], INK, "la")
    _text(draw, (max(10, c // 2), max(10, c // 2) + max(20, round(c * 0.62))), legend(plan), fonts["label"], GRID, "la")
    hg, wg = plan.grid_source.shape
    for ch, origin in enumerate(lay.inputs):
        light = role_colour("input", plan.group_of_input(ch))[0]
        name = f"x[{ch}]" + _group_note(plan, plan.group_of_input(ch)) + (" zero-stuffed" if plan.op == "conv_transpose" else "")
        _text(draw, (origin[0], origin[1] - 3), name, fonts["label"], INK, "ld")
        for r in range(hg):
            for col in range(wg):
                box = _cell_box(origin, (r, col), c)
                src = int(plan.grid_source[r, col])
                if src in (PAD, BEYOND):
                    _dashed_rect(draw, box, PAD_FILL if src == PAD else WHITE, FAINT, max(2, c // 8))
                elif src == INSERTED:
                    _dashed_rect(draw, box, WHITE, FAINT, 1)
                else:
                    draw.rectangle(box, fill=light, outline=GRID)
                if numbers and (src >= 0 or (src != BEYOND and plan.op in ("conv", "conv_transpose", "avg_pool"))):
                    colour = INK if src >= 0 else FAINT
                    _text(draw, _centre(box), fmt(float(plan.grid_values[ch, r, col])), fonts["value"], colour)
    if plan.kernel is not None:
        cg, kh, kw = plan.kernel.shape[1:]
        for o, origin in enumerate(lay.kernels):
            label = f"w[{o}]" + _group_note(plan, plan.group_of_output(o)) + (" flipped" if plan.op == "conv_transpose" else "")
            kfill = role_colour("kernel", plan.group_of_output(o))[0]
            _text(draw, (origin[0], origin[1] - 3), label, fonts["label"], INK, "ld")
            for j in range(cg):
                ox = origin[0] + j * (kw * c + c // 3)
                for r in range(kh):
                    for col in range(kw):
                        box = _cell_box((ox, origin[1]), (r, col), c)
                        draw.rectangle(box, fill=kfill, outline=GRID)
                        if numbers:
                            _text(draw, _centre(box), fmt(float(plan.kernel[o, j, r, col])), fonts["value"], INK)
    oh, ow = plan.output.shape[1:]
    for o, origin in enumerate(lay.outputs):
        _text(draw, (origin[0], origin[1] - 3), f"y[{o}]" + _group_note(plan, plan.group_of_output(o)),
              fonts["label"], INK, "ld")
        for r in range(oh):
            for col in range(ow):
                draw.rectangle(_cell_box(origin, (r, col), c), fill=WHITE, outline=FAINT)
    return im


def _group_note(plan: Plan, group: int) -> str:
    return f" (group {group})" if plan.kernel is not None and plan.groups > 1 else ""


def legend(plan: Plan) -> str:
    """What the cell styles mean for this op."""
    pad = {"max_pool": "padding (-inf)", "avg_pool": "padding (0)"}.get(plan.op, "zero padding")
    if plan.padding_mode != "zeros":
        pad = f"{plan.padding_mode} padding (copies of input elements)"
    text = f"grey dashed: {pad}"
    if plan.op == "conv_transpose":
        text += ";  white dotted: zeros inserted between inputs (stride - 1);  kernel flipped"
    if bool((plan.grid_source == BEYOND).any()):
        text += ";  white dashed: beyond the padding (ceil_mode), not counted"
    return text + ";  dark: the window read for the output being written"


def _centre(box: tuple[int, int, int, int]) -> tuple[float, float]:
    return ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)


def caption(plan: Plan, step: Step, numbers: bool) -> str:
    """The arithmetic of output channel 0 at this step, e.g. ``y[0][1, 2] = 1*2 + 0*1 = 2``."""
    i, j = step.out_index
    where = f"y[0][{j}]" if plan.n == 1 else f"y[0][{i}, {j}]"
    value = fmt(float(plan.output[0, i, j]))
    vals = [float(plan.grid_values[0][rc]) for rc in step.cells]
    if plan.kernel is not None:
        weights = plan.kernel[0].reshape(plan.kernel.shape[1], -1)
        cg = plan.in_channels // plan.groups
        terms = [
            f"{fmt(float(plan.grid_values[c][rc]))}*{fmt(float(weights[c, q]))}"
            for c in range(cg) for q, rc in enumerate(step.cells)
        ]
        body = " + ".join(terms) if len(terms) <= 12 else " + ".join(terms[:5] + ["..."] + terms[-2:])
    else:
        kept = [v for v, s in zip(vals, step.sources)
                if s >= 0 or (s == PAD and plan.op == "avg_pool" and plan.count_include_pad)]
        shown = [fmt(v) for v in kept]
        inner = ", ".join(shown) if len(shown) <= 12 else ", ".join(shown[:5] + ["..."] + shown[-2:])
        body = ("max" if plan.op == "max_pool" else "mean") + f"({inner})"
    return f"{where} = {body} = {value}" if numbers else where


def render(plan: Plan, cell: int, numbers: bool) -> tuple[list[Any], Layout]:
    """One RGB frame per step of ``plan``, all of one size, and their layout."""
    draw_mod = require("PIL.ImageDraw", "drawing an animation")
    fonts = _fonts(cell)
    captions = [caption(plan, step, numbers) for step in plan.steps]
    texts = [(fonts["title"], plan.title), (fonts["label"], legend(plan))]
    texts += [(fonts["label"], max(captions, key=len))] if captions else []
    lay = layout(plan, cell, int(max(font.getlength(t) for font, t in texts)) + 4)
    base = _background(plan, lay, fonts, numbers)
    c = cell
    frames = []
    ow = plan.output.shape[2]
    for t, step in enumerate(plan.steps):
        im = base.copy()
        draw = draw_mod.Draw(im)
        for ch, origin in enumerate(lay.inputs):
            strong = role_colour("input", plan.group_of_input(ch))[1]
            for q, rc in enumerate(step.cells):
                box = _cell_box(origin, rc, c)
                draw.rectangle(box, fill=strong, outline=INK, width=2)
                if numbers and (step.sources[q] >= 0 or (step.sources[q] != BEYOND and plan.op != "max_pool")):
                    _text(draw, _centre(box), fmt(float(plan.grid_values[ch][rc])), fonts["value"], WHITE)
                if numbers and plan.kernel is not None and plan.kernel.shape[0] == plan.groups:
                    cg = plan.in_channels // plan.groups
                    w = plan.kernel[plan.group_of_input(ch), ch % cg].reshape(-1)[q]
                    _text(draw, (box[2] - 3, box[3] - 2), fmt(float(w)), fonts["small"], WEIGHT_INK, "rd")
        for o, origin in enumerate(lay.outputs):
            light, strong = role_colour("output", plan.group_of_output(o))
            for u in range(t + 1):
                rc = (u // ow, u % ow)
                box = _cell_box(origin, rc, c)
                now = u == t
                draw.rectangle(box, fill=strong if now else light, outline=INK if now else GRID, width=2 if now else 1)
                if numbers:
                    _text(draw, _centre(box), fmt(float(plan.output[o][rc])), fonts["value"], WHITE if now else INK)
        _text(draw, (max(10, c // 2), lay.size[1] - max(10, c // 2)), captions[t],
              fonts["label"], INK, "ld")
        frames.append(im)
    return frames, lay
