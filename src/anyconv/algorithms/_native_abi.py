"""``native``'s ABI: the C kernel's structures as ``ctypes.Structure``, the library's loading, and its plan.

The kernel (``native_c/``, built and verified by :mod:`._native_build`) exports a few functions that
take a call's geometry (:class:`Geom`, the C struct of the same name in ``native_c/native.h``, field
by field); one of them, ``plan_f32`` / ``plan_f64``, fills a :class:`Plan`: the form that computes the
call, its chunks of output channels, the threads' buffer bytes, the rows or dots form's padded copy and
the lanes form's register blocks and bands. That plan is the one source of truth: ``native``'s
``supports`` (scratch check), its cost features (``auto``) and its tests read it instead of repeating
the C kernel's arithmetic, and the kernel's entry points plan each call themselves (a caller's
``form`` and ``chunks`` are ignored). :func:`library` checks that the C structs' sizes are the
:class:`Geom`, :class:`Plan` and :class:`CopyGeom` sizes before the first call.

Without the library (no compiler, ``ANYCONV_NATIVE=0``, :func:`set_enabled`), :func:`plan` returns
None: ``native`` does not serve, and what would ask its plan says why (:func:`unavailable`).
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import threading
from dataclasses import replace

import torch

from ..core.cache import BoundedCache
from ..core.padding import pad
from ..core.shapes import prod
from ..core.spec import CorrSpec
from . import _native_build

DTYPES = {torch.float32: "f32", torch.float64: "f64"}
# half precisions are computed in float32 (converted on the way in and out)
COMPUTE = {torch.float16: torch.float32, torch.bfloat16: torch.float32}
MAX_THREADS = 64  # the C source's job array
COPY_MAX_DIMS = 16  # the C source's CopyGeom arrays

_I64 = ctypes.c_int64
_LOCK = threading.Lock()
_STATE: dict[str, object] = {}
_ENABLED = os.environ.get("ANYCONV_NATIVE", "1") != "0"


class Geom(ctypes.Structure):
    """A call's geometry (``native_c/native.h``: ``Geom``): spatial dims left-padded to 3."""

    _fields_ = [("b", _I64), ("g", _I64), ("cg", _I64), ("og", _I64),
                ("in_", _I64 * 3), ("k", _I64 * 3), ("out", _I64 * 3),
                ("s", _I64 * 3), ("d", _I64 * 3), ("p", _I64 * 3),
                ("form", _I64), ("threads", _I64), ("chunks", _I64),
                ("xs", _I64 * 4), ("ws", _I64 * 4), ("xg", _I64), ("n", _I64), ("wrap", _I64)]


class Plan(ctypes.Structure):
    """The kernel's plan for a call (``native_c/native.h``: ``Plan``; ``plan.c`` fills it)."""

    _fields_ = [(name, _I64) for name in (
        "form", "chunks", "direct", "bytes", "bytes_t", "dots", "copied", "staged", "blocks", "block_outputs",
        "rows", "cols", "band", "hp", "wp", "nest", "sub", "tiles", "rowlen")]


class CopyGeom(ctypes.Structure):
    """A strided copy's loop nest (``native_c/copy.c``: ``CopyGeom``)."""

    _fields_ = [("nd", _I64), ("esize", _I64), ("threads", _I64),
                ("shape", _I64 * COPY_MAX_DIMS), ("ds", _I64 * COPY_MAX_DIMS), ("ss", _I64 * COPY_MAX_DIMS)]


class GemmArgs(ctypes.Structure):
    """A batched matrix product (``native_c/native.h``: ``GemmArgs``; strides in elements)."""

    _fields_ = [(name, _I64) for name in (
        "m", "n", "k", "batch", "a_rs", "a_cs", "b_rs", "b_cs", "c_rs", "a_bs", "b_bs", "c_bs",
        "accumulate", "threads")]


class WinoArgs(ctypes.Structure):
    """A chunk of Winograd tiles for the 2-D transforms (``native_c/native.h``: ``WinoArgs``)."""

    _fields_ = [*((name, _I64) for name in ("m", "a", "c", "b0", "b1", "ty0", "ty1", "tx0", "tx1", "h", "w", "ph", "pw")),
                ("xs", _I64 * 4), ("oh", _I64), ("ow", _I64), ("ys", _I64 * 4),
                *((name, _I64) for name in ("oc", "og", "o0", "threads", "plane", "rs"))]


STRUCTS = (Geom, Plan, CopyGeom, GemmArgs, WinoArgs)  # in the order of the C function abi_bytes's argument


def enabled() -> bool:
    """Whether the algorithm may be used in this process (see :func:`set_enabled`)."""
    return _ENABLED


def set_enabled(flag: bool) -> None:
    """Turn the algorithm on or off in this process (``ANYCONV_NATIVE=0`` starts with it off).

    Off, ``supports`` refuses every call and ``auto`` chooses among the other algorithms (its
    cached choices depend on this switch)."""
    global _ENABLED
    _ENABLED = bool(flag)


def _abi_problem(lib: ctypes.CDLL) -> str | None:
    for i, struct in enumerate(STRUCTS):
        size = int(lib.abi_bytes(i))
        if size != ctypes.sizeof(struct):
            return f"the library's {struct.__name__} has {size} bytes, the Python side's {ctypes.sizeof(struct)}"
    return None


def library() -> ctypes.CDLL | None:
    """The loaded kernel library, or None (then :func:`unavailable` says why)."""
    if not _ENABLED:
        return None
    lib = _STATE.get("lib")  # (set once, under the lock: a plain read is safe)
    if isinstance(lib, ctypes.CDLL):
        return lib
    with _LOCK:
        if "lib" not in _STATE and "error" not in _STATE:
            try:
                lib, info = _native_build.load()
                why = _abi_problem(lib)
                if why is not None:
                    raise OSError(why)
                _STATE["lib"], _STATE["build"] = lib, info
            except (OSError, subprocess.SubprocessError) as exc:
                _STATE["error"] = f"the C kernel could not be built or loaded ({exc})"
        lib = _STATE.get("lib")
        return lib if isinstance(lib, ctypes.CDLL) else None


def build_info() -> _native_build.BuildInfo | None:
    """What loading the library used and did (cache directory, compiler, flags, file, digest), or None
    before the first use or when it failed (then :func:`unavailable` says why)."""
    library()
    info = _STATE.get("build")
    return info if isinstance(info, _native_build.BuildInfo) else None


def unavailable() -> str | None:
    """Why the kernel library cannot be used, or None if it can."""
    if not _ENABLED:
        return "turned off (ANYCONV_NATIVE=0 or native.set_enabled(False))"
    if library() is None:
        return str(_STATE.get("error"))
    return None


def lanes_built() -> bool:
    """Whether the library has the lanes form (float32 on an AVX-512 build); False without a library."""
    lib = library()
    if lib is None:
        return False
    flag = _STATE.get("lanes")
    if not isinstance(flag, int):
        flag = _STATE["lanes"] = int(lib.lanes_form_f32())
    return bool(flag)


def threads() -> int:
    """The kernel's worker threads: ``torch.get_num_threads()``, 1 to :data:`MAX_THREADS`."""
    return max(1, min(MAX_THREADS, torch.get_num_threads()))


# a call's threads each get at least this many multiply-adds. The kernels run on the process's OpenMP pool
# (torch's, see _native_flags), so a call's threads no longer compete with torch's spinning workers; with
# threads started per call (before) the least was 2^24. Measured on the 2-core machine at 2 threads, anyconv /
# torch, inference (train), least 2^24 / 2^20 / 2^18: mobilenet_v2 1.49 (1.73) / 1.25 (1.46) / 1.12 (1.30),
# U-Net 2.17 (2.81) / 1.66 (2.15) / 1.86 (2.24), resnet18 1.62 (1.89) / 1.83 (2.14) / 1.51 (1.86) (noisy)
MIN_MACS_PER_THREAD = 1 << 19


def call_threads(macs: int) -> int:
    """:func:`threads`, fewer for a call of ``macs`` multiply-adds (at least one thread).

    >>> call_threads(0)
    1
    """
    return max(1, min(threads(), macs // MIN_MACS_PER_THREAD))


def _pad3(values: object, lead: int, fill: int = 1) -> list[int]:
    return [fill] * lead + [int(v) for v in values]  # type: ignore[attr-defined]


def _strides(t: torch.Tensor, lead: int) -> list[int]:
    """The strides (elements) of dims 0, 1 and the spatial dims but the last, spatial dims
    left-padded to 3 (a padded dim's stride is never used with an index other than 0)."""
    st = list(t.stride())
    return [st[0], st[1], *([0] * lead + st[2:-1])]


_GEOMS: BoundedCache[tuple[object, ...], Geom] = BoundedCache(1024)


def geometry(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, grouped: torch.Tensor | None = None) -> Geom:
    """The kernel's :class:`Geom` for ``corr(x, w)`` (shapes and strides only: meta tensors work). With
    ``grouped``, a ``(B, G, Cg, *L)`` view whose flattening is ``x``, x's strides are read from it (see
    ``native.forward_grouped``). ``form`` and ``chunks`` are left 0: the kernel plans them.

    Cached per shapes, strides, spec and thread count (the kernel only reads a Geom: never write to one)."""
    key = (x.shape, x.stride(), w.shape, w.stride(), spec, None if grouped is None else grouped.stride(), threads(),
           MIN_MACS_PER_THREAD)
    geom = _GEOMS.get(key)
    if geom is None:
        geom = _GEOMS.get_or_make(key, lambda: _geometry(x, w, spec, grouped))
    return geom


def _geometry(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, grouped: torch.Tensor | None) -> Geom:
    lead = 3 - spec.n
    out = spec.output_spatial(x.shape[2:], w.shape[2:])
    xs = _strides(x, lead) if grouped is None else _strides(grouped[:, 0], lead)
    xg = int(w.shape[1]) * int(x.stride(1)) if grouped is None else int(grouped.stride(1))
    macs = int(x.shape[0]) * int(w.shape[0]) * int(w.shape[1]) * prod(out) * prod(w.shape[2:])
    return Geom(int(x.shape[0]), spec.groups, int(w.shape[1]), int(w.shape[0]) // spec.groups,
                (_I64 * 3)(*_pad3(x.shape[2:], lead)), (_I64 * 3)(*_pad3(w.shape[2:], lead)),
                (_I64 * 3)(*_pad3(out, lead)), (_I64 * 3)(*_pad3(spec.stride, lead)),
                (_I64 * 3)(*_pad3(spec.dilation, lead)), (_I64 * 3)(*_pad3((a for a, _ in spec.padding), lead, 0)),
                0, call_threads(macs), 0, (_I64 * 4)(*xs), (_I64 * 4)(*_strides(w, lead)), xg, spec.n)


def padded_geometry(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, wrap: bool = False
                    ) -> tuple[torch.Tensor, Geom]:
    """``x`` padded by ``spec`` (its columns contiguous) and the :class:`Geom` of the same call on it with
    no padding: the implicit products' (``gemm_x.c``) packing then reads every tap at a fixed offset,
    with no bounds tests.

    With ``wrap``, where :func:`wraps` says it pays, the Geom's last output dim counts every column of
    the padded rows (``Geom.wrap``): the product's positions then run along x's memory, and the packing
    reads them by loads instead of gathers; the result has ``geom.out[2]`` columns per row, of which the
    call's own are the first (the caller crops the others)."""
    if any(a or b for a, b in spec.padding):
        x, spec = pad(x, spec.padding), replace(spec, padding=tuple((0, 0) for _ in spec.padding))
    if x.stride(-1) != 1:
        x = x.contiguous()
    geom = geometry(x, w, spec)
    if wrap and wraps(geom):
        wrapped = geom.__dict__.get("wrapped")  # made once per cached Geom
        if wrapped is None:
            wrapped = geom.wrapped = _wrapped(geom)
        geom = wrapped
    return x, geom


# A wrapped product computes (row - own) / row more columns, and saves the gathers, whose share of its time
# falls as the product's rows (output channels) grow: measured at 1 thread (3x3 layers), the gathers cost
# about as much as 16-18 more rows; so a product wraps when its waste times its rows is at most this (wrapped
# / not: 0.83 at 64 rows and 2/17 waste, 0.90 at 128 rows and 2/16, 1.12 at 256 rows and 2/10)
WRAP_ROWS = 16


def wraps(geom: Geom) -> bool:
    """Whether the implicit product of ``geom`` (no padding) computes every column of x's rows: 2-3 dims,
    stride 1 along rows, rows contiguous, output rows that are not whole vectors of 16 (those are read
    by loads already), and its waste (the columns computed only to be dropped) times its rows at most
    ``WRAP_ROWS``."""
    own, row = geom.out[2], geom.xs[3]
    return (geom.n >= 2 and geom.s[2] == 1 and row == geom.in_[2] and own % 16 != 0
            and (row - own) * geom.og <= WRAP_ROWS * row)


def _wrapped(geom: Geom) -> Geom:
    out = Geom()
    ctypes.pointer(out)[0] = geom
    out.out[2], out.wrap = geom.xs[3], 1
    return out


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the kernel computes ``dtype`` in (half precisions in float32)."""
    return COMPUTE.get(dtype, dtype)


def plan_of(geom: Geom, dtype: torch.dtype) -> Plan | None:
    """The kernel's :class:`Plan` for ``geom`` in ``dtype``'s compute dtype, or None without a library
    or for a dtype it does not compute."""
    lib = library()
    suffix = DTYPES.get(compute_dtype(dtype))
    if lib is None or suffix is None:
        return None
    out = Plan()
    getattr(lib, f"plan_{suffix}")(ctypes.addressof(geom), ctypes.addressof(out))
    return out


def plan(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> Plan | None:
    """:func:`plan_of` the call's :func:`geometry` (shapes and strides only: meta tensors work)."""
    return plan_of(geometry(x, w, spec), x.dtype)


def plan_or_raise(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> Plan:
    """:func:`plan`, or ``ValueError`` saying why there is none (no library, or a dtype it does not compute)."""
    p = plan(x, w, spec)
    if p is None:
        why = unavailable() or f"no kernel computes {x.dtype}"
        raise ValueError(f"native: the kernel cannot plan this call: {why}")
    return p


def run(kernel: str, geom: Geom, dtype: torch.dtype, *pointers: int) -> int:
    """Call the library's ``{kernel}_{f32|f64}`` (by ``dtype``, a compute dtype) on ``geom`` and data
    pointers; its status (0: done). ``ValueError`` when the library is not there."""
    lib = library()
    if lib is None:
        raise ValueError(f"native: {unavailable()}")
    return int(getattr(lib, f"{kernel}_{DTYPES[dtype]}")(ctypes.addressof(geom), *pointers))
