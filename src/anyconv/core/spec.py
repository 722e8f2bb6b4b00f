"""The front door: every conv-family op validates and canonicalises its arguments here.

Raw user arguments go in; a frozen spec with per-dim tuples and explicit ``(before, after)``
padding pairs comes out ('valid', 'same', 'same_lower' and 'causal' already resolved). All
checks happen here, before any tensor work, and raise the shared message shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from . import shapes as _shapes
from .args import as_int, boolean, choice, int_tuple, padding_arg
from .errors import type_error, value_error
from .names import ALGORITHMS
from .padding import PADDING_MODES
from .spec_cache import SPEC_CACHE as _SPEC_CACHE
from .spec_cache import call_key as _call_key
from .spec_cache import remember as _remember
from .types import Pairs

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
COMPLEX_DTYPES = (torch.complex64, torch.complex128)
CONV_DTYPES = FLOAT_DTYPES + COMPLEX_DTYPES


@dataclass(frozen=True)
class CorrSpec:
    """The one core op: grouped N-d cross-correlation with zero padding.

    ``y[b, g*Og + o, p] = sum_{c, q} x_pad[b, g*Cg + c, p * stride + q * dilation] * w[g*Og + o, c, q]``
    """

    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: Pairs
    groups: int

    @property
    def n(self) -> int:
        return len(self.stride)

    def output_spatial(self, in_spatial: Sequence[int], kernel: Sequence[int]) -> tuple[int, ...]:
        """Output spatial size for an input of ``in_spatial`` and a kernel of ``kernel``."""
        return tuple(
            _shapes.conv_output_size(i, k, s, d, pb, pa)
            for i, k, s, d, (pb, pa) in zip(
                in_spatial, kernel, self.stride, self.dilation, self.padding
            )
        )


@dataclass(frozen=True)
class ConvSpec:
    """A validated ``conv`` call: the core spec plus what surrounds it."""

    core: CorrSpec
    padding_mode: str
    flip: bool
    batched: bool
    algorithm: str
    out_spatial: tuple[int, ...]


@dataclass(frozen=True)
class ConvTransposeSpec:
    """A validated ``conv_transpose`` call.

    ``core`` is the forward convolution whose adjoint this is (padding zero); the uncropped
    output has size ``full`` per dim, and ``crop`` pairs are removed from it (a negative crop
    extends the output with zeros).
    """

    core: CorrSpec
    full: tuple[int, ...]
    crop: Pairs
    batched: bool
    algorithm: str
    out_spatial: tuple[int, ...]


def check_tensor(op: str, name: str, t: Any, dtypes: Sequence[torch.dtype] = CONV_DTYPES) -> None:
    """``t`` must be a tensor with one of ``dtypes``."""
    names = ", ".join(str(d).replace("torch.", "") for d in dtypes)
    if not isinstance(t, torch.Tensor):
        type_error(op, name, t, f"a torch.Tensor of dtype {names}")
    if t.dtype not in dtypes:
        type_error(op, name, t, f"a tensor of dtype {names}")


def check_algorithm(op: str, algorithm: Any) -> str:
    """``algorithm`` must be 'auto' or a registered algorithm name (:data:`.names.ALGORITHMS`)."""
    return choice(op, "algorithm", algorithm, ("auto", *ALGORITHMS))


def check_input_rank(op: str, x: torch.Tensor, n: int) -> bool:
    if x.dim() not in (n + 1, n + 2):
        value_error(
            op,
            "input",
            x,
            f"a batched (B, C, *spatial) tensor of {n + 2} dims or an unbatched "
            f"(C, *spatial) tensor of {n + 1} dims for {n} spatial dims",
        )
    batched = x.dim() == n + 2
    spatial = x.shape[-n:]
    if any(v < 1 for v in spatial):
        value_error(op, "input", x, "spatial sizes >= 1")
    return batched


def check_same_kind(op: str, x: torch.Tensor, name: str, t: torch.Tensor) -> None:
    if t.dtype != x.dtype:
        type_error(op, name, t, f"the input's dtype {x.dtype}")
    if t.device != x.device:
        value_error(op, name, t, f"on the input's device {x.device}")


def resolve_padding(
    op: str,
    padding: str | Pairs,
    in_spatial: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
) -> Pairs:
    if not isinstance(padding, str):
        return padding
    if padding == "valid":
        return ((0, 0),) * len(kernel)
    if padding == "causal":
        return tuple(_shapes.causal_padding(k, d) for k, d in zip(kernel, dilation))
    lower = padding == "same_lower"
    return tuple(
        _shapes.same_padding(i, k, s, d, lower)
        for i, k, s, d in zip(in_spatial, kernel, stride, dilation)
    )


def unit_steps(
    stride: Sequence[int], dilation: Sequence[int], kernel: Sequence[int], span: Sequence[int]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Strides and dilations bounded by what they can change, for inputs of padded size ``span``.

    A stride above ``span - (k - 1) * d`` gives the same single output position as that value,
    and a one-element kernel ignores its dilation; bounding them keeps the result and avoids
    overflowing the strided window view with a huge value (``stride=10**30``).

    >>> unit_steps((10**30, 2), (5, 2), (1, 3), (6, 9))
    ((6, 2), (1, 2))
    """
    s = tuple(min(v, n - _shapes.effective_kernel(k, dd) + 1) for v, n, k, dd in zip(stride, span, kernel, dilation))
    d = tuple(1 if k == 1 else v for v, k in zip(dilation, kernel))
    return s, d


MAX_SIZE = 2**62  # padded and output sizes must stay far from int64 overflow


def check_spans(op: str, name: str, value: Any, spans: Sequence[int]) -> None:
    """Every padded/output size in ``spans`` must stay below ``MAX_SIZE`` (else ``name`` is to blame)."""
    for i, v in enumerate(spans):
        if v >= MAX_SIZE:
            value_error(op, name, value, f"small enough that sizes stay below 2**62 (size {v} in spatial dim {i})")


def _weight_and_groups(
    op: str, x: torch.Tensor, weight: torch.Tensor, groups: Any, transposed: bool
) -> tuple[int, int]:
    """Check weight rank and channel counts; return (N, groups)."""
    if weight.dim() < 3:
        layout = "(C_in, C_out // groups, *kernel)" if transposed else "(C_out, C_in // groups, *kernel)"
        value_error(op, "weight", weight, f"a tensor of at least 3 dims {layout}")
    n = weight.dim() - 2
    if any(v < 1 for v in weight.shape):
        value_error(op, "weight", weight, "every dim of size >= 1")
    g = as_int(op, "groups", groups, "a positive int")
    if g < 1:
        value_error(op, "groups", groups, "a positive int")
    check_input_rank(op, x, n)
    c = x.shape[-n - 1]
    if transposed:
        if weight.shape[0] != c:
            value_error(op, "weight", weight, f"weight.shape[0] == input channels ({c})")
        if c % g != 0:
            value_error(op, "groups", groups, f"a divisor of the input channels ({c})")
    else:
        if weight.shape[0] % g != 0:
            value_error(op, "groups", groups, f"a divisor of the output channels ({weight.shape[0]})")
        if weight.shape[1] * g != c:
            value_error(
                op,
                "input",
                x,
                f"{weight.shape[1] * g} channels (weight.shape[1] * groups = "
                f"{weight.shape[1]} * {g}) in dim {x.dim() - n - 1}",
            )
    return n, g


def _check_bias(op: str, x: torch.Tensor, bias: Any, channels: int) -> None:
    if bias is None:
        return
    check_tensor(op, "bias", bias)
    check_same_kind(op, x, "bias", bias)
    if tuple(bias.shape) != (channels,):
        value_error(op, "bias", bias, f"a 1-d tensor of shape ({channels},)")


def check_output_padding(
    op: str, raw: Any, outpad: Sequence[int], stride: Sequence[int], dilation: Sequence[int]
) -> None:
    """torch's rule: each ``output_padding`` must be smaller than its stride or its dilation."""
    for i, (o, s, d) in enumerate(zip(outpad, stride, dilation)):
        if o >= s and o >= d:
            value_error(
                op, "output_padding", raw, f"smaller than either stride ({s}) or dilation ({d}) in spatial dim {i}"
            )


def conv_spec(
    op: str,
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: Any,
    padding_mode: Any,
    flip: Any,
    algorithm: Any,
) -> ConvSpec:
    """Validate a ``conv`` call and resolve it into a :class:`ConvSpec` (cached, see :mod:`anyconv.core.spec_cache`)."""
    key = _call_key(op, input, weight, bias, (stride, padding, dilation), (groups,), (padding_mode, algorithm), flip)
    if key is None:
        return _conv_spec(op, input, weight, bias, stride, padding, dilation, groups, padding_mode, flip, algorithm)
    hit = _SPEC_CACHE.get(key)
    if hit is None:
        hit = _conv_spec(op, input, weight, bias, stride, padding, dilation, groups, padding_mode, flip, algorithm)
        _remember(key, hit)
    return hit  # type: ignore[return-value]


def _conv_spec(
    op: str,
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: Any,
    padding_mode: Any,
    flip: Any,
    algorithm: Any,
) -> ConvSpec:
    """Validate a ``conv`` call and resolve it into a :class:`ConvSpec`."""
    check_tensor(op, "input", input)
    check_tensor(op, "weight", weight)
    check_same_kind(op, input, "weight", weight)
    n, g = _weight_and_groups(op, input, weight, groups, transposed=False)
    _check_bias(op, input, bias, weight.shape[0])
    s = int_tuple(op, "stride", stride, n)
    d = int_tuple(op, "dilation", dilation, n)
    pad = padding_arg(op, padding, n)
    mode = choice(op, "padding_mode", padding_mode, PADDING_MODES)
    fl = boolean(op, "flip", flip)
    algo = check_algorithm(op, algorithm)
    in_spatial = tuple(input.shape[-n:])
    kernel = tuple(weight.shape[2:])
    pairs = resolve_padding(op, pad, in_spatial, kernel, s, d)
    out = CorrSpec(s, d, pairs, g).output_spatial(in_spatial, kernel)
    for i, (o, k, dd) in enumerate(zip(out, kernel, d)):
        if o < 1:
            value_error(
                op,
                "weight",
                weight,
                f"a dilated kernel ((k - 1) * dilation + 1 = {_shapes.effective_kernel(k, dd)}) "
                f"no larger than the padded input ({in_spatial[i] + sum(pairs[i])}) in spatial "
                f"dim {i}",
            )
    span = tuple(i + b + a for i, (b, a) in zip(in_spatial, pairs))
    check_spans(op, "padding", padding, span)
    core = CorrSpec(*unit_steps(s, d, kernel, span), pairs, g)
    return ConvSpec(core, mode, fl, input.dim() == n + 2, algo, out)


def conv_transpose_spec(
    op: str,
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    output_padding: Any,
    groups: Any,
    dilation: Any,
    output_size: Any,
    algorithm: Any,
) -> ConvTransposeSpec:
    """Validate a ``conv_transpose`` call into a :class:`ConvTransposeSpec` (cached, see :mod:`anyconv.core.spec_cache`)."""
    key = _call_key(op, input, weight, bias, (stride, padding, output_padding, dilation, output_size), (groups,),
                    ("transpose", algorithm), False)
    args = (op, input, weight, bias, stride, padding, output_padding, groups, dilation, output_size, algorithm)
    if key is None:
        return _conv_transpose_spec(*args)
    hit = _SPEC_CACHE.get(key)
    if hit is None:
        hit = _conv_transpose_spec(*args)
        _remember(key, hit)
    return hit  # type: ignore[return-value]


def _conv_transpose_spec(
    op: str,
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    output_padding: Any,
    groups: Any,
    dilation: Any,
    output_size: Any,
    algorithm: Any,
) -> ConvTransposeSpec:
    """Validate a ``conv_transpose`` call and resolve it into a :class:`ConvTransposeSpec`."""
    check_tensor(op, "input", input)
    check_tensor(op, "weight", weight)
    check_same_kind(op, input, "weight", weight)
    n, g = _weight_and_groups(op, input, weight, groups, transposed=True)
    c_out = weight.shape[1] * g
    _check_bias(op, input, bias, c_out)
    s = int_tuple(op, "stride", stride, n)
    d = int_tuple(op, "dilation", dilation, n)
    pad = padding_arg(op, padding, n, strings=("valid", "same"))
    outpad = int_tuple(op, "output_padding", output_padding, n, minimum=0)
    algo = check_algorithm(op, algorithm)
    in_spatial = tuple(input.shape[-n:])
    kernel = tuple(weight.shape[2:])
    if pad == "valid":
        crop: Pairs = ((0, 0),) * n
    elif pad == "same":
        crop = tuple(_shapes.conv_transpose_same_crop(k, ss, dd) for k, ss, dd in zip(kernel, s, d))
    else:
        crop = pad  # type: ignore[assignment]
    if output_size is not None:
        expected = f"None or a sequence of {n} positive ints (spatial output size)"
        if isinstance(output_size, (str, bytes)) or not isinstance(output_size, Sequence):
            type_error(op, "output_size", output_size, expected)
        sizes = [as_int(op, "output_size", v, expected) for v in output_size]
        if len(sizes) == n + 2 or (len(sizes) == n + 1 and input.dim() == n + 1):
            sizes = sizes[-n:]
        if len(sizes) != n:
            value_error(op, "output_size", output_size, expected)
        ops = []
        for i in range(n):
            lo, hi = _shapes.output_padding_range(
                in_spatial[i], kernel[i], s[i], d[i], crop[i][0], crop[i][1]
            )
            if not lo <= sizes[i] <= hi:
                value_error(
                    op,
                    "output_size",
                    output_size,
                    f"sizes between {lo} and {hi} in spatial dim {i} (reachable with "
                    f"output_padding 0..{max(s[i], d[i]) - 1})",
                )
            ops.append(sizes[i] - lo)
        outpad = tuple(ops)
    else:
        check_output_padding(op, output_padding, outpad, s, d)
    full = tuple(
        _shapes.conv_transpose_full_size(i, k, ss, dd, o)
        for i, k, ss, dd, o in zip(in_spatial, kernel, s, d, outpad)
    )
    for i in range(n):  # blame the largest term of (i - 1) * s + (k - 1) * d + 1 + op
        terms = {"stride": (in_spatial[i] - 1) * s[i], "dilation": (kernel[i] - 1) * d[i], "output_padding": outpad[i]}
        name = max(terms, key=lambda t: terms[t])
        value = {"stride": stride, "dilation": dilation, "output_padding": output_padding}[name]
        check_spans(op, name, value, [full[i]])
    out = tuple(f - b - a for f, (b, a) in zip(full, crop))
    for i, o in enumerate(out):
        if o < 1:
            value_error(
                op, "padding", padding, f"a crop leaving an output >= 1 in spatial dim {i} (got {o})"
            )
    core = CorrSpec(*unit_steps(s, d, kernel, full), ((0, 0),) * n, g)
    return ConvTransposeSpec(core, full, crop, input.dim() == n + 2, algo, out)
