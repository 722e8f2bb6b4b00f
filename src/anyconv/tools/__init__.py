"""Tools that explain convolutions: shapes, receptive fields, summaries, the operator matrix.

- :func:`output_shape`, :func:`explain_shape` (``tools/shapes.py``), :func:`padding_for`
  (``tools/padding.py``): the shape calculator;
- :func:`receptive_field` -> list of :class:`LayerField` (``tools/receptive_field.py``);
- :func:`summary` -> :class:`Summary` (``tools/summary.py``, also ``anyconv.summary``);
- :func:`operator_matrix`, :func:`singular_values`, :func:`operator_norm`,
  :func:`power_iteration` (``tools/operator.py``).

These modules import torch only (``anyconv.tools`` itself is loaded lazily by ``anyconv``).
The functions are bound here eagerly: ``receptive_field`` and ``summary`` are also the
names of their modules, and an eager import keeps the package attribute the function.
"""

from __future__ import annotations

from .operator import NormResult, operator_matrix, operator_norm, power_iteration, singular_values
from .padding import padding_for
from .receptive_field import LayerField, receptive_field
from .shapes import ShapeInfo, explain_shape, output_shape
from .summary import LayerInfo, Summary, summary

__all__ = [
    "LayerField",
    "LayerInfo",
    "NormResult",
    "ShapeInfo",
    "Summary",
    "explain_shape",
    "operator_matrix",
    "operator_norm",
    "output_shape",
    "padding_for",
    "power_iteration",
    "receptive_field",
    "singular_values",
    "summary",
]
