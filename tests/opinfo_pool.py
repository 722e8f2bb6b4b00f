"""OpInfo tables for pooling: max/avg/lp, adaptive, max_unpool, fractional_max_pool; errors.

Rows are ``(name, kwargs)`` with ``PerDim`` values (see ``samples.py``), instantiated for
N = 1..4, batched and unbatched. Where torch takes the arguments as they are (N <= 3, padding at
most half the kernel, no dilation for avg/lp, no padding for lp) the reference is torch's
``*_pool{N}d``; elsewhere the plain-loop reference of ``test_pooling_beyond`` (values only, so
gradients are checked with gradcheck there) or, for adaptive pooling at N = 4, the separable
composition of torch's 3-d and 1-d adaptive pooling.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

import anyconv.functional as AF
from opinfo import OpError, OpSample, Ref, _batched_ref
from samples import BATCH, NS, SIZES, PerDim, _resolve
from test_pooling_beyond import reference as loop_reference

KERNELS = {1: (3,), 2: (3, 2), 3: (2, 3, 2), 4: (2, 2, 2, 2)}
CHANNELS = 3

MAX_CASES: list[tuple[str, dict[str, Any]]] = [
    ("plain", {}),
    ("stride", {"stride": PerDim(1, 2)}),
    ("pad", {"padding": 1, "stride": 1}),
    ("dilation", {"dilation": PerDim(2, 1), "padding": PerDim(1, 0)}),
    ("ceil", {"stride": 2, "ceil_mode": True, "padding": PerDim(1, 0)}),
    ("indices", {"return_indices": True, "stride": PerDim(2, 1), "padding": PerDim(1, 0)}),
    ("kernel_int", {"kernel_size": 2, "stride": 1}),
    ("same", {"padding": "same", "stride": 2}),
    ("causal_indices", {"padding": "causal", "stride": 1, "return_indices": True}),
    ("pairs", {"padding": PerDim((1, 0), (0, 1)), "stride": 2}),
]
AVG_CASES: list[tuple[str, dict[str, Any]]] = [
    ("plain", {}),
    ("stride_pad", {"stride": PerDim(2, 1), "padding": 1}),
    ("exclude_pad", {"stride": 1, "padding": 1, "count_include_pad": False}),
    ("ceil", {"stride": 2, "ceil_mode": True, "padding": PerDim(1, 0)}),
    ("divisor", {"stride": 1, "divisor_override": 3}),
    ("same_lower", {"padding": "same_lower", "stride": 2, "count_include_pad": False}),
    ("dilation", {"dilation": PerDim(2, 1), "stride": 1}),
    ("pairs", {"padding": PerDim((1, 0), (0, 1)), "stride": 2}),
]
LP_CASES: list[tuple[str, dict[str, Any]]] = [
    ("p2", {"norm_type": 2.0}),
    ("p3_stride", {"norm_type": 3, "stride": PerDim(1, 2)}),
    ("p1.5_ceil", {"norm_type": 1.5, "stride": 2, "ceil_mode": True}),
    ("pairs_dilation", {"norm_type": 2, "padding": PerDim((1, 0), 0), "dilation": PerDim(1, 2), "stride": 1}),
]
ADAPTIVE_CASES: list[tuple[str, dict[str, Any]]] = [
    ("int", {"output_size": 2}),
    ("per_dim", {"output_size": PerDim(3, 2, 4)}),
    ("one", {"output_size": 1}),
    ("larger", {"output_size": PerDim(6, 8, 3)}),
    ("none_dim", {"output_size": PerDim(None, 2)}),
    ("indices", {"output_size": PerDim(2, 3), "return_indices": True}),
]


def _and_alias(sample: OpSample) -> Iterator[OpSample]:
    """The sample, and the same call of torch's name (``max_pool2d``...) where N <= 3."""
    yield sample
    alias = f"{sample.op}{sample.n}d"
    if sample.n <= 3 and hasattr(AF, alias):
        yield dataclasses.replace(sample, op=alias, module=None)


def _shape(n: int, batched: bool) -> tuple[int, ...]:
    return ((BATCH,) if batched else ()) + (CHANNELS, *SIZES[n])


def _per_dim(v: Any, n: int) -> tuple[Any, ...]:
    return tuple(v) if isinstance(v, (list, tuple)) else (v,) * n


def _torch_takes(kind: str, n: int, kw: dict[str, Any]) -> bool:
    """Whether torch's ``{kind}_pool{n}d`` takes these arguments as they are."""
    k = _per_dim(kw["kernel_size"], n)
    pad = kw.get("padding", 0)
    if n > 3 or isinstance(pad, str) or any(isinstance(p, tuple) for p in _per_dim(pad, n)):
        return False
    if any(p > kk // 2 for p, kk in zip(_per_dim(pad, n), k)):
        return False
    if kind != "max" and kw.get("dilation", 1) not in (1, (1,) * n):
        return False
    if kind == "lp" and pad not in (0, (0,) * n):
        return False
    return not (kind == "avg" and n == 1 and kw.get("divisor_override") is not None)


def _loop_ref(kind: str, n: int, batched: bool, kw: dict[str, Any]) -> Ref:
    k = _per_dim(kw["kernel_size"], n)
    s = _per_dim(kw.get("stride") or k, n)
    d = _per_dim(kw.get("dilation", 1), n)
    pad = kw.get("padding", 0)
    pad = pad if isinstance(pad, str) else list(_per_dim(pad, n))

    def ref(x: torch.Tensor) -> Any:
        xb = x if batched else x.unsqueeze(0)
        vals, idx = loop_reference(xb, kind, k, s, d, pad, kw.get("ceil_mode", False), kw.get("count_include_pad", True),
                                   kw.get("divisor_override"), kw.get("norm_type"))
        vals, idx = (vals, idx) if batched else (vals[0], idx[0])
        return (vals, idx) if kw.get("return_indices") else vals

    return ref


def _window_samples(kind: str, cases: list[tuple[str, dict[str, Any]]]) -> Iterator[OpSample]:
    for name, raw in cases:
        for n in NS:
            for batched in (True, False):
                kw = {"kernel_size": KERNELS[n], **{key: _resolve(v, n) for key, v in raw.items()}}
                if isinstance(kw["kernel_size"], int) and not batched:
                    continue  # the generic op takes N from input.dim() - 2 for an int kernel
                torch_form = _torch_takes(kind, n, kw)
                args: tuple[Any, ...] = (kw.pop("norm_type"),) if kind == "lp" else ()
                ref: Ref
                if torch_form:
                    f = getattr(F, f"{kind}_pool{n}d")
                    tk = {**kw, "kernel_size": KERNELS[1][0]} if kind == "lp" and n == 1 else kw  # torch: an int
                    ref, rname = (lambda x, _f=f, _a=args, _k=tk: _f(x, *_a, **_k)), f"torch.nn.functional.{kind}_pool{n}d"
                else:
                    lk = {**kw, "norm_type": args[0]} if args else kw
                    ref, rname = _loop_ref(kind, n, batched, lk), "test_pooling_beyond.reference"
                cls = {"max": "MaxPool", "avg": "AvgPool", "lp": "LPPool"}[kind] + (f"{n}d" if n <= 3 else "Nd")
                module = None if cls == "LPPoolNd" else (cls, args + (kw["kernel_size"],),
                                                        {k: v for k, v in kw.items() if k != "kernel_size"}, {})
                yield from _and_alias(OpSample(f"{kind}_pool", name, n, batched, (_shape(n, batched),), ref, rname, args, kw,
                               ref_differentiable=torch_form, module=module, torch_module=torch_form,
                               positive=kind == "lp"))


def _adaptive_4d(kind: str, out: tuple[int, ...]) -> Ref:
    """Adaptive pooling is separable: 3-d over the last three dims, then 1-d over the first."""
    f3, f1 = getattr(F, f"adaptive_{kind}_pool3d"), getattr(F, f"adaptive_{kind}_pool1d")

    def ref(x: torch.Tensor) -> torch.Tensor:
        b, c, s0 = x.shape[0], x.shape[1], x.shape[2]
        y = f3(x.reshape(b, c * s0, *x.shape[3:]), out[1:])  # (B, C*s0, o1, o2, o3)
        y = y.reshape(b, c, s0, -1).movedim(2, 3)  # (B, C, o1*o2*o3, s0)
        y = f1(y.reshape(b, -1, s0), out[0])  # (B, C*o1*o2*o3, o0)
        return y.reshape(b, c, -1, out[0]).movedim(3, 2).reshape(b, c, *out)

    return ref


def _adaptive_samples() -> Iterator[OpSample]:
    for kind in ("avg", "max"):
        for name, raw in ADAPTIVE_CASES:
            if kind == "avg" and "return_indices" in raw:
                continue
            for n in NS:
                for batched in (True, False):
                    kw = {key: _resolve(v, n) for key, v in raw.items()}
                    size = kw["output_size"]
                    if (isinstance(size, int) and not batched) or (n == 1 and None in _per_dim(size, n)):
                        continue  # an int size takes N from a batched input; torch's 1-d has no None
                    ref: Ref
                    if n <= 3:
                        f = getattr(F, f"adaptive_{kind}_pool{n}d")
                        ref, rname = (lambda x, _f=f, _k=kw: _f(x, **_k)), f"torch.nn.functional.adaptive_{kind}_pool{n}d"
                    elif None in _per_dim(size, n) or kw.get("return_indices"):
                        continue  # the separable reference gives values only, for full sizes
                    else:
                        ref = _batched_ref(_adaptive_4d(kind, _per_dim(size, n)), batched)
                        rname = "adaptive 3-d then 1-d (torch)"
                    module = (f"Adaptive{kind.capitalize()}Pool{n}d", (size,),
                              {k: v for k, v in kw.items() if k != "output_size"}, {}) if n <= 3 else None
                    yield from _and_alias(OpSample(f"adaptive_{kind}_pool", name, n, batched, (_shape(n, batched),),
                                                   ref, rname, (), kw, module=module, torch_module=n <= 3))


def _unpool_samples() -> Iterator[OpSample]:
    """max_unpool of torch's own max_pool indices (N = 1..3), when anyconv has the op."""
    if not hasattr(AF, "max_unpool"):
        return
    # windows that do not overlap: overlapping ones may repeat an index (no defined gradient)
    # (and output_size given: torch's default size misses the last input rows unless they divide)
    for name, raw in (("plain", {"stride": None, "output_size": "in"}), ("pad", {"padding": 1, "output_size": "in"})):
        for n in (1, 2, 3):
            for batched in (True, False)[: 2 if n < 3 else 1]:  # torch's max_unpool3d misreads unbatched indices
                shape = _shape(n, batched)
                kw = {"kernel_size": KERNELS[n], **{key: _resolve(v, n) for key, v in raw.items()}}
                if kw.get("output_size") == "in":
                    kw["output_size"] = SIZES[n]
                pool_kw = {k: v for k, v in kw.items() if k != "output_size"}

                def make(x: torch.Tensor, _n: int = n, _k: dict[str, Any] = pool_kw) -> tuple[torch.Tensor, ...]:
                    vals, idx = getattr(F, f"max_pool{_n}d")(x, **_k, return_indices=True)
                    return vals, idx

                f = getattr(F, f"max_unpool{n}d")
                yield from _and_alias(OpSample("max_unpool", name, n, batched, (shape,), lambda v, i, _f=f, _k=kw: _f(v, i, **_k),
                               f"torch.nn.functional.max_unpool{n}d", (), kw, nograd=(1,), make=make,
                               module=(f"MaxUnpool{n}d", (kw["kernel_size"],),
                                       {k: v for k, v in kw.items() if k not in ("kernel_size", "output_size")},
                                       {"output_size": kw["output_size"]} if "output_size" in kw else {}),
                               torch_module=True))


def _fractional_samples() -> Iterator[OpSample]:
    """fractional_max_pool with fixed ``_random_samples`` (N = 2, 3), when anyconv has the op."""
    if not hasattr(AF, "fractional_max_pool"):
        return
    for name, raw in (("output_size", {"kernel_size": 2, "output_size": 3}),
                      ("ratio_indices", {"kernel_size": 2, "output_ratio": (0.6, 0.5, 0.6), "return_indices": True})):
        for n in (2, 3):
            for batched in (True, False):
                kw = {**raw, "kernel_size": (2,) * n}
                if "output_ratio" in kw:  # torch's unbatched fractional pooling takes no float ratio
                    kw["output_ratio"] = kw["output_ratio"][:n]
                shape = _shape(n, batched)

                def make(x: torch.Tensor, _n: int = n) -> tuple[torch.Tensor, ...]:
                    gen = torch.Generator().manual_seed(7)
                    b = x.shape[0] if x.dim() == _n + 2 else 1
                    return x, torch.rand((b, CHANNELS, _n), generator=gen, dtype=torch.float64).to(x.dtype)

                f = getattr(F, f"fractional_max_pool{n}d")
                yield from _and_alias(OpSample("fractional_max_pool", name, n, batched, (shape,),
                               lambda x, r, _f=f, _k=kw: _f(x, **_k, _random_samples=r),
                               f"torch.nn.functional.fractional_max_pool{n}d", (), kw, nograd=(1,), make=make,
                               keyword_tensors=("_random_samples",)))


def pool_samples() -> list[OpSample]:
    return [*_window_samples("max", MAX_CASES), *_window_samples("avg", AVG_CASES), *_window_samples("lp", LP_CASES),
            *_adaptive_samples(), *_unpool_samples(), *_fractional_samples()]


# -------------------------------------------------------------------------------- error table
X = torch.zeros(2, 3, 6, 6)
_POOL_ROWS: list[tuple[str, str, dict[str, Any], type[Exception], str]] = [
    ("max_pool", "input_type", {"input": [1.0], "kernel_size": 2}, TypeError, "input"),
    ("max_pool", "input_int", {"input": X.long(), "kernel_size": 2}, TypeError, "input"),
    ("max_pool", "kernel_zero", {"input": X, "kernel_size": 0}, ValueError, "kernel_size"),
    ("max_pool", "kernel_float", {"input": X, "kernel_size": 2.0}, TypeError, "kernel_size"),
    ("max_pool", "kernel_big", {"input": X, "kernel_size": 7}, ValueError, "kernel_size"),
    ("max_pool", "stride_zero", {"input": X, "kernel_size": 2, "stride": (2, 0)}, ValueError, "stride"),
    ("max_pool", "padding_negative", {"input": X, "kernel_size": 2, "padding": -1}, ValueError, "padding"),
    ("max_pool", "padding_string", {"input": X, "kernel_size": 2, "padding": "full"}, ValueError, "padding"),
    ("max_pool", "padding_only_window", {"input": X, "kernel_size": 2, "stride": 2, "padding": 2}, ValueError, "padding"),
    ("max_pool", "dilation_zero", {"input": X, "kernel_size": 2, "dilation": 0}, ValueError, "dilation"),
    ("max_pool", "ceil_mode_type", {"input": X, "kernel_size": 2, "ceil_mode": 1}, TypeError, "ceil_mode"),
    ("max_pool", "indices_type", {"input": X, "kernel_size": 2, "return_indices": "y"}, TypeError, "return_indices"),
    ("avg_pool", "divisor_zero", {"input": X, "kernel_size": 2, "divisor_override": 0}, ValueError, "divisor_override"),
    ("avg_pool", "divisor_float", {"input": X, "kernel_size": 2, "divisor_override": 1.5}, TypeError, "divisor_override"),
    ("avg_pool", "count_type", {"input": X, "kernel_size": 2, "count_include_pad": None}, TypeError, "count_include_pad"),
    ("avg_pool", "kernel_len", {"input": X[0, 0], "kernel_size": (2, 2)}, ValueError, "input"),
    ("lp_pool", "norm_zero", {"input": X, "norm_type": 0, "kernel_size": 2}, ValueError, "norm_type"),
    ("lp_pool", "norm_nan", {"input": X, "norm_type": math.nan, "kernel_size": 2}, ValueError, "norm_type"),
    ("lp_pool", "norm_str", {"input": X, "norm_type": "2", "kernel_size": 2}, TypeError, "norm_type"),
    ("adaptive_avg_pool", "size_zero", {"input": X, "output_size": 0}, ValueError, "output_size"),
    ("adaptive_avg_pool", "size_str", {"input": X, "output_size": "2"}, TypeError, "output_size"),
    ("adaptive_max_pool", "size_float", {"input": X, "output_size": 2.5}, TypeError, "output_size"),
    ("adaptive_max_pool", "indices_type", {"input": X, "output_size": 2, "return_indices": 0}, TypeError, "return_indices"),
    ("max_pool2d", "rank", {"input": torch.zeros(1, 2, 3, 4, 5), "kernel_size": 2}, ValueError, "input"),
    ("avg_pool3d", "rank", {"input": torch.zeros(2, 3), "kernel_size": 2}, ValueError, "input"),
    ("lp_pool1d", "kernel_len", {"input": torch.zeros(2, 3, 6), "norm_type": 2, "kernel_size": (2, 2)}, ValueError, "kernel_size"),
    ("adaptive_max_pool3d", "rank", {"input": X[0, 0], "output_size": 2}, ValueError, "input"),
    ("conv2d", "rank", {"input": torch.zeros(1, 2, 5), "weight": torch.zeros(3, 2, 3, 3)}, ValueError, "input"),
    ("conv_transpose1d", "rank", {"input": X, "weight": torch.zeros(3, 2, 3, 3)}, ValueError, "weight"),
]
_UNPOOL_ROWS: list[tuple[str, str, dict[str, Any], type[Exception], str]] = [
    ("max_unpool", "indices_shape", {"input": X, "indices": torch.zeros(2, 3, 5, 6, dtype=torch.long), "kernel_size": 2},
     ValueError, "indices"),
    ("max_unpool", "indices_dtype", {"input": X, "indices": X, "kernel_size": 2}, TypeError, "indices"),
    ("max_unpool", "output_size_far", {"input": X, "indices": X.long(), "kernel_size": 2, "output_size": (30, 30)},
     ValueError, "output_size"),
    ("fractional_max_pool", "no_size", {"input": X, "kernel_size": 2}, ValueError, "output_size"),
    ("fractional_max_pool", "ratio_big", {"input": X, "kernel_size": 2, "output_ratio": 1.5}, ValueError, "output_ratio"),
    ("fractional_max_pool", "size_big", {"input": X, "kernel_size": 2, "output_size": 6}, ValueError, "kernel_size"),
]
POOL_ERRORS = [OpError(op, name, kw, exc, param) for op, name, kw, exc, param in _POOL_ROWS + _UNPOOL_ROWS
               if hasattr(AF, op)]
