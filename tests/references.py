"""Independent references for the conv family, written from the definitions (not from anyconv).

- :func:`ref_conv`: explicit padding (every mode, via NumPy's ``np.pad`` index maps, which keep
  reflecting/wrapping for pads larger than the input), then torch's ``conv1d/2d/3d`` for
  N <= 3, and for N >= 4 the identity that an N-d correlation is a sum over the first kernel
  axis of (N-1)-d correlations of input slices (:func:`corr_nd`), recursing down to conv3d.
- :func:`ref_conv_transpose`: torch's ``conv_transpose1d/2d/3d`` (no padding) then an explicit
  crop for N <= 3; for N >= 4 the vector-Jacobian product of :func:`corr_nd` (the adjoint).
- :func:`operator_matrix`: the matrix of a correlation built element by element from
  ``y[o, p] = sum_{c, q} x[c, p * s + q * d - before] * w[o, c, q]`` for tiny sizes.
- :func:`ref_unfold` / :func:`ref_fold`: loops over blocks and kernel offsets.

Padding strings are resolved here with the formulas of the API contract (``docs``/API.md),
independently of ``anyconv.core.shapes``. Everything is differentiable by torch's autograd, so the
same functions give reference gradients.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

Pairs = tuple[tuple[int, int], ...]
_TORCH_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_TORCH_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
_NP_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def per_dim(value: Any, n: int) -> tuple[Any, ...]:
    """An int (or pair) repeated ``n`` times, or the sequence itself as a tuple."""
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,) * n


def resolve_padding(padding: Any, size: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                    dilation: Sequence[int]) -> Pairs:
    """Explicit ``(before, after)`` pairs for every padding form of the API contract."""
    n = len(kernel)
    if padding == "valid":
        return ((0, 0),) * n
    if padding == "causal":
        return tuple(((k - 1) * d, 0) for k, d in zip(kernel, dilation))
    if padding in ("same", "same_lower"):
        pairs = []
        for i, k, s, d in zip(size, kernel, stride, dilation):
            total = max((math.ceil(i / s) - 1) * s + (k - 1) * d + 1 - i, 0)
            small, big = total // 2, total - total // 2
            pairs.append((big, small) if padding == "same_lower" else (small, big))
        return tuple(pairs)
    out = []
    for p in per_dim(padding, n):
        out.append(tuple(p) if isinstance(p, (list, tuple)) else (p, p))
    return tuple(out)  # type: ignore[return-value]


def pad_explicit(x: torch.Tensor, pairs: Pairs, mode: str = "zeros") -> torch.Tensor:
    """Pad the last ``len(pairs)`` dims; non-zero modes gather with NumPy's ``np.pad`` index map."""
    n = len(pairs)
    for i, (b, a) in enumerate(pairs):
        dim = x.dim() - n + i
        size = x.shape[dim]
        if mode == "zeros":
            shape = list(x.shape)
            shape[dim] = b
            before = x.new_zeros(shape)
            shape[dim] = a
            x = torch.cat([before, x, x.new_zeros(shape)], dim)
        else:
            index = np.pad(np.arange(size), (b, a), mode=_NP_MODE[mode])  # type: ignore[call-overload]
            x = x.index_select(dim, torch.as_tensor(index, dtype=torch.long, device=x.device))
    return x


def corr_nd(x: torch.Tensor, w: torch.Tensor, stride: Sequence[int], dilation: Sequence[int],
            groups: int) -> torch.Tensor:
    """Grouped cross-correlation without padding, any N, batched ``(B, C, *L)``.

    N <= 3: torch's conv. N >= 4: ``y[:, :, p1, ...] = sum_q1 corr_{N-1}(x[:, :, p1*s1 + q1*d1, ...],
    w[:, :, q1, ...])``, with the output positions ``p1`` folded into the batch.
    """
    n = w.dim() - 2
    if n <= 3:
        return _TORCH_CONV[n](x, w, None, tuple(stride), 0, tuple(dilation), groups)
    b, c = x.shape[:2]
    k1, s1, d1 = w.shape[2], stride[0], dilation[0]
    o1 = (x.shape[2] - (k1 - 1) * d1 - 1) // s1 + 1
    total = None
    for q in range(k1):
        xs = x[:, :, q * d1 : q * d1 + (o1 - 1) * s1 + 1 : s1]  # (B, C, o1, *rest)
        xs = xs.movedim(2, 1).reshape(b * o1, c, *x.shape[3:])  # (B*o1, C, *rest)
        y = corr_nd(xs, w[:, :, q], stride[1:], dilation[1:], groups)  # (B*o1, O, *o_rest)
        y = y.reshape(b, o1, *y.shape[1:]).movedim(1, 2)  # (B, O, o1, *o_rest)
        total = y if total is None else total + y
    assert total is not None
    return total


def ref_conv(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None, stride: Any = 1,
             padding: Any = 0, dilation: Any = 1, groups: int = 1, padding_mode: str = "zeros",
             flip: bool = False) -> torch.Tensor:
    """Reference ``conv`` (batched or unbatched input), from explicit padding and torch's conv."""
    n = w.dim() - 2
    unbatched = x.dim() == n + 1
    if unbatched:
        x = x.unsqueeze(0)
    s, d = per_dim(stride, n), per_dim(dilation, n)
    pairs = resolve_padding(padding, x.shape[2:], w.shape[2:], s, d)
    if flip:
        w = w.flip(list(range(2, 2 + n)))
    y = corr_nd(pad_explicit(x, pairs, padding_mode), w, s, d, groups)
    if bias is not None:
        y = y + bias.reshape(1, -1, *([1] * n))
    return y.squeeze(0) if unbatched else y


def transpose_crop(padding: Any, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int]) -> Pairs:
    """Crop pairs of ``conv_transpose`` from the API contract ('same': output ``in * stride``)."""
    n = len(kernel)
    if padding == "valid":
        return ((0, 0),) * n
    if padding == "same":
        out = []
        for k, s, d in zip(kernel, stride, dilation):
            total = (k - 1) * d + 1 - s
            out.append((0, total) if total < 0 else (total // 2, total - total // 2))
        return tuple(out)
    return resolve_padding(padding, [0] * n, kernel, stride, dilation)


def ref_conv_transpose(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None, stride: Any = 1,
                       padding: Any = 0, output_padding: Any = 0, groups: int = 1, dilation: Any = 1,
                       output_size: Sequence[int] | None = None) -> torch.Tensor:
    """Reference ``conv_transpose``: the full (uncropped) result, then the crop pairs removed."""
    n = w.dim() - 2
    unbatched = x.dim() == n + 1
    if unbatched:
        x = x.unsqueeze(0)
    s, d = per_dim(stride, n), per_dim(dilation, n)
    kernel = tuple(w.shape[2:])
    crop = transpose_crop(padding, kernel, s, d)
    if output_size is not None:
        size = tuple(output_size)[-n:]
        op = tuple(
            o - ((i - 1) * ss - b - a + (k - 1) * dd + 1)
            for o, i, ss, (b, a), k, dd in zip(size, x.shape[2:], s, crop, kernel, d)
        )
    else:
        op = per_dim(output_padding, n)
    full = tuple((i - 1) * ss + (k - 1) * dd + 1 + o for i, ss, k, dd, o in zip(x.shape[2:], s, kernel, d, op))
    if n <= 3:
        y = _TORCH_CONV_T[n](x, w, None, s, 0, op, groups, d)
    else:  # the adjoint of corr_nd: a vector-Jacobian product at an input of the full size
        reached = tuple(f - o for f, o in zip(full, op))  # output_padding positions get nothing
        probe = x.new_zeros((x.shape[0], w.shape[1] * groups, *reached), requires_grad=True)
        with torch.enable_grad():
            fwd = corr_nd(probe, w, s, d, groups)
            # the VJP gives A^H v; the transposed conv is A^T v = conj(A^H conj(v))
            (y,) = torch.autograd.grad(fwd, probe, x.conj(), create_graph=True)
            y = pad_explicit(y.conj(), tuple((0, o) for o in op))
    assert tuple(y.shape[2:]) == full
    for i, (b, a) in enumerate(crop):
        dim = 2 + i
        if a < 0:  # negative crop: extend with zeros at the end
            y = pad_explicit(y, ((0, 0),) * i + ((0, -a),) + ((0, 0),) * (n - 1 - i))
            a = 0
        y = y.narrow(dim, b, y.shape[dim] - b - a)
    if bias is not None:
        y = y + bias.reshape(1, -1, *([1] * n))
    return y.squeeze(0) if unbatched else y


def operator_matrix(w: torch.Tensor, in_shape: Sequence[int], stride: Any = 1, padding: Any = 0,
                    dilation: Any = 1, groups: int = 1) -> torch.Tensor:
    """Dense matrix ``M`` with ``corr(x, w).flatten() == M @ x.flatten()`` for one sample ``x`` of
    shape ``in_shape = (C, *L)``, built entry by entry from the definition (zero padding)."""
    n = w.dim() - 2
    c, spatial = in_shape[0], tuple(in_shape[1:])
    kernel = tuple(w.shape[2:])
    s, d = per_dim(stride, n), per_dim(dilation, n)
    pairs = resolve_padding(padding, spatial, kernel, s, d)
    out = tuple((i + b + a - (k - 1) * dd - 1) // ss + 1 for i, (b, a), k, dd, ss in zip(spatial, pairs, kernel, d, s))
    o_ch, cg = w.shape[0], w.shape[1]
    og = o_ch // groups
    m = torch.zeros(o_ch * math.prod(out), c * math.prod(spatial), dtype=w.dtype)
    out_strides = [math.prod(out[j + 1:]) for j in range(n)]
    in_strides = [math.prod(spatial[j + 1:]) for j in range(n)]
    for o in range(o_ch):
        g = o // og
        for p in itertools.product(*(range(v) for v in out)):
            row = o * math.prod(out) + sum(pi * st for pi, st in zip(p, out_strides))
            for ci in range(cg):
                for q in itertools.product(*(range(k) for k in kernel)):
                    pos = [pi * ss + qi * dd - b for pi, qi, ss, dd, (b, _) in zip(p, q, s, d, pairs)]
                    if all(0 <= v < L for v, L in zip(pos, spatial)):
                        col = (g * cg + ci) * math.prod(spatial) + sum(v * st for v, st in zip(pos, in_strides))
                        wi: tuple[int, ...] = (o, ci, *q)
                        m[row, col] += w[wi]
    return m


def ref_unfold(x: torch.Tensor, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1) -> torch.Tensor:
    """Reference ``unfold`` for a batched ``(B, C, *L)`` input: a loop over kernel offsets."""
    n = x.dim() - 2
    k, d, s = per_dim(kernel_size, n), per_dim(dilation, n), per_dim(stride, n)
    pairs = resolve_padding(padding, x.shape[2:], k, s, d)
    xp = pad_explicit(x, pairs)
    out = tuple((L - (kk - 1) * dd - 1) // ss + 1 for L, kk, dd, ss in zip(xp.shape[2:], k, d, s))
    rows = []
    for q in itertools.product(*(range(kk) for kk in k)):
        sl = tuple(slice(qi * dd, qi * dd + (o - 1) * ss + 1, ss) for qi, dd, o, ss in zip(q, d, out, s))
        index = (slice(None), slice(None), *sl)
        rows.append(xp[index].flatten(2))  # (B, C, L)
    cols = torch.stack(rows, 2)  # (B, C, K, L)
    return cols.flatten(1, 2)


def ref_fold(cols: torch.Tensor, output_size: Any, kernel_size: Any, dilation: Any = 1, padding: Any = 0,
             stride: Any = 1) -> torch.Tensor:
    """Reference ``fold`` for a batched ``(B, C*K, L)`` input: scatter-add of every block element."""
    n = len(output_size) if isinstance(output_size, (list, tuple)) else 2
    size = per_dim(output_size, n)
    k, d, s = per_dim(kernel_size, n), per_dim(dilation, n), per_dim(stride, n)
    pairs = resolve_padding(padding, size, k, s, d)
    padded = tuple(i + b + a for i, (b, a) in zip(size, pairs))
    out = tuple((L - (kk - 1) * dd - 1) // ss + 1 for L, kk, dd, ss in zip(padded, k, d, s))
    b_, ck, _ = cols.shape
    kk_total = math.prod(k)
    c = ck // kk_total
    blocks = cols.reshape(b_, c, kk_total, *out)
    result = cols.new_zeros((b_, c, *padded))
    for qi, q in enumerate(itertools.product(*(range(kk) for kk in k))):
        sl = tuple(slice(qj * dd, qj * dd + (o - 1) * ss + 1, ss) for qj, dd, o, ss in zip(q, d, out, s))
        idx = (slice(None), slice(None), *sl)
        result[idx] = result[idx] + blocks[:, :, qi]
    crop = tuple(slice(b, b + i) for (b, _), i in zip(pairs, size))
    inner = (slice(None), slice(None), *crop)
    return result[inner]
