"""Variant ``gemm_w`` of ``corr_w``: a one-group weight gradient as the native matrix product with the
columns read from ``x`` inside the packing (``native_c/gemm.c``: ``gemm_w``).

    dw[o, (c, k)] = sum_b sum_p gy[b, o, p] * x_pad[b, c, p * s + k * d]

im2col's weight gradient first copies every window of ``x`` into a column matrix (``C K x B L``
elements: 29 MiB for a ResNet 3x3 128-channel layer at 28x28, batch 8) and multiplies that; here the
product's packing reads the windows straight from ``x``, one cache-sized panel at a time, and the
samples are summed into ``dw`` in order (threads split ``dw``'s columns: bit-identical at every thread
count). A padded call pads ``x`` once first, so that the packing gathers every panel at fixed offsets with
no bounds tests (the 7x7 stem's weight gradient, batch 4 at 128x128, 1 thread: 5.7 -> 3.5 ms). Serves float32/float64 CPU calls of one group in 1-3 dims whose weight gradient ``auto`` gives
to im2col, when the native implicit products serve this machine (``_gemm.implicit_ok``);
NaN/Inf operands take the registry route (a padding zero times an Inf would be a NaN).
"""

from __future__ import annotations

import ctypes
from typing import Any

import torch

from ..core.spec import CorrSpec
from . import _gemm
from . import _native_abi as abi
from ._variant import features

NAME = "gemm_w"
OP = "corr_w"
ERROR_GROWTH = 0.0
COMPUTE_DTYPE = None
ALGORITHM = "im2col"  # the registry algorithm whose computation it is (choose_algorithm reports it)
# the registry choices for the swapped call that this replaces: im2col's own (the same product after a
# column copy). native's choice is kept: on few channels (U-Net's 16-32) its direct sums beat this
# product, whose packing then costs as much as the multiply-adds (measured: U-Net's training step 1.67
# -> 1.89x torch when this replaced every direct-sum choice)
REPLACES = ("im2col",)
# dw's rows (output channels) and columns (input channels x taps) at least: a narrower dw fills a
# fraction of the 12 x 32 register tile for all of its long sums (U-Net's 1x1 16 -> 2 head: 1.5 ms,
# where torch.matmul's product of the same columns takes 0.04), and each panel of x the packing reads
# serves only ceil(O / 12) tiles (MobileNet's 1x1 layers to 16-24 channels at 32-64 pixels: 0.8-1.2 ms,
# the registry's product 0.4-0.6)
MIN_ROWS = 48
MIN_COLUMNS = 32
# with a kernel of more than one tap the column copy it saves costs more than the narrow tile wastes:
# LeNet-5's 6 -> 16 5x5 layer at 14x14, batch 32, 1 thread: 0.33 ms here, im2col's 0.58-0.62 (torch 0.33)
MIN_ROWS_WINDOWED = 16


def supports(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, algorithm: str = "auto") -> str | None:
    """None for a one-group float32/float64 CPU call when the native matrix product serves this machine."""
    if x.device.type != "cpu" or x.dtype not in abi.DTYPES or w.dtype != x.dtype:
        return "float32/float64 CPU tensors"
    if spec.groups != 1 or spec.n > 3:
        return "one group, 1-3 spatial dims"
    if x.numel() == 0 or w.numel() == 0:
        return "an empty operand"
    rows = MIN_ROWS if all(k == 1 for k in w.shape[2:]) else MIN_ROWS_WINDOWED
    if w.shape[0] < rows or w[0].numel() < MIN_COLUMNS:
        return (f"a weight gradient narrower than the kernel's register tile (at least {rows} output "
                f"channels and {MIN_COLUMNS} input channels x taps)")
    if not _gemm.implicit_ok(x.dtype):
        return (f"the native matrix product runs below {_gemm.IMPLICIT_MIN_SHARE:g}x torch.matmul's rate on "
                "this machine")
    from .auto import choose
    from .native_w import _swapped

    name = choose(*_swapped(x, w, spec), values=False).name
    return None if name in REPLACES else f"auto's choice for the swapped call is {name}, not im2col"


def hazard(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, algorithm: str = "auto") -> bool:
    """Non-finite operands take the registry route (padding zeros times an Inf)."""
    return True


def cost_features(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> dict[str, float]:
    """Shapes only."""
    return features(x, w, spec)


def serve(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, g: torch.Tensor | None, bias: torch.Tensor | None,
          plan: Any = None) -> torch.Tensor:
    """The weight gradient ``(O, C, *k)`` of ``y = corr(x, w)`` for the output gradient ``g``."""
    assert g is not None
    x, geom = abi.padded_geometry(x, w, spec)  # padded once: the packing gathers without bounds tests
    gy = g.contiguous()
    dw = torch.empty(w.shape, dtype=x.dtype)
    lib = abi.library()
    assert lib is not None
    fn = getattr(lib, f"gemm_w_{abi.DTYPES[x.dtype]}")
    if fn(ctypes.addressof(geom), x.data_ptr(), gy.data_ptr(), dw.data_ptr()) != 0:
        raise MemoryError("gemm_w: the native weight gradient could not allocate its packing panels")
    return dw
