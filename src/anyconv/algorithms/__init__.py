"""The algorithm registry for the core op (grouped N-d cross-correlation, zero padding).

Each algorithm is one module with:

- ``NAME``: its registry name;
- ``supports(x, w, spec) -> str | None``: ``None`` if it can serve the call, else the reason;
- ``forward(x, w, spec) -> Tensor``: the correlation of ``x`` ``(B, C, *spatial)`` with ``w``
  ``(O, C // groups, *kernel)`` under ``spec`` (a :class:`anyconv._spec.CorrSpec`), no bias.
- its cost model, read by ``auto``: ``cost_features(x, w, spec) -> dict[str, float]`` (named
  per-call features, shapes only: meta tensors work; the coefficients per name are in
  ``coefficients.json`` or this machine's profile), ``ERROR_GROWTH`` (its normwise relative error in
  units of ``u``, 0.0 for a summation algorithm) or ``error_growth(x, w, spec)``, and
  ``COMPUTE_DTYPE`` (``compute_dtype(dtype) -> dtype``, or None: the input's dtype).

Algorithms see only canonical arguments: batched input, zero padding pairs, per-dim tuples.
They never track gradients: the autograd rules in ``functional/_autograd.py`` call them.
Adding an algorithm is one new file plus one line in ``_MODULES`` below.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Protocol

import torch

from .._spec import CorrSpec


class Algorithm(Protocol):
    """What every algorithm module provides."""

    NAME: str

    def supports(self, x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> str | None: ...

    def forward(self, x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor: ...


# name -> module path (relative to this package), in order of preference for documentation.
_MODULES = {
    "direct": ".direct",
    "im2col": ".im2col",
    "fft": ".fft",
    "winograd": ".winograd",
    "depthwise": ".depthwise",
    "matrix": ".matrix",
    "kn2row": ".kn2row",
    "positions": ".positions",
    "shifted": ".shifted",
    "native": ".native",
}
_LOADED: dict[str, Algorithm] = {}
# named algorithms that may misplace NaN/Inf (``auto.hazard``; fft and winograd check their own results)
_HAZARDOUS = ("positions", "depthwise", "matrix", "native")
# per-thread recorder of core calls (``choose.core_calls`` traces a call on meta tensors): set
# in one thread, it never sees or answers another thread's convolutions
_TRACE = threading.local()
Recorder = Callable[[str, str, torch.Tensor, torch.Tensor, CorrSpec, bool], torch.Tensor]


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


def tracing() -> bool:
    """Whether this thread's core calls are being recorded (``explain_algorithm``'s trace)."""
    return getattr(_TRACE, "recorder", None) is not None


def run(
    op: str, name: str, x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, strict: bool = True
) -> torch.Tensor:
    """Run the core op with algorithm ``name`` ("auto" chooses).

    With ``strict`` an algorithm that cannot serve the call raises ``ValueError`` with its
    reason; otherwise (derived calls such as backward passes) ``auto`` takes over.

    Non-finite values: a named algorithm whose sums would put NaN or Inf elsewhere than torch
    (``auto.hazard``: ``positions``, ``depthwise`` and ``matrix`` with zero padding, ``native``'s
    nested Winograd and 3-D forms) is given only finite operands (the ones its hazard concerns,
    checked by one sum each, ``auto.finite``); a call with NaN or Inf is computed by ``auto.exact``
    (the choice made without such algorithms), as ``winograd`` and ``fft`` do for themselves. So the
    named algorithm serves every finite call, and non-finite values land where torch puts them.
    """
    recorder: Recorder | None = getattr(_TRACE, "recorder", None)
    if recorder is not None:
        return recorder(op, name, x, w, spec, strict)
    if name != "auto":
        algo = get(name)
        reason = algo.supports(x, w, spec)
        if reason is None:
            if name in _HAZARDOUS:
                from .auto import exact, finite, hazard

                risk = hazard(name, x, w, spec)
                if risk and not finite(*((x, w) if risk == "spreads" else (w,))):
                    return exact(x, w, spec)
            return algo.forward(x, w, spec)
        if strict:
            raise ValueError(f"{op}: algorithm={name!r} cannot serve this call: {reason}")
    from .auto import choose

    return get(choose(x, w, spec).name).forward(x, w, spec)
