"""The matrix products of the GEMM-based algorithms: anyconv's packed kernel or ``torch.matmul``.

``im2col``, ``winograd``, ``shifted``, ``kn2row`` and the small-call variants spend their time in
matrix products. :func:`matmul` computes ``a @ b`` (batch dims broadcast like ``torch.matmul``) with
the native library's ``gemm_f32`` / ``gemm_f64`` (``native_c/gemm.c``: packed panels, a register tile
sized by the build's vectors, threads over batch items or columns, no copy of a transposed operand)
when that kernel is the faster one on this machine, else with ``torch.matmul``:

- :func:`backend` decides once per process, dtype and thread count: ``$ANYCONV_GEMM`` (``native`` or
  ``torch``) if set, else with ``$ANYCONV_PROFILE=default`` (reproducible runs, the tests: no timing
  enters a choice, so every process sums in the same order) the kernel, else a probe timing both on a
  192 x 1152 x 768 product (a few milliseconds; :func:`rates`). ``auto`` scales the GEMM terms of its cost model by the chosen rate (:func:`rate`).
  The implicit products (im2col's gathered columns, ``gemm_t``, ``gemm_w``) skip the column matrix and
  serve while the kernel keeps :data:`IMPLICIT_MIN_SHARE` of torch's rate (:func:`implicit_ok`).
  On the 2-core AMD EPYC of the development machine (AVX-512) torch's BLAS (MKL) runs 90-100 GFLOP/s
  at 1 thread and the kernel 145-180; on a machine where MKL takes its AVX-512 path the two are close.
- small products (under :data:`MIN_MACS` multiply-adds), other dtypes, a missing library,
  non-CPU tensors and operands whose batch dims do not collapse to one stride take ``torch.matmul``.

The kernel's sums run in k order and never depend on the thread count (bit-deterministic).

Example:
    >>> import torch
    >>> a, b = torch.randn(2, 40, 30, dtype=torch.float64), torch.randn(30, 50, dtype=torch.float64)
    >>> torch.allclose(matmul(a, b), a @ b)
    True
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
import time

import torch

from . import _native_abi as abi

# smaller products: torch.matmul. The kernel's call costs ~10 us more Python than torch's and saves ~45% of
# the product's time where it is the faster: even at 2^20 multiply-adds (measured: mnist1d_cnn's small
# products ran 1.07x torch's through torch.matmul, 1.36x through the kernel at 2^18)
MIN_MACS = 1 << 21
# a batch of products counts its whole work (Winograd's 36 per-coordinate products of 2^20 each: 131
# GFLOP/s against torch's 78-91), each at least MIN_PRODUCT_MACS and MIN_N columns wide (the register
# tile is 32 columns wide with AVX-512; 16 columns ran 41 GFLOP/s against torch's 71)
MIN_PRODUCT_MACS = 1 << 18
MIN_N = 24
PROBE = (192, 1152, 768)  # m, k, n of the probe product (a ResNet layer's im2col GEMM in size)
BACKENDS = ("native", "torch")
IMPLICIT_MIN_SHARE = 0.6  # the implicit products serve while the kernel has this share of torch's rate
_RATES: dict[tuple[torch.dtype, int], dict[str, float]] = {}
_LOCK = threading.Lock()


def _batch_stride(t: torch.Tensor, nb: int) -> int | None:
    """The one stride that steps through ``t``'s ``nb`` leading (batch) dims in row-major order, or
    None if they do not collapse (0 for no batch dims or a broadcast one)."""
    stride: int | None = None
    inner = 1
    for size, st in zip(reversed(t.shape[:nb]), reversed(t.stride()[:nb])):
        if size == 1:
            continue
        if stride is None:
            stride, inner = st, size
        elif st != stride * inner:
            return None
        else:
            inner *= size
    return 0 if stride is None else stride


def _native_ok(a: torch.Tensor, b: torch.Tensor) -> bool:
    return (a.dtype == b.dtype and a.dtype in abi.DTYPES and a.device.type == "cpu" and b.device.type == "cpu"
            and not a.is_neg() and not b.is_neg() and a.dim() >= 2 and b.dim() >= 2)


def _native(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None, accumulate: bool) -> torch.Tensor | None:
    """``a @ b`` (into ``out``, added when ``accumulate``) by the kernel, or None where it does not serve."""
    lib = abi.library()
    if lib is None:
        return None
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    if a.dim() == 2 and b.dim() == 2:  # (the common case, without the broadcasting's Python)
        batch: tuple[int, ...] = ()
        a_bs: int | None = 0
        b_bs: int | None = 0
        nb, ae, be = 0, a, b
    else:
        batch = tuple(torch.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
        nb = len(batch)
        ae, be = a.expand(*batch, m, k), b.expand(*batch, k, n)
        a_bs, b_bs = _batch_stride(ae, nb), _batch_stride(be, nb)
    if a_bs is None or b_bs is None:
        return None
    if out is None:
        out = torch.empty((*batch, m, n), dtype=a.dtype)
    c_bs = _batch_stride(out, nb)
    if c_bs is None or tuple(out.shape) != (*batch, m, n) or (n > 1 and out.stride(-1) != 1):
        return None
    count = 1
    for s in batch:
        count *= s
    args = abi.GemmArgs(m, n, k, count, ae.stride(-2), ae.stride(-1), be.stride(-2), be.stride(-1),
                        out.stride(-2) if m > 1 else n, a_bs, b_bs, c_bs, int(accumulate),
                        abi.call_threads(count * m * n * k))
    fn = getattr(lib, f"gemm_{abi.DTYPES[a.dtype]}")
    if fn(ctypes.addressof(args), ae.data_ptr(), be.data_ptr(), out.data_ptr()) != 0:
        raise MemoryError("anyconv: the native matrix product could not allocate its packing buffers")
    return out


def _real_tensors() -> contextlib.AbstractContextManager[object]:
    """A context in which new tensors are real even under a fake-tensor mode (compile's tracing)."""
    try:
        from torch._subclasses.fake_tensor import unset_fake_temporarily
    except ImportError:  # (another torch: the probe runs as it is)
        return contextlib.nullcontext()
    return unset_fake_temporarily()


def _probe(dtype: torch.dtype) -> dict[str, float]:
    """GFLOP/s of the kernel and of ``torch.matmul`` on :data:`PROBE` (interleaved, best of 3 after a
    warm-up call of each)."""
    m, k, n = PROBE
    with _real_tensors(), torch.no_grad():
        a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
        best = {"native": float("inf"), "torch": float("inf")}
        for rep in range(4):
            for name in BACKENDS:
                t0 = time.perf_counter()
                if name == "native":
                    _native(a, b, None, False)
                else:
                    torch.matmul(a, b)
                if rep:
                    best[name] = min(best[name], time.perf_counter() - t0)
    return {name: 2e-9 * m * k * n / max(t, 1e-9) for name, t in best.items()}


def rates(dtype: torch.dtype = torch.float32) -> dict[str, float]:
    """GFLOP/s of each backend on this machine at the current thread count (measured once; the
    native one 0 without the library)."""
    if dtype not in abi.DTYPES or abi.library() is None:
        return {"native": 0.0, "torch": 0.0}
    key = (dtype, abi.threads())
    found = _RATES.get(key)
    if found is None:
        with _LOCK:
            found = _RATES.get(key)
            if found is None:
                found = _RATES[key] = _probe(dtype)
    return found


def _untimed(dtype: torch.dtype) -> str | None:
    """The backend decided without timing: ``torch`` without the library or for another dtype,
    ``$ANYCONV_GEMM`` if set, the kernel under ``$ANYCONV_PROFILE=default``; else None."""
    if dtype not in abi.DTYPES or abi.library() is None:
        return "torch"
    forced = os.environ.get("ANYCONV_GEMM", "")
    if forced in BACKENDS:
        return forced
    if os.environ.get("ANYCONV_PROFILE") == "default":  # reproducible: the same in every process, untimed
        return "native"
    return None


def backend(dtype: torch.dtype = torch.float32) -> str:
    """``"native"`` or ``"torch"``: which computes this process's ``dtype`` products at the current
    thread count (:func:`_untimed`, else the faster in :func:`rates`)."""
    decided = _untimed(dtype)
    if decided is not None:
        return decided
    r = rates(dtype)
    return "native" if r["native"] > r["torch"] else "torch"


def implicit_ok(dtype: torch.dtype = torch.float32) -> bool:
    """Whether the native implicit products (``gemm_x.c``: im2col's, ``gemm_t``'s, ``gemm_w``'s and the
    small path's) serve: where :func:`_untimed` decides, as :func:`backend`, else while the kernel's rate is
    at least :data:`IMPLICIT_MIN_SHARE` of ``torch.matmul``'s. They skip the columns' write and read, so
    they pay at a slower product than torch's: on an AVX2 AMD EPYC (the kernel 56-62 GFLOP/s against
    MKL's 77-81 at 1 thread) LeNet-5's 6 -> 16 5x5 forward ran 0.67 ms by them and 1.57 by copied columns
    and torch.matmul."""
    decided = _untimed(dtype)
    if decided is not None:
        return decided == "native"
    r = rates(dtype)
    return r["native"] >= IMPLICIT_MIN_SHARE * r["torch"]


def implicit_slowdown(dtype: torch.dtype = torch.float32) -> float:
    """How much slower the implicit products' multiply-adds run than :func:`matmul`'s (the torch backend's
    rate over the kernel's when torch computes the plain products; 1 otherwise), for their cost terms."""
    if backend(dtype) == "native" or not implicit_ok(dtype):
        return 1.0
    r = rates(dtype)
    return r["torch"] / r["native"] if r["native"] > 0 else 1.0


def rate(dtype: torch.dtype = torch.float32) -> float:
    """GFLOP/s of the products :func:`matmul` computes (the chosen backend's, :func:`rates`); 0 if unknown."""
    r = rates(dtype)
    return r[backend(dtype)] or r["torch"]


def _batch(a: torch.Tensor, b: torch.Tensor) -> int:
    """The number of products in ``a @ b`` (its broadcast batch dims' sizes multiplied)."""
    sa, sb = a.shape[:-2], b.shape[:-2]
    n = 1
    for i in range(1, max(len(sa), len(sb)) + 1):  # (broadcast sizes: the larger of each pair; no torch call)
        n *= max(sa[-i] if i <= len(sa) else 1, sb[-i] if i <= len(sb) else 1)
    return n


def kernel_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` by the kernel whatever its size and this machine's backend (bit-identical at every thread
    count, where torch's small products are not), by ``torch.matmul`` only where the kernel cannot serve.

    >>> kernel_matmul(torch.ones(2, 3), torch.ones(3, 4)).tolist()[0]
    [3.0, 3.0, 3.0, 3.0]
    """
    tracked = torch.is_grad_enabled() and (a.requires_grad or b.requires_grad)
    done = None if tracked or not _native_ok(a, b) else _native(a, b, None, False)
    return torch.matmul(a, b) if done is None else done


def matmul(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None,
           accumulate: bool = False) -> torch.Tensor:
    """``a @ b`` as ``torch.matmul`` computes it (both at least 2-D, batch dims broadcast); with ``out``
    the product is written there (``accumulate``: added to it, like ``baddbmm_``) and ``out`` returned.

    >>> import torch
    >>> out = torch.ones(3, 4)
    >>> matmul(torch.zeros(3, 2), torch.zeros(2, 4), out=out, accumulate=True).sum().item()
    12.0
    """
    tracked = torch.is_grad_enabled() and (a.requires_grad or b.requires_grad)  # (the kernel records no graph)
    macs = a.shape[-2] * a.shape[-1] * b.shape[-1]
    if (not tracked and _native_ok(a, b) and macs >= MIN_PRODUCT_MACS and b.shape[-1] >= MIN_N
            and macs * _batch(a, b) >= MIN_MACS
            and (out is None or out.dtype == a.dtype) and backend(a.dtype) == "native"):
        done = _native(a, b, out, accumulate)
        if done is not None:
            return done
    if out is None:
        return torch.matmul(a, b)
    if accumulate:
        return out.add_(torch.matmul(a, b))
    return torch.matmul(a, b, out=out)
