"""Shape arithmetic for every op, in one place, as plain integer code.

All functions here work on one spatial dimension at a time and take plain ints, so that the
ops, the ``nn`` modules, the tools and the tests share one definition of every formula.

Notation: ``i`` input size, ``k`` kernel size, ``s`` stride, ``d`` dilation, ``pb``/``pa``
padding before/after, ``op`` output padding, ``o`` output size.
"""

from __future__ import annotations

from collections.abc import Sequence


def effective_kernel(k: int, d: int) -> int:
    """Span of a dilated kernel: ``(k - 1) * d + 1``."""
    return (k - 1) * d + 1


def conv_output_size(i: int, k: int, s: int, d: int, pb: int, pa: int) -> int:
    """Output size of a convolution along one dim.

    ``o = floor((i + pb + pa - (k - 1) * d - 1) / s) + 1``

    May return a value < 1; callers decide whether that is an error.

    >>> conv_output_size(32, 3, 1, 1, 1, 1)
    32
    >>> conv_output_size(32, 5, 2, 1, 1, 2)
    16
    """
    return (i + pb + pa - effective_kernel(k, d)) // s + 1


def same_padding(i: int, k: int, s: int, d: int, lower: bool = False) -> tuple[int, int]:
    """Padding ``(before, after)`` that makes the output size ``ceil(i / s)``.

    ``total = max((ceil(i / s) - 1) * s + (k - 1) * d + 1 - i, 0)``; an odd total puts the
    extra element at the end (TensorFlow 'SAME', ONNX 'SAME_UPPER') or, with ``lower=True``,
    at the start (ONNX 'SAME_LOWER').

    >>> same_padding(5, 3, 1, 1)
    (1, 1)
    >>> same_padding(6, 3, 2, 1)
    (0, 1)
    >>> same_padding(6, 3, 2, 1, lower=True)
    (1, 0)
    """
    o = -(-i // s)
    total = max((o - 1) * s + effective_kernel(k, d) - i, 0)
    small, big = total // 2, total - total // 2
    return (big, small) if lower else (small, big)


def causal_padding(k: int, d: int) -> tuple[int, int]:
    """Causal padding: ``((k - 1) * d, 0)``, everything before, nothing after.

    With stride ``s`` the output size is ``ceil(i / s)``.

    >>> causal_padding(3, 2)
    (4, 0)
    """
    return (effective_kernel(k, d) - 1, 0)


def conv_transpose_full_size(i: int, k: int, s: int, d: int, op: int = 0) -> int:
    """Uncropped output size of a transposed convolution: ``(i - 1) * s + (k - 1) * d + 1 + op``.

    >>> conv_transpose_full_size(4, 3, 2, 1)
    9
    """
    return (i - 1) * s + effective_kernel(k, d) + op


def conv_transpose_output_size(i: int, k: int, s: int, d: int, pb: int, pa: int, op: int) -> int:
    """Output size of a transposed convolution: ``(i - 1) * s - pb - pa + (k - 1) * d + 1 + op``.

    >>> conv_transpose_output_size(4, 3, 2, 1, 1, 1, 1)
    8
    """
    return conv_transpose_full_size(i, k, s, d, op) - pb - pa


def conv_transpose_same_crop(k: int, s: int, d: int) -> tuple[int, int]:
    """Crop ``(before, after)`` of a transposed conv with padding 'same' (output ``i * s``).

    The crop total ``(k - 1) * d + 1 - s`` is split like the forward 'same' padding, the
    extra element at the end. A negative total (stride larger than the dilated kernel) is
    returned as a negative 'after' crop: the output is extended with zeros at the end.

    >>> conv_transpose_same_crop(4, 2, 1)
    (1, 1)
    >>> conv_transpose_same_crop(3, 2, 1)
    (0, 1)
    >>> conv_transpose_same_crop(1, 2, 1)
    (0, -1)
    """
    total = effective_kernel(k, d) - s
    if total < 0:
        return (0, total)
    return (total // 2, total - total // 2)


def output_padding_range(i: int, k: int, s: int, d: int, pb: int, pa: int) -> tuple[int, int]:
    """Smallest and largest output size a transposed conv can reach with ``0 <= op < s``.

    Used to turn ``output_size`` into ``output_padding`` (torch's rule: the wanted size must lie
    in ``[min, min + s - 1]``).

    >>> output_padding_range(4, 3, 2, 1, 1, 1)
    (7, 8)
    """
    lo = conv_transpose_output_size(i, k, s, d, pb, pa, 0)
    return lo, lo + s - 1


def pool_output_size(i: int, k: int, s: int, d: int, pb: int, pa: int, ceil_mode: bool) -> int:
    """Output size of a pooling window along one dim (torch's rule for ``ceil_mode``).

    ``o = floor_or_ceil((i + pb + pa - (k - 1) * d - 1) / s) + 1``; with ``ceil_mode`` a last
    window that would start inside the end padding (at or after ``i + pb``) is dropped.

    >>> pool_output_size(5, 2, 2, 1, 0, 0, False)
    2
    >>> pool_output_size(5, 2, 2, 1, 0, 0, True)
    3
    >>> pool_output_size(4, 3, 2, 1, 1, 1, True)
    3
    >>> pool_output_size(5, 2, 2, 1, 1, 1, True)
    3
    """
    span = i + pb + pa - effective_kernel(k, d)
    if span < 0:
        return 0
    o = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (o - 1) * s >= i + pb:
        o -= 1
    return o


def adaptive_window(i: int, o: int, j: int) -> tuple[int, int]:
    """Start and end (exclusive) of output cell ``j`` of adaptive pooling from ``i`` to ``o``.

    ``start = floor(j * i / o)``, ``end = ceil((j + 1) * i / o)`` (torch's definition).

    >>> [adaptive_window(5, 3, j) for j in range(3)]
    [(0, 2), (1, 4), (3, 5)]
    """
    return (j * i) // o, -(-((j + 1) * i) // o)


def prod(values: Sequence[int]) -> int:
    """Product of a sequence of ints (1 for an empty one)."""
    out = 1
    for v in values:
        out *= v
    return out
