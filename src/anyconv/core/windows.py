"""The N-d sliding-window view shared by direct convolution, im2col, unfold and pooling.

``windows(x, kernel, stride, dilation)`` views the last N dims of ``x`` as
``(*, o_1, ..., o_N, k_1, ..., k_N)`` where element ``[..., p, q]`` is
``x[..., p * stride + q * dilation]`` (per dim). It is a strided view: no copy is made.

``tiles`` splits an output domain into blocks whose scratch cost stays under the workspace
limit; ``input_slices`` gives the input region a block of outputs reads.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import torch

from .shapes import effective_kernel, prod


def windows(
    x: torch.Tensor, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int]
) -> torch.Tensor:
    """Sliding windows over the last ``N = len(kernel)`` dims of ``x`` as a strided view.

    Shape:
        ``(*, L_1, ..., L_N) -> (*, o_1, ..., o_N, k_1, ..., k_N)`` with
        ``o_i = (L_i - (k_i - 1) * d_i - 1) // s_i + 1``.

    >>> windows(torch.arange(5.0), [2], [2], [1]).tolist()
    [[0.0, 1.0], [2.0, 3.0]]
    """
    n = len(kernel)
    lead = x.dim() - n
    sizes = list(x.shape[:lead])
    strides = list(x.stride()[:lead])
    out_sizes, out_strides, k_strides = [], [], []
    for i in range(n):
        length, st = x.shape[lead + i], x.stride()[lead + i]
        out_sizes.append((length - effective_kernel(kernel[i], dilation[i])) // stride[i] + 1)
        out_strides.append(st * stride[i])
        k_strides.append(st * dilation[i])
    return x.as_strided(
        sizes + out_sizes + list(kernel),
        strides + out_strides + k_strides,
        x.storage_offset(),
    )


def balanced_step(total: int, most: int) -> int:
    """The chunk size that cuts ``total`` items into as few chunks of at most ``most`` (at least 1)
    as possible, the chunks as equal as possible (no narrow last chunk).

    >>> balanced_step(32, 10), balanced_step(128, 56), balanced_step(5, 8), balanced_step(7, 0)
    (8, 43, 5, 1)
    """
    most = max(1, min(most, total))
    return -(-total // -(-total // most))


def tiles(sizes: Sequence[int], unit_bytes: int, limit: int) -> Iterator[tuple[slice, ...]]:
    """Row-major blocks of the index domain ``sizes`` costing at most ``limit`` bytes each.

    ``unit_bytes`` is the scratch cost of one index. A block is whole along trailing dims and
    a chunk of one dim, the chunks as equal as possible (no narrow remainder); if a single
    index costs more than ``limit`` the blocks are single indices (the smallest possible).

    >>> [tuple((s.start, s.stop) for s in t) for t in tiles([2, 3], 8, 24)]
    [((0, 1), (0, 3)), ((1, 2), (0, 3))]
    >>> [t[0] for t in tiles([7, 5], 4, 60)]  # 3 rows fit: 7 rows go as 2, 2, 3 (not 3, 3, 1)
    [slice(0, 2, None), slice(2, 4, None), slice(4, 7, None)]
    """
    sizes = list(sizes)
    if any(s == 0 for s in sizes):
        return
    j = 0
    while j < len(sizes) and unit_bytes * prod(sizes[j:]) > limit:
        j += 1
    if j == 0:
        yield tuple(slice(0, s) for s in sizes)
        return
    inner = unit_bytes * prod(sizes[j:])
    chunk = max(1, limit // inner)
    c = j - 1
    blocks = -(-sizes[c] // chunk)
    bounds = [i * sizes[c] // blocks for i in range(blocks + 1)]  # balanced: no narrow remainder
    for head in itertools.product(*(range(s) for s in sizes[:c])):
        for start, stop in zip(bounds, bounds[1:]):
            yield (
                tuple(slice(h, h + 1) for h in head)
                + (slice(start, stop),)
                + tuple(slice(0, s) for s in sizes[j:])
            )


def input_slices(
    out_slices: Sequence[slice],
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
) -> tuple[slice, ...]:
    """The input region read by a block of outputs (one slice per spatial dim).

    Output positions ``[a, b)`` along a dim read inputs ``[a * s, (b - 1) * s + (k - 1) * d + 1)``.
    """
    return tuple(
        slice(sl.start * s, (sl.stop - 1) * s + effective_kernel(k, d))
        for sl, k, s, d in zip(out_slices, kernel, stride, dilation)
    )
