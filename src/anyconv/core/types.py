"""Type aliases shared by the public signatures and the front door (annotations only).

The public functions and modules annotate their arguments with these names, so one definition
serves ``anyconv.functional``, ``anyconv.nn`` and the checks in :mod:`anyconv.core`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

IntOrSeq = int | Sequence[int]
"""An int for every spatial dim, or one int per dim (``stride``, ``dilation``, ``kernel_size``)."""

Pairs = tuple[tuple[int, int], ...]
"""Explicit ``(before, after)`` padding per spatial dim, the canonical form every spec holds."""

PaddingArg = int | Sequence[int] | Sequence[tuple[int, int]] | str
"""``padding`` of conv and pooling: an int, one int per dim, ``(before, after)`` pairs, or a string."""

IntPadding = int | Sequence[int] | Sequence[tuple[int, int]]
"""``padding`` where no string form exists (unpooling)."""

PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]
"""``padding_mode`` of conv (torch's four)."""

OutputSize = int | None | Sequence[int | None]
"""``output_size`` of adaptive pooling: ``None`` keeps that dim's input size."""

RatioArg = float | Sequence[float]
"""``output_ratio`` of fractional max pooling: one float for every dim, or one per dim."""

Ints = Sequence[int]
"""A per-dim int sequence as the operators' schemas take it (``SymInt[]``)."""
