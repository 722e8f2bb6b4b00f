"""OpInfo-style sample generators for conv, conv_transpose, unfold and fold.

Each op has a readable case table: one row per parameter combination, written once for
every N. ``PerDim(a, b)`` cycles its values over the spatial dims (``PerDim(1, 2)`` is
``(1, 2, 1, 2)`` for N = 4), so every row is instantiated for N = 1..4, batched and unbatched.
Sizes are tiny so the whole differential suite runs in seconds on one core.

Error tables are ``(name, call kwargs, exception type, message regex)`` rows; every message
must name the parameter (the regex checks it).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

NS = (1, 2, 3, 4)
#: spatial input size and kernel per N (dims differ so that transposed dims would show)
SIZES = {1: (9,), 2: (7, 6), 3: (5, 6, 5), 4: (5, 4, 5, 4)}
KERNELS = {1: (3,), 2: (3, 2), 3: (3, 2, 3), 4: (3, 2, 3, 2)}
BATCH = 2
#: smaller shapes for gradcheck/gradgradcheck (numerical Jacobians cost O(numel^2))
TINY_SIZES = {1: (5,), 2: (4, 3), 3: (3, 4, 3), 4: (3, 2, 3, 2)}
TINY_KERNELS = {1: (2,), 2: (2, 1), 3: (2, 1, 2), 4: (2, 1, 2, 1)}


@dataclass(frozen=True)
class PerDim:
    """Per-dimension values, cycled over the N spatial dims."""

    values: tuple[Any, ...]

    def __init__(self, *values: Any) -> None:
        object.__setattr__(self, "values", values)

    def resolve(self, n: int) -> tuple[Any, ...]:
        return tuple(self.values[i % len(self.values)] for i in range(n))


def _resolve(value: Any, n: int) -> Any:
    return value.resolve(n) if isinstance(value, PerDim) else value


@dataclass(frozen=True)
class Case:
    """One row of a case table.

    ``c_in``/``c_out`` are channel counts, ``kernel``/``size`` override the defaults,
    ``kwargs`` are the op's keyword arguments (``PerDim`` values resolved per N).
    """

    name: str
    c_in: int = 2
    c_out: int = 3
    bias: bool = False
    kwargs: dict[str, Any] = field(default_factory=dict)
    kernel: PerDim | None = None
    size: PerDim | None = None


@dataclass(frozen=True)
class Sample:
    """A concrete call: shapes and keyword arguments; tensors are made on demand."""

    op: str
    name: str
    input_shape: tuple[int, ...]
    weight_shape: tuple[int, ...]
    bias_shape: tuple[int, ...] | None
    kwargs: dict[str, Any]
    n: int
    batched: bool

    @property
    def id(self) -> str:
        return f"{self.op}-{self.name}-{self.n}d-{'b' if self.batched else 'u'}"

    def tensors(self, dtype: torch.dtype = torch.float64, requires_grad: bool = False) -> tuple[torch.Tensor, ...]:
        """Deterministic random ``(input, weight[, bias])`` for this sample in ``dtype``.

        Values are drawn in float64 (complex128) from a seed derived from the sample id and then
        cast, so every dtype sees the same numbers up to rounding.
        """
        gen = torch.Generator().manual_seed(zlib.crc32(self.id.encode()))
        wide = torch.complex128 if dtype.is_complex else torch.float64
        shapes = [self.input_shape, self.weight_shape] + ([self.bias_shape] if self.bias_shape else [])
        out = []
        for shape in shapes:
            t = torch.randn(shape, generator=gen, dtype=wide).to(dtype)
            out.append(t.requires_grad_(requires_grad))
        return tuple(out)

    def xwb(self, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(input, weight, bias or None)`` as in :meth:`tensors`."""
        t = self.tensors(dtype)
        return t[0], t[1], (t[2] if len(t) > 2 else None)


# ---------------------------------------------------------------------------------------- conv
CONV_CASES: list[Case] = [
    Case("plain"),
    Case("bias", bias=True),
    Case("stride2", kwargs={"stride": 2}),
    Case("stride_per_dim", kwargs={"stride": PerDim(2, 1, 3)}),
    Case("dilation2", kwargs={"dilation": 2}),
    Case("dilation_per_dim", kwargs={"dilation": PerDim(1, 2)}),
    Case("pad_int", kwargs={"padding": 1}),
    Case("pad_per_dim", kwargs={"padding": PerDim(2, 0, 1)}),
    Case("pad_pairs", kwargs={"padding": PerDim((1, 0), (0, 2), (2, 1))}),
    Case("valid", kwargs={"padding": "valid"}),
    Case("same", kwargs={"padding": "same"}),
    Case("same_even_kernel", kernel=PerDim(2, 4), kwargs={"padding": "same"}),
    Case("same_strided", kwargs={"padding": "same", "stride": PerDim(2, 3)}),
    Case("same_dilated", kwargs={"padding": "same", "dilation": 2}),
    Case("same_strided_dilated", kwargs={"padding": "same", "stride": 2, "dilation": PerDim(2, 1)}),
    Case("same_lower", kernel=PerDim(2, 3), kwargs={"padding": "same_lower", "stride": PerDim(2, 1)}),
    Case("causal", kwargs={"padding": "causal"}),
    Case("causal_strided_dilated", kwargs={"padding": "causal", "stride": 2, "dilation": PerDim(2, 1)}),
    Case("groups2", c_in=4, c_out=2, kwargs={"groups": 2}),
    Case("depthwise", c_in=3, c_out=3, kwargs={"groups": 3}),
    Case("depthwise_mult2", c_in=2, c_out=4, kwargs={"groups": 2, "padding": 1}),
    Case("flip", bias=True, kwargs={"flip": True, "padding": 1}),
    Case("reflect_int", kwargs={"padding_mode": "reflect", "padding": 1}),
    Case("reflect_pairs", kwargs={"padding_mode": "reflect", "padding": PerDim((2, 0), (1, 3))}),
    Case("reflect_same_strided", kwargs={"padding_mode": "reflect", "padding": "same", "stride": 2}),
    Case("reflect_beyond_size", size=PerDim(3, 2), kernel=PerDim(2), kwargs={"padding_mode": "reflect", "padding": PerDim(3, (0, 2))}),
    Case("replicate_pairs", kwargs={"padding_mode": "replicate", "padding": PerDim((0, 3), (2, 1))}),
    Case("replicate_causal", kwargs={"padding_mode": "replicate", "padding": "causal", "dilation": 2}),
    Case("circular_int", kwargs={"padding_mode": "circular", "padding": PerDim(1, 2)}),
    Case("circular_same_lower", kwargs={"padding_mode": "circular", "padding": "same_lower", "stride": 2}),
    Case("circular_beyond_size", size=PerDim(2, 3), kernel=PerDim(2), kwargs={"padding_mode": "circular", "padding": PerDim((3, 0), (0, 4))}),
    Case("kernel_eq_input", size=PerDim(3, 2), kernel=PerDim(3, 2)),
    Case("kernel_1", kernel=PerDim(1)),
    Case("combo", c_in=4, c_out=6, bias=True, kwargs={
        "stride": PerDim(2, 1), "dilation": PerDim(1, 2), "padding": PerDim((1, 2), (0, 1)), "groups": 2, "flip": True}),
    Case("combo_reflect_same", c_in=4, c_out=2, bias=True, kwargs={
        "stride": PerDim(1, 2), "dilation": PerDim(2, 1), "padding": "same", "groups": 2, "padding_mode": "reflect"}),
]


def _conv_sample(case: Case, n: int, batched: bool, tiny: bool = False) -> Sample:
    size = case.size.resolve(n) if case.size else (TINY_SIZES if tiny else SIZES)[n]
    kernel = case.kernel.resolve(n) if case.kernel else (TINY_KERNELS if tiny else KERNELS)[n]
    kwargs = {k: _resolve(v, n) for k, v in case.kwargs.items()}
    groups = kwargs.get("groups", 1)
    x = ((BATCH,) if batched else ()) + (case.c_in, *size)
    w = (case.c_out, case.c_in // groups, *kernel)
    return Sample("conv", case.name, x, w, (case.c_out,) if case.bias else None, kwargs, n, batched)


def conv_samples(ns: tuple[int, ...] = NS, cases: list[Case] | None = None, tiny: bool = False) -> Iterator[Sample]:
    """Every conv case for every N, batched and unbatched (``tiny``: gradcheck-sized shapes)."""
    for case in cases or CONV_CASES:
        for n in ns:
            for batched in (True, False):
                yield _conv_sample(case, n, batched, tiny)


# ------------------------------------------------------------------------------ conv_transpose
# weight layout (C_in, C_out // groups, *kernel): c_in/c_out are the op's own channel counts
CONV_T_CASES: list[Case] = [
    Case("plain"),
    Case("bias", bias=True),
    Case("stride2", kwargs={"stride": 2}),
    Case("stride_per_dim", kwargs={"stride": PerDim(3, 1, 2)}),
    Case("stride_gt_kernel", kernel=PerDim(2, 1), kwargs={"stride": 3}),
    Case("dilation2", kwargs={"dilation": 2}),
    Case("dilation_per_dim", kwargs={"dilation": PerDim(1, 2), "stride": 2}),
    Case("pad_int", kwargs={"padding": 1, "stride": 2}),
    Case("pad_per_dim", kwargs={"padding": PerDim(1, 0, 2)}),
    Case("pad_pairs", kwargs={"padding": PerDim((1, 0), (0, 2), (2, 1)), "stride": 2}),
    Case("valid", kwargs={"padding": "valid", "stride": 2}),
    Case("same", kwargs={"padding": "same"}),
    Case("same_strided", kwargs={"padding": "same", "stride": PerDim(2, 3)}),
    Case("same_even_kernel_strided", kernel=PerDim(4, 2), kwargs={"padding": "same", "stride": 2}),
    Case("same_stride_gt_kernel", kernel=PerDim(2, 1), kwargs={"padding": "same", "stride": 3}),
    Case("same_dilated", kwargs={"padding": "same", "dilation": 2, "stride": 2}),
    Case("output_padding", kwargs={"stride": 2, "output_padding": 1, "padding": 1}),
    Case("output_padding_per_dim", kwargs={"stride": PerDim(3, 2), "output_padding": PerDim(2, 0)}),
    Case("output_padding_lt_dilation", kwargs={"dilation": 2, "output_padding": 1}),
    Case("output_size", kwargs={"stride": 2, "padding": 1, "output_size": "max"}),
    Case("output_size_min", kwargs={"stride": PerDim(3, 2), "output_size": "min"}),
    Case("groups2", c_in=4, c_out=2, kwargs={"groups": 2, "stride": 2}),
    Case("depthwise", c_in=3, c_out=3, kwargs={"groups": 3}),
    Case("depthwise_mult2", c_in=2, c_out=4, kwargs={"groups": 2, "padding": 1}),
    Case("combo", c_in=4, c_out=6, bias=True, kwargs={
        "stride": PerDim(2, 3), "dilation": PerDim(2, 1), "padding": PerDim((1, 2), (0, 1)), "groups": 2,
        "output_padding": PerDim(1, 2)}),
]


def _output_size(which: str, x_spatial: tuple[int, ...], kernel: tuple[int, ...], kwargs: dict[str, Any]) -> list[int]:
    """The smallest or largest reachable output size (computed here from torch's formula)."""
    n = len(kernel)

    def dim(v: Any, i: int) -> Any:
        return v[i] if isinstance(v, tuple) else v

    sizes = []
    for i in range(n):
        s, d, p = dim(kwargs.get("stride", 1), i), dim(kwargs.get("dilation", 1), i), dim(kwargs.get("padding", 0), i)
        lo = (x_spatial[i] - 1) * s - 2 * p + (kernel[i] - 1) * d + 1
        sizes.append(lo + (max(s, d) - 1 if which == "max" else 0))
    return sizes


def _conv_t_sample(case: Case, n: int, batched: bool, tiny: bool = False) -> Sample:
    size = case.size.resolve(n) if case.size else tuple(max(2, v - 2) for v in (TINY_SIZES if tiny else SIZES)[n])
    kernel = case.kernel.resolve(n) if case.kernel else (TINY_KERNELS if tiny else KERNELS)[n]
    kwargs = {k: _resolve(v, n) for k, v in case.kwargs.items()}
    groups = kwargs.get("groups", 1)
    if kwargs.get("output_size") in ("min", "max"):
        kwargs["output_size"] = _output_size(kwargs["output_size"], size, kernel, kwargs)
    x = ((BATCH,) if batched else ()) + (case.c_in, *size)
    w = (case.c_in, case.c_out // groups, *kernel)
    return Sample("conv_transpose", case.name, x, w, (case.c_out,) if case.bias else None, kwargs, n, batched)


def conv_transpose_samples(ns: tuple[int, ...] = NS, cases: list[Case] | None = None,
                           tiny: bool = False) -> Iterator[Sample]:
    """Every conv_transpose case for every N, batched and unbatched (``tiny``: gradcheck-sized)."""
    for case in cases or CONV_T_CASES:
        for n in ns:
            for batched in (True, False):
                yield _conv_t_sample(case, n, batched, tiny)


# ------------------------------------------------------------------------------- unfold / fold
# (name, kwargs) rows; kernel_size comes from KERNELS[n] unless given
UNFOLD_CASES: list[tuple[str, dict[str, Any]]] = [
    ("plain", {}),
    ("stride", {"stride": PerDim(2, 1)}),
    ("dilation", {"dilation": PerDim(2, 1)}),
    ("pad_int", {"padding": 1}),
    ("pad_pairs", {"padding": PerDim((1, 0), (0, 2))}),
    ("same", {"padding": "same", "stride": 2}),
    ("combo", {"stride": 2, "dilation": PerDim(1, 2), "padding": PerDim(2, (0, 1))}),
]


def unfold_samples(ns: tuple[int, ...] = NS) -> Iterator[tuple[str, int, bool, tuple[int, ...], dict[str, Any]]]:
    """``(id, n, batched, input_shape, kwargs)`` for unfold (fold uses the same rows)."""
    for name, raw in UNFOLD_CASES:
        for n in ns:
            for batched in (True, False):
                kwargs = {k: _resolve(v, n) for k, v in raw.items()}
                kwargs["kernel_size"] = KERNELS[n]
                shape = ((BATCH,) if batched else ()) + (2, *SIZES[n])
                yield f"unfold-{name}-{n}d-{'b' if batched else 'u'}", n, batched, shape, kwargs


# -------------------------------------------------------------------------------- error tables
def _t(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.zeros(shape, dtype=dtype)


X2 = _t(1, 2, 5, 5)
W2 = _t(3, 2, 3, 3)
# rows: (name, kwargs for conv(...), exception type, regex the message must match)
CONV_ERRORS: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("input_not_tensor", {"input": [[1.0]], "weight": W2}, TypeError, r"conv: `input` must be a torch\.Tensor"),
    ("weight_not_tensor", {"input": X2, "weight": 3}, TypeError, r"`weight`"),
    ("int_dtype", {"input": X2.long(), "weight": W2.long()}, TypeError, r"`input`.*dtype"),
    ("dtype_mismatch", {"input": X2, "weight": W2.double()}, TypeError, r"`weight`.*dtype"),
    ("weight_rank", {"input": X2, "weight": _t(3, 2)}, ValueError, r"`weight`.*at least 3 dims"),
    ("input_rank", {"input": _t(5, 5), "weight": W2}, ValueError, r"`input`.*4 dims.*3 dims"),
    ("channels", {"input": _t(1, 3, 5, 5), "weight": W2}, ValueError, r"`input`.*2 channels"),
    ("groups_divide_out", {"input": _t(1, 4, 5, 5), "weight": _t(3, 2, 3, 3), "groups": 2}, ValueError, r"`groups`.*divisor"),
    ("groups_zero", {"input": X2, "weight": W2, "groups": 0}, ValueError, r"`groups`.*positive"),
    ("groups_float", {"input": X2, "weight": W2, "groups": 1.0}, TypeError, r"`groups`"),
    ("stride_zero", {"input": X2, "weight": W2, "stride": 0}, ValueError, r"`stride`.*positive.*got stride=0"),
    ("stride_negative_seq", {"input": X2, "weight": W2, "stride": (2, -1)}, ValueError, r"`stride`.*got stride=\(2, -1\)"),
    ("stride_len", {"input": X2, "weight": W2, "stride": (1, 1, 1)}, ValueError, r"`stride`.*sequence of 2"),
    ("stride_float", {"input": X2, "weight": W2, "stride": 1.5}, TypeError, r"`stride`"),
    ("stride_bool", {"input": X2, "weight": W2, "stride": True}, TypeError, r"`stride`"),
    ("stride_str", {"input": X2, "weight": W2, "stride": "2"}, TypeError, r"`stride`"),
    ("dilation_zero", {"input": X2, "weight": W2, "dilation": 0}, ValueError, r"`dilation`"),
    ("padding_negative", {"input": X2, "weight": W2, "padding": -1}, ValueError, r"`padding`.*non-negative"),
    ("padding_bad_string", {"input": X2, "weight": W2, "padding": "full"}, ValueError, r"`padding`.*'same'.*got padding='full'"),
    ("padding_bad_pair", {"input": X2, "weight": W2, "padding": ((1, 2, 3), 0)}, ValueError, r"`padding`.*pairs"),
    ("padding_len", {"input": X2, "weight": W2, "padding": (1, 1, 1)}, ValueError, r"`padding`"),
    ("padding_float", {"input": X2, "weight": W2, "padding": 0.5}, TypeError, r"`padding`"),
    ("padding_mode", {"input": X2, "weight": W2, "padding_mode": "mirror"}, ValueError, r"`padding_mode`.*'reflect'"),
    ("padding_mode_type", {"input": X2, "weight": W2, "padding_mode": None}, TypeError, r"`padding_mode`"),
    ("flip_type", {"input": X2, "weight": W2, "flip": 1}, TypeError, r"`flip`.*bool"),
    ("algorithm", {"input": X2, "weight": W2, "algorithm": "magic"}, ValueError, r"`algorithm`.*'direct'"),
    ("kernel_too_big", {"input": X2, "weight": _t(3, 2, 7, 3)}, ValueError, r"`weight`.*dilated kernel.*padded input"),
    ("dilated_too_big", {"input": X2, "weight": W2, "dilation": 3}, ValueError, r"`weight`.*dilated kernel"),
    ("bias_shape", {"input": X2, "weight": W2, "bias": _t(2)}, ValueError, r"`bias`.*\(3,\)"),
    ("bias_dtype", {"input": X2, "weight": W2, "bias": _t(3, dtype=torch.float64)}, TypeError, r"`bias`.*dtype"),
    ("bias_type", {"input": X2, "weight": W2, "bias": [0.0, 0.0, 0.0]}, TypeError, r"`bias`"),
    ("zero_channels", {"input": _t(1, 0, 5, 5), "weight": _t(3, 0, 3, 3)}, ValueError, r"`weight`"),
    ("zero_spatial", {"input": _t(1, 2, 0, 5), "weight": W2}, ValueError, r"`input`.*spatial sizes"),
    ("device_mismatch", {"input": X2, "weight": W2.to("meta")}, ValueError, r"`weight`.*device cpu"),
    ("bias_device", {"input": X2, "weight": W2, "bias": _t(3).to("meta")}, ValueError, r"`bias`.*device cpu"),
]

XT = _t(1, 2, 4, 4)
WT = _t(2, 3, 3, 3)
CONV_T_ERRORS: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("channels", {"input": _t(1, 3, 4, 4), "weight": WT}, ValueError, r"conv_transpose: `weight`.*input channels"),
    ("groups", {"input": _t(1, 3, 4, 4), "weight": _t(3, 1, 3, 3), "groups": 2}, ValueError, r"`groups`"),
    ("stride_zero", {"input": XT, "weight": WT, "stride": 0}, ValueError, r"`stride`"),
    ("output_padding_big", {"input": XT, "weight": WT, "stride": 2, "output_padding": 2}, ValueError, r"`output_padding`.*stride"),
    ("output_padding_negative", {"input": XT, "weight": WT, "output_padding": -1}, ValueError, r"`output_padding`"),
    ("padding_causal", {"input": XT, "weight": WT, "padding": "causal"}, ValueError, r"`padding`.*'same'"),
    ("crop_too_big", {"input": XT, "weight": WT, "padding": 4}, ValueError, r"`padding`"),
    ("output_size_unreachable", {"input": XT, "weight": WT, "stride": 2, "output_size": [20, 9]}, ValueError, r"`output_size`.*between 9 and 10"),
    ("output_size_len", {"input": XT, "weight": WT, "output_size": [6]}, ValueError, r"`output_size`"),
    ("output_size_type", {"input": XT, "weight": WT, "output_size": 6}, TypeError, r"`output_size`"),
    ("output_size_str", {"input": XT, "weight": WT, "output_size": "66"}, TypeError, r"`output_size`"),
    ("bias_shape", {"input": XT, "weight": WT, "bias": _t(2)}, ValueError, r"`bias`.*\(3,\)"),
    ("dtype_mismatch", {"input": XT.double(), "weight": WT}, TypeError, r"`weight`.*dtype"),
    ("dilation_float", {"input": XT, "weight": WT, "dilation": 2.0}, TypeError, r"`dilation`"),
]

UNFOLD_ERRORS: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("input_type", {"input": "x", "kernel_size": 2}, TypeError, r"unfold: `input`"),
    ("kernel_zero", {"input": X2, "kernel_size": 0}, ValueError, r"`kernel_size`"),
    ("kernel_big", {"input": X2, "kernel_size": 6}, ValueError, r"`kernel_size`"),
    ("kernel_len", {"input": X2, "kernel_size": (2, 2, 2, 2)}, ValueError, r"`input`.*4 spatial dims"),
    ("stride_zero", {"input": X2, "kernel_size": 2, "stride": 0}, ValueError, r"`stride`"),
    ("padding_str", {"input": X2, "kernel_size": 2, "padding": "full"}, ValueError, r"`padding`"),
]

FOLD_ERRORS: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("blocks", {"input": _t(1, 4, 5), "output_size": (3, 3), "kernel_size": 2}, ValueError, r"fold: `input`.*4 blocks"),
    ("channels", {"input": _t(1, 3, 4), "output_size": (3, 3), "kernel_size": 2}, ValueError, r"`input`.*divisible"),
    ("output_size_zero", {"input": _t(1, 4, 4), "output_size": (0, 3), "kernel_size": 2}, ValueError, r"`output_size`"),
    ("kernel_big", {"input": _t(1, 4, 4), "output_size": (3, 3), "kernel_size": 5}, ValueError, r"`kernel_size`"),
    ("input_rank", {"input": _t(4), "output_size": (3, 3), "kernel_size": 2}, ValueError, r"`input`"),
]
