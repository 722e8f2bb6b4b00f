"""OpInfo-style sample and error tables for every op of ``anyconv.functional``.

An :class:`OpSample` records one call: the op's name in ``anyconv.functional``, the shapes of
its tensor arguments, its other arguments, and the reference call that produces the expected
result from the same tensors: torch.nn.functional's op where torch has it (N <= 3, torch's own
argument forms), else an independent reference from ``references.py`` /
``test_pooling_beyond.reference`` (N = 4, asymmetric or string padding, flip, ...). It also
names the ``anyconv.nn`` module taking the same arguments and whether ``anyconv.nn.convert`` of
the same-named torch module applies. An :class:`OpError` records a bad call, the exception type
and the parameter its message must name.

The conv family reuses the case tables of ``samples.py``; pooling, adaptive pooling,
max_unpool and fractional_max_pool live in ``opinfo_pool.py``. ``all_samples()`` and
``all_errors()`` gather both.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from references import ref_conv, ref_conv_transpose, ref_fold, ref_unfold
from samples import (
    CONV_ERRORS,
    CONV_T_ERRORS,
    FOLD_ERRORS,
    UNFOLD_ERRORS,
    Sample,
    conv_samples,
    conv_transpose_samples,
    unfold_samples,
)

Ref = Callable[..., Any]


@dataclass(frozen=True)
class OpSample:
    """One call of ``anyconv.functional.<op>(*tensors, *args, **kwargs)`` and its reference.

    ``ref(*tensors)`` gives the expected output (a tuple for ``return_indices``);
    ``ref_differentiable`` says whether torch's autograd can differentiate it. ``module`` is
    ``(anyconv.nn class name, ctor args, ctor kwargs, forward kwargs)`` or None;
    ``torch_module``: torch.nn has the same class taking the same arguments (so
    ``anyconv.nn.convert`` applies). ``conv_like``: served by every conv algorithm.
    ``positive``: inputs are drawn in (0.1, 1.1) (lp pooling with fractional powers).
    """

    op: str
    name: str
    n: int
    batched: bool
    shapes: tuple[tuple[int, ...], ...]
    ref: Ref = field(compare=False)
    ref_name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict, compare=False)
    ref_differentiable: bool = True
    module: tuple[str, tuple[Any, ...], dict[str, Any], dict[str, Any]] | None = field(default=None, compare=False)
    torch_module: bool = False
    conv_like: bool = False
    positive: bool = False
    nograd: tuple[int, ...] = ()  # tensors not differentiated (indices, random samples)
    make: Callable[[torch.Tensor], tuple[torch.Tensor, ...]] | None = field(default=None, compare=False)
    keyword_tensors: tuple[str, ...] = ()  # names of the last tensors, passed by keyword

    @property
    def id(self) -> str:
        return f"{self.op}-{self.name}-{self.n}d-{'b' if self.batched else 'u'}"

    def tensors(self, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, ...]:
        """Deterministic tensors for this sample (drawn in float64 from the id's CRC, then cast)."""
        gen = torch.Generator().manual_seed(zlib.crc32(self.id.encode()))
        out = []
        for shape in self.shapes:
            t = torch.randn(shape, generator=gen, dtype=torch.float64)
            if self.positive:
                t = torch.rand(shape, generator=gen, dtype=torch.float64) + 0.1
            out.append(t.to(dtype))
        return self.make(out[0]) if self.make is not None else tuple(out)

    def call(self, fn: Callable[..., Any], tensors: tuple[torch.Tensor, ...], **extra: Any) -> Any:
        """``fn(*tensors, *args, **kwargs, **extra)`` (``keyword_tensors`` by name)."""
        m = len(tensors) - len(self.keyword_tensors)
        named = dict(zip(self.keyword_tensors, tensors[m:]))
        return fn(*tensors[:m], *self.args, **{**self.kwargs, **named, **extra})


def first(out: Any) -> torch.Tensor:
    """The values of an op's result (the first element of a (values, indices) pair)."""
    return out[0] if isinstance(out, tuple) else out


# ------------------------------------------------------------------------------ conv family
def _torch_padding(padding: Any) -> bool:
    """Whether torch's functional conv takes this padding as it is."""
    if isinstance(padding, int) or padding == "valid":
        return True
    return isinstance(padding, tuple) and all(isinstance(p, int) for p in padding)


def _conv_sample(s: Sample, op: str) -> OpSample:
    kw = dict(s.kwargs)
    n = s.n
    pad = kw.get("padding", 0)
    stride = kw.get("stride", 1)
    torch_form = (n <= 3 and not kw.get("flip", False) and kw.get("padding_mode", "zeros") == "zeros"
                  and (_torch_padding(pad) or (pad == "same" and stride in (1, (1,) * n))))
    shapes = (s.input_shape, s.weight_shape) + ((s.bias_shape,) if s.bias_shape else ())
    if torch_form:
        ref: Ref = functools.partial(getattr(F, f"conv{n}d"), **kw)
        name = f"torch.nn.functional.conv{n}d"
    else:
        ref = functools.partial(ref_conv, **kw)
        name = "references.ref_conv"
    module = None
    if not kw.get("flip", False):
        ctor = {k: v for k, v in kw.items() if k != "flip"}
        ctor["bias"] = s.bias_shape is not None
        cls = f"Conv{n}d" if n <= 3 else "ConvNd"
        module = (cls, (s.weight_shape[1] * kw.get("groups", 1), s.weight_shape[0], s.weight_shape[2:]), ctor, {})
    args: tuple[Any, ...] = ()
    if op != "conv":  # the alias, positionally as torch: (stride, padding, dilation, groups)
        args = tuple(kw.pop(k, d) for k, d in (("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1)))
        shapes = shapes if len(shapes) == 3 else shapes + ((s.weight_shape[0],),)  # bias positional
    return OpSample(op, s.name, n, s.batched, shapes, ref, name, args, kw, module=module,
                    torch_module=torch_form, conv_like=True)


def _conv_t_sample(s: Sample, op: str) -> OpSample:
    kw = dict(s.kwargs)
    n = s.n
    pad = kw.get("padding", 0)
    out_size = kw.get("output_size")
    torch_form = n <= 3 and _torch_padding(pad) and pad != "valid"
    shapes = (s.input_shape, s.weight_shape) + ((s.bias_shape,) if s.bias_shape else ())
    if torch_form and out_size is None:
        ref: Ref = functools.partial(getattr(F, f"conv_transpose{n}d"), **kw)
        name = f"torch.nn.functional.conv_transpose{n}d"
    else:
        ref = functools.partial(ref_conv_transpose, **kw)
        name = "references.ref_conv_transpose"
    ctor = {k: v for k, v in kw.items() if k != "output_size"}
    ctor["bias"] = s.bias_shape is not None
    groups = kw.get("groups", 1)
    cls = f"ConvTranspose{n}d" if n <= 3 else "ConvTransposeNd"
    fwd = {"output_size": out_size} if out_size is not None else {}
    module = (cls, (s.weight_shape[0], s.weight_shape[1] * groups, s.weight_shape[2:]), ctor, fwd)
    args: tuple[Any, ...] = ()
    if op != "conv_transpose":  # torch's positional order: stride, padding, output_padding, groups, dilation
        order = ("stride", "padding", "output_padding", "groups", "dilation")
        defaults = {"stride": 1, "padding": 0, "output_padding": 0, "groups": 1, "dilation": 1}
        args = tuple(kw.pop(k, defaults[k]) for k in order)
        shapes = shapes if len(shapes) == 3 else shapes + ((s.weight_shape[1] * groups,),)
    return OpSample(op, s.name, n, s.batched, shapes, ref, name, args, kw, module=module,
                    torch_module=torch_form, conv_like=True)


def conv_family_samples() -> Iterator[OpSample]:
    """conv / conv_transpose for N = 1..4, and the torch-named aliases for N = 1..3."""
    for s in conv_samples():
        yield _conv_sample(s, "conv")
        if s.n <= 3 and not s.kwargs.get("flip") and s.kwargs.get("padding_mode", "zeros") == "zeros":
            yield _conv_sample(s, f"conv{s.n}d")
    for s in conv_transpose_samples():
        yield _conv_t_sample(s, "conv_transpose")
        if s.n <= 3 and "output_size" not in s.kwargs:
            yield _conv_t_sample(s, f"conv_transpose{s.n}d")


# ------------------------------------------------------------------------------- unfold / fold
def _batched_ref(fn: Ref, batched: bool) -> Ref:
    def ref(x: torch.Tensor) -> torch.Tensor:
        return fn(x) if batched else fn(x.unsqueeze(0)).squeeze(0)

    return ref


def fold_samples() -> Iterator[OpSample]:
    """unfold (N = 1..4) and fold of the matching blocks; torch's for N = 2 with int padding."""
    for sid, n, batched, shape, kw in unfold_samples():
        name = sid.split("-")[1]
        torch_form = n == 2 and _torch_padding(kw.get("padding", 0))
        k = {key: v for key, v in kw.items()}
        ref: Ref
        if torch_form:
            ref, rname = (lambda x, _k=k: F.unfold(x, **_k)), "torch.nn.functional.unfold"
        else:
            ref, rname = _batched_ref(lambda x, _k=k: ref_unfold(x, **_k), batched), "references.ref_unfold"
        ctor = {key: v for key, v in k.items() if key != "kernel_size"}
        yield OpSample("unfold", name, n, batched, (shape,), ref, rname, (), k,
                       module=("Unfold", (k["kernel_size"],), ctor, {}), torch_module=torch_form)
        blocks = tuple(ref_unfold(torch.zeros((1, *shape[-n - 1:])), **k).shape[1:])
        fshape = ((shape[0],) if batched else ()) + blocks
        fk = {"output_size": shape[-n:], **k}
        if torch_form:
            fref, fname = (lambda x, _k=fk: F.fold(x, **_k)), "torch.nn.functional.fold"
        else:
            fref, fname = _batched_ref(lambda x, _k=fk: ref_fold(x, **_k), batched), "references.ref_fold"
        yield OpSample("fold", name, n, batched, (fshape,), fref, fname, (), fk,
                       module=("Fold", (shape[-n:], k["kernel_size"]), ctor, {}), torch_module=torch_form)


# ------------------------------------------------------------------------------------ gathering
@dataclass(frozen=True)
class OpError:
    """A bad call: ``anyconv.functional.<op>(**kwargs)`` raises ``exc`` naming ``param``."""

    op: str
    name: str
    kwargs: dict[str, Any] = field(compare=False)
    exc: type[Exception]
    param: str

    @property
    def id(self) -> str:
        return f"{self.op}-{self.name}"


def _from_table(op: str, rows: list[tuple[str, dict[str, Any], type[Exception], str]]) -> Iterator[OpError]:
    import re

    for name, kwargs, exc, regex in rows:
        named = re.search(r"`(\w+)`", regex.replace("\\", ""))
        yield OpError(op, name, kwargs, exc, named.group(1) if named else "")


def all_samples() -> list[OpSample]:
    """Every sample of every op (the pooling ops from ``opinfo_pool``)."""
    from opinfo_pool import pool_samples

    return [*conv_family_samples(), *fold_samples(), *pool_samples()]


def all_errors() -> list[OpError]:
    """Every error row: the conv-family tables of ``samples.py`` and the pooling table."""
    from opinfo_pool import POOL_ERRORS

    return [*_from_table("conv", CONV_ERRORS), *_from_table("conv_transpose", CONV_T_ERRORS),
            *_from_table("unfold", UNFOLD_ERRORS), *_from_table("fold", FOLD_ERRORS), *POOL_ERRORS]
