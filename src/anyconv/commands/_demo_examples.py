"""The learning material's convolution examples, as data, run through anyconv and torch side by side.

Each :class:`Example` is transcribed from the tutorials in ``shared/seeds`` (the d2l-style
``corr2d`` notebook, the PyTorch convolution notebooks): the input, the kernel, the keyword
arguments, and what the tutorial printed (values or the output shape). :func:`run_examples`
computes every example with :func:`anyconv.functional.conv` and with torch's own kernel and
prints both and their largest difference; ``anyconv demo`` calls it.

torch's kernels are called here only as the comparison (:func:`torch_reference`), never as
part of anyconv's implementation.

Examples:
    >>> run_examples(print_fn=lambda *a: None) < 1e-10
    True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..functional.conv import conv

Nested = list[Any]


@dataclass(frozen=True)
class Example:
    """One tutorial example: ``conv(input, weight, **kwargs)`` and what the tutorial printed.

    ``input``/``weight`` are nested lists of shape ``(B, C, *spatial)``/``(O, C, *kernel)``;
    where the tutorial used random values, give ``input_shape``/``weight_shape`` instead
    (seeded normal values). ``expected`` is the printed output (``atol`` covers its rounding),
    ``expected_shape`` the printed output shape, ``None`` where the tutorial printed nothing.
    """

    title: str
    source: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    input: Nested | None = None
    weight: Nested | None = None
    input_shape: tuple[int, ...] | None = None
    weight_shape: tuple[int, ...] | None = None
    expected: Nested | None = None
    expected_shape: tuple[int, ...] | None = None
    atol: float = 1e-9


@dataclass(frozen=True)
class Result:
    """anyconv's and torch's outputs for one example and how they compare."""

    example: Example
    ours: torch.Tensor
    theirs: torch.Tensor
    max_diff: float
    matches_tutorial: bool | None  # None: the tutorial printed nothing to compare with


_EDGE_IMAGE = [[1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]] * 6  # X = ones(6, 8); X[:, 2:6] = 0
_IMAGE_4x5 = [[1.0, 2.0, 3.0, 4.0, 5.0], [6.0, 7.0, 8.0, 9.0, 10.0], [11.0, 12.0, 13.0, 14.0, 15.0],
              [16.0, 17.0, 18.0, 19.0, 20.0]]
_KERNEL_01_09 = [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]]
_SIGNAL_1_9 = [[[float(v) for v in range(1, 10)]]]
_IMAGE_1_25 = [[[[float(5 * r + c + 1) for c in range(5)] for r in range(5)]]]
_VERTICAL_3x3 = [[[[1.0, 0.0, -1.0]] * 3]]
_ZERO_ROW = [0.0, 0.0, 0.0]

EXAMPLES: tuple[Example, ...] = (
    Example("2-D cross-correlation", "corr2d(X, K), X = 0..8 as 3x3, K = [[0, 1], [2, 3]]",
            input=[[[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]]],
            weight=[[[[0.0, 1.0], [2.0, 3.0]]]], expected=[[[[19.0, 25.0], [37.0, 43.0]]]]),
    Example("two input channels, summed", "corr2d_multi_in: 2 channels of 3x3, 2 kernels of 2x2",
            input=[[[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]],
                    [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]]],
            weight=[[[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]]],
            expected=[[[[56.0, 72.0], [104.0, 120.0]]]]),
    Example("vertical edge detection", "X = ones(6, 8) with X[:, 2:6] = 0, K = [[1, -1]]",
            input=[[_EDGE_IMAGE]], weight=[[[[1.0, -1.0]]]],
            expected=[[[[0.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0]] * 6]]),
    Example("1-D, padding='same'", "signal 1..9, kernel [2, 1, 2]", {"padding": "same"},
            input=_SIGNAL_1_9, weight=[[[2.0, 1.0, 2.0]]],
            expected=[[[5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 25.0]]]),
    Example("1-D, padding='valid'", "signal 1..9, kernel [2, 1, 2]", {"padding": "valid"},
            input=_SIGNAL_1_9, weight=[[[2.0, 1.0, 2.0]]],
            expected=[[[10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0]]]),
    Example("1-D, padding=2, stride=2", "signal 1..9, kernel [2, 1, 2]", {"padding": 2, "stride": 2},
            input=_SIGNAL_1_9, weight=[[[2.0, 1.0, 2.0]]],
            expected=[[[2.0, 10.0, 20.0, 30.0, 40.0, 18.0]]]),
    Example("2-D, vertical kernel, padding='valid'", "image 1..25 as 5x5, kernel [[1, 0, -1]] x 3 rows",
            {"padding": "valid"}, input=_IMAGE_1_25, weight=_VERTICAL_3x3,
            expected=[[[[-6.0] * 3] * 3]]),
    Example("2-D, vertical kernel, padding='same'", "image 1..25 as 5x5, kernel [[1, 0, -1]] x 3 rows",
            {"padding": "same"}, input=_IMAGE_1_25, weight=_VERTICAL_3x3),
    Example("2-D, vertical kernel, padding=1, stride=2", "image 1..25 as 5x5, kernel [[1, 0, -1]] x 3 rows",
            {"padding": 1, "stride": 2}, input=_IMAGE_1_25, weight=_VERTICAL_3x3),
    Example("3x3 kernel 0.1..0.9 on a 4x5 image", "nn.Conv2d(1, 1, 3, bias=False) with set weights",
            input=[[_IMAGE_4x5]], weight=[[_KERNEL_01_09]],
            expected=[[[[41.1, 45.6, 50.1], [63.6, 68.1, 72.6]]]]),
    Example("the same as a 1-D conv over 4 row channels", "nn.Conv1d(4, 2, 3): one output channel per kernel row",
            input=[_IMAGE_4x5], weight=[[*_KERNEL_01_09, _ZERO_ROW], [_ZERO_ROW, *_KERNEL_01_09]],
            expected=[[[41.1, 45.6, 50.1], [63.6, 68.1, 72.6]]]),
    Example("convolution as a matrix product", "W @ x with kernel [0.3447, 0.5001, 0.2005] on x = 1..10",
            input=[[[float(v) for v in range(1, 11)]]], weight=[[[0.3447, 0.5001, 0.2005]]],
            expected=[[[1.9466, 2.9920, 4.0374, 5.0828, 6.1282, 7.1736, 8.2190, 9.2643]]], atol=1e-3),
    Example("output size: input 32, kernel 5, padding 2", "(32 - 5 + 2 * 2) / 1 + 1 = 32", {"padding": 2},
            input_shape=(1, 1, 32, 32), weight_shape=(1, 1, 5, 5), expected_shape=(1, 1, 32, 32)),
    Example("output size: 8x8, kernel 3, padding 1", "image becomes 10x10, 3x3 kernel -> 8x8", {"padding": 1},
            input_shape=(1, 1, 8, 8), weight_shape=(1, 1, 3, 3), expected_shape=(1, 1, 8, 8)),
    Example("output size: 8x8, kernel (5, 3), padding (2, 1)", "12x10 with a 5x3 kernel -> 8x8",
            {"padding": (2, 1)}, input_shape=(1, 1, 8, 8), weight_shape=(1, 1, 5, 3), expected_shape=(1, 1, 8, 8)),
    Example("output size: 8x8, kernel 3, padding 1, stride 2", "stride 2 halves the size",
            {"padding": 1, "stride": 2}, input_shape=(1, 1, 8, 8), weight_shape=(1, 1, 3, 3),
            expected_shape=(1, 1, 4, 4)),
    Example("output size: 8x8, kernel (3, 5), padding (0, 1), stride (3, 4)", "corners (0,0) (0,4) (3,0) (3,4)",
            {"padding": (0, 1), "stride": (3, 4)}, input_shape=(1, 1, 8, 8), weight_shape=(1, 1, 3, 5),
            expected_shape=(1, 1, 2, 2)),
    Example("output size: CIFAR-10 model, first conv", "3x32x32, Conv2d(3, 32, 3) -> 32x30x30",
            input_shape=(3, 3, 32, 32), weight_shape=(32, 3, 3, 3), expected_shape=(3, 32, 30, 30)),
    Example("output size: CIFAR-10 model, second conv", "32x15x15, Conv2d(32, 64, 3) -> 64x13x13",
            input_shape=(3, 32, 15, 15), weight_shape=(64, 32, 3, 3), expected_shape=(3, 64, 13, 13)),
)


def torch_reference(x: torch.Tensor, w: torch.Tensor, kwargs: dict[str, Any]) -> torch.Tensor:
    """torch's own ``conv{N}d`` on the same call: the comparison, not part of anyconv's implementation."""
    import torch.nn.functional as F

    fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[w.dim() - 2]
    return fn(x, w, None, **kwargs)


def _tensor(values: Nested | None, shape: tuple[int, ...] | None, gen: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    if values is not None:
        return torch.tensor(values, dtype=dtype)
    assert shape is not None, "an Example needs values or a shape"
    return torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)


def compute(example: Example, dtype: torch.dtype = torch.float64) -> Result:
    """Run one example through anyconv and torch and compare them (and the tutorial's output)."""
    gen = torch.Generator().manual_seed(0)
    x = _tensor(example.input, example.input_shape, gen, dtype)
    w = _tensor(example.weight, example.weight_shape, gen, dtype)
    ours = conv(x, w, **example.kwargs)
    theirs = torch_reference(x, w, example.kwargs)
    diff = (ours - theirs).abs().max().item() if ours.shape == theirs.shape else float("inf")
    matches: bool | None = None
    if example.expected is not None:
        want = torch.tensor(example.expected, dtype=torch.float64)
        matches = ours.shape == want.shape and bool(((ours.double() - want).abs() <= example.atol).all())
    elif example.expected_shape is not None:
        matches = tuple(ours.shape) == example.expected_shape
    return Result(example, ours, theirs, diff, matches)


def _show(t: torch.Tensor, shape_only: bool) -> str:
    if shape_only or t.numel() > 42:
        return f"shape {tuple(t.shape)}"
    values = t.squeeze(0).tolist() if t.dim() > 1 and t.shape[0] == 1 else t.tolist()
    return f"{_round(values)}"


def _round(v: Any) -> Any:
    if isinstance(v, list):
        return [_round(u) for u in v]
    r = round(v, 4)
    return int(r) if r == int(r) else r


def run_examples(print_fn: Callable[..., Any] = print, dtype: torch.dtype = torch.float64) -> float:
    """Print every example's anyconv and torch results side by side; return the largest difference.

    Also checks each result against what the tutorial printed (``tutorial: ok``); the return
    value is the largest ``|anyconv - torch|`` over all examples (``inf`` for a shape mismatch).
    """
    worst = 0.0
    print_fn(f"The learning material's convolution examples, anyconv vs torch ({str(dtype).replace('torch.', '')}):")
    for i, ex in enumerate(EXAMPLES, 1):
        r = compute(ex, dtype)
        worst = max(worst, r.max_diff)
        args = ", ".join(f"{k}={v!r}" for k, v in ex.kwargs.items())
        print_fn(f"\n[{i:2d}] {ex.title}   ({ex.source}{'; ' + args if args else ''})")
        shape_only = ex.expected_shape is not None
        print_fn(f"     anyconv: {_show(r.ours, shape_only)}")
        print_fn(f"     torch:   {_show(r.theirs, shape_only)}")
        note = {None: "nothing printed", True: "ok", False: "DIFFERS"}[r.matches_tutorial]
        print_fn(f"     largest difference {r.max_diff:.2e}; tutorial's output: {note}")
    print_fn(f"\nlargest difference anyconv vs torch over {len(EXAMPLES)} examples: {worst:.2e}")
    return worst
