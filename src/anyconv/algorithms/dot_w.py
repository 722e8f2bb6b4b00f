"""Variant ``dot_w`` of ``corr_w``: a one-group stride-1 weight gradient in 1-2 dims as dot products along
the output rows (``native_c/dot_w.c``), for few channels on large maps.

    dw[o, c, kh, kw] = sum_b sum_oh sum_ow gy[b, o, oh, ow] * x_pad[b, c, oh + kh * d0, ow + kw * d1]

Each output row of ``gy`` is read once per block of output channels, input channel and kernel row, in
vectors along the row, against the kernel row's shifted vectors of ``x``'s row: no windows are copied or
packed. There the matrix products (``gemm_w``, im2col) pack a window of ``x`` per column for only a
few rows of ``dw`` (U-Net's 16-64 channels at 64-128 pixels), and ``native``'s dot form sums the swapped
call's long kernel rows at 35-45 GFLOP/s. Serves float32/float64 CPU calls on an AVX-512 build (its
register blocks are sized for 32 vector registers) with kernel rows of 1-7 taps (not 1x1), at most
``MAX_CHANNELS`` input and output channels, at least half a register block of output channels and output
rows of at least ``MIN_ROW``; the partial sums (a vector per weight) must fit a quarter of the scratch
budget. NaN/Inf operands take the registry route. Measured (1 thread, interleaved, min of 3 x 7), U-Net's
layers at batch 2, ms (dot_w / the previous route / torch): 16 channels at 128x128 0.81 / 3.52 / 0.83; 32
-> 16 at 128x128 1.59 / 6.00 / 1.60; 64 -> 32 at 64x64 1.74 / 3.42 / 1.50; 32 -> 64 at 32x32 0.53 /
0.70 / 0.43.
"""

from __future__ import annotations

import ctypes
from typing import Any

import torch

from ..core.padding import pad
from ..core.shapes import prod
from ..core.spec import CorrSpec
from ..core.workspace import scratch_budget
from . import _native_abi as abi
from ._variant import features

NAME = "dot_w"
OP = "corr_w"
ERROR_GROWTH = 0.0
COMPUTE_DTYPE = None
ALGORITHM = "native"  # the registry algorithm whose kind of computation it is (choose_algorithm reports it)
# at most this many input and output channels (wider calls: the matrix products, gemm_w and wino_w, as fast
# or faster: ResNet's 64 channels at 32x32, batch 4: 1.89 ms here, 1.85 by wino_w, 1.50 by torch)
MAX_CHANNELS = 64
# output rows of at least one vector (CIFAR's 15-pixel rows, batch 32: 2.87 ms here, 2.28 by the registry)
MIN_ROW = 16


def _lanes(dtype: torch.dtype) -> int:
    return 64 // (torch.finfo(dtype).bits // 8)  # (an AVX-512 build's vectors)


def supports(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, algorithm: str = "auto") -> str | None:
    """None for a one-group stride-1 float32/float64 CPU call in 1-2 dims with few channels on a large map."""
    if x.device.type != "cpu" or x.dtype not in abi.DTYPES or w.dtype != x.dtype:
        return "float32/float64 CPU tensors"
    if spec.groups != 1 or spec.n > 2 or any(s != 1 for s in spec.stride) or not 1 <= w.shape[-1] <= 7:
        return "one group, 1-2 spatial dims, stride 1, kernel rows of 1-7 taps"
    if max(w.shape[0], w.shape[1]) > MAX_CHANNELS or x.numel() == 0 or w.numel() == 0:
        return f"at most {MAX_CHANNELS} input and output channels"
    obn = 24 // w.shape[-1]  # output channels per register block (dot_w.c: DOT_ACC / KW)
    if prod(w.shape[2:]) == 1 or 2 * w.shape[0] < obn:
        return ("a 1x1 kernel (one matrix product) or fewer than half a register block of output channels "
                f"({obn // 2})")
    if spec.output_spatial(x.shape[2:], w.shape[2:])[-1] < MIN_ROW:
        return f"output rows of at least {MIN_ROW}"
    if abi.library() is None or not abi.lanes_built():
        return "the native library built for AVX-512"
    floats = w.shape[1] * -(-w.shape[0] // obn) * obn * prod(w.shape[2:]) * _lanes(x.dtype)
    if floats * x.element_size() > scratch_budget() // 4:
        return "its partial sums would exceed a quarter of the scratch budget"
    return None


def hazard(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, algorithm: str = "auto") -> bool:
    """Non-finite operands take the registry route (the rows' zero tails times an Inf)."""
    return True


def cost_features(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> dict[str, float]:
    """Shapes only."""
    return features(x, w, spec)


def _padded(x: torch.Tensor, spec: CorrSpec, kernel: tuple[int, ...], out: tuple[int, ...]) -> torch.Tensor:
    """``x`` zero-padded by ``spec`` (``core.padding.pad``), as a view of a buffer whose rows are long enough
    for every vector read."""
    xp = pad(x, spec.padding)
    row = max(xp.shape[-1], -(-out[-1] // _lanes(x.dtype)) * _lanes(x.dtype) + (kernel[-1] - 1) * spec.dilation[-1])
    buf = x.new_zeros((*xp.shape[:-1], row))
    buf[..., : xp.shape[-1]] = xp
    return buf[..., : xp.shape[-1]]


def serve(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, g: torch.Tensor | None, bias: torch.Tensor | None,
          plan: Any = None) -> torch.Tensor:
    """The weight gradient ``(O, C, *k)`` of ``y = corr(x, w)`` for the output gradient ``g``."""
    assert g is not None
    kernel = tuple(w.shape[2:])
    xp = _padded(x, spec, kernel, spec.output_spatial(x.shape[2:], kernel))
    geom = abi.geometry(xp, w, CorrSpec(spec.stride, spec.dilation, tuple((0, 0) for _ in kernel), 1))
    lib = abi.library()
    assert lib is not None
    suffix = abi.DTYPES[x.dtype]
    part = torch.empty(getattr(lib, f"dot_w_floats_{suffix}")(ctypes.addressof(geom)), dtype=x.dtype)
    dw = torch.empty(w.shape, dtype=x.dtype)
    gy = g.contiguous()
    if getattr(lib, f"dot_w_{suffix}")(ctypes.addressof(geom), xp.data_ptr(), gy.data_ptr(), dw.data_ptr(),
                                        part.data_ptr()) != 0:
        raise ValueError("dot_w: the native kernel declined the call")
    return dw
