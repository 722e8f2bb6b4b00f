"""Text layout of :func:`anyconv.summary`'s table: torchinfo's, or one fitted to a width.

torchinfo 1.8.0 pads the layer column to ``max(40, longest label + indent rounded up to
5)`` and every other column to ``col_width`` (25): six columns are 190 characters wide.
``fit`` keeps that layout on request (``wide=True``); by default it sizes each column to its
widest cell and, when the table is still wider than ``max_width``, drops anyconv's own
columns (algorithm, then receptive field), then shortens the layer labels, then cuts lines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

EXTRAS = ("algorithm", "receptive_field")  # anyconv's own columns, dropped first to fit
TITLE = "Layer (type:depth-idx)"


def readable(num: int, units: bool) -> str:
    """torchinfo's ``format_output_num``: ``": 1,234"`` or ``" (M): 1.23"`` (M, G or T)."""
    if not units:
        return f": {num:,}"
    unit, scale = ("T", 1e12) if num >= 1e12 else ("G", 1e9) if num >= 1e9 else ("M", 1e6)
    value = num / scale
    return f" ({unit}): {int(value):,}" if value.is_integer() else f" ({unit}): {value:,.2f}"


def _line(label: str, width: int, cells: Sequence[str], widths: Sequence[int]) -> str:
    return (f"{label:<{width}}" + "".join(f" {c:<{w}}" for c, w in zip(cells, widths))).rstrip()


def _prefix(depth: int) -> str:
    return "" if depth == 0 else "├─" if depth == 1 else "│    " * (depth - 1) + "└─"


def fit(titles: list[tuple[int, str]], columns: list[str], heads: dict[str, str], cells: list[dict[str, str]],
        *, col_width: int | None, max_width: int | None, wide: bool,
        hidden: Sequence[tuple[int, str]] = ()) -> tuple[list[str], str, list[str]]:
    """Header and rows, the rule line, and the columns dropped to fit ``max_width``.

    Args:
        titles: per row ``(depth, "Conv2d: 1-1")``; ``hidden``: rows below the depth limit
            (torchinfo's layer column is as wide as their labels too).
        columns: column keys in order; ``heads`` their titles; ``cells`` per row, by key.
        col_width: every data column's width (torchinfo's ``col_width``); None: its widest cell.
        max_width: the longest line allowed (None: no limit); ignored when ``wide``.
        wide: torchinfo's own layout (``col_width`` 25 unless given, no width limit).
    """
    cols = list(columns)
    labels = [(depth, _prefix(depth) + title) for depth, title in titles]
    if wide:
        cw = col_width or 25
        longest = max((len(title) + depth * 5 + 1 for depth, title in [*titles, *hidden]), default=0)
        width = 40 if longest < 40 else math.ceil(longest / 5) * 5
        widths = [cw] * len(cols)
        lines = [_line(TITLE, width, [heads[c] for c in cols], widths)]
        lines += [_line(text, width, [row[c] for c in cols], widths) for (_, text), row in zip(labels, cells)]
        return lines, "=" * (width + cw * len(cols)), []

    def sizes(cs: list[str]) -> list[int]:
        return [col_width or max([len(heads[c])] + [len(row[c]) for row in cells]) for c in cs]

    width = max([len(TITLE)] + [len(text) for _, text in labels]) + 1
    dropped: list[str] = []
    if max_width is not None:
        for extra in EXTRAS:
            if width + sum(w + 1 for w in sizes(cols)) <= max_width:
                break
            if extra in cols:
                cols.remove(extra)
                dropped.append(extra)
    widths = sizes(cols)
    shown = [text for _, text in labels]
    if max_width is not None and width + sum(w + 1 for w in widths) > max_width:
        width = max(len(TITLE) + 1, max_width - sum(w + 1 for w in widths))
        shown = [t if len(t) < width else t[: width - 2] + "…" for t in shown]
    lines = [_line(TITLE, width, [heads[c] for c in cols], widths)]
    lines += [_line(text, width, [row[c] for c in cols], widths) for text, row in zip(shown, cells)]
    total = width + sum(w + 1 for w in widths)
    if max_width is not None and total > max_width:
        total = max_width
        lines = [ln if len(ln) <= max_width else ln[: max_width - 1] + "…" for ln in lines]
    return lines, "=" * total, dropped
