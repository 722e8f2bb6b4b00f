"""Variant ``gemm_t`` of ``corr_t``: a one-group stride-1 input gradient as the native implicit product
(``native_c/gemm_x.c``: ``gemm_xt``), the transposed weight read from the forward's weight in the packing.

    dx[b, c, p] = sum_o sum_t w[o, c, K - 1 - t] * gy_pad[b, o, p + t * d]

The registry route of this call (``_adjoints.corr_t_raw``) first copies the weight flipped and
channel-swapped (``flip_swap``: 0.4 ms for ResNet-18's 256x256x3x3, 1.6 ms for its 512x512x3x3, at 1
thread), then runs im2col on it; here the packing reads the forward's weight at the flipped, swapped
positions, and the windows of the padded gradient are gathered as im2col's implicit product gathers
``x``'s. Serves the calls whose stuffed correlation ``auto`` gives to im2col and im2col's implicit product
would serve (:func:`anyconv.algorithms.im2col.implicit`), the same sums in the same order as that route,
and those it gives to native where dx has ``NATIVE_MIN_CHANNELS`` or more channels.
"""

from __future__ import annotations

import ctypes
from typing import Any

import torch

from ..core.spec import CorrSpec
from . import _native_abi as abi
from ._variant import features, grad_standin

NAME = "gemm_t"
OP = "corr_t"
ERROR_GROWTH = 0.0
COMPUTE_DTYPE = None
ALGORITHM = "im2col"  # the registry algorithm whose computation it is (choose_algorithm reports it)
REPLACES = ("im2col",)  # the registry choices for the stuffed call that this replaces (im2col's, the same product)
# and native's where dx has at least this many channels (the product's rows): measured at 1 thread, gemm_t / native
# on dense 3x3 input gradients: 0.93 at 32 channels (15x15, batch 32), 0.42-0.88 at 64-512 (ResNet's), 1.05 at
# 32 (64x64); with fewer channels native's direct loops win (1.4-4.7x on 1-16 channels)
NATIVE_MIN_CHANNELS = 32


def _stuffed(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                                                          CorrSpec]:
    from ._adjoints import stuffed_call

    return stuffed_call(g, w, spec, tuple(x.shape[2:]), shapes_only=True)  # stride 1: g itself, no copy


def supports(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, algorithm: str = "auto") -> str | None:
    """None for a one-group stride-1 call whose stuffed correlation goes to im2col's implicit product."""
    if any(s != 1 for s in spec.stride) or spec.groups != 1:
        return "one group, stride 1"
    if all(k == 1 for k in w.shape[2:]):
        return "a 1x1 kernel (im2col's product reads the gradient itself: no windows to gather)"
    if x.device.type != "cpu" or x.dtype not in abi.DTYPES or w.dtype != x.dtype:
        return "float32/float64 CPU tensors"
    from . import im2col
    from .auto import choose

    call = _stuffed(x, w, spec, grad_standin(x, w, spec))
    if not im2col.implicit(*call):
        return "im2col's implicit product does not serve the stuffed correlation"
    name = choose(*call, values=False).name
    if name in REPLACES or (name == "native" and x.shape[1] >= NATIVE_MIN_CHANNELS):
        return None
    return f"auto's choice for the stuffed call is {name}, not im2col (nor native with {NATIVE_MIN_CHANNELS}+ channels)"


def cost_features(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> dict[str, float]:
    """Shapes only."""
    return features(x, w, spec)


def serve(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, g: torch.Tensor | None, bias: torch.Tensor | None,
          plan: Any = None) -> torch.Tensor:
    """The input gradient ``(B, C, *L)`` of ``y = corr(x, w)`` for the output gradient ``g``."""
    assert g is not None
    z, wf, sub = _stuffed(x, w, spec, g)
    z, geom = abi.padded_geometry(z, wf, sub, wrap=True)
    w = w.contiguous()
    b, c = z.shape[0], wf.shape[0]
    y = torch.empty((b, c, *x.shape[2:]), dtype=x.dtype)
    lib = abi.library()
    assert lib is not None
    rc = getattr(lib, f"gemm_xt_{abi.DTYPES[x.dtype]}")(ctypes.addressof(geom), z.data_ptr(), w.data_ptr(), y.data_ptr())
    if rc:
        raise MemoryError("gemm_t: the native implicit product could not allocate its packing panels" if rc == 1 else
                          "gemm_t: the native implicit product declined the call")
    return y
