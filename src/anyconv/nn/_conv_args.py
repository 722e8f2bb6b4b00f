"""Constructor arguments of the convolution modules: validation and torch-compatible storage.

The modules keep torch's attributes (``kernel_size``, ``stride``, ``padding``, ...) in torch's
form wherever torch can express the configuration, so that ``repr``, ``state_dict`` and code
that reads these attributes behave as with ``torch.nn``. What torch cannot express is stored
as given: ``padding`` may also be a tuple of ``(before, after)`` pairs or one of the strings
``'same'`` (any stride), ``'same_lower'`` and ``'causal'``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.lazy import LazyModuleMixin

from ..core.args import PADDING_STRINGS, as_int, boolean, int_tuple, padding_arg, torch_form
from ..core.errors import type_error, value_error
from ..core.padding import PADDING_MODES
from ..core.spec import check_algorithm, check_output_padding, resolve_padding
from ..core.types import Pairs

# What ``module.padding`` holds: a string, N ints (symmetric) or N (before, after) pairs.
StoredPadding = str | tuple[int, ...] | Pairs
TRANSPOSED_PADDING_STRINGS = ("valid", "same")


@dataclass(frozen=True)
class ConvArgs:
    """Validated constructor arguments of a (transposed) convolution module."""

    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: StoredPadding
    dilation: tuple[int, ...]
    output_padding: tuple[int, ...]
    groups: int
    bias: bool
    padding_mode: str
    algorithm: str
    reversed_padding: list[int]


def _positive(op: str, name: str, value: Any) -> int:
    v = as_int(op, name, value, "a positive int")
    if v < 1:
        value_error(op, name, value, "a positive int")
    return v


def is_lazy(m: Any) -> bool:
    """Whether ``m`` is a lazy module being built (its channel counts are 0 until the first call)."""
    return isinstance(m, LazyModuleMixin)


def kernel_dims(op: str, kernel_size: Any) -> int:
    """N for the ``*Nd`` modules: the length of ``kernel_size``, which must be a sequence."""
    expected = "a non-empty sequence of positive ints (its length is the number of spatial dims)"
    if isinstance(kernel_size, (str, bytes)) or not isinstance(kernel_size, Sequence):
        type_error(op, "kernel_size", kernel_size, expected)
    if len(kernel_size) == 0:
        value_error(op, "kernel_size", kernel_size, expected)
    return len(kernel_size)


def stored_padding(pad: str | Pairs) -> StoredPadding:
    """Torch's form where it exists: N ints for symmetric pairs; pairs or strings otherwise."""
    if isinstance(pad, str):
        return pad
    if all(b == a for b, a in pad):
        return tuple(b for b, _ in pad)
    return pad


def reversed_padding(
    pad: str | Pairs, kernel: tuple[int, ...], stride: tuple[int, ...], dilation: tuple[int, ...]
) -> list[int]:
    """torch's ``_reversed_padding_repeated_twice``: ``[before_N, after_N, ..., before_1, after_1]``.

    For 'same'/'same_lower' with a stride > 1 the padding depends on the input size; zeros are
    stored then (anyconv's forward resolves the string itself and does not read this list).
    """
    n = len(kernel)
    if isinstance(pad, str):
        if pad in ("same", "same_lower") and any(s != 1 for s in stride):
            return [0, 0] * n
        # stride-1 'same' and 'causal' do not depend on the input size: resolve for size 1
        pad = resolve_padding("conv", pad, (1,) * n, kernel, stride, dilation)
    out: list[int] = []
    for b, a in reversed(pad):
        out += [b, a]
    return out


def conv_args(
    op: str,
    n: int,
    in_channels: Any,
    out_channels: Any,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: Any,
    bias: Any,
    padding_mode: Any,
    algorithm: Any,
    transposed: bool = False,
    output_padding: Any = 0,
    lazy: bool = False,
) -> ConvArgs:
    """Validate a module's constructor arguments (anyconv's error shape, ``op`` = class name).

    A one-element ``stride``/``padding``/``dilation``/``output_padding`` sequence stands for
    every dim (torch's form) and is stored broadcast. ``lazy``: the channel counts are torch's
    lazy placeholders 0 (a lazy module checks the real ones itself).
    """
    stride, padding, dilation, output_padding = (torch_form(v, n) for v in (stride, padding, dilation, output_padding))
    if lazy and in_channels == 0 and out_channels == 0:
        cin = cout = 0
    else:
        cin = _positive(op, "in_channels", in_channels)
        cout = _positive(op, "out_channels", out_channels)
    kernel = int_tuple(op, "kernel_size", kernel_size, n)
    s = int_tuple(op, "stride", stride, n)
    d = int_tuple(op, "dilation", dilation, n)
    g = _positive(op, "groups", groups)
    if cin % g != 0:
        value_error(op, "groups", groups, f"a divisor of in_channels ({cin})")
    if cout % g != 0:
        value_error(op, "groups", groups, f"a divisor of out_channels ({cout})")
    pad = padding_arg(op, padding, n, strings=TRANSPOSED_PADDING_STRINGS if transposed else PADDING_STRINGS)
    has_bias = boolean(op, "bias", bias)
    if transposed:
        if padding_mode != "zeros":
            expected = "'zeros' (the only padding mode of a transposed convolution)"
            if not isinstance(padding_mode, str):
                type_error(op, "padding_mode", padding_mode, expected)
            value_error(op, "padding_mode", padding_mode, expected)
        mode = "zeros"
    else:
        expected = "one of " + ", ".join(repr(m) for m in PADDING_MODES)
        if not isinstance(padding_mode, str):
            type_error(op, "padding_mode", padding_mode, expected)
        if padding_mode not in PADDING_MODES:
            value_error(op, "padding_mode", padding_mode, expected)
        mode = padding_mode
    outpad = int_tuple(op, "output_padding", output_padding, n, minimum=0)
    check_output_padding(op, output_padding, outpad, s, d)
    algo = check_algorithm(op, algorithm)
    rev = [0, 0] * n if transposed and isinstance(pad, str) else reversed_padding(pad, kernel, s, d)
    return ConvArgs(cin, cout, kernel, s, stored_padding(pad), d, outpad, g, has_bias, mode, algo, rev)


def finish_init(m: _ConvNd, a: ConvArgs) -> None:
    """Store what torch's ``__init__`` (called with padding 0) could not: padding, algorithm."""
    m.padding = a.padding  # type: ignore[assignment]
    m._reversed_padding_repeated_twice = a.reversed_padding
    m.algorithm = a.algorithm  # type: ignore[assignment]


def forward_args(m: _ConvNd) -> tuple[Any, Any, Any]:
    """``(stride, padding, dilation)`` of ``m`` in anyconv's form (a torch layer built with
    ``stride=(2,)`` and converted stores the one-element form)."""
    n = len(m.kernel_size)
    return torch_form(m.stride, n), torch_form(m.padding, n), torch_form(m.dilation, n)


def algorithm_repr(m: _ConvNd, text: str) -> str:
    """torch's ``extra_repr`` text plus ``algorithm=...`` when it is not ``'auto'``."""
    algo = getattr(m, "algorithm", "auto")
    return text if algo == "auto" else f"{text}, algorithm={algo!r}"
