"""``fft``: N-d cross-correlation through the convolution theorem, blocked (overlap-save).

For one block of input ``x_b`` (length ``n`` per dim) and the dilated kernel ``w_d`` (length
``e = (k - 1) * d + 1``), the circular cross-correlation

    c[p] = sum_q x_b[(p + q) mod n] * w_d[q] = IDFT( DFT(x_b) * conj(DFT(conj(w_d))) )[p]

equals the linear one for ``0 <= p <= n - e`` (no wrap-around). The padded input is cut into
overlapping blocks of ``n`` samples taken every ``T * s`` samples (``T = (n - e) // s + 1``
outputs per block, ``s`` the stride): one batched ``rfftn`` of every block (a strided view,
``Tensor.unfold``), a product with the kernel spectrum, one batched ``irfftn``, and each block
keeps ``c[0 : (T - 1) * s + 1 : s]`` (stride by subsampling). Channels are contracted per
frequency:

- depthwise (``C_in / groups == 1``): an elementwise product of spectra, ``(B, G, 1) * (G, O_g)``;
- otherwise ``Y[b, g, o, f] = sum_c X[b, g, c, f] * W[g, o, c, f]`` (a batched matmul over f).

Block lengths are 5-smooth (fast for pocketfft) and chosen per dim by a cost model
``blocks * n * (log2 n + channel work)``, then shortened (longest dim first) until one block's
scratch plus the kernel spectrum fit ``BLOCK_BYTES`` (1 MiB), as long as a dim's modelled work
grows by at most ``BLOCK_SLACK`` (1.3x; a weight gradient, whose "kernel" is as long as the
signal, keeps its one block). Blocks are processed in chunks of ``CHUNK_BYTES`` (1 MiB:
measured as fast as whole-call chunks and 2 MiB ones, and below torch's whole peak on an AVX2 machine,
1.0 MiB for the 4-channel k=1023 call), each chunk zero-padding
only its own slice of the input; depthwise kernels are chunked over channels, each chunk of
channels with its own kernel spectrum. Never above half of ``anyconv.get_workspace_limit()``
(``_workspace.scratch_budget()``) for the scratch buffers (input blocks, spectra, product,
inverse), which bounds memory for arbitrarily long signals. Measured (interleaved, 1 thread):
31x31 depthwise forward 6.6 -> 2.3 MiB, 4-channel k=1023 over 32k samples 4.7 -> 2.1 MiB (1.3 MiB in 1 MiB chunks)
(and 1.3x faster with 7 blocks of 6250 than one of 34560), at the same speed elsewhere. Half-precision inputs are computed in float32,
complex inputs with the full complex FFT.

Accuracy: the error is normwise, ``|y - y_exact| <~ c * u * log2(n) * ||x_block|| * ||w||``
(``u`` the unit roundoff of the compute dtype); measured normwise relative error in float32
(``max|y - y_64| / max|y_64|``) is 1e-7..1e-6 on the benchmark cases, see ``docs/speed.md``.
Reference: Mathieu, Henaff, LeCun, "Fast Training of Convolutional Networks through FFTs" (2014).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from ..core.shapes import effective_kernel, prod
from ..core.spec import CorrSpec
from ..core.windows import tiles
from ..core.workspace import chunk_limit, scratch_budget
from ._common import padded_slice

NAME = "fft"
# Scratch bytes per (batch element, block) = SCRATCH_FACTOR * (C + O) * prod(n) * itemsize.
SCRATCH_FACTOR = 3
# torch.fft's MKL backend refuses transforms over more than 7 dims ("DFTI ... Invalid configuration")
MAX_DIMS = 7
_MAX_SMOOTH = 2**24
CHUNK_BYTES = 2**20  # scratch per chunk of (sample, [channel,] block) units: cache-sized
MIN_CHUNK_UNITS = 1
BLOCK_BYTES = 2**20  # one block's scratch and the kernel spectrum: blocks are shortened to fit,
BLOCK_SLACK = 1.3  # as long as a dim's modelled work grows by at most this factor


@lru_cache(maxsize=1)
def _smooth_numbers() -> tuple[int, ...]:
    """All 5-smooth numbers up to ``_MAX_SMOOTH``, sorted."""
    out = []
    p2 = 1
    while p2 <= _MAX_SMOOTH:
        p3 = p2
        while p3 <= _MAX_SMOOTH:
            p5 = p3
            while p5 <= _MAX_SMOOTH:
                out.append(p5)
                p5 *= 5
            p3 *= 3
        p2 *= 2
    return tuple(sorted(out))


def fast_length(n: int) -> int:
    """The smallest 5-smooth integer ``>= n`` (an efficient FFT length).

    >>> [fast_length(v) for v in (1, 7, 17, 1000, 1025)]
    [1, 8, 18, 1000, 1080]
    """
    import bisect

    table = _smooth_numbers()
    i = bisect.bisect_left(table, n)
    return table[i] if i < len(table) else n


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The real or complex dtype the FFT runs in (half precisions go up to float32)."""
    if dtype in (torch.float16, torch.bfloat16):
        return torch.float32
    return dtype


def _dim_plan(
    length: int, e: int, s: int, out: int, alpha: float, cap: int | None = None
) -> tuple[int, int, int]:
    """Block length ``n``, outputs per block ``T`` and block count for one spatial dim: the
    cheapest 5-smooth ``n`` up to ``cap`` (the shortest one if none is that short)."""
    need = (out - 1) * s + e
    best: tuple[float, int, int, int] | None = None
    n = fast_length(max(e, 1))
    top = fast_length(need)
    while True:
        t = (n - e) // s + 1
        t = min(t, out)
        nb = -(-out // t)
        cost = nb * n * (math.log2(max(n, 2)) + alpha)
        if best is None or (cost < best[0] and (cap is None or n <= cap)):
            best = (cost, n, t, nb)
        if n >= top:
            break
        n = fast_length(max(n + 1, int(n * 1.25)))
        n = min(n, top)
    assert best is not None
    return best[1], best[2], best[3]


def plan(x_shape: tuple[int, ...], w_shape: tuple[int, ...], spec: CorrSpec, itemsize: int = 4
         ) -> dict[str, tuple[int, ...]]:
    """Per-dim block lengths ``n``, outputs per block ``T`` and block counts ``nb``: per dim the
    cheapest by the cost model, then the longest blocks shortened until one block's scratch and
    kernel spectrum take at most ``BLOCK_BYTES`` (or every block is as short as it can be)."""
    c, o = x_shape[1], w_shape[0]
    cg = w_shape[1]
    # channel contraction work per spectral point relative to one FFT pass per channel
    alpha = 0.0 if cg == 1 else 4.0 * o * cg / (c + o)
    kernel = w_shape[2:]
    out = spec.output_spatial(x_shape[2:], kernel)
    es = [effective_kernel(k, d) for k, d in zip(kernel, spec.dilation)]

    def dim(i: int, cap: int | None) -> tuple[int, int, int]:
        return _dim_plan(x_shape[2 + i] + sum(spec.padding[i]), es[i], spec.stride[i], out[i], alpha, cap)

    def cost(d: tuple[int, int, int]) -> float:
        return d[2] * d[0] * (math.log2(max(d[0], 2)) + alpha)

    dims = [dim(i, None) for i in range(spec.n)]
    limits = [BLOCK_SLACK * cost(d) for d in dims]
    shorter = set(range(spec.n))
    while shorter and sum(_block_bytes(tuple(d[0] for d in dims), x_shape, w_shape, spec.groups,
                                       itemsize)) > BLOCK_BYTES:
        i = max(shorter, key=lambda j: dims[j][0])
        d = dim(i, dims[i][0] - 1)
        if d[0] < dims[i][0] and cost(d) <= limits[i]:
            dims[i] = d
        else:
            shorter.discard(i)  # as short as it can be, or shorter blocks cost too much more work
    return {"n": tuple(d[0] for d in dims), "T": tuple(d[1] for d in dims), "nb": tuple(d[2] for d in dims),
            "out": tuple(out)}


def itemsize_of(dtype: torch.dtype) -> int:
    """Bytes per real element of the dtype the FFT runs in (4 for half precisions)."""
    return torch.empty((), dtype=compute_dtype(dtype)).element_size()


def workspace_bytes(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> tuple[int, int]:
    """``(fixed, per_unit)`` scratch bytes: the kernel spectrum, and one (sample, block) unit,
    or for depthwise kernels (channels independent) no fixed part and one (channel, sample,
    block) unit with its channel's kernel spectrum (made per chunk of channels)."""
    size = itemsize_of(x.dtype)
    p = plan(tuple(x.shape), tuple(w.shape), spec, size)
    return _block_bytes(p["n"], tuple(x.shape), tuple(w.shape), spec.groups, size)


def _block_bytes(ns: tuple[int, ...], x_shape: tuple[int, ...], w_shape: tuple[int, ...], groups: int,
                 size: int) -> tuple[int, int]:
    """``workspace_bytes`` for blocks of ``ns`` points."""
    spectrum = prod(ns[:-1]) * (ns[-1] // 2 + 1) * 2 * size
    if w_shape[1] == 1:
        og = w_shape[0] // groups
        return 0, SCRATCH_FACTOR * (1 + og) * prod(ns) * size + og * spectrum
    unit = SCRATCH_FACTOR * (x_shape[1] + w_shape[0]) * prod(ns) * size
    return w_shape[0] * w_shape[1] * spectrum, unit


def supports(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> str | None:
    """``fft`` serves calls with at most ``MAX_DIMS`` spatial dims whose kernel spectrum plus one
    block fits the workspace."""
    if spec.n > MAX_DIMS:
        return f"at most {MAX_DIMS} spatial dims are supported by torch.fft (got {spec.n})"
    if x.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64,
                       torch.complex64, torch.complex128):
        return f"dtype {x.dtype} is not supported by torch.fft"
    fixed, unit = workspace_bytes(x, w, spec)
    limit = scratch_budget()
    if fixed + unit > limit:
        return (
            f"the kernel spectrum ({fixed} bytes) plus one block ({unit} bytes) exceed the "
            f"scratch budget ({limit} bytes, half the workspace limit)"
        )
    return None


def _dilate(w: torch.Tensor, dilation: tuple[int, ...]) -> torch.Tensor:
    """Zero-stuff the kernel: ``(O, Cg, *k) -> (O, Cg, *((k - 1) * d + 1))``."""
    if all(d == 1 for d in dilation):
        return w
    kernel = w.shape[2:]
    out = w.new_zeros((*w.shape[:2], *(effective_kernel(k, d) for k, d in zip(kernel, dilation))))
    out[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in dilation)] = w
    return out


def _spectrum(wc: torch.Tensor, ns: tuple[int, ...], g: int, is_complex: bool) -> torch.Tensor:
    """The conjugated kernel spectrum of ``wc`` ``(O, Cg, *e)`` (``g`` groups), ``(G, Og, 1, F)``
    for depthwise kernels, else ``(G, F, Cg, Og)`` for the per-frequency matmul."""
    o, cg = wc.shape[:2]
    dims = tuple(range(-len(ns), 0))
    if is_complex:
        wf = torch.fft.fftn(wc.conj(), s=ns, dim=dims).conj()  # (O, Cg, *n)
    else:
        wf = torch.fft.rfftn(wc, s=ns, dim=dims).conj()  # (O, Cg, *nh)
    wf = wf.reshape(g, o // g, cg, -1)  # (G, Og, Cg, F)
    return wf.permute(0, 3, 2, 1).contiguous() if cg > 1 else wf


def forward(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor:
    """Cross-correlate ``x`` ``(B, C, *L)`` with ``w`` ``(O, C // G, *k)`` by blocked FFTs.

    Non-finite values: a block's FFT mixes all of its inputs (one Inf gives a block of NaN); the
    registry's ``run`` checks the result (one sum) and recomputes a non-finite one by ``auto.exact``
    (the choice without transform algorithms), also when ``fft`` was named, so the NaN and Inf land
    where torch puts them. A finite result is the FFT's own.
    """
    return _transformed(x, w, spec)


def _transformed(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor:
    """:func:`forward`'s blocked-FFT computation, whatever the values."""
    n_dims = spec.n
    size = itemsize_of(x.dtype)
    p = plan(tuple(x.shape), tuple(w.shape), spec, size)
    ns, ts, nbs, out = p["n"], p["T"], p["nb"], p["out"]
    b, c = x.shape[:2]
    o, cg = w.shape[:2]
    g = spec.groups
    dt = compute_dtype(x.dtype)
    is_complex = dt.is_complex
    y = x.new_empty((b, o, *out))
    if y.numel() == 0:
        return y
    wc = _dilate(w.to(dt), spec.dilation)
    dims = tuple(range(-n_dims, 0))
    dw = cg == 1  # channels independent: chunks of channels, each with its own kernel spectrum
    og = o // g
    wf = None if dw else _spectrum(wc, ns, g, is_complex)
    steps = [t * s for t, s in zip(ts, spec.stride)]
    fixed, unit = _block_bytes(ns, tuple(x.shape), tuple(w.shape), g, size)  # workspace_bytes, planned once
    # cache-sized chunks (measured as fast as whole-call chunks, with less memory)
    limit = chunk_limit(fixed, unit, CHUNK_BYTES, MIN_CHUNK_UNITS)
    keep = tuple(slice(0, (t - 1) * s + 1, s) for t, s in zip(ts, spec.stride))
    made = None  # the channels whose kernel spectrum wf holds (depthwise)
    for t in tiles([g, b, *nbs] if dw else [b, *nbs], unit, limit):
        chans, batch, blocks = (t[0], t[1], t[2:]) if dw else (slice(0, c), t[0], t[1:])
        if dw and made != chans:
            wf, made = _spectrum(wc[chans.start * og : chans.stop * og], ns, chans.stop - chans.start,
                                 is_complex), chans
        assert wf is not None
        # the chunk's blocks: its slice of x, zero-padded where it reaches past x's edges
        region = [slice(bl.start * st, (bl.stop - 1) * st + n) for bl, st, n in zip(blocks, steps, ns)]
        xs = padded_slice(x[:, chans], batch, region, spec.padding).to(dt)
        for i in range(n_dims):
            xs = xs.unfold(2 + i, ns[i], steps[i])  # -> (b, Ct, *nbt, *n)
        bt, gt = xs.shape[0], (xs.shape[1] if dw else g)
        nbt = xs.shape[2 : 2 + n_dims]
        if is_complex:
            xf = torch.fft.fftn(xs, dim=dims)
        else:
            xf = torch.fft.rfftn(xs, dim=dims)  # (b, Ct, *nbt, *nh)
        del xs
        f_shape = xf.shape[2 + n_dims :]
        xf = xf.reshape(bt, gt, cg, prod(nbt), -1)  # (b, Gt, Cg, P, F)
        if dw:
            # (b, Gt, 1, P, F) * (Gt, Og, 1, F) -> (b, Gt, Og, P, F)
            yf = xf * wf[:, :, 0, None, :]
        else:
            # (b, G, Cg, P, F) -> (G, F, b*P, Cg) @ (G, F, Cg, Og) -> (G, F, b*P, Og)
            xm = xf.permute(1, 4, 0, 3, 2).reshape(g, xf.shape[-1], -1, cg)
            yf = torch.matmul(xm, wf).reshape(g, -1, bt, xf.shape[3], og)
            yf = yf.permute(2, 0, 4, 3, 1)  # (b, G, Og, P, F)
        del xf
        yf = yf.reshape(bt, gt * og, *nbt, *f_shape)
        if is_complex:
            yb = torch.fft.ifftn(yf, dim=dims)
        else:
            yb = torch.fft.irfftn(yf, s=ns, dim=dims)  # (b, Ot, *nbt, *n)
        del yf
        yb = yb[(slice(None),) * (2 + n_dims) + keep]  # (b, Ot, *nbt, *T)
        perm = [0, 1]
        for i in range(n_dims):
            perm += [2 + i, 2 + n_dims + i]
        yb = yb.permute(perm).reshape(bt, gt * og, *(nb_ * t_ for nb_, t_ in zip(nbt, ts)))
        index = [batch, slice(chans.start * og, chans.start * og + gt * og)]
        crop = [slice(None), slice(None)]
        for i in range(n_dims):
            start = blocks[i].start * ts[i]
            stop = min(blocks[i].stop * ts[i], out[i])
            index.append(slice(start, stop))
            crop.append(slice(0, stop - start))
        y[tuple(index)] = yb[tuple(crop)].to(y.dtype)
    return y


# --- cost model (read by ``auto``: named features, error growth, compute dtype) ---

FFT_GROWTH_PER_LOG2 = 2.0  # error growth 2 log2(n) u (measured 3-5 u)
COMPUTE_DTYPE = compute_dtype


def error_growth(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> float:
    """Predicted normwise relative error in units of ``u``: ``FFT_GROWTH_PER_LOG2 * log2(FFT size)``."""
    n = plan(tuple(x.shape), tuple(w.shape), spec, itemsize_of(x.dtype))["n"]
    return FFT_GROWTH_PER_LOG2 * max(1.0, math.log2(max(prod(n), 2)))


def cost_features(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> dict[str, float]:
    """``data_ffts`` (n log n of input and output blocks), ``kernel_ffts``, ``dense_products`` (the
    channel contraction, Cg > 1) and ``depthwise_products`` (Cg = 1)."""
    b, c = x.shape[:2]
    o, cg = w.shape[:2]
    pl = plan(tuple(x.shape), tuple(w.shape), spec, itemsize_of(x.dtype))
    blocks, size = prod(pl["nb"]), prod(pl["n"])
    log = math.log2(max(size, 2))
    contraction = float(b * blocks * size * o * cg)
    return {"calls": 1.0, "data_ffts": float(b * (c + o) * blocks * size * log), "kernel_ffts": float(o * cg * size * log),
            "dense_products": contraction if cg > 1 else 0.0, "depthwise_products": contraction if cg == 1 else 0.0}
