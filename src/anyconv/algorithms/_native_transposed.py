"""``native``'s transposed correlation: the adjoint of ``corr(x, w)`` in ``x`` (a strided layer's input
gradient) for one output channel per group, in one pass of the C kernel (``native_c/transposed.c``),
which ``polyphase`` uses instead of its ``prod(stride)`` phase calls and copies."""

from __future__ import annotations

import torch

from ..core.shapes import prod
from ..core.spec import CorrSpec
from ..core.workspace import scratch_budget
from ._native_abi import COMPUTE, DTYPES, geometry, plan_of, run, unavailable

# strided transposed correlations (strided layers' input gradients) that ``corr_t`` serves: one output
# channel per group (depthwise-like: ``polyphase`` would otherwise make prod(stride) phase calls and copies)
# and at most this many taps (larger kernels' phases may go by FFT)
TRANSPOSED_MAX_TAPS = 64


def _forward_input(g: torch.Tensor, w: torch.Tensor, spec: CorrSpec, in_spatial: tuple[int, ...],
                   dtype: torch.dtype) -> torch.Tensor:
    """The forward call's ``x`` as a meta tensor (shapes only) of ``dtype``."""
    return torch.empty((int(g.shape[0]), int(w.shape[1]) * spec.groups, *in_spatial), dtype=dtype, device="meta")


def transposed_reason(g: torch.Tensor, w: torch.Tensor, spec: CorrSpec, in_spatial: tuple[int, ...]) -> str | None:
    """Why :func:`corr_t` cannot serve the adjoint of ``corr(x, w)`` (``x`` of ``in_spatial``), or None."""
    if int(w.shape[0]) != spec.groups:
        return "only one output channel per group"
    if prod(w.shape[2:]) > TRANSPOSED_MAX_TAPS:
        return f"at most {TRANSPOSED_MAX_TAPS} taps"
    if g.device.type != "cpu" or spec.output_spatial(in_spatial, w.shape[2:]) != tuple(g.shape[2:]):
        return "CPU tensors whose output size is the forward's"
    if COMPUTE.get(g.dtype, g.dtype) not in DTYPES or not 1 <= spec.n <= 3:
        return "real floating-point dtypes, 1 to 3 spatial dims"
    why = unavailable()
    if why is not None:
        return why
    p = plan_of(geometry(_forward_input(g, w, spec, in_spatial, g.dtype), w, spec), g.dtype)
    need = 0 if p is None else int(p.bytes_t)
    if need > scratch_budget():
        return f"the threads' padded gradient copies ({need} bytes) would exceed the scratch budget"
    return None


def corr_t(g: torch.Tensor, w: torch.Tensor, spec: CorrSpec, in_spatial: tuple[int, ...]) -> torch.Tensor:
    """The adjoint of ``corr(x, w)`` in ``x`` (``x`` of spatial size ``in_spatial``): ``(B, O, *o) ->
    (B, C, *in_spatial)``, for the calls :func:`transposed_reason` accepts (one pass, no phases).

    >>> from anyconv.algorithms import native
    >>> g, w = torch.tensor([[[1.0, 10.0]]]), torch.tensor([[[1.0, 2.0, 3.0]]])
    >>> corr_t(g, w, CorrSpec((2,), (1,), ((0, 0),), 1), (5,)).tolist() if native.library() else [[[1.0, 2.0, 13.0, 20.0, 30.0]]]
    [[[1.0, 2.0, 13.0, 20.0, 30.0]]]
    """
    why = unavailable()
    if why is not None:
        raise ValueError(f"native: {why}")
    dt = COMPUTE.get(g.dtype, g.dtype)
    gc, wc = g.to(dt).contiguous(), w.to(dt).contiguous()
    x = _forward_input(g, w, spec, in_spatial, dt)
    dx = torch.empty(x.shape, dtype=dt)
    if dx.numel() == 0:
        return dx.to(g.dtype)
    if run("corr_t", geometry(x, wc, spec), dt, gc.data_ptr(), wc.data_ptr(), dx.data_ptr()) != 0:
        raise MemoryError("native: a thread could not allocate its padded gradient buffer")
    return dx.to(g.dtype)
