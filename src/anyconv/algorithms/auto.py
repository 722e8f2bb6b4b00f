"""``auto``: choose an algorithm for a call, and say why.

Rules, in order:

1. **Capability**: only algorithms whose ``supports`` accepts the call are candidates (each
   refusal keeps its reason: dtype, kernel size, stride, workspace limit...).
2. **Accuracy guard**: every algorithm has a documented error model (``error_growth``): its
   float32 normwise relative error ``max|y - y_64| / max|y_64|`` is at most
   ``growth * u`` on the call (``u`` = unit roundoff of the dtype it computes in; ``growth``
   is 1.5-2x the largest error measured with random normal data on the test and benchmark
   calls: Winograd F(4x4, 3x3) 130 u -> 200 u, F(6, 3) 50 u -> 100 u; FFT 2 log2(n) u,
   measured 3-5 u; summation 2 sqrt(Cg K) u, measured 1-21 u). A transform algorithm
   (``fft``, ``winograd``) whose predicted error exceeds ``ACCURACY_ULPS * u(input dtype)``
   is rejected; the summation algorithms (``direct``, ``im2col``, ``depthwise``, ``kn2row``,
   ``positions``, ``matrix``) compute the reference sums and always pass. The guard rejects
   e.g. Winograd F(6x6, 3x3) (320 u) and F(4x4x4, 3x3x3) (400 u).
3. **Reference last**: ``direct`` (the reference) is a candidate only when no other algorithm
   serves the call (it was never measured fastest by a useful margin).
4. **Non-finite values** (NaN, Inf): a transform algorithm (``fft``, ``winograd``, and ``native``
   when it computes the call by its nested Winograd variant) mixes every input of a block or tile
   into every output of it, so one Inf gives a block of NaN where torch gives the Inf of its
   receptive field; ``positions`` carries it along flat rows; ``depthwise``, ``matrix`` and 3-D ``native``
   leave the zero padding out of their sums (see :func:`hazard`). The registry's ``run`` checks ``winograd``'s
   and ``fft``'s result (one sum, see :func:`finite`) and recomputes a non-finite one by :func:`exact`; for the
   others :func:`choose` checks the operands first. Either way such a call is served by the choice
   made without those algorithms (:func:`choose_exact`), whose sums put NaN and Inf where torch's
   reference path does (zero padding counts as data: ``0 * Inf = NaN``).
5. **Cost model**: the predicted time of each remaining candidate is a linear model in a few
   per-call features (work and data volume, see ``features``), with coefficients in
   ``COEFFICIENTS`` fitted by non-negative least squares to measured times
   (``benchmarks/fit_auto.py``, one thread, float32; the fit and its error are in
   ``docs/speed.md``). The fastest predicted candidate wins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..core import workspace as _workspace
from ..core.cache import BoundedCache
from ..core.shapes import prod
from ..core.spec import CorrSpec
from . import get, names, native
from .im2col import kernel_innermost, one_window

ACCURACY_ULPS = 256.0
# growth factors (in units of u) of the transform algorithms; summation algorithms have none
WINOGRAD_GROWTH = {1: {2: 12.0, 4: 50.0, 6: 100.0}, 2: {2: 12.0, 4: 200.0, 6: 320.0},
                   3: {2: 12.0, 4: 400.0}}
FFT_GROWTH_PER_LOG2 = 2.0

# Fitted coefficients (milliseconds per feature unit, in the order of ``features``): NNLS on
# relative error over 106 distinct core calls (forward, grad_input, grad_weight and the
# polyphase sub-calls of every suite case plus tiny/mid calls), one thread, float32, on the
# shared 2-core machine; benchmarks/fit_auto.py, data in benchmarks/results/fit_auto.json
# (depthwise re-timed after its stride-1 rewrite). Median relative error of the predicted
# times: depthwise 0.15, matrix 0.20, winograd 0.24, positions 0.26, shifted 0.30, im2col 0.32,
# others 0.52-0.58; among the candidates ``auto`` considers (``direct`` only as a last resort)
# the model picked the measured-fastest algorithm on 87 of 106 calls, 1.04x the fastest in
# geometric mean (worst 1.83x: a 7x7 depthwise forward, depthwise picked, fft faster). im2col
# was then re-timed after its kernel-innermost rule widened (the recorded data): there these
# coefficients pick the fastest on 79 of 106 calls, 1.08x in geometric mean (worst 2.23x, a
# transposed 2x2x2 input gradient); a refit on that data did no better (1.08x), so these were kept.
# After im2col, Winograd and FFT were made to work in smaller chunks (memory) they were re-timed,
# and the 1x1 column calls of strided transposed correlations (polyphase._col2im) timed: on those
# 97 calls (the data now in the JSON file) these coefficients pick the fastest on 70, 1.06x in
# geometric mean (worst 2.2x, the same 2x2x2 input gradient); a refit picks worse (64/97, 1.08x; its
# coefficients are the ones in the JSON file), so these were kept again, except that ``shifted``
# got a feature for its stride-phase split (the 2x2x2 input gradient: shifted 2.0 ms predicted 0.74,
# im2col 0.91) and only its coefficients were refitted on the same data: 71/97 fastest, 1.05x,
# worst 1.7x (a tiny 3-D weight gradient, im2col picked, direct faster).
# Then ``native`` (the C kernel) was added and every algorithm re-timed on the same 97 calls (the data
# now in the JSON file): ``native`` and ``depthwise`` (new feature: its stride-phase split) were
# refitted, the others kept (refitting them too picked worse: 67/97, 1.09x; refitting ``shifted`` as well
# read 69/97, 1.07x on the fit data but moved the dilated layers and conv1d k5/k7 to im2col, slower and
# above 2x torch's memory in the suite run). After native's dot products got blocks of 4 output channels
# it was re-timed and refitted: the model picks the measured fastest on 73/97 calls, 1.07x in geometric
# mean (worst 2.9x: ResNeXt g=32 at 28x28's weight gradient, positions predicted 0.91 ms, measured 3.3).
# Then im2col got its one-window path (the weight gradient of a 1x1 layer: no column copy) and both
# im2col and positions were re-timed on the 97 calls (the JSON file): refitting either picked worse
# (67-71/97), so their coefficients were kept; positions got one more feature, the MACs of its GEMMs
# with fewer than 16 rows or columns (B or Og: a ResNeXt group's 8 x 8, a 3-channel layer's weight
# gradient), whose coefficient alone was fitted (NNLS on relative error) to what the other four leave
# unexplained: the model then picked the fastest on 73/97 calls, 1.06x in geometric mean (ResNeXt g=32 at
# 28x28's weight gradient: native, 1.1 ms, instead of positions, 2.2 ms). After native's depthwise row
# blocks, dot-product row walks and stride-2 fills it was re-timed (the JSON file): these coefficients
# pick the fastest on 71/97 calls, 1.055x in geometric mean (worst 1.86x: the 2x2x2 transposed layer's
# weight gradient, positions picked, native faster); a refit of native's picked worse (66/97, 1.075x).
# Then native's buffer was zeroed once per call and its stride-2 split staged (small planes much faster),
# and fit_auto.py got MobileNetV2's later depthwise layers (960@7, 576@14 s2, 192@28 s2: 14 more calls);
# native was re-timed on all 111 calls and the new calls timed for every algorithm (the JSON file).
# There the old model picked im2col for 13 of the 14 new calls, 1.1-4.6x slower than native (1.16x in
# geometric mean over the 111): native's copy feature counted the whole padded buffer per (sample,
# group), now it counts what the kernel copies (x's elements, plus the buffer once), coefficients kept;
# im2col got a seventh feature, the contiguous runs its column copy makes (7-wide rows of a 7x7 plane
# cost ~1 ns per element, not 0.3), whose coefficient alone was fitted to what the other six leave
# unexplained. Result: the fastest on 87/111 calls, 1.057x (75/97, 1.061x without the new calls; the old
# model 73/97, 1.066x on the same data); every pick that changed got faster (-4.5 ms over the 111 calls;
# worst 2.18x, the 2x2x2 transposed layer's weight gradient as before). A refit of native's on this data
# read 85/111 but moved conv1d k7's weight gradient to native (10.2 ms for positions' 6.8).
# Then native's rows form took one-vector blocks for output rows that fit in one and masked stores for
# a row's last vector, and was re-timed on the 111 calls (the JSON file; these coefficients then: 90/111,
# 1.057x). Three single coefficients were fitted alone on the residual of the rest, as above: im2col's
# eighth feature, the column elements copied by a strided inner loop (stride > 1 in the output-row
# layout, dilation > 1 kernel-innermost: the transposed 2x2x2 layer's input gradient measured 2.4 ms,
# predicted 0.85), and the last coefficient of shifted (its stride-phase split: every strided call was
# underpredicted, ResNet-18's 3x3 s2 forward 3.5 ms for 5.6 measured). Result: the fastest on 93/111
# calls, 1.039x in geometric mean (79/97, 1.045x without the MobileNet calls), worst 2.26x (the 2x2x2
# transposed layer's weight gradient: positions, predicted 0.66 ms, measured 2.4); all six picks that
# changed got faster (-7.3 ms over the 111 calls). A refit of positions or native read 86-90/111.
# Then positions got a sixth feature, the input elements it splits into dilation phases in 3-D and up
# (a strided 3-D copy, slow in torch as im2col's 3-D windows are), fitted alone on the residual: the 2x2x2
# transposed layer's weight gradient goes to im2col (measured 1.9 ms, positions 2.4); 93/111, 1.036x;
# interleaved in the suite's forward+backward of that layer: 4.0 -> 3.2 ms (torch 2.8).
# Then native kept input vectors that several multiply-adds read in registers (up to 34% faster); native
# and shifted were re-timed on the 111 calls (the JSON file). These coefficients' predecessors then picked
# 93/111 (1.035x), native being underpredicted on weight gradients; a refit of native alone moved the
# pointwise layer's input gradient to it (2.2x slower), so two feature fixes came first: the dots form counts
# its outputs exactly (a block is as wide as the columns left; rounding to 4 made conv1d k5's and k7's weight
# gradients look alike, 7.2 and 9.5 ms measured), and a ninth feature, the MACs of 1-tap (1x1) kernels (the
# block's loop is over channels alone). Refitted with them: 94/111, 1.031x. In the suite's forward+backward
# (interleaved A/B against the previous coefficients) the weight gradients of both Conv3d layers and both
# transposed 3-D layers go to native: 9.8 -> 8.7, 20.1 -> 17.4, 4.9 -> 3.4, 4.5 -> 3.8 ms; conv1d k7's forward
# and input gradient go to native too, predicted 5.4 ms, measured 7.2 (shifted 5.5): 17.5 -> 21.4 ms. Kept:
# four of torch's weak spots gain 11-32%, the one dense row that loses stays within its target. On the
# final data the session's starting model picks the fastest on 69/111 calls, 1.27x (67/97, 1.13x without
# MobileNet's), these on 94/111, 1.031x (worst 1.71x: the k=1023 1-D forward, fft picked, native faster).
# Then native got form 2 (16 groups in the vector lanes) for one output channel per group and >= 16 groups,
# with two features of its own: its MACs (16 per block of groups) and the elements its tiles move
# (transposed in and out); its 31 calls in the data were re-timed interleaved against the previous forms
# (0.32-1.10x: the 4-tap 1-D depthwise forward the slowest) and their JSON times scaled by that ratio (the
# machine was too loaded that hour for times comparable with the other algorithms'); the two coefficients
# were fitted alone on those calls (NNLS on relative error, the constant kept): 96/111 fastest, 1.029x,
# every depthwise, MobileNet and large-kernel call picked fastest.
# Then form 2 got its nested variant (Winograd F(3, 3) over columns for wide kernels): its MACs feature counts
# the variant's multiply-adds and input transform instead of the direct sums, with the same coefficients
# (predicted 1.06 ms for the 13x13 depthwise forward, measured 1.05; 9x9 0.57 / 0.57-0.65 ms).
COEFFICIENTS: dict[str, tuple[float, ...]] = {
    "direct": (0.06618, 3.043e-08, 4.973e-07, 5.747e-09, 1.303e-07, 5.857e-07),
    "im2col": (0.02493, 2.313e-08, 3.24e-07, 2.351e-09, 2.228e-07, 4.076e-07, 2.624e-06, 5.223e-07),
    "fft": (0.2306, 3.634e-07, 5.224e-07, 4.092e-07, 0.0),
    "winograd": (0.09391, 3.322e-08, 4.414e-08, 2.382e-06),
    "depthwise": (0.1491, 2.147e-07, 0.01843, 5.621e-07),
    "matrix": (0.1404, 5.124e-07, 4.488e-05),
    "kn2row": (0.1027, 3.184e-08, 9.076e-07, 0.0),
    "positions": (0.1079, 2.571e-08, 7.432e-08, 0.0003946, 5.353e-08, 3.359e-06),
    "shifted": (0.1107, 1.768e-08, 1.07e-07, 7.038e-05, 4.766e-08, 1.466e-06),
    "native": (0.006979, 2.04e-08, 3.433e-08, 2.804e-08, 2.576e-08, 5.002e-07, 2.283e-07, 1.68e-06, 1.424e-08,
               1.751e-08, 2.152e-07),
}


@dataclass(frozen=True)
class Choice:
    """The algorithm chosen for a call and the reasons.

    ``rejected`` maps algorithm -> why it is not a candidate (capability or accuracy guard);
    ``estimates`` maps each candidate -> predicted milliseconds; ``errors`` maps each
    supported algorithm -> predicted float32-style normwise relative error.
    """

    name: str
    reason: str
    rejected: dict[str, str]
    estimates: dict[str, float] = field(default_factory=dict)
    errors: dict[str, float] = field(default_factory=dict)
    hazard: str = ""  # how the winner can misplace NaN/Inf (see hazard): "", "spreads" or "padding"


def unit_roundoff(dtype: torch.dtype) -> float:
    """``u`` of a dtype (complex: of its real part)."""
    real = {torch.complex64: torch.float32, torch.complex128: torch.float64}.get(dtype, dtype)
    return float(torch.finfo(real).eps) / 2


def _compute_dtype(name: str, dtype: torch.dtype) -> torch.dtype:
    if name in ("fft", "winograd", "depthwise", "matrix", "positions", "shifted", "native") and dtype in (torch.float16, torch.bfloat16):
        return torch.float32
    return dtype


def error_growth(name: str, x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> float:
    """Predicted normwise relative error of ``name`` on the call, in units of its ``u``."""
    if name == "winograd":
        from .winograd import M_DEFAULT

        return WINOGRAD_GROWTH[spec.n][M_DEFAULT[spec.n]]
    if name == "fft":
        from .fft import itemsize_of, plan

        n = plan(tuple(x.shape), tuple(w.shape), spec, itemsize_of(x.dtype))["n"]
        return FFT_GROWTH_PER_LOG2 * max(1.0, math.log2(max(prod(n), 2)))
    return 2.0 * math.sqrt(w.shape[1] * prod(w.shape[2:]))


def predicted_error(name: str, x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> float:
    """``error_growth * u(compute dtype)``."""
    return error_growth(name, x, w, spec) * unit_roundoff(_compute_dtype(name, x.dtype))


def features(name: str, x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> tuple[float, ...]:
    """The per-call features of ``name``'s cost model: (1, work, data, ...), see the table below.

    ======================  =====================================================================
    direct, im2col          1, MACs, copied window elements + in/out, MACs * min(1, 64 / GEMM N),
                            copied elements of 3-D (and higher) windows (a slower strided copy),
                            copied elements in the kernel-innermost layout (taps > positions),
                            contiguous runs copied (copied elements / output row, or / kernel row
                            kernel-innermost: torch's copy pays per run, ~2.6 ns), copied elements
                            read with a stride in the copy's inner loop (stride or dilation > 1)
    depthwise               1, output elements * taps, taps (passes), input elements split into
                            stride phases (stride > 1)
    winograd                1, transformed MACs, transform work, kernel transform (O Cg a^N)
    fft                     1, data FFTs (n log n), kernel FFTs, dense contraction, depthwise product
    kn2row                  1, GEMM MACs, tap-product elements, shifted-add elements
    positions               1, flat GEMM MACs, flat rows read, (position, group) GEMMs, flat
                            MACs of GEMMs with fewer than 16 rows or columns (slow small GEMMs),
                            input elements split into dilation phases in 3-D and up
    shifted                 1, flat GEMM MACs, per-tap traffic + crop, (tap, sample, group) GEMMs,
                            flat MACs * min(1, 64 / Lf) (short GEMM rows), input elements
                            split into stride phases (stride > 1: a strided copy)
    matrix                  1, batch * nnz, nnz (operator build)
    native                  1, MACs of row blocks (rounded up to whole blocks) with 4 and with 1
                            output channel per block, the same for dot products (kernel rows
                            rounded up to 16), input elements copied (contiguously; split into
                            stride phases: each (sample, group)'s part inside x, plus the padded
                            buffer zeroed once per call), (block or dot) kernel-row loops, MACs of
                            1-tap kernels (rows form); form 2 (groups in the vector lanes) has only
                            its own two: MACs (16 per group block; the nested variant's multiply-
                            adds and input transform instead), elements moved by its tiles (input
                            rows per band, weights, outputs)
    ======================  =====================================================================
    """
    b, c = x.shape[:2]
    o, cg = w.shape[:2]
    k = prod(w.shape[2:])
    out = spec.output_spatial(x.shape[2:], w.shape[2:])
    p = prod(out)
    macs = float(b * o * p * cg * k)
    # input elements copied into stride phases (a strided copy) by depthwise and shifted
    split = float(b * c * prod(x.shape[2:])) if any(st > 1 for st in spec.stride) else 0.0
    if name in ("direct", "im2col"):
        whole = name == "im2col" and one_window(x, w, spec)
        cols = 0 if k == 1 or whole else b * c * k * p  # column / window copy (none for a 1x1 kernel or one window)
        k_inner = kernel_innermost(out, tuple(w.shape[2:]), b)
        gather = (spec.dilation[-1] if k_inner else spec.stride[-1]) > 1  # the copy's inner loop reads a stride
        return (1.0, macs, float(cols + b * (c + o) * p), macs * min(1.0, 64.0 / max(1, b * p)),
                float(cols) if spec.n >= 3 else 0.0, float(cols) if k > b * p else 0.0,
                float(cols // max(1, int(w.shape[-1]) if k_inner else out[-1])), float(cols) if gather else 0.0)
    if name == "depthwise":
        return (1.0, float(b * o * p * k), float(k), split)
    if name == "winograd":
        from .winograd import KERNEL, M_DEFAULT

        m = M_DEFAULT[spec.n]
        a = (m + KERNEL - 1) ** spec.n
        tiles = b * prod([-(-v // m) for v in out])
        return (1.0, float(tiles * a * o * cg), float(tiles * a * (c + o) * a), float(o * cg * a))
    if name == "fft":
        from .fft import itemsize_of, plan

        pl = plan(tuple(x.shape), tuple(w.shape), spec, itemsize_of(x.dtype))
        blocks = prod(pl["nb"])
        size = prod(pl["n"])
        log = math.log2(max(size, 2))
        contraction = float(b * blocks * size * o * cg)
        return (1.0, float(b * (c + o) * blocks * size * log), float(o * cg * size * log),
                contraction if cg > 1 else 0.0, contraction if cg == 1 else 0.0)
    if name == "kn2row":
        padded = prod([v + sum(pp) for v, pp in zip(x.shape[2:], spec.padding)])
        return (1.0, float(b * o * k * cg * padded), float(b * o * k * padded), float(b * o * k * p))
    if name == "positions":
        from .positions import _plan

        kc = _plan(x, w, spec)[3]
        g = spec.groups
        flat = float(p * b * o * kc)
        split3 = float(b * c * prod(x.shape[2:])) if spec.n >= 3 and any(d > 1 for d in spec.dilation) else 0.0
        return (1.0, flat, float(p * g * (b + o // g) * kc), float(p * g), flat if min(b, o // g) < 16 else 0.0,
                split3)
    if name == "shifted":
        from .shifted import flat_len

        lf, g = flat_len(x, w, spec), spec.groups
        flat_macs = float(b * o * cg * k * lf)
        return (1.0, flat_macs, float(k * b * g * (cg + 2 * (o // g)) * lf + b * o * p),
                float(k * b * g), flat_macs * min(1.0, 64.0 / max(1, lf)), split)
    if name == "native":
        from .native import form_of, lanes_plan, layout_of

        if form_of(x, w, spec) == 2:  # groups in the vector lanes
            lp = lanes_plan(x, w, spec)
            o1, o2 = ([1] + list(out))[-2:]
            k1, k2 = ([1] + [int(v) for v in w.shape[2:]])[-2:]
            s1, d1 = ([1] + list(spec.stride))[-2], ([1] + list(spec.dilation))[-2]
            lanes = float(b * -(-spec.groups // 16) * 16)
            bands = -(-o1 // lp["band"])
            filled = o1 * s1 + bands * (k1 - 1) * d1  # input tile rows filled per (unit, c), about
            moved = lanes * (cg * (filled * int(x.shape[-1]) + k1 * k2 * (bands if cg > 1 else 1)) + o1 * o2)
            # the nested variant: 5 multiply-adds per (tile of 3 outputs, sub-kernel of 3 taps) and about
            # 15 per (tile, input row) for the input's transform, in place of the direct sums
            sums = (o1 * -(-o2 // 3) * k1 * lp["sub"] * 5 + filled * lp["tiles"] * 15) if lp["nest"] else o1 * o2 * k1 * k2
            return (1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, lanes * cg * sums, moved)
        lay = layout_of(x, w, spec)
        # the input inside x copied once per (sample, group); the buffer's padding zeroed once per call
        copied = float(b * c * prod(x.shape[2:]) + lay["copied"] + lay["staged"])
        split = spec.stride[-1] > 1 and not lay["dots"]  # the copy splits columns into phases (a gather)
        copies = (0.0 if split else copied, copied if split else 0.0)
        og = o // spec.groups
        by4 = og // 4 * 4  # output channels computed 4 at a time (one input load feeds 4 of them)
        if lay["dots"]:
            rows = prod(out)  # every output once (a block is as wide as the columns left, at most 4)
            inner = cg * prod(w.shape[2:-1])
            kw = -(-int(w.shape[-1]) // 16) * 16
            per_channel = float(b * spec.groups * rows * inner * kw)
            loops = float(b * spec.groups * prod(out[:-1]) * -(-out[-1] // 4) * inner * (by4 // 4 + og - by4))
            return (1.0, 0.0, 0.0, per_channel * by4, per_channel * (og - by4), *copies, loops, 0.0, 0.0, 0.0)
        per_channel = float(b * spec.groups * lay["blocks"] * lay["block_outputs"] * cg * k)
        loops = float(b * spec.groups * lay["blocks"] * (by4 // 4 + og - by4) * cg * k / max(1, int(w.shape[-1])))
        one_tap = per_channel * og if k == 1 else 0.0  # 1x1: a block's loop is over channels alone
        return (1.0, per_channel * by4, per_channel * (og - by4), 0.0, 0.0, *copies, loops, one_tap, 0.0, 0.0)
    if name == "matrix":
        from .matrix import nnz_bound

        nnz = nnz_bound(x, w, spec)
        return (1.0, float(b * nnz), float(nnz))
    return (1.0, macs, float(b * c * k * p))


def estimate_ms(name: str, x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> float:
    """Predicted milliseconds of ``name`` on the call (one thread, float32 scale)."""
    coef = COEFFICIENTS.get(name, COEFFICIENTS["direct"])
    return sum(a * f for a, f in zip(coef, features(name, x, w, spec)))


CACHE_SIZE = 4096
_CACHE: BoundedCache[tuple[object, ...], Choice] = BoundedCache(CACHE_SIZE)  # Choice is frozen: shared by threads


def clear_cache() -> None:
    """Forget cached choices (after changing ``COEFFICIENTS`` in place)."""
    _CACHE.clear()


def state() -> tuple[object, ...]:
    """What a choice depends on besides the call: the workspace limit, the registered
    algorithms, the tunables above and torch's thread count (``native``'s buffers, one per thread, must
    fit the workspace, and its lanes form splits rows over threads), so a cache keyed on the call plus
    this stays valid."""
    return (_workspace.get_workspace_limit(), names(), native.enabled(), ACCURACY_ULPS, FFT_GROWTH_PER_LOG2,
            tuple(map(id, WINOGRAD_GROWTH.values())), id(COEFFICIENTS), torch.get_num_threads())


def finite(*tensors: torch.Tensor) -> bool:
    """Whether every element of ``tensors`` is finite, by one sum each (``meta`` tensors count as finite).

    A sum is finite exactly when no element is NaN or Inf, unless finite elements near the dtype's
    largest value overflow it: then the call only goes to an exact algorithm, whose result is right
    either way. Measured (one thread, float32): 16-43 us on inputs of 200K-800K elements, where
    ``torch.isfinite(t).all()`` took 460-1600 us. Half precisions are summed in float32.

    Examples:
        >>> finite(torch.ones(3)), finite(torch.ones(2), torch.tensor([1.0, float("nan")]))
        (True, False)
    """
    for t in tensors:
        if t.is_meta or t.numel() == 0:
            continue
        total = t.sum(dtype=torch.float32) if t.dtype in (torch.float16, torch.bfloat16) else t.sum()
        if not bool(torch.isfinite(total)):
            return False
    return True


SELF_CHECKED = ("fft", "winograd")  # the registry's run checks their results (see algorithms.run)
SKIPS_PADDING = ("depthwise", "matrix")  # their sums leave the zero padding out (native's too in 3-D)


def hazard(name: str, x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> str:
    """How ``name`` would put NaN or Inf elsewhere than torch on this call, if its values are not finite.

    ``"spreads"``: a transform mixes one non-finite input into a whole block (``fft``, ``winograd``,
    ``native`` when its lanes form takes the nested Winograd variant) or flat rows carry it into
    outputs whose windows do not read it (``positions``). ``"padding"``: the sums leave the zero
    padding out (``depthwise``, ``matrix``, ``native`` in 3-D), where torch's reference path (and torch on an explicitly
    padded input) multiplies it, so a non-finite weight gives NaN there (``0 * Inf``). ``""``: none.
    """
    if name in ("fft", "winograd", "positions"):
        return "spreads"
    if name == "native" and native.form_of(x, w, spec) == 2 and native.lanes_plan(x, w, spec)["nest"]:
        return "spreads"
    if name in SKIPS_PADDING or (name == "native" and spec.n == 3):
        return "padding" if any(pb > 0 or pa > 0 for pb, pa in spec.padding) else ""
    return ""


def choose(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, values: bool = True, op: str | None = None,
           derived: bool = True) -> Choice:
    """Apply the rules above; ``Choice.reason`` says why the winner won.

    The choice depends on shapes, dtype, device type, spec and :func:`state` only, so it is
    cached on those (a call costs ~0.3 ms uncached, ~5 us cached). With ``values`` a winner with a
    :func:`hazard` also looks at the values it concerns (``x`` and ``w``, or for ``"padding"`` ``w``
    alone, by :func:`finite`): if they are not finite the choice is :func:`choose_exact`'s
    (``winograd`` and ``fft`` results are checked by the registry's ``run`` instead).

    ``op`` (``"corr"``, ``"corr_t"``, ``"corr_w"``): the choice for a whole operator call among the
    variants and the registry (``variants.choose_op``; ``x`` and ``w`` the forward correlation's
    operands, ``derived`` whether it is a gradient call); None: the registry's choice for a correlation.
    """
    if op is not None:
        from .variants import choose_op

        return choose_op(op, x, w, spec, values, derived)  # type: ignore[no-any-return]
    key = (tuple(x.shape), tuple(w.shape), x.dtype, x.device.type, spec, state())
    hit = _CACHE.get(key)
    if hit is None:
        hit = _CACHE.get_or_make(key, lambda: _choose(x, w, spec))
    if values and hit.hazard and hit.name not in SELF_CHECKED:
        if not finite(*((x, w) if hit.hazard == "spreads" else (w,))):
            return choose_exact(x, w, spec)
    return hit


def choose_exact(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> Choice:
    """:func:`choose` without the algorithms that have a :func:`hazard` on the call: the choice for a
    call with non-finite values (cached like :func:`choose`'s)."""
    key = (tuple(x.shape), tuple(w.shape), x.dtype, x.device.type, spec, state(), "exact")
    hit = _CACHE.get(key)
    if hit is None:
        hit = _CACHE.get_or_make(key, lambda: _choose(x, w, spec, exact_only=True))
    return hit


def exact(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor:
    """The correlation by :func:`choose_exact`'s algorithm: NaN and Inf where torch puts them."""
    return get(choose_exact(x, w, spec).name).forward(x, w, spec)


def _choose(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, exact_only: bool = False) -> Choice:
    rejected: dict[str, str] = {}
    estimates: dict[str, float] = {}
    errors: dict[str, float] = {}
    bound = ACCURACY_ULPS * unit_roundoff(x.dtype)
    for name in names():
        reason = get(name).supports(x, w, spec)
        if reason is None and exact_only and hazard(name, x, w, spec):
            reason = f"non-finite values: it would misplace them ({hazard(name, x, w, spec)})"
        if reason is not None:
            rejected[name] = reason
            continue
        err = predicted_error(name, x, w, spec)
        errors[name] = err
        if name in ("fft", "winograd") and err > bound:
            rejected[name] = (
                f"accuracy guard: predicted normwise relative error {err:.1e} exceeds the bound "
                f"{bound:.1e} ({ACCURACY_ULPS:g} u for {x.dtype})"
            )
            continue
        estimates[name] = estimate_ms(name, x, w, spec)
    if not estimates:
        raise ValueError(f"anyconv: no algorithm can serve this call: {rejected}")
    if "direct" in estimates and len(estimates) > 1:
        # the reference: never measured fastest by a useful margin (fit_auto data), and its
        # einsum's cost is the hardest to predict, so it is chosen only when nothing else serves
        del estimates["direct"]
        rejected["direct"] = "the reference implementation: chosen only when no other algorithm serves"
    best = min(estimates, key=lambda n: (estimates[n], n))
    others = sorted((t, n) for n, t in estimates.items() if n != best)
    runner = f"; next: {others[0][1]} ({others[0][0]:.3g} ms)" if others else ""
    reason = (
        f"{best}: lowest predicted time ({estimates[best]:.3g} ms) among "
        f"{len(estimates)} candidate(s) that passed the accuracy guard{runner}"
    )
    return Choice(best, reason, rejected, estimates, errors, hazard(best, x, w, spec))
