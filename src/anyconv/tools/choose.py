"""Public chooser: ``anyconv.choose_algorithm`` and ``anyconv.explain_algorithm``.

Like SciPy's ``choose_conv_method``: the choice ``auto`` would make for a call of
:func:`anyconv.functional.conv` (or ``conv_transpose`` with ``transpose=True``), and with
``measure=True`` the measured time of every algorithm that can serve it.

The core calls a public call makes (its forward and, for the backward pass, the
grad_input and grad_weight correlations) are found by running the op on ``meta`` tensors
with a recorder in the algorithm registry's ``run`` (for the tracing thread only): shapes only,
no arithmetic.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

from .. import algorithms
from ..algorithms import _gemm, auto
from ..algorithms import profile as _profile
from ..algorithms._common import on_device
from ..algorithms.auto import ACCURACY_ULPS, choose_exact, finite, unit_roundoff
from ..algorithms.variants import choose_op
from ..core.spec import CorrSpec

LABELS = ("forward", "grad_input", "grad_weight")


def core_calls(
    op: str, input: torch.Tensor, weight: torch.Tensor, *, backward: bool = False,
    context: list[tuple[str, bool, bool]] | None = None, **params: Any
) -> list[tuple[str, torch.Tensor, torch.Tensor, CorrSpec]]:
    """``(label, x, w, spec)`` of every core operator call a call makes (``meta`` tensors; ``x`` and
    ``w`` are the forward correlation's operands, see ``algorithms.run``'s ``form``).

    ``op`` is ``"conv"`` or ``"conv_transpose"``; ``params`` are that op's keyword arguments.
    ``context`` receives each call's ``(form, derived, grad mode)``, what ``auto.choose`` also needs.
    """
    import anyconv.functional as AF

    fn = AF.conv_transpose if op == "conv_transpose" else AF.conv
    x = torch.empty(input.shape, dtype=input.dtype, device="meta", requires_grad=backward)
    w = torch.empty(weight.shape, dtype=weight.dtype, device="meta", requires_grad=backward)
    calls: list[tuple[str, torch.Tensor, torch.Tensor, CorrSpec]] = []

    def record(op_: str, name: str, xx: torch.Tensor, ww: torch.Tensor, spec: CorrSpec,
               strict: bool = True, form: str | None = None) -> torch.Tensor:
        label = LABELS[len(calls)] if len(calls) < len(LABELS) else f"call{len(calls)}"
        calls.append((label, xx.detach(), ww.detach(), spec))
        if context is not None:
            context.append((form or "corr", not op_, torch.is_grad_enabled()))
        shape: tuple[int, ...] = {"corr_t": tuple(xx.shape), "corr_w": tuple(ww.shape)}.get(form or "corr", ())
        if not shape:
            shape = (xx.shape[0], ww.shape[0], *spec.output_spatial(xx.shape[2:], ww.shape[2:]))
        return torch.zeros(shape, dtype=xx.dtype, device="meta")

    # this thread's core calls go to the recorder; other threads' convolutions run as usual
    outer = getattr(algorithms._TRACE, "recorder", None)
    algorithms._TRACE.recorder = record
    try:
        y = fn(x, w, **params)
        if backward:
            y.backward(torch.ones_like(y))
    finally:
        algorithms._TRACE.recorder = outer
    return calls


def core_call(op: str, input: torch.Tensor, weight: torch.Tensor, **params: Any
              ) -> tuple[torch.Tensor, torch.Tensor, CorrSpec]:
    """The forward core call ``(x, w, spec)`` of a public call (``x`` and ``w``: stand-ins on the
    input's device, see :func:`on_device`)."""
    params.pop("algorithm", None)
    _, x, w, spec = core_calls(op, input, weight, **params)[0]
    return on_device(x, input.device), on_device(w, input.device), spec


def choose_call(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec, context: tuple[str, bool, bool],
                values: bool = True) -> Any:
    """``auto``'s choice for a traced operator call (``context``: its form, derived flag, grad mode)."""
    form, derived, grad = context
    with torch.set_grad_enabled(grad):
        return choose_op(form, x, w, spec, values, derived)


def public_name(choice: Any) -> str:
    """The registered algorithm name of a choice (a variant, see ``algorithms.variants``, is
    reported as the algorithm whose computation it is, else as the registry's best estimate)."""
    if choice.name in algorithms.names():
        return str(choice.name)
    family = getattr(algorithms.variant(choice.name), "ALGORITHM", None)
    if family is not None:
        return str(family)
    registry = {n: t for n, t in choice.estimates.items() if n in algorithms.names()}
    return min(registry, key=registry.__getitem__) if registry else "direct"


def _params(bias: Any, stride: Any, padding: Any, dilation: Any, groups: Any, padding_mode: Any,
            transpose: bool, extra: dict[str, Any]) -> dict[str, Any]:
    p = dict(bias=bias, stride=stride, padding=padding, dilation=dilation, groups=groups)
    if transpose:
        p.update(extra)
    else:
        p["padding_mode"] = padding_mode
        p.update(extra)
    return p


def choose_algorithm(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: Any = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    *,
    transpose: bool = False,
    measure: bool = False,
    repeats: int = 3,
    **extra: Any,
) -> str | tuple[str, dict[str, float]]:
    """The algorithm ``auto`` picks for a conv (or ``transpose=True``: conv_transpose) call.

    Arguments are those of :func:`anyconv.functional.conv` (``extra``: ``flip``, or
    ``output_padding`` / ``output_size`` with ``transpose=True``).

    Returns:
        The algorithm name; with ``measure=True`` a pair ``(name, times)`` where ``times``
        maps every algorithm that can serve the call to its best of ``repeats`` measured
        forward times in seconds, and ``name`` is the fastest one within the accuracy bound.

    Examples:
        >>> import torch, anyconv
        >>> anyconv.choose_algorithm(torch.randn(1, 1, 20000), torch.randn(1, 1, 2001))
        'fft'
        >>> name, times = anyconv.choose_algorithm(torch.randn(1, 2, 8), torch.randn(3, 2, 3), measure=True)
        >>> name in times and "direct" in times
        True
    """
    op = "conv_transpose" if transpose else "conv"
    params = _params(bias, stride, padding, dilation, groups, padding_mode, transpose, extra)
    context: list[tuple[str, bool, bool]] = []
    _, xm, wm, spec = core_calls(op, input, weight, context=context, **params)[0]
    x, w = on_device(xm, input.device), on_device(wm, input.device)
    choice = choose_call(x, w, spec, context[0])
    if not measure:
        return public_name(choice)
    import anyconv.functional as AF

    fn = AF.conv_transpose if transpose else AF.conv
    times: dict[str, float] = {}
    for name in algorithms.names():
        if algorithms.get(name).supports(x, w, spec) is not None:
            continue
        with torch.no_grad():
            try:
                fn(input, weight, algorithm=name, **params)
            except ValueError:
                # the forward core call was servable, but a strided transposed call runs
                # the algorithm on a different (zero-stuffed) call that it refuses
                continue
            best = float("inf")
            for _ in range(max(1, repeats)):
                t0 = time.perf_counter()
                fn(input, weight, algorithm=name, **params)
                best = min(best, time.perf_counter() - t0)
        times[name] = best
    allowed = [n for n in times if n not in choice.rejected]
    return min(allowed, key=lambda n: times[n]), times


def _size(n: int) -> str:
    """``134217728`` -> ``"128 MiB"``; bytes below 1 KiB stay bytes."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


def _readable(reason: str) -> str:
    """A refusal with its byte counts as KiB/MiB/GiB, the scratch budget named as what it is."""
    import re

    from ..core.workspace import get_workspace_limit, scratch_budget

    budget, limit = scratch_budget(), get_workspace_limit()
    whole = f"scratch budget ({_size(budget)}, half the {_size(limit)} workspace limit)"
    reason = re.sub(rf"(workspace limit|scratch budget) \({budget} bytes(, half the workspace limit)?\)", whole, reason)
    return re.sub(r"(\d+) bytes", lambda m: _size(int(m.group(1))), reason)


def explain_algorithm(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: Any = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    *,
    transpose: bool = False,
    backward: bool = True,
    **extra: Any,
) -> str:
    """A human-readable account of ``auto``'s choice for the call (and its backward passes).

    For each core call (forward, grad_input, grad_weight): its shapes, every algorithm with
    the reason it cannot serve the call, or its predicted error against the bound and its
    predicted time, and the winner. When ``input`` or ``weight`` holds NaN or Inf, also what such
    a call gets (``auto.choose_exact``: no algorithm that would misplace them).

    Examples:
        >>> import torch, anyconv
        >>> text = anyconv.explain_algorithm(torch.randn(1, 4, 32, 32), torch.randn(4, 1, 3, 3), groups=4)
        >>> text.splitlines()[0].startswith("forward:")
        True
        >>> "chosen:" in text
        True
    """
    op = "conv_transpose" if transpose else "conv"
    params = _params(bias, stride, padding, dilation, groups, padding_mode, transpose, extra)
    lines = []
    nonfinite = not finite(input, weight)
    context: list[tuple[str, bool, bool]] = []
    for i, (label, xm, wm, spec) in enumerate(core_calls(op, input, weight, backward=backward, context=context,
                                                         **params)):
        x, w = on_device(xm, input.device), on_device(wm, input.device)
        c = choose_call(x, w, spec, context[i])
        bound = ACCURACY_ULPS * unit_roundoff(x.dtype)
        lines.append(
            f"{label}: correlation of {tuple(x.shape)} with {tuple(w.shape)}, stride {spec.stride}, "
            f"dilation {spec.dilation}, padding {spec.padding}, groups {spec.groups}, {x.dtype}"
        )
        for name in (*algorithms.names(), *(v for v in algorithms.variant_names() if v in c.estimates or v in c.rejected)):
            if name in c.estimates:
                above = c.errors[name] > bound
                lines.append(
                    f"  {name:10s} predicted {c.estimates[name]:9.3f} ms, error {c.errors[name]:.1e} "
                    + (f"ABOVE the bound {bound:.1e} (kept: a summation algorithm, the reference's own error)"
                       if above else f"(bound {bound:.1e})")
                )
            else:
                lines.append(f"  {name:10s} REJECTED: {_readable(c.rejected.get(name, '?'))}")
        lines.append(f"  chosen: {c.reason}")
        lines.append(f"  cost model: {c.profile}")
        lines.append(f"  matrix products: {_gemm_line()}")
        if nonfinite:
            lines.append("  non-finite values in the input or weight: " + (
                f"{c.name} would misplace them ({c.hazard}), chosen instead: {choose_exact(x, w, spec).reason}"
                if c.hazard else f"{c.name} puts NaN and Inf where torch does"))
    return "\n".join(lines)


def _gemm_line() -> str:
    """Which backend computes the GEMM-based algorithms' products, its rate, and the cost model's scale."""
    r = _gemm.rates(torch.float32)
    which = _gemm.backend(torch.float32)
    name = "anyconv's native kernel" if which == "native" else "torch.matmul"
    return (f"{name} (float32, {r[which]:.0f} GFLOP/s on this machine; the other: {r['torch' if which == 'native' else 'native']:.0f}),"
            f" GEMM terms x{auto.gemm_scale(_profile.active()):.2f}")

