"""``auto``: choose an algorithm for a call, and say why.

Every algorithm module owns its model (see :mod:`anyconv.algorithms`): ``cost_features(x, w, spec)``
(named per-call features), ``ERROR_GROWTH`` or ``error_growth(x, w, spec)`` (its normwise relative
error in units of ``u``; 0 for a summation algorithm) and ``COMPUTE_DTYPE`` (``compute_dtype(dtype)``,
or None for the input's dtype). This module only applies the rules, in order:

1. **Capability**: only algorithms whose ``supports`` accepts the call are candidates (each refusal
   keeps its reason: dtype, kernel size, stride, workspace limit...).
2. **Accuracy guard**: a summation algorithm's error is ``2 sqrt(Cg K) u`` and always passes (it
   computes the reference sums); a transform algorithm (growth > 0: ``fft``, ``winograd``) whose
   predicted error ``growth * u(compute dtype)`` exceeds ``ACCURACY_ULPS * u(input dtype)`` is rejected.
3. **Reference last**: ``direct`` is a candidate only when no other algorithm serves the call.
4. **Non-finite values**: a winner that would put NaN or Inf elsewhere than torch (:func:`hazard`)
   is replaced by :func:`choose_exact`'s choice when the operands are not finite (the registry's ``run``
   checks ``winograd``'s and ``fft``'s results instead, :data:`SELF_CHECKED`).
5. **Cost model**: the predicted time of a candidate is ``sum(coef[f] * features[f])`` with the
   coefficients of the active profile (:mod:`anyconv.algorithms.profile`: this machine's, fitted by
   ``anyconv tune``, else the shipped ``coefficients.json``). An algorithm the profile has no
   coefficients for is costed as ``direct`` on the same call (a pessimistic fallback). The fastest
   predicted candidate wins; with :func:`anyconv.set_autotune` the few best are timed instead on the
   first call of each shape (:mod:`anyconv.algorithms.autotune`). History of the fits: docs/speed.md.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import torch

from ..core import workspace as _workspace
from ..core.cache import BoundedCache
from ..core.shapes import prod
from ..core.spec import CorrSpec
from . import _gemm, _native_rate, autotune, get, names, native
from . import profile as _profile

ACCURACY_ULPS = 256.0
SUMMATION_GROWTH = 2.0  # a summation algorithm's error: SUMMATION_GROWTH * sqrt(Cg K) u (measured 1-21 u)


@dataclass(frozen=True)
class Choice:
    """The algorithm chosen for a call and the reasons.

    ``rejected`` maps algorithm -> why it is not a candidate (capability or accuracy guard);
    ``estimates`` maps each candidate -> predicted milliseconds; ``errors`` maps each supported
    algorithm -> predicted float32-style normwise relative error; ``profile`` says which
    coefficients predicted the times; ``measured`` maps the timed candidates -> milliseconds when
    the choice was measured (autotune).
    """

    name: str
    reason: str
    rejected: dict[str, str]
    estimates: dict[str, float] = field(default_factory=dict)
    errors: dict[str, float] = field(default_factory=dict)
    hazard: str = ""  # how the winner can misplace NaN/Inf (see hazard): "", "spreads" or "padding"
    profile: str = ""
    measured: dict[str, float] = field(default_factory=dict)


def unit_roundoff(dtype: torch.dtype) -> float:
    """``u`` of a dtype (complex: of its real part)."""
    real = {torch.complex64: torch.float32, torch.complex128: torch.float64}.get(dtype, dtype)
    return float(torch.finfo(real).eps) / 2


def compute_dtype(name: str, dtype: torch.dtype) -> torch.dtype:
    """The dtype ``name`` computes a ``dtype`` call in (its module's ``COMPUTE_DTYPE``)."""
    fn = getattr(get(name), "COMPUTE_DTYPE", None)
    return fn(dtype) if fn is not None else dtype


def own_growth(name: str, x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> float:
    """The module's own error growth (``error_growth`` or ``ERROR_GROWTH``): 0 for a summation algorithm."""
    mod = get(name)
    fn = getattr(mod, "error_growth", None)
    return float(fn(x, w, spec)) if fn is not None else float(getattr(mod, "ERROR_GROWTH", 0.0))


def error_growth(name: str, x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> float:
    """Predicted normwise relative error of ``name`` on the call, in units of its ``u``."""
    return own_growth(name, x, w, spec) or SUMMATION_GROWTH * math.sqrt(w.shape[1] * prod(w.shape[2:]))


def predicted_error(name: str, x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> float:
    """``error_growth * u(compute dtype)``."""
    return error_growth(name, x, w, spec) * unit_roundoff(compute_dtype(name, x.dtype))


def features(name: str, x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> dict[str, float]:
    """``name``'s named cost features of the call (its module's ``cost_features``)."""
    return get(name).cost_features(x, w, spec)  # type: ignore[attr-defined, no-any-return]


def estimate_ms(name: str, x: torch.Tensor, w: torch.Tensor, spec: CorrSpec,
                profile: _profile.Profile | None = None) -> float:
    """Predicted milliseconds of ``name`` on the call with ``profile``'s coefficients (default: the active one)."""
    prof = profile or _profile.active()
    coef = prof.coefficients.get(name)
    if coef is None:  # no coefficients for it: costed as the reference
        return estimate_ms("direct", x, w, spec, profile) if name != "direct" else math.inf
    gemm = getattr(get(name), "GEMM_FEATURES", ())
    scale = gemm_scale(prof) if gemm else 1.0
    total = sum(coef.get(k, 0.0) * v * (scale if k in gemm else 1.0) for k, v in features(name, x, w, spec).items())
    return total * _native_rate.slowdown(prof, _native_rate.depthwise(w, spec)) if name == "native" else total


def gemm_scale(prof: _profile.Profile) -> float:
    """How much slower this process's matrix products run than when ``prof`` was fitted: the GFLOP/s
    in its ``fitted_on["gemm_gflops"]`` over :func:`._gemm.rate` (1 where either is unknown), rounded to
    a power of sqrt(2) (so that a noisy measurement seldom changes a choice) within [1/4, 4]. An
    algorithm's ``GEMM_FEATURES`` (its GEMM multiply-adds) are costed times this. With
    ``$ANYCONV_PROFILE=default`` (reproducible runs, the tests) it is 1: no timing enters a choice."""
    if os.environ.get("ANYCONV_PROFILE") == "default":
        return 1.0
    fitted = prof.fitted_on.get("gemm_gflops")
    if not isinstance(fitted, (int, float)) or fitted <= 0:
        return 1.0
    now = _gemm.rate(torch.float32)
    if now <= 0:
        return 1.0
    return float(2.0 ** (min(4, max(-4, round(2 * math.log2(float(fitted) / now)))) / 2))


CACHE_SIZE = 4096
_CACHE: BoundedCache[tuple[object, ...], Choice] = BoundedCache(CACHE_SIZE)  # Choice is frozen: shared by threads


def clear_cache() -> None:
    """Forget cached choices (after changing a module's cost constants in place)."""
    _CACHE.clear()
    autotune.clear()


def state() -> tuple[object, ...]:
    """What a choice depends on besides the call: the workspace limit, the registered algorithms,
    ``native`` on or off, the accuracy bound, torch's thread count (``native``'s per-thread buffers
    must fit the workspace; the profile is per thread count), the active profile and autotune, so a
    cache keyed on the call plus this stays valid."""
    threads = torch.get_num_threads()
    return (_workspace.get_workspace_limit(), names(), native.enabled(), ACCURACY_ULPS,
            _profile.active(threads).serial, threads, autotune.enabled())


def finite(*tensors: torch.Tensor) -> bool:
    """Whether every element of ``tensors`` is finite, by one sum each (``meta`` tensors count as finite).

    A sum is finite exactly when no element is NaN or Inf, unless finite elements near the dtype's
    largest value overflow it: then the call only goes to an exact algorithm, whose result is right
    either way. Measured (one thread, float32): 16-43 us on inputs of 200K-800K elements, where
    ``torch.isfinite(t).all()`` took 460-1600 us. Half precisions are summed in float32.

    Examples:
        >>> finite(torch.ones(3)), finite(torch.ones(2), torch.tensor([1.0, float("nan")]))
        (True, False)
    """
    for t in tensors:
        if t.is_meta or t.numel() == 0:
            continue
        total = t.sum(dtype=torch.float32) if t.dtype in (torch.float16, torch.bfloat16) else t.sum()
        if not bool(torch.isfinite(total)):
            return False
    return True


SELF_CHECKED = ("fft", "winograd")  # the registry's run checks their results (see algorithms.run)
SKIPS_PADDING = ("depthwise", "matrix")  # their sums leave the zero padding out (native's too in 3-D)


def hazard(name: str, x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> str:
    """How ``name`` would put NaN or Inf elsewhere than torch on this call, if its values are not finite.

    ``"spreads"``: a transform mixes one non-finite input into a whole block (``fft``, ``winograd``,
    ``native`` when its lanes form takes the nested Winograd variant) or flat rows carry it into
    outputs whose windows do not read it (``positions``). ``"padding"``: the sums leave the zero
    padding out (``depthwise``, ``matrix``, ``native`` in 3-D), where torch's reference path (and torch on an explicitly
    padded input) multiplies it, so a non-finite weight gives NaN there (``0 * Inf``). ``""``: none.
    """
    if name in ("fft", "winograd", "positions"):
        return "spreads"
    if name == "native" and native.form_of(x, w, spec) == 2 and native.lanes_plan(x, w, spec)["nest"]:
        return "spreads"
    if name in SKIPS_PADDING or (name == "native" and spec.n == 3):
        return "padding" if any(pb > 0 or pa > 0 for pb, pa in spec.padding) else ""
    return ""


def choose(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, values: bool = True) -> Choice:
    """Apply the rules above; ``Choice.reason`` says why the winner won.

    The choice depends on shapes, dtype, device type, spec and :func:`state` only, so it is
    cached on those (a call costs ~0.3 ms uncached, ~5 us cached). With autotune on (and not under
    tracing, compile or meta tensors) the model's few best candidates are timed on the first call of
    each such key and the fastest kept (:func:`anyconv.algorithms.autotune.measured`). With ``values``
    a winner with a :func:`hazard` also looks at the values it concerns (``x`` and ``w``, or for
    ``"padding"`` ``w`` alone, by :func:`finite`): if they are not finite the choice is
    :func:`choose_exact`'s (``winograd``'s and ``fft``'s results are checked by the registry's ``run``).
    A whole operator call (an input or weight gradient, a small call) may first go to a variant
    (``variants.route``: the variants' ``supports`` in a fixed order); ``variants.choose_op`` reports
    that choice with this one for the registry's part.
    """
    st = state()
    key = (tuple(x.shape), tuple(w.shape), x.dtype, x.device.type, spec, st)
    hit = _CACHE.get(key)
    if hit is None:
        hit = _CACHE.get_or_make(key, lambda: _choose(x, w, spec))
    if st[-1] and len(hit.estimates) > 1 and autotune.measurable(x, w):
        hit = autotune.measured(key, x, w, spec, hit, hazard)
    if values and hit.hazard and hit.name not in SELF_CHECKED:
        if not finite(*((x, w) if hit.hazard == "spreads" else (w,))):
            return choose_exact(x, w, spec)
    return hit


def choose_exact(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> Choice:
    """:func:`choose` without the algorithms that have a :func:`hazard` on the call: the choice for a
    call with non-finite values (cached like :func:`choose`'s)."""
    key = (tuple(x.shape), tuple(w.shape), x.dtype, x.device.type, spec, state(), "exact")
    hit = _CACHE.get(key)
    if hit is None:
        hit = _CACHE.get_or_make(key, lambda: _choose(x, w, spec, exact_only=True))
    return hit


def exact(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor:
    """The correlation by :func:`choose_exact`'s algorithm: NaN and Inf where torch puts them."""
    return get(choose_exact(x, w, spec).name).forward(x, w, spec)


def candidates(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, exact_only: bool = False
               ) -> tuple[list[str], dict[str, str], dict[str, float]]:
    """Rules 1-3: the candidates, the rejected ones with their reasons, and every supported one's error."""
    rejected: dict[str, str] = {}
    errors: dict[str, float] = {}
    ok: list[str] = []
    bound = ACCURACY_ULPS * unit_roundoff(x.dtype)
    for name in names():
        reason = get(name).supports(x, w, spec)
        if reason is None and exact_only and hazard(name, x, w, spec):
            reason = f"non-finite values: it would misplace them ({hazard(name, x, w, spec)})"
        if reason is not None:
            rejected[name] = reason
            continue
        err = errors[name] = predicted_error(name, x, w, spec)
        if own_growth(name, x, w, spec) > 0 and err > bound:
            rejected[name] = (f"accuracy guard: predicted normwise relative error {err:.1e} exceeds the bound "
                              f"{bound:.1e} ({ACCURACY_ULPS:g} u for {x.dtype})")
            continue
        ok.append(name)
    if not ok:
        raise ValueError(f"anyconv: no algorithm can serve this call: {rejected}")
    if "direct" in ok and len(ok) > 1:
        # the reference: never measured fastest by a useful margin (fit_auto data), and its
        # einsum's cost is the hardest to predict, so it is chosen only when nothing else serves
        ok.remove("direct")
        rejected["direct"] = "the reference implementation: chosen only when no other algorithm serves"
    return ok, rejected, errors


def _choose(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, exact_only: bool = False,
            profile: _profile.Profile | None = None) -> Choice:
    prof = profile or _profile.active()
    ok, rejected, errors = candidates(x, w, spec, exact_only)
    estimates = {name: estimate_ms(name, x, w, spec, prof) for name in ok}
    best = min(estimates, key=lambda n: (estimates[n], n))
    others = sorted((t, n) for n, t in estimates.items() if n != best)
    runner = f"; next: {others[0][1]} ({others[0][0]:.3g} ms)" if others else ""
    reason = (
        f"{best}: lowest predicted time ({estimates[best]:.3g} ms) among "
        f"{len(estimates)} candidate(s) that passed the accuracy guard{runner}"
    )
    return Choice(best, reason, rejected, estimates, errors, hazard(best, x, w, spec), prof.describe())
