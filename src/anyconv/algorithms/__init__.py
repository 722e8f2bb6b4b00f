"""The algorithm registry for the core op (grouped N-d cross-correlation, zero padding).

Each algorithm is one module with:

- ``NAME``: its registry name;
- ``supports(x, w, spec) -> str | None``: ``None`` if it can serve the call, else the reason;
- ``forward(x, w, spec) -> Tensor``: the correlation of ``x`` ``(B, C, *spatial)`` with ``w``
  ``(O, C // groups, *kernel)`` under ``spec`` (a :class:`anyconv.core.spec.CorrSpec`), no bias.
- its cost model, read by ``auto``: ``cost_features(x, w, spec) -> dict[str, float]`` (named
  per-call features, shapes only: meta tensors work; the coefficients per name are in
  ``coefficients.json`` or this machine's profile), ``ERROR_GROWTH`` (its normwise relative error in
  units of ``u``, 0.0 for a summation algorithm) or ``error_growth(x, w, spec)``, and
  ``COMPUTE_DTYPE`` (``compute_dtype(dtype) -> dtype``, or None: the input's dtype).

Algorithms see only canonical arguments: batched input, zero padding pairs, per-dim tuples.
They never track gradients: the autograd rules in ``algorithms/_adjoints.py`` call them.
Adding an algorithm is one new file plus its name in ``anyconv/core/names.py``.

**Variants** (``_VARIANTS``) are the other ways of computing one of the three core operators
(``corr``, its input gradient ``corr_t``, its weight gradient ``corr_w``) as a whole: the small-call
GEMM, polyphase's transposed forms, native's transposed kernel... Each is a module with ``NAME``,
``OP`` (the operator it serves), ``supports(x, w, spec)`` (``x`` and ``w``: the operands of the
forward correlation the operator belongs to, stand-ins for the one it does not read),
``serve(x, w, spec, g, bias)`` and the chooser's ``cost_features``/``ERROR_GROWTH``/``COMPUTE_DTYPE``.
:func:`run` with ``form=`` the operator is the one dispatch of an operator call (see
:mod:`.variants`); ``variants.route`` tries the variants in a fixed order by their ``supports``, then ``auto.choose`` picks the registry algorithm (``variants.choose_op`` reports the whole choice).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Any, Protocol

import torch

from ..core.names import ALGORITHMS
from ..core.spec import CorrSpec


class Algorithm(Protocol):
    """What every algorithm module provides."""

    NAME: str

    def supports(self, x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> str | None: ...

    def forward(self, x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor: ...


# name -> module path (relative to this package): each algorithm is the module of its name, listed,
# in order of preference for documentation, in ``core/names.py`` (the front door validates names there)
_MODULES = {name: f".{name}" for name in ALGORITHMS}
_LOADED: dict[str, Algorithm] = {}
# variant name -> module path: whole-operator computations, tried by ``variants.route`` only
_VARIANTS = {
    "small": ".small",
    "small_t": ".small_t",
    "col2im_t": ".col2im_t",
    "patches_t": ".patches_t",
    "phases_col2im_t": ".phases_col2im_t",
    "native_t": ".native_t",
    "phases_t": ".phases_t",
    "small_w": ".small_w",
    "native_w": ".native_w",
    "gemm_w": ".gemm_w",
    "wino_w": ".wino_w",
    "gemm_t": ".gemm_t",
    "dot_w": ".dot_w",
}
# named algorithms that may misplace NaN/Inf (``auto.hazard``; fft's and winograd's results are checked in ``run``)
_HAZARDOUS = ("positions", "depthwise", "matrix", "native")
# per-thread recorder of core calls (``choose.core_calls`` traces a call on meta tensors): set
# in one thread, it never sees or answers another thread's convolutions
_TRACE = threading.local()
Recorder = Callable[[str, str, torch.Tensor, torch.Tensor, CorrSpec, bool, str | None], torch.Tensor]


def names() -> tuple[str, ...]:
    """Registered algorithm names (``"auto"`` is not one of them: it chooses among these)."""
    return tuple(_MODULES)


def get(name: str) -> Algorithm:
    """The algorithm module registered under ``name``."""
    if name not in _LOADED:
        if name not in _MODULES:
            raise ValueError(
                f"anyconv: `algorithm` must be one of {('auto', *names())}; got algorithm={name!r}"
            )
        _LOADED[name] = importlib.import_module(_MODULES[name], __name__)  # type: ignore[assignment]
    return _LOADED[name]


def variant_names() -> tuple[str, ...]:
    """Registered variant names (not public algorithm names: ``auto`` alone picks them)."""
    return tuple(_VARIANTS)


def variant(name: str) -> Any:
    """The variant module registered under ``name``."""
    mod = _LOADED_VARIANTS.get(name)
    if mod is None:
        mod = _LOADED_VARIANTS[name] = importlib.import_module(_VARIANTS[name], __name__)
    return mod


_LOADED_VARIANTS: dict[str, Any] = {}


def record_executed(enable: bool) -> list[tuple[str, str]] | None:
    """Start (``enable``) or stop recording, for this thread, which computation serves each operator
    call: a list of ``(form, name)`` that later calls append to (``name``: a variant, or the registry
    algorithm of the operator's derived correlation), returned; stopping returns the list. Tests
    compare it with what ``explain_algorithm`` reports."""
    out: list[tuple[str, str]] | None = getattr(_TRACE, "executed", None)
    _TRACE.executed = [] if enable else None
    _TRACE.pending = None
    return _TRACE.executed if enable else out


def begin(form: str) -> None:
    """An operator call ``form`` starts (the executed-recorder's next entry belongs to it)."""
    if getattr(_TRACE, "executed", None) is not None:
        _TRACE.pending = form


def executed(name: str) -> None:
    """``name`` computes the pending operator call (the first one to say so, when recording)."""
    out = getattr(_TRACE, "executed", None)
    if out is not None and _TRACE.pending is not None:
        out.append((_TRACE.pending, name))
        _TRACE.pending = None


def tracing() -> bool:
    """Whether this thread's core calls are being recorded (``explain_algorithm``'s trace)."""
    return getattr(_TRACE, "recorder", None) is not None


def run(
    op: str, name: str, x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, strict: bool = True, *,
    form: str | None = None, g: torch.Tensor | None = None, bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """Run the core op with algorithm ``name`` ("auto" chooses).

    With ``form`` (``"corr"``, ``"corr_t"``, ``"corr_w"``) the call is a whole operator call, served
    by a variant or the registry (:func:`.variants.serve`): ``x`` and ``w`` are the forward
    correlation's operands (a stand-in for the one the operator does not read), ``g`` the output
    gradient (``corr_t``/``corr_w``), ``bias`` the forward's; ``op`` empty means a derived call.

    With ``strict`` an algorithm that cannot serve the call raises ``ValueError`` with its
    reason; otherwise (derived calls such as backward passes) ``auto`` takes over.

    Non-finite values: a named algorithm whose sums would put NaN or Inf elsewhere than torch
    (``auto.hazard``: ``positions``, ``depthwise`` and ``matrix`` with zero padding, ``native``'s
    nested Winograd and 3-D forms) is given only finite operands (the ones its hazard concerns,
    checked by one sum each, ``auto.finite``); a call with NaN or Inf is computed by ``auto.exact``
    (the choice made without such algorithms). The transforms (``fft``, ``winograd``) mix every input
    of a block into all of its outputs (one Inf gives a block of NaN): their result, named or chosen,
    is checked by one sum and recomputed by ``auto.exact`` when it is not finite. So the named
    algorithm serves every finite call, and non-finite values land where torch puts them.
    """
    recorder: Recorder | None = getattr(_TRACE, "recorder", None)
    if recorder is not None:
        return recorder(op, name, x, w, spec, strict, form)
    if form is not None:
        from .variants import serve

        return serve(form, op, name, x, w, spec, g, bias)
    if name != "auto":
        algo = get(name)
        reason = algo.supports(x, w, spec)
        if reason is None:
            if name in _HAZARDOUS:
                from .auto import exact, finite, hazard

                risk = hazard(name, x, w, spec)
                if risk and not finite(*((x, w) if risk == "spreads" else (w,))):
                    from .auto import choose_exact

                    executed(choose_exact(x, w, spec).name)
                    return exact(x, w, spec)
            executed(name)
            return _checked(name, algo.forward(x, w, spec), x, w, spec)
        if strict:
            raise ValueError(f"{op}: algorithm={name!r} cannot serve this call: {reason}")
    from .auto import choose

    chosen = choose(x, w, spec).name
    executed(chosen)
    return _checked(chosen, get(chosen).forward(x, w, spec), x, w, spec)


def _checked(name: str, y: torch.Tensor, x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor:
    """``y``, or for a transform (``auto.SELF_CHECKED``) whose result is not finite, ``auto.exact``'s."""
    from .auto import SELF_CHECKED, exact, finite

    return y if name not in SELF_CHECKED or finite(y) else exact(x, w, spec)
