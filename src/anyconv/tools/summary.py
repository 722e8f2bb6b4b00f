"""``anyconv.summary``: a model table in torchinfo's layout, plus receptive field and algorithm.

The model runs once on shapes only (``meta`` tensors; see ``tools/_trace.py``). Mult-adds are
analytic (one multiply-add per weight tap actually applied):

- conv: ``B * C_out * prod(out) * (C_in / groups) * prod(kernel)`` (dilation and padding do
  not change the count: every tap is one multiply-add, as torch's flop counter counts);
- transposed conv: ``B * C_in * prod(in) * (C_out / groups) * prod(kernel)`` (each input
  element scatters one product per weight tap, cropping included);
- linear: ``prod(output.shape[:-1]) * in_features * out_features``; other layers: none.

Tests check these against ``torch.utils.flop_counter.FlopCounterMode`` (which counts 2
flops per multiply-add). Sizes follow torchinfo: parameters and inputs in their dtype's
bytes, forward/backward = twice the outputs of the layers that hold parameters. Unlike torchinfo, bias
additions and batch-norm are not counted as mult-adds, and transposed convs are counted per
input element (torchinfo multiplies the weight by the output size, which overcounts them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from .._errors import type_error, value_error
from .._shapes import prod
from ._trace import Call, trace

COLUMNS = ("output_size", "num_params", "kernel_size", "mult_adds", "receptive_field", "algorithm")
_HEAD = {"output_size": "Output Shape", "num_params": "Param #", "kernel_size": "Kernel Shape",
         "mult_adds": "Mult-Adds", "receptive_field": "Receptive Field", "algorithm": "Algorithm"}
_LINE = "=" * 40


@dataclass(frozen=True)
class LayerInfo:
    """One row of the table: a module call."""

    name: str
    type: str
    depth: int
    index: int
    output_shape: tuple[int, ...]
    num_params: int | None  # None for a container whose parameters are all in its children
    kernel_size: tuple[int, ...] | None
    mult_adds: int
    receptive_field: tuple[float, ...] | None
    algorithm: str | None
    leaf: bool
    repeat: bool


def _mult_adds(c: Call) -> int:
    m = c.module
    if not c.leaf:
        return 0
    if isinstance(m, torch.nn.modules.conv._ConvNd) and c.geometry is not None:
        w = m.weight.shape
        n = len(w) - 2
        batch = prod(c.input_shape[: len(c.input_shape) - n - 1])
        if m.transposed:
            return batch * prod(c.input_shape[-n - 1:]) * w[1] * prod(w[2:])
        return batch * prod(c.output_shape[-n - 1:]) * w[1] * prod(w[2:])
    if isinstance(m, torch.nn.Linear):
        return prod(c.output_shape[:-1]) * m.in_features * m.out_features
    return 0


def _algorithm(c: Call) -> str | None:
    m = c.module
    if not (c.leaf and isinstance(m, torch.nn.modules.conv._ConvNd)):
        return None
    from ..algorithms.choose import choose_algorithm

    x = torch.empty(c.input_shape, device="meta")
    w = torch.empty(m.weight.shape, device="meta")
    extra: dict[str, Any] = {"output_padding": tuple(m.output_padding)} if m.transposed else {}
    try:
        name = choose_algorithm(x, w, None, tuple(m.stride), m.padding, tuple(m.dilation), m.groups,
                                m.padding_mode, transpose=bool(m.transposed), **extra)
    except Exception:  # noqa: BLE001 - the chooser is informative only
        return None
    return str(name)


class Summary:
    """The result of :func:`summary`: ``str(summary)`` is the table; totals are attributes.

    Attributes:
        layers: one :class:`LayerInfo` per module call (model first, in call order).
        total_params, trainable_params: unique parameters of the model.
        total_mult_adds: sum of the layers' analytic mult-adds.
        input_size: the input shape; input_bytes, params_bytes, pass_bytes: torchinfo's sizes.
    """

    def __init__(self, model: torch.nn.Module, input_size: tuple[int, ...], layers: list[LayerInfo],
                 columns: Sequence[str], dtype: torch.dtype) -> None:
        params = {id(p): p for p in model.parameters()}
        self.model_name = type(model).__name__
        self.input_size = input_size
        self.layers = layers
        self._all = list(layers)  # rows hidden by the depth limit still set the width (torchinfo)
        self.columns = tuple(columns)
        self.total_params = sum(p.numel() for p in params.values())
        self.trainable_params = sum(p.numel() for p in params.values() if p.requires_grad)
        self.total_mult_adds = sum(layer.mult_adds for layer in layers)
        size = torch.empty((), dtype=dtype).element_size()
        self.input_bytes = prod(input_size) * size
        self.params_bytes = sum(p.numel() * p.element_size() for p in params.values())
        # torchinfo's rule: outputs of the layers that hold parameters, twice (values and gradients)
        self.pass_bytes = 2 * size * sum(prod(la.output_shape) for la in layers if la.leaf and la.num_params)

    def _cell(self, layer: LayerInfo, col: str) -> str:
        if col == "output_size":
            return str(list(layer.output_shape)) if layer.output_shape else "--"
        if col == "num_params":
            if layer.repeat and layer.num_params:
                return "(recursive)"
            return "--" if not layer.num_params else f"{layer.num_params:,}"
        if col == "kernel_size":
            k = layer.kernel_size
            return "--" if k is None else (str(k[0]) if len(k) == 1 else str(list(k)))
        if col == "mult_adds":
            return "--" if not layer.mult_adds else f"{layer.mult_adds:,}"
        if col == "receptive_field":
            rf = layer.receptive_field
            return "--" if rf is None else "x".join(f"{v:g}" for v in rf)
        return layer.algorithm or "--"

    def _width(self) -> int:
        """torchinfo's first-column width: 40, or the longest title plus indent rounded up to 5."""
        longest = max((len(f"{la.type}: {la.depth}-{la.index}") + la.depth * 5 + 1 for la in self._all), default=0)
        return 40 if longest < 40 else -(-longest // 5) * 5

    def rows(self) -> list[str]:
        """The table's layer rows (without header and totals)."""
        width = self._width()
        out = []
        for layer in self.layers:
            if layer.depth == 0:
                label = layer.type
            else:
                prefix = "│    " * (layer.depth - 1) + ("└─" if layer.depth > 1 else "├─")
                label = f"{prefix}{layer.type}: {layer.depth}-{layer.index}"
            out.append((f"{label:<{width}}" + "".join(f" {self._cell(layer, c):<25}" for c in self.columns)).rstrip())
        return out

    def __str__(self) -> str:
        width = self._width()
        rule = "=" * (width + 25 * len(self.columns))
        head = (f"{'Layer (type:depth-idx)':<{width}}" + "".join(f" {_HEAD[c]:<25}" for c in self.columns)).rstrip()
        ma = self.total_mult_adds
        unit, scale = ("G", 1e9) if ma >= 1e9 else ("M", 1e6)
        mb = 1e6
        lines = [rule, head, rule, *self.rows(), rule,
                 f"Total params: {self.total_params:,}",
                 f"Trainable params: {self.trainable_params:,}",
                 f"Non-trainable params: {self.total_params - self.trainable_params:,}",
                 f"Total mult-adds ({unit}): {ma / scale:.2f}", rule,
                 f"Input size (MB): {self.input_bytes / mb:.2f}",
                 f"Forward/backward pass size (MB): {self.pass_bytes / mb:.2f}",
                 f"Params size (MB): {self.params_bytes / mb:.2f}",
                 f"Estimated Total Size (MB): {(self.input_bytes + self.pass_bytes + self.params_bytes) / mb:.2f}",
                 rule]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)


def summary(model: torch.nn.Module, input_size: Sequence[int], *, col_names: Sequence[str] = COLUMNS,
            depth: int = 3, algorithms: bool = True, dtype: torch.dtype = torch.float32) -> Summary:
    """Summarise ``model`` on an input of ``input_size``: a torchinfo-style table and totals.

    Columns (``col_names``, any of ``COLUMNS``): output shape, parameter count, kernel shape,
    mult-adds (analytic: see the module docstring), receptive field (size per spatial dim,
    from :func:`anyconv.tools.receptive_field`), and the algorithm ``auto`` chooses for
    each conv layer (``algorithms=False`` skips it). Rows deeper than ``depth`` are hidden
    (totals still count them; a container at the depth limit shows its subtree's parameters
    and mult-adds, as torchinfo does; default 3, torchinfo's). Works on plain torch models.

    Args:
        model: a torch or anyconv model (not modified: a ``meta`` copy runs).
        input_size: the input shape ``(B, C, *spatial)``.

    Examples:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 3, stride=2))
        >>> s = summary(net, (1, 3, 16, 16), col_names=("output_size", "num_params", "mult_adds"))
        >>> s.total_params, s.total_mult_adds
        (516, 69408)
        >>> print("\\n".join(s.rows()))
        Sequential                               [1, 4, 7, 7]              --                        --
        ├─Conv2d: 1-1                            [1, 8, 16, 16]            224                       55,296
        ├─ReLU: 1-2                              [1, 8, 16, 16]            --                        --
        ├─Conv2d: 1-3                            [1, 4, 7, 7]              292                       14,112
    """
    fn = "summary"
    if not isinstance(model, torch.nn.Module):
        type_error(fn, "model", model, "a torch.nn.Module")
    if isinstance(input_size, (str, bytes)) or not isinstance(input_size, Sequence):
        type_error(fn, "input_size", input_size, "a sequence (B, C, *spatial) of positive ints")
    shape = tuple(input_size)
    if len(shape) < 3 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in shape):
        value_error(fn, "input_size", input_size, "a sequence (B, C, *spatial) of positive ints")
    for col in col_names:
        if col not in COLUMNS:
            value_error(fn, "col_names", col_names, "names from " + ", ".join(COLUMNS))
    calls = trace(model, shape)
    counters: dict[int, int] = {}
    layers: list[LayerInfo] = []
    modules: list[torch.nn.Module] = []
    called = {c.key for c in calls}
    listed: set[str] = set()
    for c in calls:
        parts = c.key.split(".") if c.key else []
        for j in range(1, len(parts)):  # a container never called itself (ModuleList): a row of its own
            parent = ".".join(parts[:j])
            if parent not in called and parent not in listed:
                listed.add(parent)
                counters[j] = counters.get(j, 0) + 1
                container = model.get_submodule(parent)
                layers.append(LayerInfo(parent, type(container).__name__, j, counters[j], (), None, None, 0, None,
                                        None, False, False))
                modules.append(container)
        counters[c.depth] = counters.get(c.depth, 0) + 1
        own = sum(p.numel() for p in c.module.parameters(recurse=c.leaf))
        f = c.field
        k = getattr(c.module, "kernel_size", None)
        kernel = None if k is None else (tuple(k) if isinstance(k, (tuple, list)) else (int(k),))
        layers.append(LayerInfo(
            c.name, type(c.module).__name__, c.depth, counters[c.depth], c.output_shape, own or None,
            kernel, _mult_adds(c), None if f is None else tuple(float(v) for v in f.size),
            _algorithm(c) if algorithms and "algorithm" in col_names else None, c.leaf, c.repeat,
        ))
        modules.append(c.module)
    s = Summary(model, shape, layers, col_names, dtype)
    shown = []
    for i, la in enumerate(layers):
        if la.depth > depth:
            continue
        if la.depth == depth and not la.leaf:  # collapsed: its subtree's totals
            sub = [b for b in layers[i + 1:] if b.name.startswith(la.name + ".")]
            own = sum(p.numel() for p in modules[i].parameters())
            la = replace(la, num_params=own or None, mult_adds=sum(b.mult_adds for b in sub))
        shown.append(la)
    s.layers = shown
    return s
