"""``anyconv.summary``: torchinfo 1.8.0's table and totals, plus receptive field and algorithm.

The model runs once on shapes only (``meta`` tensors; see ``tools/_trace.py``). Every number
torchinfo prints is computed by torchinfo's rules, so the totals equal ``torchinfo.summary``'s
on the same model and input:

- parameters: every parameter once (a module called again is "(recursive)"); a layer whose
  parameters are all frozen shows its count in parentheses;
- mult-adds: torchinfo's rule per leaf-module call (``tools/_mult_adds.py``: bias and
  batch-norm included); ``total_mult_adds`` is torchinfo's total;
- sizes: input = the input tensor's ``sys.getsizeof(storage)`` (its bytes plus the storage
  object's 64), forward/backward = twice the outputs of the leaf calls holding parameters,
  params = the parameters' bytes (torchinfo leaves out parameters held directly by a
  container; they are counted here).

Where torchinfo's mult-add rule miscounts (transposed convs, ``Linear`` on more than 2 dims,
normalization layers), the row shows the true count marked ``*``, the footer gives
``true_mult_adds`` beside torchinfo's total and says why.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from ..core.errors import type_error, value_error
from ..core.shapes import prod
from . import _table
from ._mult_adds import REASONS, torchinfo_mult_adds, true_mult_adds
from ._trace import Call, trace

COLUMNS = ("output_size", "num_params", "kernel_size", "mult_adds", "receptive_field", "algorithm")
DEFAULT_COLUMNS = ("output_size", "num_params", "mult_adds", "receptive_field", "algorithm")
_HEAD = {"output_size": "Output Shape", "num_params": "Param #", "kernel_size": "Kernel Shape",
         "mult_adds": "Mult-Adds", "receptive_field": "Receptive Field", "algorithm": "Algorithm"}


@dataclass(frozen=True)
class LayerInfo:
    """One row of the table: a module call (or a container that was never called itself).

    ``mult_adds`` is torchinfo's count, ``true_mult_adds`` the true one and ``note`` the
    reason they differ (a key of ``_mult_adds.REASONS``) or None.
    """

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
    trainable_params: int = 0
    true_mult_adds: int = 0
    note: str | None = None
    output_bytes: int = 0


def _algorithm(c: Call) -> str | None:
    m = c.module
    if not (c.leaf and isinstance(m, torch.nn.modules.conv._ConvNd)):
        return None
    from .choose import choose_algorithm

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
        layers: one :class:`LayerInfo` per row shown (model first, in call order).
        total_params, trainable_params: the model's parameters, each once (torchinfo's).
        total_mult_adds: torchinfo's total mult-adds (its rule per layer, bias included).
        true_mult_adds: the true total (equal unless a row is marked ``*``).
        input_bytes, pass_bytes, params_bytes, total_bytes: torchinfo's four sizes in bytes.
    """

    def __init__(self, model: torch.nn.Module, input_size: tuple[int, ...], layers: list[LayerInfo],
                 dtype: torch.dtype, layout: dict[str, Any]) -> None:
        params = {id(p): p for p in model.parameters()}
        self.model_name = type(model).__name__
        self.input_size = input_size
        self.layers = layers
        self._all = list(layers)  # rows hidden by the depth limit still set the width (torchinfo)
        self._layout = layout
        self.columns = tuple(layout["columns"])
        self.total_params = sum(p.numel() for p in params.values())
        self.trainable_params = sum(p.numel() for p in params.values() if p.requires_grad)
        leaves = [la for la in layers if la.leaf]
        self.total_mult_adds = sum(la.mult_adds for la in leaves)
        self.true_mult_adds = sum(la.true_mult_adds for la in leaves)
        self.notes = tuple(dict.fromkeys(la.note for la in leaves if la.note))
        size = torch.empty((), dtype=dtype).element_size()
        storage = sys.getsizeof(torch.empty(0, dtype=dtype).untyped_storage())  # torchinfo: getsizeof(storage)
        self.input_bytes = prod(input_size) * size + storage
        self.params_bytes = sum(p.numel() * p.element_size() for p in params.values())
        self.pass_bytes = 2 * sum(la.output_bytes for la in leaves if la.num_params)  # values and gradients
        self.total_bytes = self.input_bytes + self.pass_bytes + self.params_bytes

    def _cell(self, layer: LayerInfo, col: str) -> str:
        if col == "output_size":
            return str(list(layer.output_shape)) if layer.output_shape else "--"
        if col == "num_params":
            if not layer.num_params:
                return "--"
            if layer.repeat:
                return "(recursive)"
            frozen = (layer.leaf or layer.depth == self._layout["depth"]) and not layer.trainable_params
            return f"({layer.num_params:,})" if frozen else f"{layer.num_params:,}"
        if col == "kernel_size":
            k = layer.kernel_size
            return "--" if k is None else (str(k[0]) if len(k) == 1 else str(list(k)))
        if col == "mult_adds":
            if layer.note:
                return f"{layer.true_mult_adds:,}*"
            return "--" if not layer.mult_adds else f"{layer.mult_adds:,}"
        if col == "receptive_field":
            rf = layer.receptive_field
            return "--" if rf is None else "x".join(f"{v:g}" for v in rf)
        return layer.algorithm or "--"

    def _table(self) -> tuple[list[str], str, list[str]]:
        def title(la: LayerInfo) -> tuple[int, str]:
            return la.depth, (la.type if la.depth == 0 else f"{la.type}: {la.depth}-{la.index}")

        shown = {id(la) for la in self.layers}
        return _table.fit([title(la) for la in self.layers], list(self.columns), _HEAD,
                          [{c: self._cell(la, c) for c in self.columns} for la in self.layers],
                          col_width=self._layout["col_width"], max_width=self._layout["max_width"],
                          wide=self._layout["wide"], hidden=[title(la) for la in self._all if id(la) not in shown])

    def rows(self) -> list[str]:
        """The table's layer rows (without header and totals)."""
        return self._table()[0][1:]

    def __str__(self) -> str:
        lines, rule, dropped = self._table()
        mb = 1e6
        out = [rule, lines[0], rule, *lines[1:], rule,
               f"Total params{_table.readable(self.total_params, False)}",
               f"Trainable params{_table.readable(self.trainable_params, False)}",
               f"Non-trainable params{_table.readable(self.total_params - self.trainable_params, False)}",
               f"Total mult-adds{_table.readable(self.total_mult_adds, True)}"]
        if self.notes:
            out.append(f"True mult-adds{_table.readable(self.true_mult_adds, True)} (rows marked * show the true "
                       "count; torchinfo's rule differs for:)")
            out += [f"  * {REASONS[n]}" for n in self.notes]
        out += [rule, f"Input size (MB): {self.input_bytes / mb:.2f}",
                f"Forward/backward pass size (MB): {self.pass_bytes / mb:.2f}",
                f"Params size (MB): {self.params_bytes / mb:.2f}",
                f"Estimated Total Size (MB): {self.total_bytes / mb:.2f}", rule]
        if dropped:
            out.append(f"({', '.join(dropped)} not shown: over {self._layout['max_width']} characters; "
                       "wide=True shows every column)")
        limit = None if self._layout["wide"] else self._layout["max_width"]
        return "\n".join(part for line in out for part in
                         (textwrap.wrap(line, limit, subsequent_indent="    ") if limit and len(line) > limit else [line]))

    def __repr__(self) -> str:
        return str(self)


def _rows(model: torch.nn.Module, calls: list[Call], algorithms: bool) -> tuple[list[LayerInfo], list[torch.nn.Module]]:
    """One record per call, plus a row for a container never called itself (a ModuleList) each
    time the calls enter it again (torchinfo's rows; it numbers all of them as the last one)."""
    counters: dict[int, int] = {}
    layers: list[LayerInfo] = []
    modules: list[torch.nn.Module] = []
    called = {c.key for c in calls}
    listed: set[str] = set()
    current: dict[int, str] = {}  # depth -> the row the next rows sit under
    for c in calls:
        parts = c.key.split(".") if c.key else []
        for j in range(1, len(parts)):
            parent = ".".join(parts[:j])
            if parent not in called and current.get(j) != parent:
                counters[j] = counters.get(j, 0) + 1
                container = model.get_submodule(parent)
                layers.append(LayerInfo(parent, type(container).__name__, j, counters[j], (), None, None, 0, None,
                                        None, False, parent in listed))
                modules.append(container)
                listed.add(parent)
                current[j] = parent
        current = {d: k for d, k in current.items() if d < c.depth} | {c.depth: c.key}
        counters[c.depth] = counters.get(c.depth, 0) + 1
        own = list(c.module.parameters(recurse=c.leaf))
        f = c.field
        k = getattr(c.module, "kernel_size", None)
        kernel = None if k is None else (tuple(k) if isinstance(k, (tuple, list)) else (int(k),))
        macs = torchinfo_mult_adds(c.module, c.output_shape) if c.leaf and c.output_shape else 0
        true, note = true_mult_adds(c.module, c.input_shape, c.output_shape, macs) if macs else (0, None)
        layers.append(LayerInfo(
            c.name, type(c.module).__name__, c.depth, counters[c.depth], c.output_shape,
            sum(p.numel() for p in own) or None, kernel, macs,
            None if f is None else tuple(float(v) for v in f.size), _algorithm(c) if algorithms else None,
            c.leaf, c.repeat, sum(p.numel() for p in own if p.requires_grad), true, note, c.output_bytes,
        ))
        modules.append(c.module)
    return layers, modules


def summary(model: torch.nn.Module, input_size: Sequence[int], *, col_names: Sequence[str] | None = None,
            depth: int = 3, extras: bool = True, algorithms: bool = True, col_width: int | None = None,
            max_width: int | None = 100, wide: bool = False, dtype: torch.dtype = torch.float32) -> Summary:
    """Summarise ``model`` on an input of ``input_size``: torchinfo's table and totals, and more.

    Columns (``col_names``, any of ``COLUMNS``; default ``DEFAULT_COLUMNS``): output shape,
    parameter count, kernel shape, mult-adds (torchinfo's count; a row marked ``*`` shows
    the true count where torchinfo's rule is wrong: see the module docstring), receptive
    field (size per spatial dim, as :func:`anyconv.tools.receptive_field`), and the
    algorithm ``auto`` chooses for each conv layer. The last two are anyconv's own:
    ``extras=False`` removes them (torchinfo's columns only); ``algorithms=False`` skips
    the chooser. Rows deeper than ``depth`` are hidden (totals still count them; a
    container at the depth limit shows its subtree's parameters and mult-adds, as
    torchinfo does; default 3, torchinfo's).

    Layout: by default each column is as wide as its widest cell and no line is longer
    than ``max_width`` (100; ``None``: no limit): when the table would be wider, the
    algorithm and then the receptive-field column are left out (a last line says so),
    then long layer labels are shortened. ``col_width=n`` gives every data column width
    ``n``. ``wide=True`` is torchinfo's own layout (layer column at least 40, data columns
    ``col_width`` or 25 wide, no width limit).

    Args:
        model: a torch or anyconv model (not modified: a ``meta`` copy runs).
        input_size: the input shape ``(B, C, *spatial)``.

    Raises:
        TypeError: ``model`` is not a module, ``input_size`` not a sequence.
        ValueError: a bad size, column name, ``depth``, ``col_width`` or ``max_width``, or an
            input the model refuses.

    Examples:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 3, stride=2))
        >>> s = summary(net, (1, 3, 16, 16), col_names=("output_size", "num_params", "mult_adds"))
        >>> s.total_params, s.total_mult_adds  # 55,296 + 8 * 256 bias adds, 14,112 + 4 * 49
        (516, 71652)
        >>> print("\\n".join(s.rows()))
        Sequential              [1, 4, 7, 7]   --      --
        ├─Conv2d: 1-1           [1, 8, 16, 16] 224     57,344
        ├─ReLU: 1-2             [1, 8, 16, 16] --      --
        ├─Conv2d: 1-3           [1, 4, 7, 7]   292     14,308
        >>> max(len(line) for line in str(summary(net, (1, 3, 16, 16))).splitlines()) <= 100
        True
    """
    fn = "summary"
    if not isinstance(model, torch.nn.Module):
        type_error(fn, "model", model, "a torch.nn.Module")
    if isinstance(input_size, (str, bytes)) or not isinstance(input_size, Sequence):
        type_error(fn, "input_size", input_size, "a sequence (B, C, *spatial) of positive ints")
    shape = tuple(input_size)
    if len(shape) < 3 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in shape):
        value_error(fn, "input_size", input_size, "a sequence (B, C, *spatial) of positive ints")
    names = tuple(DEFAULT_COLUMNS if col_names is None else col_names)
    if isinstance(col_names, str) or any(col not in COLUMNS for col in names):
        value_error(fn, "col_names", col_names, "names from " + ", ".join(COLUMNS))
    for key, value, low in (("depth", depth, 0), ("col_width", col_width, 1), ("max_width", max_width, 40)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            value_error(fn, key, value, f"an int >= {low}" + ("" if key == "depth" else " or None"))
    if not extras:
        names = tuple(c for c in names if c not in _table.EXTRAS)
    calls = trace(model, shape)
    layers, modules = _rows(model, calls, algorithms and "algorithm" in names)
    s = Summary(model, shape, layers, dtype, {"columns": names, "col_width": col_width, "max_width": max_width,
                                              "wide": wide, "depth": depth})
    shown = []
    for i, la in enumerate(layers):
        if la.depth > depth:
            continue
        if la.depth == depth and not la.leaf:  # collapsed: its subtree's totals
            sub = [b for b in layers[i + 1:] if b.name.startswith(la.name + ".") and b.leaf]
            params = list(modules[i].parameters())
            notes = [b.note for b in sub if b.note]
            la = replace(la, num_params=sum(p.numel() for p in params) or None, mult_adds=sum(b.mult_adds for b in sub),
                         trainable_params=sum(p.numel() for p in params if p.requires_grad),
                         true_mult_adds=sum(b.true_mult_adds for b in sub), note=notes[0] if notes else None)
        shown.append(la)
    s.layers = shown
    return s
