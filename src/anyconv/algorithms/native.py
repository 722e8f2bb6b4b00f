"""``native``: the direct sums as a small C kernel, built with the system C compiler on first use.

Eager PyTorch runs one memory pass per operation, so a depthwise 3x3 layer written with tensor
ops (``depthwise``: one multiply-add pass per tap) or a grouped layer with tiny per-group matrix
products cannot match a fused kernel. ``native`` is the one algorithm that fuses: the C kernel in ``native_c/``
(one file per form with one header; plain loops over GCC/Clang vector types; AVX-512 masked loads and stores, with plain fallbacks) computes

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
columns, its nested variant (:func:`lanes_plan`'s ``nest``) cuts each kernel row into sub-kernels of 3 taps and
each output row into tiles of 3, and computes every (tile, sub-kernel) product as Winograd's F(3, 3):
5 multiply-adds instead of 9, 108 per output instead of 169 on a 13x13 kernel). Each (sample, group) first copies its input into a private buffer with the
zero padding added and the columns split into stride (or dilation) phases, so that every tap is a
contiguous read and no inner loop checks a bound (depthwise layers with stride 2 over columns skip
the copy where the build has AVX-512: see :func:`reads_input_directly`); ``x``
(and a weight-gradient-shaped ``w``) is read through its strides, so the batch/channel-swapped views
of a weight gradient need no copy. Work is split over ``torch.get_num_threads()`` POSIX threads by
(sample, group, chunk of output channels). :func:`corr_t` is the transposed correlation (a strided
layer's input gradient) for one output channel per group, which ``polyphase`` uses instead of its
phase calls (:mod:`._native_transposed`).

Which form computes a call, its buffers and blocks are the C kernel's plan (``plan.c``), read through
:mod:`._native_abi` (``ctypes`` structures): :func:`form_of`, :func:`layout_of`, :func:`lanes_plan` and
:func:`buffer_bytes` only ask it. They take shapes and strides only (meta tensors work); without the
library (no compiler, turned off) ``native`` does not serve, :func:`form_of`, :func:`layout_of` and
:func:`lanes_plan` raise ``ValueError`` saying why, and the predicates (:func:`dots_form`,
:func:`lanes_form`, :func:`reads_input_directly`) say False. ``auto`` asks an algorithm's cost only for
calls its ``supports`` accepts, so its cost features are never asked without the library.

Availability: CPU tensors, float32/float64 (float16/bfloat16 computed in float32), at most 3
spatial dims, and a working C compiler (``$CC``, else ``cc``). The library is compiled once per source,
compiler, flags and CPU into a private cache directory (``$ANYCONV_CACHE``, default ``~/.cache/anyconv``)
and loaded with ``ctypes`` only after its owner, mode, size and SHA-256 are checked (:mod:`._native_build`
says how, and what happens to a damaged or planted file); ``ANYCONV_NATIVE=0`` turns the algorithm off. Without a
compiler ``supports`` says so and ``auto`` chooses among the others; :func:`set_enabled` turns it off
and on at run time.

The library also has a strided copy (:func:`copy_`, :func:`contiguous`, in :mod:`._native_copy`): torch's copy runs a permutation
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

import torch

from ..core.cache import BoundedCache
from ..core.shapes import prod
from ..core.spec import CorrSpec
from ..core.workspace import scratch_budget
from ._common import trivial_result
from ._native_abi import (
    COMPUTE,
    DTYPES,
    Geom,
    build_info,
    enabled,
    geometry,
    library,
    plan,
    plan_or_raise,
    run,
    set_enabled,
    threads,
    unavailable,
)
from ._native_copy import COPY_MAX_DIMS, COPY_MIN_ELEMENTS, contiguous, copy_, copy_order
from ._native_transposed import TRANSPOSED_MAX_TAPS, corr_t, transposed_reason

__all__ = ["COMPUTE", "COPY_MAX_DIMS", "COPY_MIN_ELEMENTS", "DTYPES", "NAME", "TRANSPOSED_MAX_TAPS", "buffer_bytes",
           "build_info", "contiguous", "copy_", "copy_order", "corr_t", "dots_form", "enabled", "form_of",
           "forward", "forward_grouped", "lanes_form", "lanes_plan", "layout_of", "library",
           "reads_input_directly", "set_enabled", "supports", "transposed_reason", "unavailable"]

NAME = "native"
LANES_FIELDS = ("rows", "cols", "band", "hp", "wp", "nest", "sub", "tiles", "rowlen")
LAYOUT_FIELDS = ("dots", "copied", "staged", "blocks", "block_outputs")


def form_of(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> int:
    """The C kernel's form for a call: 2 (:func:`lanes_form`), 1 (:func:`dots_form`) or 0 (rows);
    ``ValueError`` without the library."""
    return int(plan_or_raise(x, w, spec).form)


def dots_form(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> bool:
    """Dot products over the kernel's columns (short output rows, wide kernels), else row blocks
    (when :func:`lanes_form` does not apply); False without the library."""
    p = plan(x, w, spec)
    return p is not None and bool(p.dots)


def lanes_form(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> bool:
    """Whether the kernel computes the call with the groups in the vector lanes (its form 2): float32 (or
    half precision, computed in it) on a build with AVX-512, one output channel per group and at least 16
    groups (depthwise layers and their weight gradients), 1 or 2 spatial dims; False without the library."""
    p = plan(x, w, spec)
    return p is not None and p.form == 2


def lanes_plan(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> dict[str, int]:
    """Form 2's plan, the C kernel's (``plan.c``: ``lanes_plan``): register blocks of up to ``rows`` output
    rows x up to ``cols`` (8) output columns; ``band`` output rows per tile fill; the input tile's ``hp`` x
    ``wp`` positions; the nested variant's ``nest``, ``sub`` (sub-kernels of 3 taps) and ``tiles`` per row
    with the length of a tile row in vectors (``rowlen``). ``ValueError`` without the library.

    >>> spec = CorrSpec((1, 1), (1, 1), ((6, 6), (6, 6)), 256)  # 4 x 16 units: no thread count splits rows
    >>> lanes_plan(torch.empty(4, 256, 56, 56), torch.empty(256, 1, 13, 13), spec)
    {'rows': 3, 'cols': 8, 'band': 39, 'hp': 51, 'wp': 68, 'nest': 1, 'sub': 5, 'tiles': 23, 'rowlen': 115}
    """
    p = plan_or_raise(x, w, spec)
    return {name: int(getattr(p, name)) for name in LANES_FIELDS}


def layout_of(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> dict[str, int]:
    """The rows or dots form's plan for a call, the C kernel's (``plan.c``): ``dots`` (the form),
    ``copied`` (elements of one (sample, group)'s padded buffer), ``staged`` (elements of the two
    staging rows of a stride-2 split), ``blocks`` (register blocks per output channel, rows form) and
    ``block_outputs`` (outputs one block computes). ``ValueError`` without the library.

    >>> spec = CorrSpec((1, 1), (1, 1), ((1, 1), (1, 1)), 1)
    >>> layout_of(torch.empty(1, 3, 56, 56), torch.empty(8, 3, 3, 3), spec)
    {'dots': 0, 'copied': 11484, 'staged': 0, 'blocks': 56, 'block_outputs': 64}
    """
    p = plan_or_raise(x, w, spec)
    return {name: int(getattr(p, name)) for name in LAYOUT_FIELDS}


def reads_input_directly(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> bool:
    """Whether the kernel computes the call straight from ``x``, with no padded copy: one input and one
    output channel per group, stride 2 and dilation 1 over columns, at most 8 kernel columns, and a
    build with AVX-512 (its masked loads read a row's edges); False without the library."""
    p = plan(x, w, spec) if 1 <= spec.n <= 3 else None
    return p is not None and bool(p.direct)


def buffer_bytes(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> int:
    """Bytes of the buffers of every thread that gets work (0 without the library)."""
    p = plan(x, w, spec)
    return 0 if p is None else int(p.bytes)


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
_PLANS: BoundedCache[tuple[object, ...], tuple[Geom, tuple[int, ...], bool]] = BoundedCache(1024)


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
    key = (tuple(x.shape), tuple(w.shape), x.stride(), w.stride(), x.dtype, spec, threads())  # (threads: the cap)
    cached = _PLANS.get(key)
    if cached is None:  # the call's geometry, once per shape (the Python side is most of a tiny call)
        trivial = trivial_result(x, w, spec)
        if trivial is not None:
            return trivial
        strided_w = form_of(x, w, spec) != 0  # w read through its strides (dots and lanes forms)
        xc, wc = _operands(x, w, dt, strided_w)
        out = (int(x.shape[0]), int(w.shape[0]), *spec.output_spatial(x.shape[2:], w.shape[2:]))
        cached = (geometry(xc, wc, spec), out, strided_w)  # (never written to once stored)
        _PLANS.put(key, cached)
    else:
        xc, wc = _operands(x, w, dt, cached[2])
    return _corr(cached[0], xc, wc, cached[1], x.dtype)


def _corr(geom: Geom, xc: torch.Tensor, wc: torch.Tensor, out: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """Run the kernel on operands in the compute dtype; the result ``out``-shaped, in ``dtype``."""
    y = torch.empty(out, dtype=xc.dtype)
    if run("corr", geom, xc.dtype, xc.data_ptr(), wc.data_ptr(), y.data_ptr()) != 0:
        raise MemoryError("native: a thread could not allocate its padded input buffer")
    return y if y.dtype == dtype else y.to(dtype)


def forward_grouped(xg: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor:
    """:func:`forward` of ``x = xg.flatten(1, 2)`` (``xg``: ``(B, G, Cg, *L)``, ``G = spec.groups``),
    read through ``xg``'s strides: a weight gradient's batch/channel-swapped input is such a view, and
    flattening it would copy the whole input (``algorithms/_adjoints.corr_w_raw`` calls this instead).

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
    return _corr(geometry(x, wc, spec, grouped=xc), xc, wc, out, xg.dtype)


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
