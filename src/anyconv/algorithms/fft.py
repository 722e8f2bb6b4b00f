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
``blocks * n * (log2 n + channel work)``; blocks are processed in chunks of ``CHUNK_BYTES`` (2 MiB: measured as fast as whole-call
chunks, with a third of the memory; depthwise kernels are chunked over channels too), never
above half of ``anyconv.get_workspace_limit()`` (``_workspace.scratch_budget()``) for the
scratch buffers (input blocks, spectra, product, inverse), which bounds memory for arbitrarily
long signals. Half-precision inputs are computed in float32,
complex inputs with the full complex FFT.

Accuracy: the error is normwise, ``|y - y_exact| <~ c * u * log2(n) * ||x_block|| * ||w||``
(``u`` the unit roundoff of the compute dtype); measured normwise relative error in float32
(``max|y - y_64| / max|y_64|``) is 1e-7..1e-6 on the benchmark cases, see ``docs/notes/speed.md``.
Reference: Mathieu, Henaff, LeCun, "Fast Training of Convolutional Networks through FFTs" (2014).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from .._padding import pad
from .._shapes import effective_kernel, prod
from .._spec import CorrSpec
from .._windows import tiles
from .._workspace import chunk_limit, scratch_budget

NAME = "fft"
# Scratch bytes per (batch element, block) = SCRATCH_FACTOR * (C + O) * prod(n) * itemsize.
SCRATCH_FACTOR = 3
# torch.fft's MKL backend refuses transforms over more than 7 dims ("DFTI ... Invalid configuration")
MAX_DIMS = 7
_MAX_SMOOTH = 2**24
CHUNK_BYTES = 2 * 2**20  # scratch per chunk of (sample, [channel,] block) units: cache-sized
MIN_CHUNK_UNITS = 1


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
    length: int, e: int, s: int, out: int, alpha: float
) -> tuple[int, int, int]:
    """Block length ``n``, outputs per block ``T`` and block count for one spatial dim."""
    need = (out - 1) * s + e
    best: tuple[float, int, int, int] | None = None
    n = fast_length(max(e, 1))
    top = fast_length(need)
    while True:
        t = (n - e) // s + 1
        t = min(t, out)
        nb = -(-out // t)
        cost = nb * n * (math.log2(max(n, 2)) + alpha)
        if best is None or cost < best[0]:
            best = (cost, n, t, nb)
        if n >= top:
            break
        n = fast_length(max(n + 1, int(n * 1.25)))
        n = min(n, top)
    assert best is not None
    return best[1], best[2], best[3]


def plan(x_shape: tuple[int, ...], w_shape: tuple[int, ...], spec: CorrSpec) -> dict[str, tuple[int, ...]]:
    """Per-dim block lengths ``n``, outputs per block ``T`` and block counts ``nb``."""
    c, o = x_shape[1], w_shape[0]
    cg = w_shape[1]
    # channel contraction work per spectral point relative to one FFT pass per channel
    alpha = 0.0 if cg == 1 else 4.0 * o * cg / (c + o)
    kernel = w_shape[2:]
    out = spec.output_spatial(x_shape[2:], kernel)
    ns, ts, nbs = [], [], []
    for i in range(spec.n):
        length = x_shape[2 + i] + sum(spec.padding[i])
        e = effective_kernel(kernel[i], spec.dilation[i])
        n, t, nb = _dim_plan(length, e, spec.stride[i], out[i], alpha)
        ns.append(n)
        ts.append(t)
        nbs.append(nb)
    return {"n": tuple(ns), "T": tuple(ts), "nb": tuple(nbs), "out": tuple(out)}


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=compute_dtype(dtype)).element_size()


def workspace_bytes(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> tuple[int, int]:
    """``(fixed, per_unit)`` scratch bytes: the kernel spectrum, and one (sample, block) unit,
    or for depthwise kernels (channels independent) one (sample, channel, block) unit."""
    p = plan(tuple(x.shape), tuple(w.shape), spec)
    size = _itemsize(x.dtype)
    spectrum = prod(p["n"][:-1]) * (p["n"][-1] // 2 + 1) * 2 * size
    fixed = w.shape[0] * w.shape[1] * spectrum
    channels = 1 + w.shape[0] // spec.groups if w.shape[1] == 1 else x.shape[1] + w.shape[0]
    unit = SCRATCH_FACTOR * channels * prod(p["n"]) * size
    return fixed, unit


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
            f"workspace limit ({limit} bytes)"
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


def forward(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor:
    """Cross-correlate ``x`` ``(B, C, *L)`` with ``w`` ``(O, C // G, *k)`` by blocked FFTs."""
    n_dims = spec.n
    p = plan(tuple(x.shape), tuple(w.shape), spec)
    ns, ts, nbs, out = p["n"], p["T"], p["nb"], p["out"]
    b, c = x.shape[:2]
    o, cg = w.shape[:2]
    g = spec.groups
    dt = compute_dtype(x.dtype)
    is_complex = dt.is_complex
    y = x.new_empty((b, o, *out))
    if y.numel() == 0:
        return y
    xc, wc = x.to(dt), _dilate(w.to(dt), spec.dilation)
    dims = tuple(range(-n_dims, 0))
    if is_complex:
        wf = torch.fft.fftn(wc.conj(), s=ns, dim=dims).conj()  # (O, Cg, *n)
    else:
        wf = torch.fft.rfftn(wc, s=ns, dim=dims).conj()  # (O, Cg, *nh)
    f_shape = wf.shape[2:]
    wf = wf.reshape(g, o // g, cg, -1)  # (G, Og, Cg, F)
    if cg > 1:
        wf = wf.permute(0, 3, 2, 1).contiguous()  # (G, F, Cg, Og) for the per-frequency matmul
    steps = [t * s for t, s in zip(ts, spec.stride)]
    # pad so every block is whole: length (nb - 1) * step + n per dim (negative = crop)
    pairs = []
    for i in range(n_dims):
        pb, pa = spec.padding[i]
        total = (nbs[i] - 1) * steps[i] + ns[i]
        pairs.append((pb, total - x.shape[2 + i] - pb))
    xp = pad(xc, pairs)  # (B, C, *L')
    xb = xp
    for i in range(n_dims):
        xb = xb.unfold(2 + i, ns[i], steps[i])  # -> (B, C, *nb, *n) after the loop
    fixed, unit = workspace_bytes(x, w, spec)
    # cache-sized chunks (measured as fast as whole-call chunks, with less memory)
    limit = chunk_limit(fixed, unit, CHUNK_BYTES, MIN_CHUNK_UNITS)
    keep = tuple(slice(0, (t - 1) * s + 1, s) for t, s in zip(ts, spec.stride))
    dw = cg == 1  # channels independent: chunks of channels too
    og = o // g
    for t in tiles([b, g, *nbs] if dw else [b, *nbs], unit, limit):
        chans = t[1] if dw else slice(0, c)  # input channels (= groups when depthwise)
        blocks = t[2:] if dw else t[1:]
        xs = xb[(t[0], chans) + blocks]  # (b, Ct, *nbt, *n)
        bt, gt = xs.shape[0], (xs.shape[1] if dw else g)
        nbt = xs.shape[2 : 2 + n_dims]
        if is_complex:
            xf = torch.fft.fftn(xs, dim=dims)
        else:
            xf = torch.fft.rfftn(xs, dim=dims)  # (b, Ct, *nbt, *nh)
        xf = xf.reshape(bt, gt, cg, prod(nbt), -1)  # (b, Gt, Cg, P, F)
        if dw:
            # (b, Gt, 1, P, F) * (Gt, Og, 1, F) -> (b, Gt, Og, P, F)
            yf = xf * wf[chans, :, 0, None, :]
        else:
            # (b, G, Cg, P, F) -> (G, F, b*P, Cg) @ (G, F, Cg, Og) -> (G, F, b*P, Og)
            xm = xf.permute(1, 4, 0, 3, 2).reshape(g, xf.shape[-1], -1, cg)
            yf = torch.matmul(xm, wf).reshape(g, -1, bt, xf.shape[3], og)
            yf = yf.permute(2, 0, 4, 3, 1)  # (b, G, Og, P, F)
        yf = yf.reshape(bt, gt * og, *nbt, *f_shape)
        if is_complex:
            yb = torch.fft.ifftn(yf, dim=dims)
        else:
            yb = torch.fft.irfftn(yf, s=ns, dim=dims)  # (b, Ot, *nbt, *n)
        yb = yb[(slice(None),) * (2 + n_dims) + keep]  # (b, Ot, *nbt, *T)
        perm = [0, 1]
        for i in range(n_dims):
            perm += [2 + i, 2 + n_dims + i]
        yb = yb.permute(perm).reshape(bt, gt * og, *(nb_ * t_ for nb_, t_ in zip(nbt, ts)))
        index = [t[0], slice(chans.start * og, chans.start * og + gt * og)]
        crop = [slice(None), slice(None)]
        for i in range(n_dims):
            start = blocks[i].start * ts[i]
            stop = min(blocks[i].stop * ts[i], out[i])
            index.append(slice(start, stop))
            crop.append(slice(0, stop - start))
        y[tuple(index)] = yb[tuple(crop)].to(y.dtype)
    return y
