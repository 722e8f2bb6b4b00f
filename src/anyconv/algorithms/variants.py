"""The operator-level dispatch: which variant (or the registry) serves a ``corr``/``corr_t``/``corr_w`` call.

An operator call is described by its forward correlation's operands ``x (B, C, *L)`` and
``w (O, C/G, *k)`` (a stand-in for the operand the operator does not read: ``corr_t`` reads
``w`` and the output gradient ``g``, ``corr_w`` reads ``x`` and ``g``) and its ``CorrSpec``.
Candidates, in the order they are tried (each variant's ``supports`` mirrors the rule that sent
the call to that path before the variants existed, so the same path serves the same call):

- ``corr``: ``small`` (a small call whose registry choice is im2col or native: one column GEMM
  with the bias fused), else the registry (``auto``'s choice, or the named algorithm);
- ``corr_t``: ``small_t`` (gradient calls only), then a non-finite weight with zero padding goes
  to ``col2im_t`` (any algorithm: only real (gradient, weight) products, as torch's), then
  ``patches_t``, ``phases_col2im_t``, ``native_t``, ``phases_t`` (strided calls), ``gemm_t`` (stride 1:
  im2col's implicit product reading the forward's weight), else the registry
  on the zero-stuffed, flipped-weight correlation (``algorithms._adjoints.corr_t_raw``);
- ``corr_w``: ``small_w``, ``native_w`` (``native`` straight from the batch/channel-swapped view),
  ``wino_w``, ``dot_w`` (few channels, long rows), ``gemm_w``, else the registry on the swapped
  correlation (``corr_w_raw``).

Only ``auto`` picks variants, except ``col2im_t`` (a NaN/Inf rule) and ``native_w`` for
``algorithm="native"`` (the same kernel as the named algorithm, without the copy). A route is
cached per call shape, ``auto.state()``, grad mode and whether the call is derived (a gradient).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..core.cache import BoundedCache
from ..core.spec import CorrSpec
from . import executed, variant
from . import profile as _profile

ORDER = {
    "corr": ("small",),
    "corr_t": ("small_t", "patches_t", "phases_col2im_t", "native_t", "phases_t", "gemm_t"),
    "corr_w": ("small_w", "native_w", "wino_w", "dot_w", "gemm_w"),
}
LABEL = {"corr": "the correlation", "corr_t": "its input gradient", "corr_w": "its weight gradient"}


@dataclass(frozen=True, slots=True)
class Route:
    """How one operator call is served: ``mod`` the variant (None: the registry route) and whether
    a non-finite weight (``corr_t`` with zero padding) must go to ``col2im_t`` instead."""

    mod: Any
    check_w: bool
    rejected: tuple[tuple[str, str], ...]
    hazard: bool = False  # the variant would misplace NaN/Inf of the operands it reads: they are checked
    plan: Any = None  # the variant's ``prepare`` (the small call's plan)


_ROUTES: BoundedCache[tuple[object, ...], Route] = BoundedCache(4096)


def _key(form: str, name: str, x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, derived: bool) -> tuple[object, ...]:
    from .auto import state

    # only corr_t's route depends on the call being a gradient (small_t) and on grad mode (col2im_pays)
    extra = (derived, torch.is_grad_enabled()) if form == "corr_t" else ()
    return (form, name, *extra, x.shape, w.shape, x.dtype, x.device, spec, state())


def route(form: str, name: str, x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, derived: bool) -> Route:
    """The cached :class:`Route` of an operator call (see the module docstring for the order)."""
    key = _key(form, name, x, w, spec, derived)
    r = _ROUTES.get(key)
    if r is None:
        r = _ROUTES.get_or_make(key, lambda: _make(form, name, x, w, spec, derived))
    return r


def _make(form: str, name: str, x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, derived: bool) -> Route:
    rejected: list[tuple[str, str]] = []
    check_w = form == "corr_t" and all(pb >= 0 and pa >= 0 for pb, pa in spec.padding)
    for v in ORDER[form]:
        mod = variant(v)
        if name not in ("auto", *getattr(mod, "NAMED", ())):
            continue
        reason = "gradient calls only" if getattr(mod, "DERIVED_ONLY", False) and not derived else None
        reason = reason or mod.supports(x, w, spec, name)
        if reason is None:
            risky, prepare = getattr(mod, "hazard", None), getattr(mod, "prepare", None)
            return Route(mod, check_w and getattr(mod, "CHECKS_W", True), tuple(rejected),
                         bool(risky is not None and risky(x, w, spec, name)),
                         prepare(x, w, spec) if prepare is not None else None)
        rejected.append((v, reason))
    return Route(None, check_w, tuple(rejected))


def serve(form: str, op: str, name: str, x: torch.Tensor, w: torch.Tensor, spec: CorrSpec,
          g: torch.Tensor | None, bias: torch.Tensor | None) -> torch.Tensor:
    """An operator call (``algorithms.run`` with ``form``): its route's variant, or the registry."""
    from . import begin

    begin(form)
    if g is not None and (g.numel() == 0 or x.numel() == 0 or w.numel() == 0):
        return _registry(form, op, name, x, w, spec, g, bias)  # zeros of the result's shape
    r = route(form, name, x, w, spec, not op)
    if r.check_w:
        from .auto import finite

        if not finite(w):
            executed("col2im_t")
            return variant("col2im_t").serve(x, w, spec, g, bias)  # type: ignore[no-any-return]
    mod = r.mod
    if r.hazard and not _finite_operands(form, x, w, g):
        mod = None  # a variant whose computation would misplace these NaN/Inf: the registry route
    if mod is not None:
        executed(mod.NAME)
        return mod.serve(x, w, spec, g, bias, r.plan)  # type: ignore[no-any-return]
    return _registry(form, op, name, x, w, spec, g, bias)


def _finite_operands(form: str, x: torch.Tensor, w: torch.Tensor, g: torch.Tensor | None) -> bool:
    from .auto import finite

    read = {"corr": (x, w), "corr_t": (g, w), "corr_w": (x, g)}[form]
    return finite(*(t for t in read if t is not None))


def _registry(form: str, op: str, name: str, x: torch.Tensor, w: torch.Tensor, spec: CorrSpec,
              g: torch.Tensor | None, bias: torch.Tensor | None) -> torch.Tensor:
    from . import _adjoints as raw

    if form == "corr":
        y = raw.corr_raw(x, w, spec, name, op or None)
        return y if bias is None else y + bias.reshape(1, -1, *([1] * spec.n))
    assert g is not None
    if form == "corr_t":
        return raw.corr_t_raw(g, w, spec, tuple(x.shape[2:]), name, op or None)
    return raw.corr_w_raw(x, g, spec, tuple(w.shape[2:]), name)


def derived_call(form: str, x: torch.Tensor, w: torch.Tensor, spec: CorrSpec
                 ) -> tuple[torch.Tensor, torch.Tensor, CorrSpec]:
    """Stand-ins ``(x, w, spec)`` of the registry correlation that serves an operator call on the
    registry route (the call itself for ``corr``; the stuffed or swapped one for ``corr_t``/``corr_w``)."""
    from . import _adjoints as raw

    if form == "corr":
        return x, w, spec
    out = spec.output_spatial(x.shape[2:], w.shape[2:])
    g = torch.zeros((), dtype=x.dtype, device=x.device).expand((x.shape[0], w.shape[0], *out))
    if form == "corr_t":
        return raw.stuffed_call(g, w, spec, tuple(x.shape[2:]), shapes_only=True)
    x5, g2, sub = raw.swapped_call(x, g, spec, tuple(w.shape[2:]))
    return raw.flat(x5), g2, sub


def choose_op(form: str, x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, values: bool = True,
              derived: bool = True, name: str = "auto", g: torch.Tensor | None = None) -> Any:
    """``auto``'s :class:`~.auto.Choice` for an operator call: the variant its route takes, or the
    registry's choice for the derived correlation, with every variant's refusal and predicted time."""
    from . import auto

    r = route(form, name, x, w, spec, derived)
    rejected = dict(r.rejected)
    if r.check_w and values and not auto.finite(w):
        return auto.Choice("col2im_t", "col2im_t: a non-finite weight (only real products, as torch's)", rejected,
                           profile=_profile.active().describe())
    mod = r.mod
    if mod is not None and values and r.hazard and not _finite_operands(form, x, w, g):
        rejected[mod.NAME], mod = "non-finite values: it would misplace them", None
    if mod is None:
        inner = auto.choose(*derived_call(form, x, w, spec), values=values)
        rejected.update(inner.rejected)
        return auto.Choice(inner.name, f"{inner.name}: {LABEL[form]} by the registry, {inner.reason}",
                           rejected, inner.estimates, inner.errors, inner.hazard, inner.profile, inner.measured)
    inner = auto.choose(*derived_call(form, x, w, spec), values=False)  # what the registry route would take
    rejected.update(inner.rejected)
    est = predicted(mod.NAME, mod.cost_features(x, w, spec))
    after = ", ".join(ORDER[form][ORDER[form].index(mod.NAME) + 1:]) or "none"
    reason = (f"{mod.NAME}: serves {LABEL[form]}, tried before the other variants ({after}) and the "
              f"registry, predicted {est:.3g} ms")
    return auto.Choice(mod.NAME, reason, rejected, {**inner.estimates, mod.NAME: est}, {**inner.errors, mod.NAME: 0.0},
                       profile=inner.profile)


def predicted(name: str, features: dict[str, float]) -> float:
    """Predicted milliseconds of variant ``name``: ``sum(coef[f] * features[f])`` with the active
    profile's coefficients (this machine's, else the shipped ``coefficients.json``; a feature missing
    there counts 0)."""
    coef = _profile.active().coefficients.get(name) or _profile.shipped().coefficients.get(name, {})
    return sum(coef.get(f, 0.0) * v for f, v in features.items())
