"""Convolution as a matrix: the operator, its singular values and its spectral norm.

- :func:`operator_matrix`: the exact matrix ``A`` of ``conv`` (or ``conv_transpose``) with any
  parameters, built by :func:`anyconv.algorithms._operator.conv_operator` (the same builder the
  ``matrix`` algorithm uses); padding modes fold their gather into ``A``.
- :func:`singular_values`: exact, either by the FFT method for circular padding (Sedghi,
  Gupta, Long, "The Singular Values of Convolutional Layers", ICLR 2019: a stride-1 circular
  convolution is block-diagonalised by the N-d DFT, so its singular values are those of the
  ``C_out x C_in`` matrices ``K_hat(f) = sum_q w[:, :, q] e^{-2 pi i <f, q d> / n}`` over
  all frequencies ``f``), or by the SVD of the dense operator matrix (small inputs).
- :func:`operator_norm` / :func:`power_iteration`: the largest singular value for any
  parameters, by power iteration on ``A^H A`` where ``A`` is anyconv's own ``conv`` and
  ``A^H`` its adjoint (``conv_transpose``, reached through the autograd rules).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from ..algorithms._operator import conv_operator, conv_transpose_operator
from ..core.errors import type_error, value_error
from ..core.spec import conv_spec, conv_transpose_spec

MAX_SVD_ENTRIES = 2**24  # dense matrices larger than this are refused by method="svd"
_CONV_KEYS = ("stride", "padding", "dilation", "groups", "padding_mode", "flip")
_CONVT_KEYS = ("stride", "padding", "output_padding", "groups", "dilation", "output_size")


def _resolve(fn: str, weight: Any, transpose: bool, params: dict[str, Any]) -> tuple[torch.Tensor, bool, dict[str, Any]]:
    """``(weight, transpose, params)`` from a weight tensor or a conv / conv-transpose module."""
    if isinstance(weight, torch.nn.Module):
        m = weight
        if not isinstance(m, torch.nn.modules.conv._ConvNd):
            type_error(fn, "weight", m, "a weight tensor or a conv / conv-transpose module")
        is_t = bool(m.transposed)
        mod = {"stride": tuple(m.stride), "padding": m.padding, "dilation": tuple(m.dilation), "groups": m.groups}
        if is_t:
            mod["output_padding"] = tuple(m.output_padding)
        elif m.padding_mode != "zeros":
            mod["padding_mode"] = m.padding_mode
        mod.update(params)
        return m.weight.detach(), transpose != is_t, mod
    if not isinstance(weight, torch.Tensor):
        type_error(fn, "weight", weight, "a weight tensor or a conv / conv-transpose module")
    return weight, transpose, params


def _check_keys(fn: str, params: dict[str, Any], transpose: bool) -> None:
    keys = _CONVT_KEYS if transpose else _CONV_KEYS
    for k in params:
        if k not in keys:
            what = "conv_transpose" if transpose else "conv"
            type_error(fn, k, params[k], f"one of {what}'s parameters: " + ", ".join(keys))


def _input(fn: str, weight: torch.Tensor, input_shape: Any) -> torch.Tensor:
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence):
        type_error(fn, "input_shape", input_shape, "a sequence of positive ints")
    return torch.empty(tuple(input_shape), device="meta", dtype=weight.dtype)


def _block_diag(a: torch.Tensor, b: int) -> torch.Tensor:
    """``kron(I_b, a)`` for a dense or sparse COO matrix."""
    if b == 1:
        return a
    if not a.is_sparse:
        return torch.block_diag(*([a] * b))
    idx, val = a.indices(), a.values()
    r, c = a.shape
    off = torch.arange(b, device=idx.device).repeat_interleave(idx.shape[1])
    big = torch.stack([idx[0].repeat(b) + off * r, idx[1].repeat(b) + off * c])
    return torch.sparse_coo_tensor(big, val.repeat(b), (b * r, b * c), check_invariants=False).coalesce()


def operator_matrix(
    weight: torch.Tensor | torch.nn.Module,
    input_shape: Sequence[int],
    *,
    transpose: bool = False,
    dense: bool = False,
    **conv_params: Any,
) -> torch.Tensor:
    """The exact matrix of a convolution: ``A @ x.flatten() == conv(x, weight, **p).flatten()``.

    ``A[r, c]`` is the coefficient of input element ``c`` in output element ``r`` (bias left
    out). Any N, stride, dilation, groups, padding form and ``padding_mode`` (reflect,
    replicate and circular padding are gathers, folded into ``A``), ``flip``. A batched
    ``input_shape`` gives the block-diagonal matrix over the batch. ``transpose=True`` gives
    the matrix of ``conv_transpose(x, weight, **p)`` (for matching shapes, ``A^T`` of the
    forward one). A conv or conv-transpose module may be passed instead of ``weight``: its
    weight and parameters are used (``transpose=True`` then swaps to the adjoint).

    Args:
        weight: ``(C_out, C_in // groups, *k)`` (``(C_in, C_out // groups, *k)`` with
            ``transpose=True``), or a module.
        input_shape: ``(B, C_in, *spatial)`` or ``(C_in, *spatial)``.
        transpose: matrix of the transposed convolution.
        dense: dense tensor instead of sparse COO (coalesced).
        **conv_params: ``conv`` (or ``conv_transpose``) keyword arguments.

    Shape:
        ``(prod(output_shape), prod(input_shape))``.

    Examples:
        >>> import torch, anyconv.functional as AF
        >>> w, x = torch.randn(4, 3, 3, 3), torch.randn(2, 3, 6, 6)
        >>> A = operator_matrix(w, x.shape, stride=2, padding=1)
        >>> A.shape
        torch.Size([72, 216])
        >>> torch.allclose(A @ x.flatten(), AF.conv(x, w, stride=2, padding=1).flatten(), atol=1e-5)
        True
        >>> operator_matrix(torch.tensor([[[1.0, 2.0]]]), (1, 2), transpose=True, dense=True).tolist()
        [[1.0, 0.0], [2.0, 1.0], [0.0, 2.0]]
    """
    fn = "operator_matrix"
    w, t, p = _resolve(fn, weight, transpose, dict(conv_params))
    _check_keys(fn, p, t)
    x = _input(fn, w, input_shape)
    n = w.dim() - 2
    if t:
        ts = conv_transpose_spec("conv_transpose", x, _meta_like(w), None, p.get("stride", 1), p.get("padding", 0),
                                 p.get("output_padding", 0), p.get("groups", 1), p.get("dilation", 1),
                                 p.get("output_size"), "auto")
        spatial = tuple(x.shape[-n:])
        outpad = [f - ((i - 1) * s + (k - 1) * d + 1) for f, i, s, d, k in
                  zip(ts.full, spatial, ts.core.stride, ts.core.dilation, w.shape[2:])]
        a = conv_transpose_operator(w, spatial, ts.core, ts.crop, outpad, dense=dense)
        return _block_diag(a, x.shape[0]) if ts.batched else a
    cs = conv_spec("conv", x, _meta_like(w), None, p.get("stride", 1), p.get("padding", 0), p.get("dilation", 1),
                   p.get("groups", 1), p.get("padding_mode", "zeros"), p.get("flip", False), "auto")
    wf = w.flip(list(range(2, 2 + n))) if cs.flip else w
    a = conv_operator(wf, tuple(x.shape[-n:]), cs.core, dense=dense, padding_mode=cs.padding_mode)
    return _block_diag(a, x.shape[0]) if cs.batched else a


def _meta_like(w: torch.Tensor) -> torch.Tensor:
    return torch.empty(w.shape, device="meta", dtype=w.dtype)


@dataclass(frozen=True)
class NormResult:
    """Power iteration's answer: ``norm`` (largest singular value), ``iterations`` run,
    ``residual`` ``||A^H A v - norm^2 v|| / norm^2`` at the end, and ``converged``."""

    norm: float
    iterations: int
    residual: float
    converged: bool


def power_iteration(
    weight: torch.Tensor | torch.nn.Module,
    input_shape: Sequence[int],
    *,
    transpose: bool = False,
    tol: float = 1e-6,
    max_iter: int = 500,
    seed: int = 0,
    **conv_params: Any,
) -> NormResult:
    """Largest singular value of the convolution operator by power iteration on ``A^H A``.

    ``v <- A^H A v / ||A^H A v||``; ``sigma = ||A v||`` for unit ``v``. Stops when ``sigma``
    changes by less than ``tol`` (relative) between iterations, or after ``max_iter``.
    ``A`` is anyconv's ``conv`` (``conv_transpose`` with ``transpose=True``) with any
    parameters, ``A^H`` its adjoint computed by the autograd rules (a transposed convolution).

    Args:
        weight: a weight tensor or a conv / conv-transpose module.
        input_shape: the input shape the operator acts on.
        transpose: the operator of ``conv_transpose`` instead of ``conv``.
        tol: relative change of the estimate at which to stop.
        max_iter: iteration limit.
        seed: seed of the random start vector (results are reproducible).
        **conv_params: the op's keyword arguments.

    Returns:
        :class:`NormResult` ``(norm, iterations, residual, converged)``.

    Examples:
        >>> r = power_iteration(torch.ones(1, 1, 3), (1, 1, 8), padding=1, padding_mode="circular")
        >>> round(r.norm, 4), r.converged
        (3.0, True)
    """
    from ..functional import conv, conv_transpose

    fn = "operator_norm"
    w, t, p = _resolve(fn, weight, transpose, dict(conv_params))
    _check_keys(fn, p, t)
    if not (isinstance(tol, (int, float)) and tol > 0):
        value_error(fn, "tol", tol, "a positive number")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        value_error(fn, "max_iter", max_iter, "a positive int")
    shape = tuple(input_shape)
    w = w.detach()

    def apply(v: torch.Tensor) -> torch.Tensor:
        return conv_transpose(v, w, **p) if t else conv(v, w, **p)

    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype=w.dtype, device=w.device)
    v = v / torch.linalg.vector_norm(v)
    sigma, prev, residual, it = 0.0, -1.0, math.inf, 0
    for it in range(1, max_iter + 1):
        x = v.detach().requires_grad_(True)
        y = apply(x)
        (m,) = torch.autograd.grad(y, x, y)  # A^H A v
        sigma = float(torch.linalg.vector_norm(y.detach()))
        mn = torch.linalg.vector_norm(m)
        residual = float(torch.linalg.vector_norm(m - sigma**2 * v) / max(sigma**2, 1e-300))
        if mn == 0:
            return NormResult(0.0, it, 0.0, True)
        v = (m / mn).detach()
        if abs(sigma - prev) <= tol * max(sigma, 1e-300):
            return NormResult(sigma, it, residual, True)
        prev = sigma
    return NormResult(sigma, it, residual, False)


def operator_norm(weight: torch.Tensor | torch.nn.Module, input_shape: Sequence[int], **conv_params: Any) -> float:
    """Spectral norm ``||A||_2`` of the convolution on inputs of ``input_shape``, any parameters.

    Power iteration (see :func:`power_iteration`, which also returns the iteration count and
    residual and accepts ``tol=``, ``max_iter=``, ``seed=`` and ``transpose=``).

    Examples:
        >>> round(operator_norm(torch.tensor([[[1.0, -1.0]]]), (1, 1, 200), padding=1), 3)
        1.999
    """
    return power_iteration(weight, input_shape, **conv_params).norm


def _fft_reason(w: torch.Tensor, x: torch.Tensor, p: dict[str, Any], transpose: bool) -> str | None:
    """None if the FFT method is exact for this call, else why not."""
    if transpose:
        return "it serves conv, not conv_transpose"
    n = w.dim() - 2
    cs = conv_spec("conv", x, _meta_like(w), None, p.get("stride", 1), p.get("padding", 0), p.get("dilation", 1),
                   p.get("groups", 1), p.get("padding_mode", "zeros"), p.get("flip", False), "auto")
    if cs.padding_mode != "circular":
        return f"padding_mode must be 'circular' (got {cs.padding_mode!r})"
    if any(s != 1 for s in cs.core.stride):
        return f"stride must be 1 (got {cs.core.stride})"
    if cs.out_spatial != tuple(x.shape[-n:]):
        return f"output size {cs.out_spatial} must equal the input size {tuple(x.shape[-n:])}"
    return None


def _fft_singular_values(w: torch.Tensor, spatial: Sequence[int], dilation: Sequence[int], groups: int) -> torch.Tensor:
    """Sedghi et al.: singular values of the circulant blocks ``K_hat(f)`` over all frequencies.

    Tap ``q`` sits at position ``q * d mod n`` of an ``n``-periodic kernel (taps that wrap add
    up, as circular padding makes them). Groups make the operator block-diagonal, so each
    group's ``Og x Cg`` blocks are decomposed separately.
    """
    n = w.dim() - 2
    c_out, cg = w.shape[:2]
    og = c_out // groups
    pos = [torch.arange(k, device=w.device) * d % s for k, d, s in zip(w.shape[2:], dilation, spatial)]
    taps = tuple(g.reshape(-1) for g in torch.meshgrid(*pos, indexing="ij"))  # K tap positions
    kernel = w.new_zeros((*spatial, groups, og, cg))
    values = w.reshape(groups, og, cg, -1).permute(3, 0, 1, 2)  # (K, G, Og, Cg)
    kernel.index_put_(taps, values, accumulate=True)
    k_hat = torch.fft.fftn(kernel, dim=list(range(n)))  # (*spatial, G, Og, Cg)
    return torch.linalg.svdvals(k_hat.reshape(-1, og, cg)).reshape(-1).sort(descending=True).values


def singular_values(
    weight: torch.Tensor | torch.nn.Module,
    input_shape: Sequence[int],
    *,
    method: Literal["auto", "fft", "svd"] = "auto",
    transpose: bool = False,
    **conv_params: Any,
) -> torch.Tensor:
    """All singular values of the convolution operator on inputs of ``input_shape``, descending.

    ``method="fft"``: exact and fast for stride 1, ``padding_mode="circular"`` and output size
    equal to input size (Sedghi et al. 2019), any N, dilation and groups. ``method="svd"``:
    SVD of the dense operator matrix (any parameters; refused above ``MAX_SVD_ENTRIES``
    entries). ``"auto"``: fft where exact, else svd. A batched shape repeats each value ``B``
    times (block-diagonal operator).

    Shape:
        ``(min(prod(out_shape), prod(in_shape)),)`` for svd; ``(min(C_out, C_in) * prod(spatial) * B,)`` for fft.

    Examples:
        >>> w = torch.ones(1, 1, 3, 3)
        >>> s = singular_values(w, (1, 6, 6), padding=1, padding_mode="circular")
        >>> s.shape, round(float(s[0]), 6)
        (torch.Size([36]), 9.0)
        >>> torch.allclose(s, singular_values(w, (1, 6, 6), padding=1, padding_mode="circular", method="svd"), atol=1e-4)
        True
    """
    fn = "singular_values"
    w, t, p = _resolve(fn, weight, transpose, dict(conv_params))
    _check_keys(fn, p, t)
    if method not in ("auto", "fft", "svd"):
        value_error(fn, "method", method, "one of 'auto', 'fft', 'svd'")
    x = _input(fn, w, input_shape)
    w = w.detach()
    n = w.dim() - 2
    reason = _fft_reason(w, x, p, t) if method != "svd" else "svd requested"
    if method == "fft" and reason is not None:
        value_error(fn, "method", method, f"usable for this call ('fft' is exact only when {reason})")
    batch = x.shape[0] if x.dim() == n + 2 else 1
    if reason is None:
        d = p.get("dilation", 1)
        dil = (d,) * n if isinstance(d, int) else tuple(d)
        s = _fft_singular_values(w, tuple(x.shape[-n:]), dil, p.get("groups", 1))
    else:
        single = tuple(x.shape[-n - 1:])
        a = operator_matrix(w, single, transpose=t, dense=False, **p)
        if a.shape[0] * a.shape[1] > MAX_SVD_ENTRIES:
            value_error(fn, "input_shape", tuple(input_shape),
                        f"small enough for a dense SVD (matrix {a.shape[0]} x {a.shape[1]} exceeds "
                        f"MAX_SVD_ENTRIES={MAX_SVD_ENTRIES}); use operator_norm for the largest value")
        s = torch.linalg.svdvals(a.to_dense())
    return s.repeat_interleave(batch) if batch > 1 else s
