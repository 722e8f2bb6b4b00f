"""The record every shape calculation returns (:class:`ShapeInfo`), apart so that every shape module can import it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..core.types import Pairs


@dataclass(frozen=True)
class ShapeInfo:
    """One resolved op call: shapes, padding actually applied, and per-dim formulas.

    ``padding`` holds the ``(before, after)`` pairs applied per spatial dim (for
    ``conv_transpose`` the crop removed from the full output; for adaptive pooling zeros).
    ``formulas[i]`` is ``"<expression with numbers> = <size>"`` for spatial dim ``i``;
    ``formula`` is the symbolic rule.
    """

    op: str
    kind: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    padding: Pairs
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    formula: str
    formulas: tuple[str, ...]
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        return asdict(self)
