"""``native``: the direct sums as a small C kernel, built with the system C compiler on first use.

Eager PyTorch runs one memory pass per operation, so a depthwise 3x3 layer written with tensor
ops (``depthwise``: one multiply-add pass per tap) or a grouped layer with tiny per-group matrix
products cannot match a fused kernel. ``native`` is the one algorithm that fuses: ``_native.c``
(plain loops over GCC/Clang vector types; AVX-512 masked loads and stores, with plain fallbacks) computes

    y[b, g*Og + o, p] = sum_{c, q} w[g*Og + o, c, q] * x_pad[b, g*Cg + c, p * s + q * d]

with every output accumulated in registers over all its channels and taps (a block of up to 4
output channels x 1-8 output rows x 32 float / 16 double columns at a time, or one vector of 16 / 8
for output rows that fit in one, vectorised by the compiler), or, for short output rows and large
kernels (weight gradients), as dot products over the kernel's rows (4 output channels x up to 4
outputs at a time); with one output channel per group and at least 16 groups (depthwise layers and
their weight gradients) in float32 on an AVX-512 build, with 16 groups in the vector lanes instead
(:func:`lanes_form`: each group block's input transposed into a padded tile, output blocks of up to 3
rows x 8 columns accumulated over every tap, 0.4-1.1 aligned loads per multiply-add instead of two
loads, one of them a broadcast, for the other forms; for wide kernels at stride and dilation 1 over
columns, its nested variant (:func:`lanes_nest`) cuts each kernel row into sub-kernels of 3 taps and
each output row into tiles of 3, and computes every (tile, sub-kernel) product as Winograd's F(3, 3):
5 multiply-adds instead of 9, 108 per output instead of 169 on a 13x13 kernel). Each (sample, group) first copies its input into a private buffer with the
zero padding added and the columns split into stride (or dilation) phases, so that every tap is a
contiguous read and no inner loop checks a bound (depthwise layers with stride 2 over columns skip
the copy where the build has AVX-512: see :func:`reads_input_directly`); ``x``
(and a weight-gradient-shaped ``w``) is read through its strides, so the batch/channel-swapped views
of a weight gradient need no copy. Work is split over ``torch.get_num_threads()`` POSIX threads by
(sample, group, chunk of output channels). :func:`corr_t` is the transposed correlation (a strided
layer's input gradient) for one output channel per group, which ``polyphase`` uses instead of its
phase calls.

Availability: CPU tensors, float32/float64 (float16/bfloat16 computed in float32), at most 3
spatial dims, and a working C compiler (``$CC``, else ``cc``). The library is compiled once per source,
compiler, flags and CPU into a private cache directory (``$ANYCONV_CACHE``, default ``~/.cache/anyconv``)
and loaded with ``ctypes`` only after its owner, mode, size and SHA-256 are checked (:mod:`._native_build`
says how, and what happens to a damaged or planted file); ``ANYCONV_NATIVE=0`` turns the algorithm off. Without a
compiler ``supports`` says so and ``auto`` chooses among the others; :func:`set_enabled` turns it off
and on at run time.

The library also has a strided copy (:func:`copy_`, :func:`contiguous`): torch's copy runs a permutation
whose destination rows are a few elements long (``polyphase``'s interleave of the phases of a
kernel == stride transposed layer: rows of 2) at ~2 ns per element; the C loop reads the source in
runs instead (interleaved A/B, 1 thread: 0.47 vs 0.7-1.0 ms for the 2x2x2 transposed layer's 0.5M
elements). Callers fall back to torch's copy when the library is not there.

Memory: per thread, one padded copy of one (sample, group)'s input (zeroed once per call: the padding
is never rewritten), two staging rows for a stride-2 column split and, for the dot products, one
padded copy of one group's weights; in the lanes form, one band of a group block's input, its weights
and one band of its output (a band's tiles at most 512 KiB unless a single band needs more); all
checked against the scratch budget; no other scratch. Accuracy: the reference sums in the input dtype, in channel-then-tap
order; float32 normwise relative error ~1e-7, as ``direct``; the nested variant's F(3, 3) (Toom-Cook at 0,
1, -1, 2 and infinity, integer input transform) measures 1.5-2x the direct sums' error on random data
(2.7e-7 on a 9x9 kernel, 3.6e-7 on 13x13, 7.4e-7 on 31x31, 1.4e-6 on a 56x56 weight-gradient kernel: 4-23 u),
below the 2 sqrt(taps) u that ``auto`` predicts for the summation algorithms (26 u on 13x13, 112 u on
56x56) and far inside the 256 u it allows its transform algorithms.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import threading
from collections.abc import Sequence

import torch

from .._cache import BoundedCache
from .._shapes import prod
from .._spec import CorrSpec
from .._workspace import scratch_budget
from . import _native_build
from ._common import trivial_result

NAME = "native"
SOURCE = _native_build.SOURCES[0]
DTYPES = {torch.float32: "f32", torch.float64: "f64"}
# half precisions are computed in float32 (converted on the way in and out)
COMPUTE = {torch.float16: torch.float32, torch.bfloat16: torch.float32}
# columns per register block (the C source's VL) and threads at most (its job array)
BLOCK_COLUMNS = {torch.float32: 32, torch.float64: 16}
MAX_THREADS = 64

_LOCK = threading.Lock()
_STATE: dict[str, object] = {}
_ENABLED = os.environ.get("ANYCONV_NATIVE", "1") != "0"


def enabled() -> bool:
    """Whether the algorithm may be used in this process (see :func:`set_enabled`)."""
    return _ENABLED


def set_enabled(flag: bool) -> None:
    """Turn the algorithm on or off in this process (``ANYCONV_NATIVE=0`` starts with it off).

    Off, ``supports`` refuses every call and ``auto`` chooses among the other algorithms (its
    cached choices depend on this switch)."""
    global _ENABLED
    _ENABLED = bool(flag)


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
                _STATE["lib"], _STATE["build"] = _native_build.load()
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


def _threads() -> int:
    return max(1, min(MAX_THREADS, torch.get_num_threads()))


def dots_form(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> bool:
    """Dot products over the kernel's columns (short output rows, wide kernels), else row blocks
    (when :func:`lanes_form` does not apply)."""
    out = spec.output_spatial(x.shape[2:], w.shape[2:])
    return int(w.shape[-1]) >= 8 and out[-1] < BLOCK_COLUMNS.get(x.dtype, 32) // 2


# form 2 ("lanes": 16 groups in the vector lanes) for one output channel per group and at least this
# many groups (fewer would leave lanes idle)
LANES_MIN_GROUPS = 16


def lanes_form(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> bool:
    """Whether the kernel computes the call with the groups in the vector lanes (the C source's form 2):
    float32 (or half precision, computed in it) on a build with AVX-512, one output channel per group
    and at least :data:`LANES_MIN_GROUPS` groups (depthwise layers and their weight gradients), 1 or 2
    spatial dims."""
    if COMPUTE.get(x.dtype, x.dtype) != torch.float32 or not 1 <= spec.n <= 2:
        return False
    if int(w.shape[0]) != spec.groups or spec.groups < LANES_MIN_GROUPS:
        return False
    lib = library()
    return lib is not None and bool(_lanes_built(lib))


def _lanes_built(lib: ctypes.CDLL) -> int:
    flag = _STATE.get("lanes")
    if not isinstance(flag, int):
        flag = _STATE["lanes"] = int(lib.lanes_form_f32())
    return flag


def form_of(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> int:
    """The C kernel's form for a call: 2 (:func:`lanes_form`), 1 (:func:`dots_form`) or 0 (rows)."""
    return 2 if lanes_form(x, w, spec) else int(dots_form(x, w, spec))


LANES_BAND_BYTES = 512 * 1024  # the C source's: a band's input and output tiles, at most


def lanes_plan(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> dict[str, int]:
    """Form 2's plan (mirrors ``lanes_plan`` in ``_native.c``): register blocks of up to ``rows`` output
    rows (3 when the stride over rows is a multiple of the dilation, so that the rows share input loads,
    else 1) x up to ``cols`` (8) output columns (a row split evenly into blocks, the last block of a column
    smaller; in the nested variant, tiles of 3 columns); ``band`` output rows per tile fill (the largest
    number, a multiple of ``rows`` or all of them, whose input and output tiles fit in
    :data:`LANES_BAND_BYTES`, at least twice the rows its windows share with the next band; smaller when
    there are more threads than (sample, block of 16 groups) units, so that every thread gets rows), the
    input tile's ``hp`` x ``wp`` positions, and :func:`lanes_nest`'s ``nest``, ``sub`` and ``tiles`` with
    the length of a tile row in vectors (``rowlen``: ``wp``, nested ``5 tiles``).

    >>> spec = CorrSpec((1, 1), (1, 1), ((6, 6), (6, 6)), 256)  # 4 x 16 units: no thread count splits rows
    >>> lanes_plan(torch.empty(4, 256, 56, 56), torch.empty(256, 1, 13, 13), spec)
    {'rows': 3, 'cols': 8, 'band': 39, 'hp': 51, 'wp': 68, 'nest': 1, 'sub': 5, 'tiles': 23, 'rowlen': 115}
    """
    kernel = [1] * (2 - spec.n) + [int(v) for v in w.shape[2:]]
    out = [1] * (2 - spec.n) + list(spec.output_spatial(x.shape[2:], w.shape[2:]))
    s = [1] * (2 - spec.n) + list(spec.stride)
    d = [1] * (2 - spec.n) + list(spec.dilation)
    rows = 3 if s[0] % d[0] == 0 else 1
    wp = (out[1] - 1) * s[1] + (kernel[1] - 1) * d[1] + 1
    halo = (kernel[0] - 1) * d[0]
    nest, sub, tiles = lanes_nest(kernel, out, s, d)
    rowlen = 5 * tiles if nest else wp
    band = min((2 * halo // s[0] + rows) // rows * rows, out[0])
    while band < out[0]:
        nxt = min(band + rows, out[0])
        if (((nxt - 1) * s[0] + halo + 1) * rowlen + nxt * out[1]) * 64 > LANES_BAND_BYTES:
            break
        band = nxt
    units = int(x.shape[0]) * -(-spec.groups // 16)  # threads with no (sample, group block) of their own
    threads = _threads()  # split the rows (C: the Geom's threads)
    if threads > units:
        even = -(-out[0] // -(-threads // units))
        band = min(band, -(-even // rows) * rows)
    return {"rows": rows, "cols": 8, "band": band, "hp": (band - 1) * s[0] + halo + 1, "wp": wp, "nest": int(nest),
            "sub": sub, "tiles": tiles, "rowlen": rowlen}


def lanes_nest(kernel: Sequence[int], out: Sequence[int], stride: Sequence[int],
               dilation: Sequence[int]) -> tuple[bool, int, int]:
    """Whether form 2 takes its nested variant (mirrors ``lanes_nest`` in ``_native.c``), with its
    sub-kernels of 3 taps and tiles (of 3 outputs, plus those the sub-kernels reach) per row: over columns,
    every (tile of 3 outputs, sub-kernel) product is Winograd's F(3, 3), 5 multiply-adds instead of 9
    (plus the input rows' transform, about 15 per tile and row), for stride 1 and dilation 1 over columns
    where that count is below 5/6 of the direct sums' (its blocks measure about 1.2x their count). Over
    rows (given as ``kernel[0]`` etc.; 1 for a 1-D call) the sums stay direct.

    >>> lanes_nest((13, 13), (56, 56), (1, 1), (1, 1)), lanes_nest((7, 7), (56, 56), (1, 1), (1, 1))
    ((True, 5, 23), (False, 3, 21))
    """
    k1, k2 = kernel
    o1, o2 = out
    sub, touts = -(-k2 // 3), -(-o2 // 3)
    if stride[1] != 1 or dilation[1] != 1 or k2 < 3:
        return False, sub, touts + sub - 1
    hp = (o1 - 1) * stride[0] + (k1 - 1) * dilation[0] + 1
    nested = o1 * touts * k1 * sub * 5 + hp * (touts + sub - 1) * 15
    return 6 * nested < 5 * o1 * o2 * k1 * k2, sub, touts + sub - 1


def layout_of(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> dict[str, int]:
    """The kernel's plan for a call (mirrors ``layout`` in ``_native.c``): ``dots`` (the form),
    ``copied`` (elements of one (sample, group)'s padded buffer), ``staged`` (elements of the two
    staging rows of a stride-2 split), ``blocks`` (register blocks per output channel, rows form) and
    ``block_outputs`` (outputs one block computes).

    >>> spec = CorrSpec((1, 1), (1, 1), ((1, 1), (1, 1)), 1)
    >>> layout_of(torch.empty(1, 3, 56, 56), torch.empty(8, 3, 3, 3), spec)
    {'dots': 0, 'copied': 11484, 'staged': 0, 'blocks': 56, 'block_outputs': 64}
    """
    n = spec.n
    lead = 3 - n
    kernel = [1] * lead + [int(v) for v in w.shape[2:]]
    out = [1] * lead + list(spec.output_spatial(x.shape[2:], w.shape[2:]))
    stride = [1] * lead + list(spec.stride)
    dil = [1] * lead + list(spec.dilation)
    depth = ([1] * lead + [int(v) for v in x.shape[2:]])[0]
    cols = BLOCK_COLUMNS.get(x.dtype, 32)
    dots = dots_form(x, w, spec)
    if dots:
        owr, rows = -(-out[2] // 4) * 4, out[1]
        q = dil[2]
    else:
        og = int(w.shape[0]) // spec.groups
        cols = cols // 2 if out[2] <= cols // 2 else cols  # C: cols_per_block() (one vector per row)
        rows3 = og < 4 and kernel[1:] == [3, 3] and stride[1] == 1 and dil[1] == 1  # C: rows3()
        r = 1 if out[1] == 1 else (2 if og >= 4 else (8 if rows3 else 4))
        owr, rows = -(-out[2] // cols) * cols, -(-out[1] // r) * r
        q = stride[2]
    hp = (rows - 1) * stride[1] + (kernel[1] - 1) * dil[1] + 1
    wp = (owr - 1) * stride[2] + (kernel[2] - 1) * dil[2] + 1
    wq = -(-wp // q)
    copied, staged = int(w.shape[1]) * depth * hp * q * wq, 4 * wq if q == 2 else 0
    if dots:
        return {"dots": 1, "copied": copied, "staged": staged, "blocks": 0, "block_outputs": 0}
    return {"dots": 0, "copied": copied, "staged": staged, "blocks": out[0] * (rows // r) * (owr // cols),
            "block_outputs": r * cols}


# the C kernel's ``Geom`` struct, field by field (3-element fields spelled out)
FIELDS = ("b", "g", "cg", "og", *(f"{name}{i}" for name in ("in", "k", "out", "s", "d", "p") for i in range(3)),
          "form", "threads", "chunks", *(f"xs{i}" for i in range(4)), *(f"ws{i}" for i in range(4)), "xg")


def geometry(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, grouped: torch.Tensor | None = None) -> list[int]:
    """The C kernel's ``Geom`` (:data:`FIELDS`; spatial dims left-padded to 3). With ``grouped``, a
    ``(B, G, Cg, *L)`` view whose flattening is ``x``, x's strides are read from it (see
    :func:`forward_grouped`)."""
    lead = 3 - spec.n
    out = spec.output_spatial(x.shape[2:], w.shape[2:])
    b, o, g = int(x.shape[0]), int(w.shape[0]), spec.groups
    units = max(1, b * g)
    threads = _threads()
    chunks = 1 if units >= threads else min(o // g, -(-threads // units))
    return [b, g, int(w.shape[1]), o // g,
            *([1] * lead + [int(v) for v in x.shape[2:]]),
            *([1] * lead + [int(v) for v in w.shape[2:]]),
            *([1] * lead + list(out)),
            *([1] * lead + list(spec.stride)),
            *([1] * lead + list(spec.dilation)),
            *([0] * lead + [pb for pb, _ in spec.padding]),
            form_of(x, w, spec), threads, max(1, chunks),
            *(_strides(x, lead) if grouped is None else _strides(grouped[:, 0], lead)), *_strides(w, lead),
            int(w.shape[1]) * int(x.stride(1)) if grouped is None else int(grouped.stride(1))]


def _strides(t: torch.Tensor, lead: int) -> list[int]:
    """The strides (elements) of dims 0, 1 and the spatial dims but the last, spatial dims
    left-padded to 3 (a padded dim's stride is never used with an index other than 0)."""
    st = list(t.stride())
    return [st[0], st[1], *([0] * lead + st[2:-1])]


def _geom_array(geom: list[int]) -> ctypes.Array[ctypes.c_int64]:
    return (ctypes.c_int64 * len(geom))(*geom)


def _threads_bytes(kernel: str, x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, transposed: bool = False) -> int:
    """Bytes of the buffers of every thread that gets work: the C function ``kernel`` (bytes of one
    thread's buffers) times the threads, at most one per unit (sample, group[, chunk of channels])."""
    lib = library()
    dt = COMPUTE.get(x.dtype, x.dtype)
    if lib is None or dt not in DTYPES:
        return 0
    geom = geometry(x, w, spec)
    arr = _geom_array(geom)  # (held while C reads it: a temporary's memory could be reused before the call)
    one = int(getattr(lib, f"{kernel}_{DTYPES[dt]}")(ctypes.addressof(arr)))
    units = prod(geom[:2]) * (1 if transposed else geom[FIELDS.index("chunks")])
    return one * min(geom[FIELDS.index("threads")], units)


def reads_input_directly(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> bool:
    """Whether the kernel computes the call straight from ``x``, with no padded copy: one input and one
    output channel per group, stride 2 and dilation 1 over columns, at most 8 kernel columns, and a
    build with AVX-512 (its masked loads read a row's edges)."""
    lib = library()
    dt = COMPUTE.get(x.dtype, x.dtype)
    if lib is None or dt not in DTYPES or not 1 <= spec.n <= 3:
        return False
    arr = _geom_array(geometry(x, w, spec))  # (held while C reads it, as in _threads_bytes)
    return bool(getattr(lib, f"direct_columns_{DTYPES[dt]}")(ctypes.addressof(arr)))


def buffer_bytes(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> int:
    """Bytes of all threads' padded input buffers."""
    return _threads_bytes("buffer_bytes", x, w, spec)


def supports(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> str | None:
    """CPU calls in real floating-point dtypes and 1-3 spatial dims, when the C kernel could be built; the
    threads' padded input copies within the scratch budget."""
    if x.device.type != "cpu":
        return f"only CPU tensors are supported (got device {x.device.type!r})"
    if COMPUTE.get(x.dtype, x.dtype) not in DTYPES:
        return "only real floating-point dtypes are supported (got a complex dtype)"
    if not 1 <= spec.n <= 3:
        return f"only 1 to 3 spatial dims are supported (got {spec.n})"
    why = unavailable()
    if why is not None:
        return why
    need = buffer_bytes(x, w, spec)
    if need > scratch_budget():
        return (f"the threads' padded input copies ({need} bytes) would exceed the scratch budget "
                f"({scratch_budget()} bytes, half the workspace limit)")
    return None


# per call shape and strides: (Geom, output shape, whether w is read through its strides)
_PLANS: BoundedCache[tuple[object, ...], tuple[ctypes.Array[ctypes.c_int64], tuple[int, ...], bool]] = (
    BoundedCache(1024))


def _operands(x: torch.Tensor, w: torch.Tensor, dt: torch.dtype, strided_w: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` and ``w`` in the compute dtype, as the kernel reads them: x (and a dots- or lanes-form w) through
    their strides with rows contiguous (no copy of the batch/channel-swapped views a weight gradient
    passes), anything else contiguous."""
    xc = x if x.dtype == dt else x.to(dt)  # (no `to` call when it would return x: a tiny call's Python counts)
    wc = w if w.dtype == dt else w.to(dt)
    return (xc if xc.stride(-1) == 1 else xc.contiguous(),
            wc if strided_w and wc.stride(-1) == 1 else wc.contiguous())


def forward(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor:
    """Cross-correlate ``x`` ``(B, C, *L)`` with ``w`` ``(O, C // G, *k)``."""
    dt = COMPUTE.get(x.dtype, x.dtype)
    key = (tuple(x.shape), tuple(w.shape), x.stride(), w.stride(), x.dtype, spec, _threads())
    plan = _PLANS.get(key)
    if plan is None:  # the call's geometry, once per shape (the Python side is most of a tiny call)
        trivial = trivial_result(x, w, spec)
        if trivial is not None:
            return trivial
        dots = form_of(x, w, spec) != 0  # w read through its strides (dots and lanes forms)
        xc, wc = _operands(x, w, dt, dots)
        out = (int(x.shape[0]), int(w.shape[0]), *spec.output_spatial(x.shape[2:], w.shape[2:]))
        plan = (_geom_array(geometry(xc, wc, spec)), out, dots)  # (never written to once stored)
        _PLANS.put(key, plan)
    else:
        xc, wc = _operands(x, w, dt, plan[2])
    return _corr(plan[0], xc, wc, plan[1], x.dtype)


def _corr(geom: ctypes.Array[ctypes.c_int64], xc: torch.Tensor, wc: torch.Tensor, out: tuple[int, ...],
          dtype: torch.dtype) -> torch.Tensor:
    """Run the kernel on operands in the compute dtype; the result ``out``-shaped, in ``dtype``."""
    lib = library()
    if lib is None:
        raise ValueError(f"native: {unavailable()}")
    y = torch.empty(out, dtype=xc.dtype)
    status = getattr(lib, f"corr_{DTYPES[xc.dtype]}")(ctypes.addressof(geom), xc.data_ptr(), wc.data_ptr(), y.data_ptr())
    if status != 0:
        raise MemoryError("native: a thread could not allocate its padded input buffer")
    return y if y.dtype == dtype else y.to(dtype)


def forward_grouped(xg: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor:
    """:func:`forward` of ``x = xg.flatten(1, 2)`` (``xg``: ``(B, G, Cg, *L)``, ``G = spec.groups``),
    read through ``xg``'s strides: a weight gradient's batch/channel-swapped input is such a view, and
    flattening it would copy the whole input (``functional/_autograd.corr_w_raw`` calls this instead).

    >>> x = torch.arange(24.0).reshape(2, 3, 4)  # (batch 2, 3 channels, 4)
    >>> xg = x.reshape(2, 3, 1, 4).permute(2, 1, 0, 3)  # (1, 3 groups, 2 "channels" = the batch, 4)
    >>> spec = CorrSpec((1,), (1,), ((0, 0),), 3)
    >>> w = torch.ones(3, 2, 2)
    >>> bool(torch.equal(forward_grouped(xg, w, spec), forward(xg.flatten(1, 2), w, spec)))
    True
    """
    dt = COMPUTE.get(xg.dtype, xg.dtype)
    xc = xg if xg.dtype == dt and xg.stride(-1) == 1 else xg.to(dt).contiguous()
    x = torch.empty((xc.shape[0], xc.shape[1] * xc.shape[2], *xc.shape[3:]), dtype=dt, device="meta")
    trivial = trivial_result(x, w, spec)
    if trivial is not None:
        return torch.zeros(trivial.shape, dtype=xg.dtype)
    _, wc = _operands(x, w, dt, form_of(x, w, spec) != 0)
    out = (int(x.shape[0]), int(w.shape[0]), *spec.output_spatial(x.shape[2:], w.shape[2:]))
    return _corr(_geom_array(geometry(x, wc, spec, grouped=xc)), xc, wc, out, xg.dtype)


# strided transposed correlations (strided layers' input gradients) that ``corr_t`` serves: one output
# channel per group (depthwise-like: ``polyphase`` would otherwise make prod(stride) phase calls and copies)
# and at most this many taps (larger kernels' phases may go by FFT)
TRANSPOSED_MAX_TAPS = 64


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
    x = torch.empty((int(g.shape[0]), int(w.shape[1]) * spec.groups, *in_spatial), dtype=g.dtype, device="meta")
    need = _threads_bytes("buffer_bytes_t", x, w, spec, transposed=True)
    if need > scratch_budget():
        return f"the threads' padded gradient copies ({need} bytes) would exceed the scratch budget"
    return None


def corr_t(g: torch.Tensor, w: torch.Tensor, spec: CorrSpec, in_spatial: tuple[int, ...]) -> torch.Tensor:
    """The adjoint of ``corr(x, w)`` in ``x`` (``x`` of spatial size ``in_spatial``): ``(B, O, *o) ->
    (B, C, *in_spatial)``, for the calls :func:`transposed_reason` accepts (one pass, no phases).

    >>> g, w = torch.tensor([[[1.0, 10.0]]]), torch.tensor([[[1.0, 2.0, 3.0]]])
    >>> corr_t(g, w, CorrSpec((2,), (1,), ((0, 0),), 1), (5,)).tolist()
    [[[1.0, 2.0, 13.0, 20.0, 30.0]]]
    """
    lib = library()
    if lib is None:
        raise ValueError(f"native: {unavailable()}")
    dt = COMPUTE.get(g.dtype, g.dtype)
    gc, wc = g.to(dt).contiguous(), w.to(dt).contiguous()
    x = torch.empty((int(g.shape[0]), int(w.shape[1]) * spec.groups, *in_spatial), dtype=dt, device="meta")
    dx = torch.empty(x.shape, dtype=dt)
    if dx.numel() == 0:
        return dx.to(g.dtype)
    geom = _geom_array(geometry(x, wc, spec))
    status = getattr(lib, f"corr_t_{DTYPES[dt]}")(ctypes.addressof(geom), gc.data_ptr(), wc.data_ptr(), dx.data_ptr())
    if status != 0:
        raise MemoryError("native: a thread could not allocate its padded gradient buffer")
    return dx.to(g.dtype)


# strided copies through the C loop: at least this many elements (below, torch's copy costs less than
# the call's Python), elements of 4 or 8 bytes, at most COPY_MAX_DIMS dims once merged (the C source's)
COPY_MIN_ELEMENTS = 32768
COPY_MAX_DIMS = 16
COPY_GRAIN = 65536  # elements per thread at least


def copy_order(shape: Sequence[int], dst: Sequence[int], src: Sequence[int]) -> list[tuple[int, int, int]]:
    """The copy's loop nest as ``(extent, dst stride, src stride)`` per dim, outermost first: dims of
    extent 1 dropped, the others in the destination's order (largest stride first), neighbours that
    walk both tensors evenly merged, and, when the destination's innermost dim is short with a
    non-unit source stride, the longest dim with a unit source stride made the inner loop instead
    (then the source is read in runs: an interleaving copy).

    >>> copy_order((2, 3, 4), (12, 4, 1), (12, 4, 1))  # contiguous: one run
    [(24, 1, 1)]
    >>> copy_order((16, 2), (2, 1), (1, 16))  # interleave two rows of 16: read the rows
    [(2, 1, 16), (16, 2, 1)]
    """
    dims = sorted(((n, d, s) for n, d, s in zip(shape, dst, src) if n != 1), key=lambda t: (-abs(t[1]), -abs(t[2])))
    merged: list[tuple[int, int, int]] = []
    for n, d, s in dims:
        if merged and merged[-1][1] == d * n and merged[-1][2] == s * n:
            m = merged.pop()
            n, d, s = m[0] * n, d, s
        merged.append((n, d, s))
    if len(merged) > 1 and merged[-1][2] != 1 and merged[-1][0] < 16:
        unit = [i for i, t in enumerate(merged) if t[2] == 1 and t[0] > merged[-1][0]]
        if unit:
            merged.append(merged.pop(max(unit, key=lambda i: merged[i][0])))
    return merged or [(1, 1, 1)]


def copy_(dst: torch.Tensor, src: torch.Tensor) -> bool:
    """``dst.copy_(src)`` through the C loop when it applies (CPU tensors of one dtype and shape, 4- or
    8-byte elements, no autograd, large enough, the library built); returns whether it copied (if not,
    the caller copies with torch). Torch's copy runs a permutation whose destination rows are a few
    elements long at ~2 ns per element; this loop reads the source in runs (see :func:`copy_order`).
    """
    if (src.device.type != "cpu" or dst.device.type != "cpu" or src.dtype != dst.dtype or src.shape != dst.shape
            or dst.element_size() not in (4, 8) or dst.numel() < COPY_MIN_ELEMENTS
            or (torch.is_grad_enabled() and (src.requires_grad or dst.requires_grad))):
        return False
    order = copy_order(dst.shape, dst.stride(), src.stride())
    if len(order) > COPY_MAX_DIMS or (src.is_conj() or src.is_neg()):
        return False
    lib = library()
    if lib is None:
        return False
    threads = max(1, min(_threads(), dst.numel() // COPY_GRAIN))
    pad = [0] * (COPY_MAX_DIMS - len(order))
    geom = [len(order), dst.element_size(), threads, *(t[0] for t in order), *pad,
            *(t[1] for t in order), *pad, *(t[2] for t in order), *pad]
    arr = (ctypes.c_int64 * len(geom))(*geom)
    return lib.copy_strided(ctypes.addressof(arr), dst.data_ptr(), src.data_ptr()) == 0


def contiguous(t: torch.Tensor) -> torch.Tensor:
    """``t.contiguous()``, copied by :func:`copy_` when it applies."""
    if t.is_contiguous():
        return t
    out = torch.empty(t.shape, dtype=t.dtype, device=t.device)
    if copy_(out, t):
        return out
    return out.copy_(t)


# --- cost model (read by ``auto``: named features, error growth, compute dtype) ---
ERROR_GROWTH = 0.0  # a summation algorithm (auto's summation bound; the lanes form's nested variant too)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Half precisions are computed in float32 (:data:`COMPUTE`)."""
    return COMPUTE.get(dtype, dtype)


COMPUTE_DTYPE = compute_dtype


def cost_features(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> dict[str, float]:
    """Named features of the C kernel's forms (from :func:`form_of`, :func:`layout_of`, :func:`lanes_plan`).

    Rows and dots forms: ``rows4_macs``/``rows1_macs`` MACs of row blocks (rounded up to whole blocks)
    with 4 and with 1 output channel per block, ``dots4_macs``/``dots1_macs`` the same for dot products
    (kernel rows rounded up to 16), ``copied``/``copied_split`` input elements copied contiguously or
    split into stride phases (each (sample, group)'s part of x, plus the padded buffer zeroed once),
    ``loops`` block or dot kernel-row loops, ``one_tap_macs`` MACs of 1x1 kernels (rows form). Lanes form
    (groups in the vector lanes): ``lanes_sums`` multiply-adds (16 per group block; the nested Winograd
    variant's multiply-adds and input transform instead) and ``lanes_moved`` elements its tiles move.
    """
    b, o, cg = int(x.shape[0]), int(w.shape[0]), int(w.shape[1])
    out = spec.output_spatial(x.shape[2:], w.shape[2:])
    k = prod(w.shape[2:])
    f = dict.fromkeys(("calls", "rows4_macs", "rows1_macs", "dots4_macs", "dots1_macs", "copied", "copied_split",
                       "loops", "one_tap_macs", "lanes_sums", "lanes_moved"), 0.0)
    f["calls"] = 1.0
    if form_of(x, w, spec) == 2:  # groups in the vector lanes
        lp = lanes_plan(x, w, spec)
        o1, o2 = ([1] + list(out))[-2:]
        k1, k2 = ([1] + [int(v) for v in w.shape[2:]])[-2:]
        s1, d1 = ([1] + list(spec.stride))[-2], ([1] + list(spec.dilation))[-2]
        lanes = float(b * -(-spec.groups // 16) * 16)
        bands = -(-o1 // lp["band"])
        filled = o1 * s1 + bands * (k1 - 1) * d1  # input tile rows filled per (unit, c), about
        # the nested variant: 5 multiply-adds per (tile of 3 outputs, sub-kernel of 3 taps) and about
        # 15 per (tile, input row) for the input's transform, in place of the direct sums
        sums = (o1 * -(-o2 // 3) * k1 * lp["sub"] * 5 + filled * lp["tiles"] * 15) if lp["nest"] else o1 * o2 * k1 * k2
        f["lanes_sums"] = lanes * cg * sums
        f["lanes_moved"] = lanes * (cg * (filled * int(x.shape[-1]) + k1 * k2 * (bands if cg > 1 else 1)) + o1 * o2)
        return f
    lay = layout_of(x, w, spec)
    copied = float(b * int(x.shape[1]) * prod(x.shape[2:]) + lay["copied"] + lay["staged"])
    split = spec.stride[-1] > 1 and not lay["dots"]  # the copy splits columns into phases (a gather)
    f["copied_split" if split else "copied"] = copied
    og = o // spec.groups
    by4 = og // 4 * 4  # output channels computed 4 at a time (one input load feeds 4 of them)
    if lay["dots"]:
        inner = cg * prod(w.shape[2:-1])
        per_channel = float(b * spec.groups * prod(out) * inner * (-(-int(w.shape[-1]) // 16) * 16))
        f["dots4_macs"], f["dots1_macs"] = per_channel * by4, per_channel * (og - by4)
        f["loops"] = float(b * spec.groups * prod(out[:-1]) * -(-out[-1] // 4) * inner * (by4 // 4 + og - by4))
        return f
    per_channel = float(b * spec.groups * lay["blocks"] * lay["block_outputs"] * cg * k)
    f["rows4_macs"], f["rows1_macs"] = per_channel * by4, per_channel * (og - by4)
    f["loops"] = float(b * spec.groups * lay["blocks"] * (by4 // 4 + og - by4) * cg * k / max(1, int(w.shape[-1])))
    f["one_tap_macs"] = per_channel * og if k == 1 else 0.0  # 1x1: a block's loop is over channels alone
    return f
