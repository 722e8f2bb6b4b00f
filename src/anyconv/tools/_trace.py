"""Run a model once on shapes only and record every leaf-module call and receptive fields.

The model is copied to the ``meta`` device (no arithmetic, no memory) and run on an input of
the given shape; if that fails (a model that needs real data), the real model is run on
zeros under ``torch.no_grad()``. Forward hooks record each leaf module's input/output
shapes; conv, transposed-conv and pooling modules are resolved through the ops' own front
door (:func:`anyconv.tools.shapes.explain_shape`) into their geometry. A
``TorchFunctionMode`` follows a receptive field on every tensor, also through functional
code between modules (residual adds, concatenations): an op whose output keeps the spatial
shape of its inputs gets the union of their fields; one that changes it (flatten, linear,
interpolate) loses the field (``None``, shown as "-").
"""

from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from . import _fields
from ._fields import Field
from .shapes import ShapeInfo, explain_shape

_POOL_KINDS = {"MaxPool": "max_pool", "AvgPool": "avg_pool", "LPPool": "lp_pool",
               "AdaptiveAvgPool": "adaptive_avg_pool", "AdaptiveMaxPool": "adaptive_max_pool"}


@dataclass
class Call:
    """One leaf-module call: name, module, input/output shapes, geometry and fields."""

    name: str
    module: torch.nn.Module
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    geometry: ShapeInfo | None = None
    field: Field | None = None
    key: str = ""  # the module's name in model.named_modules()
    depth: int = 0  # 0 for the model itself
    leaf: bool = True
    repeat: bool = False  # a module called again (shared weights)
    output_bytes: int = 0  # the first output's numel * element size (torchinfo's pass-size unit)


def geometry(m: torch.nn.Module, input_shape: Sequence[int]) -> ShapeInfo | None:
    """Conv / conv-transpose / pooling geometry of module ``m`` on ``input_shape`` (else None)."""
    if isinstance(m, torch.nn.modules.conv._ConvNd):
        p: dict[str, Any] = dict(weight_shape=tuple(m.weight.shape), stride=tuple(m.stride), padding=m.padding,
                                 dilation=tuple(m.dilation), groups=m.groups)
        if m.transposed:
            p["output_padding"] = tuple(m.output_padding)
            return explain_shape("conv_transpose", input_shape, **p)
        if m.padding_mode != "zeros":
            p["padding_mode"] = m.padding_mode
        return explain_shape("conv", input_shape, **p)
    unpool = module_geometry(m, input_shape)  # MaxUnpool*, FractionalMaxPool*
    if unpool is not None:
        return unpool
    for cls in type(m).__mro__:
        match = re.fullmatch(r"(AdaptiveAvgPool|AdaptiveMaxPool|MaxPool|AvgPool|LPPool)([1-9]|N)d", cls.__name__)
        if match:
            nd = match.group(2)
            op = _POOL_KINDS[match.group(1)] + ("" if nd == "N" else f"{nd}d")
            a: Any = m
            if match.group(1).startswith("Adaptive"):
                return explain_shape(op, input_shape, output_size=a.output_size)
            q: dict[str, Any] = dict(kernel_size=a.kernel_size, stride=a.stride, ceil_mode=a.ceil_mode,
                                     padding=getattr(a, "padding", 0))
            if hasattr(a, "dilation"):
                q["dilation"] = a.dilation
            if match.group(1) == "LPPool":
                q["norm_type"] = a.norm_type
            return explain_shape(op, input_shape, **q)
    return None


def _tensors(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


class _Tracer(TorchFunctionMode):
    """Carries receptive fields from tensors to tensors through every torch function."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.fields: dict[int, tuple[torch.Tensor, Field | None]] = {}
        self.inside = 0

    def get(self, t: torch.Tensor) -> Field | None:
        entry = self.fields.get(id(t))
        return entry[1] if entry is not None and entry[0] is t else None

    def has(self, t: torch.Tensor) -> bool:
        entry = self.fields.get(id(t))
        return entry is not None and entry[0] is t

    def put(self, t: torch.Tensor, f: Field | None) -> None:
        self.fields[id(t)] = (t, f)

    def propagate(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor]) -> None:
        known = [t for t in inputs if self.has(t)]
        if not known:
            return
        for out in outputs:
            same = [self.get(t) for t in known if t.dim() == out.dim() and t.shape[-self.n:] == out.shape[-self.n:]]
            if len(same) == len(known) and all(f is not None for f in same):
                self.put(out, _fields.union([f for f in same if f is not None]))
            else:
                self.put(out, None)

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if self.inside == 0:
            self.propagate(_tensors((args, kwargs)), _tensors(out))
        return out


def _leaf(m: torch.nn.Module) -> bool:
    return not any(True for _ in m.children())


def _meta_memo(model: torch.nn.Module) -> dict[int, Any]:
    """A ``deepcopy`` memo that copies each parameter and buffer as a ``meta`` tensor (no data copied)."""
    memo: dict[int, Any] = {}
    for p in model.parameters():
        memo[id(p)] = torch.nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
    for b in model.buffers():
        memo[id(b)] = torch.empty_like(b, device="meta")
    return memo


def trace(model: torch.nn.Module, input_shape: Sequence[int], device: str = "meta", *,
          fn: str = "summary", param: str = "input_size") -> list[Call]:
    """Run ``model`` once on an input of ``input_shape``; every module call, in entry order.

    Containers are listed before their children (``Call.leaf`` tells them apart). With
    ``device="meta"`` a meta copy of the model runs first (real run as fallback). Both run
    in eval mode (batch statistics of batch 1 would fail); the model is left unchanged.
    """
    shape = tuple(int(v) for v in input_shape)
    if device == "meta":
        try:
            meta = copy.deepcopy(model, _meta_memo(model)).to("meta").eval()
        except Exception:  # noqa: BLE001 - not copyable: run the real model
            meta = None
        if meta is not None:
            try:
                calls = _run(meta, shape, "meta")
                originals = dict(model.named_modules())
                for c in calls:
                    c.module = originals.get(c.key, c.module)
                return calls
            except Exception:  # noqa: BLE001 - a model that needs real data: run it for real
                pass
    # the real model, in eval mode (no batch-norm statistics updated), modes restored after
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        return _run(model, shape, "cpu")
    except Exception as e:  # noqa: BLE001 - the model refuses this input: say so in one line
        first = (str(e).strip().splitlines() or [""])[0]
        raise ValueError(f"{fn}: `{param}` must be a shape the model accepts (it raised "
                         f"{type(e).__name__}: {first}); got {param}={shape}") from e
    finally:
        for m, mode in modes.items():
            m.training = mode


def _run(model: torch.nn.Module, shape: tuple[int, ...], device: str) -> list[Call]:
    n = len(shape) - 2
    tracer = _Tracer(n)
    calls: list[Call] = []
    stack: list[tuple[Call, list[torch.Tensor]]] = []
    names = {id(m): name for name, m in model.named_modules()}
    seen: dict[str, int] = {}

    def pre(m: torch.nn.Module, args: Any) -> None:
        key = names.get(id(m), "")
        seen[key] = seen.get(key, 0) + 1
        inputs = _tensors(args)
        label = key or type(m).__name__
        c = Call(label if seen[key] == 1 else f"{label}#{seen[key]}", m, tuple(inputs[0].shape) if inputs else (), ())
        c.key, c.depth, c.leaf, c.repeat = key, (key.count(".") + 1 if key else 0), _leaf(m), seen[key] > 1
        calls.append(c)
        stack.append((c, inputs))
        if c.leaf:
            tracer.inside += 1

    def post(m: torch.nn.Module, args: Any, out: Any) -> None:
        c, inputs = stack.pop()
        outs = _tensors(out)
        c.output_shape = tuple(outs[0].shape) if outs else ()
        c.output_bytes = outs[0].numel() * outs[0].element_size() if outs else 0
        if not c.leaf:
            c.field = tracer.get(outs[0]) if outs else None
            return
        tracer.inside -= 1
        x = inputs[0] if inputs else None
        in_field = tracer.get(x) if x is not None else None
        c.geometry = geometry(m, tuple(x.shape)) if x is not None else None
        if c.geometry is not None and in_field is not None and outs:
            tracer.put(outs[0], _fields.apply(in_field, c.geometry))
            for o in outs[1:]:
                tracer.put(o, None)
        else:
            tracer.propagate(inputs, outs)
        c.field = tracer.get(outs[0]) if outs else None

    handles = []
    for m in model.modules():
        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.get_default_dtype())
    x = torch.zeros(shape, device=device, dtype=dtype)
    try:
        with torch.no_grad(), tracer, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on its own kernels, irrelevant for shapes
            tracer.put(x, _fields.identity(n))
            model(x)
    finally:
        for h in handles:
            h.remove()
    return calls


def module_geometry(m: torch.nn.Module, input_shape: Sequence[int]) -> ShapeInfo | None:
    """Geometry of a MaxUnpool* / FractionalMaxPool* module (torch's or anyconv's), else None.

    Examples:
        >>> module_geometry(torch.nn.MaxUnpool2d(2), (1, 3, 4, 4)).output_shape
        (1, 3, 8, 8)
    """
    for cls in type(m).__mro__:
        match = re.fullmatch(r"(MaxUnpool|FractionalMaxPool)([1-9]|N)d", cls.__name__)
        if match:
            a: Any = m
            nd = match.group(2)
            if match.group(1) == "MaxUnpool":
                op = "max_unpool" + ("" if nd == "N" else f"{nd}d")
                return explain_shape(op, input_shape, kernel_size=a.kernel_size, stride=a.stride, padding=a.padding)
            op = "fractional_max_pool" + ("" if nd == "N" else f"{nd}d")
            return explain_shape(op, input_shape, kernel_size=a.kernel_size, output_size=a.output_size,
                                 output_ratio=a.output_ratio)
    return None
