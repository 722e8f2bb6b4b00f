"""Receptive-field arithmetic, one spatial dim at a time, with exact fractions.

A field ``(start, jump, size)`` per dim says: output unit ``j`` of a layer sees input
positions ``start + j * jump .. start + j * jump + size - 1`` of the model's input (padding
positions included, so ``start`` may be negative). Rules per layer (``k`` kernel, ``s``
stride, ``d`` dilation, ``p`` padding before):

- conv, pooling: ``size += (k - 1) * d * jump``, ``start -= p * jump``, ``jump *= s``;
- adaptive pooling ``in -> out``: windows ``[floor(j in / out), ceil((j + 1) in / out))``;
  ``size += (max window - 1) * jump``, ``jump *= in / out`` (a fraction: the mean step);
- transposed conv (crop ``c`` before): output ``o`` reads inputs ``i`` with
  ``i s + q d = o + c``; ``size += (largest spread of such i over o) * jump`` and
  ``start`` moves to unit 0's first input; ``jump /= s``.
- max unpooling: the transposed conv rule with ``d = 1`` (an output may receive any input
  whose pooling window covered it, whichever the indices pick);
- fractional max pooling ``in -> out``: windows of ``k`` starting at ``0 .. in - k``;
  ``size += (k - 1) * jump``, ``jump *= (in - k) / (out - 1)`` (the mean step; starts vary).

Conv and pooling chains are exact; after a transposed conv or adaptive pooling whose step
is not a whole number, ``size`` is the largest field over units and ``jump`` the mean step.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from .shapes import ShapeInfo


@dataclass(frozen=True)
class Field:
    """Per-dim ``start``, ``jump``, ``size`` (exact fractions; whole numbers when exact)."""

    start: tuple[Fraction, ...]
    jump: tuple[Fraction, ...]
    size: tuple[Fraction, ...]


def identity(n: int) -> Field:
    """The model input's own field: every unit sees itself."""
    one, zero = Fraction(1), Fraction(0)
    return Field((zero,) * n, (one,) * n, (one,) * n)


def union(fields: list[Field]) -> Field:
    """Field of an elementwise combination (residual add, concatenation): the covering interval."""
    if len(fields) == 1:
        return fields[0]
    n = len(fields[0].start)
    start, jump, size = [], [], []
    for i in range(n):
        lo = min(f.start[i] for f in fields)
        hi = max(f.start[i] + f.size[i] for f in fields)
        start.append(lo)
        jump.append(max(f.jump[i] for f in fields))
        size.append(hi - lo)
    return Field(tuple(start), tuple(jump), tuple(size))


def _transpose_dim(k: int, s: int, d: int, crop: int) -> tuple[int, int]:
    """(largest spread of the inputs read by one output, first input read by output 0).

    Output ``o`` reads inputs ``i = (o + crop - q d) / s`` (whole numbers only); the pattern
    repeats with period ``s``, so ``s * d + s`` consecutive outputs show every case. An
    output 0 that reads no input (a stride gap) reports ``ceil((crop - (k - 1) d) / s)``.
    """
    spread, first0 = 0, -((-(crop - (k - 1) * d)) // s)
    for t in range(crop, crop + s * d + s):
        ins = [(t - q * d) // s for q in range(k) if (t - q * d) % s == 0]
        if ins:
            spread = max(spread, max(ins) - min(ins))
            if t == crop:
                first0 = min(ins)
    return spread, first0


def apply(f: Field, geo: ShapeInfo) -> Field:
    """The field after a conv / conv-transpose / pooling layer resolved into ``geo``."""
    n = len(geo.kernel)
    start, jump, size = list(f.start[-n:]), list(f.jump[-n:]), list(f.size[-n:])
    for i in range(n):
        k, s, d, (pb, _) = geo.kernel[i], geo.stride[i], geo.dilation[i], geo.padding[i]
        if geo.kind == "adaptive":
            inp, out = geo.input_shape[-n + i], geo.output_shape[-n + i]
            size[i] += (k - 1) * jump[i]
            jump[i] *= Fraction(inp, out)
        elif geo.kind == "fractional":  # windows of k, starts 0 .. in - k: mean step (in - k) / (out - 1)
            inp, out = geo.input_shape[-n + i], geo.output_shape[-n + i]
            size[i] += (k - 1) * jump[i]
            jump[i] *= Fraction(inp - k, out - 1) if out > 1 else 1
        elif geo.kind in ("conv_transpose", "unpool"):  # unpooling: a transposed layer of the pooling
            spread, first0 = _transpose_dim(k, s, d, pb)
            size[i] += spread * jump[i]
            start[i] += first0 * jump[i]
            jump[i] /= s
        else:
            size[i] += (k - 1) * d * jump[i]
            start[i] -= pb * jump[i]
            jump[i] *= s
    return Field(tuple(start), tuple(jump), tuple(size))
