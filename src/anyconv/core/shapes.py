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
    """Smallest and largest output size a transposed conv can reach with ``0 <= op < max(s, d)``.

    Used to turn ``output_size`` into ``output_padding``: the wanted size must lie in
    ``[min, min + max(s, d) - 1]``, every size a valid ``output_padding`` reaches (torch's
    functional rule; its modules allowed only up to ``min + s - 1``).

    >>> output_padding_range(4, 3, 2, 1, 1, 1), output_padding_range(4, 3, 1, 3, 0, 0)
    ((7, 8), (10, 12))
    """
    lo = conv_transpose_output_size(i, k, s, d, pb, pa, 0)
    return lo, lo + max(s, d) - 1


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
    >>> pool_output_size(4, 3, 3, 2, 0, 0, True), pool_output_size(4, 3, 3, 2, 0, 0, False)
    (1, 0)
    """
    span = i + pb + pa - effective_kernel(k, d)
    o = (-(-span // s) if ceil_mode else span // s) + 1  # floor division, as torch's div_rtn
    if ceil_mode and (o - 1) * s >= i + pb:
        o -= 1
    return max(o, 0)


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


def pool_offset_range(i: int, s: int, d: int, pb: int, o: int, q: int) -> tuple[int, int]:
    """Output positions ``[lo, hi)`` whose window element ``q`` lies inside the input.

    Window ``j`` reads input position ``j * s - pb + q * d`` for its element ``q``; that
    position is inside ``[0, i)`` exactly for ``j`` in ``[lo, hi)`` (an empty range when
    ``hi <= lo``). Pooling kernels loop over the kernel offsets and update only this block.

    >>> pool_offset_range(4, 2, 1, 1, 2, 0)
    (1, 2)
    >>> pool_offset_range(4, 2, 1, 1, 2, 2)
    (0, 2)
    """
    lo = max(0, -(-(pb - q * d) // s))
    hi = min(o, (i - 1 + pb - q * d) // s + 1)
    return lo, max(lo, hi)


def pool_window_count(i: int, k: int, s: int, d: int, pb: int, pa: int, j: int, include_pad: bool) -> int:
    """Number of elements averaged by pooling window ``j`` (the avg-pool divisor along one dim).

    Window ``j`` has elements at ``j * s - pb + q * d`` for ``q < k``. With ``include_pad`` the
    elements inside the padded input ``[-pb, i + pa)`` count (torch's ``count_include_pad``:
    elements beyond the end padding, which only ``ceil_mode`` windows reach, never count);
    otherwise only those inside the input ``[0, i)``.

    >>> pool_window_count(5, 3, 2, 1, 1, 1, 0, True), pool_window_count(5, 3, 2, 1, 1, 1, 0, False)
    (3, 2)
    >>> pool_window_count(5, 2, 2, 1, 0, 0, 2, True)
    1
    """
    lo, hi = (-pb, i + pa) if include_pad else (0, i)
    start = j * s - pb
    return sum(1 for q in range(k) if lo <= start + q * d < hi)


def pool_first_inside(i: int, k: int, s: int, d: int, pb: int, j: int) -> int | None:
    """Index ``q`` of the first element of pooling window ``j`` inside ``[0, i)`` (None if none).

    ``q0 = ceil(max(0, pb - j * s) / d)``; torch's max pooling starts its argmax there.

    >>> pool_first_inside(4, 3, 2, 1, 1, 0), pool_first_inside(1, 2, 1, 3, 2, 0)
    (1, None)
    """
    start = j * s - pb
    q = -(-max(0, -start) // d)
    return q if q < k and start + q * d < i else None


def pool_empty_window(i: int, k: int, s: int, d: int, pb: int, o: int) -> int | None:
    """The first output position whose window covers padding only (None if there is none).

    Windows move monotonically, so without gaps only the first and the last can miss the
    input; a dilation larger than the input can jump over it, so then every window is checked.

    >>> pool_empty_window(3, 2, 1, 1, 2, 4), pool_empty_window(3, 2, 1, 1, 1, 3)
    (0, None)
    """
    candidates = range(o) if d > i else (0, o - 1)
    for j in candidates:
        if 0 <= j < o and pool_first_inside(i, k, s, d, pb, j) is None:
            return j
    return None


def unpool_output_size(i: int, k: int, s: int, pb: int, pa: int) -> int:
    """Default output size of max unpooling (torch's rule): ``(i - 1) * s + k - pb - pa``.

    It inverts max pooling's size (``pb = pa = padding``); any size in the open interval of
    :func:`unpool_output_range` may be asked for instead.

    >>> unpool_output_size(3, 2, 2, 0, 0), unpool_output_size(4, 3, 2, 1, 1)
    (6, 7)
    """
    return (i - 1) * s + k - pb - pa


def unpool_output_range(i: int, k: int, s: int, pb: int, pa: int) -> tuple[int, int]:
    """Open interval ``(default - s, default + s)`` of output sizes max unpooling accepts.

    >>> unpool_output_range(3, 2, 2, 0, 0)
    (4, 8)
    """
    o = unpool_output_size(i, k, s, pb, pa)
    return o - s, o + s


def fractional_output_size(i: int, ratio: float) -> int:
    """Output size of fractional max pooling for ``output_ratio``: ``int(i * ratio)`` (torch's rule).

    >>> fractional_output_size(7, 0.75), fractional_output_size(10, 0.5)
    (5, 5)
    """
    return int(i * ratio)
