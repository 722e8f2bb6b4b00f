"""Whole models: the zoo's models with torch's layers against ``anyconv.nn.convert`` of them.

For each :class:`ModelCase` the reference is ``with_torch_layers(create_model(name))`` (every
conv and pooling layer torch's own class) and the contender is ``anyconv.nn.convert`` of that
same module: the same weights, buffers and structure, only the layers' kernels differ. Two
modes are timed, each torch and anyconv alternating ``repeats`` times after a warm-up call
(:func:`anyconv.bench.runner.interleaved`), minimum and median kept:

- ``inference``: ``model(x)`` in eval mode under ``torch.no_grad()``;
- ``train``: one training step in train mode: forward, cross-entropy loss, backward, SGD step.

A call that takes well under 20 ms is repeated within each timed sample (the sample's time
divided by the count), so that small models are not timed at the timer's resolution.

The peak extra resident memory of one training step (:func:`anyconv.bench.runner.peak_rss_bytes`)
is recorded too, where the OS can measure it.

Examples:
    >>> from anyconv.bench.models import select_models
    >>> [c.label for c in select_models("cifar_cnn,lenet5")]
    ['cifar_cnn', 'lenet5']
    >>> select_models("mobilenet_v2.small")[0].shape(quick=False)
    (2, 3, 64, 64)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from .runner import geomean, interleaved, peak_rss_bytes


@dataclass(frozen=True)
class ModelCase:
    """One row: zoo model ``model`` on a random ``input`` batch (``quick``: a smaller one)."""

    label: str
    model: str
    input: tuple[int, ...]
    quick: tuple[int, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    extra: bool = False  # not one of the models of the geometric mean (a second size of one of them)

    def shape(self, quick: bool) -> tuple[int, ...]:
        return self.quick if quick else self.input


MODELS: tuple[ModelCase, ...] = (
    ModelCase("resnet18", "resnet18", (4, 3, 128, 128), (2, 3, 64, 64)),
    ModelCase("resnet50", "resnet50", (2, 3, 128, 128), (1, 3, 64, 64)),
    ModelCase("mobilenet_v2", "mobilenet_v2", (4, 3, 128, 128), (2, 3, 96, 96)),
    ModelCase("vgg11", "vgg11", (2, 3, 128, 128), (1, 3, 64, 64)),
    ModelCase("unet", "unet", (2, 1, 128, 128), (1, 1, 64, 64)),
    ModelCase("cifar_cnn", "cifar_cnn", (32, 3, 32, 32), (8, 3, 32, 32)),
    ModelCase("mnist1d_cnn", "mnist1d_cnn", (32, 1, 40), (8, 1, 40)),
    ModelCase("lenet5", "lenet5", (32, 1, 28, 28), (8, 1, 28, 28)),
    # small calls: per-call overhead dominates
    ModelCase("mobilenet_v2.small", "mobilenet_v2", (2, 3, 64, 64), (2, 3, 64, 64), extra=True),
)
MODES = ("inference", "train")


def select_models(names: str | None = None) -> list[ModelCase]:
    """The cases named in a comma-separated ``names`` (``None``, ``""`` or ``"all"``: every one).

    Raises:
        ValueError: a name that is not a case label (the message lists them).
    """
    if names is None or names.strip() in ("", "all"):
        return list(MODELS)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    labels = [c.label for c in MODELS]
    for name in wanted:
        if name not in labels:
            raise ValueError(f"bench: `--models` must be 'all' or a comma-separated list of "
                             f"{', '.join(labels)}; got --models={names!r}")
    return [c for c in MODELS if c.label in wanted]


def twins(case: ModelCase, seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module]:
    """``(torch_model, anyconv_model)``: the zoo model with torch's layers, and its conversion."""
    from ..models import create_model, with_torch_layers
    from ..nn import convert

    torch.manual_seed(seed)
    reference = with_torch_layers(create_model(case.model, **case.kwargs))
    return reference, convert(reference)


def _inference(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], Any]:
    def run() -> Any:
        with torch.no_grad():
            return model(x)

    return run


def _train_step(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor) -> Callable[[], Any]:
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def run() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), target).backward()
        opt.step()

    return run


def _calls_per_sample(calls: list[Callable[[], Any]], sample_s: float = 0.02) -> int:
    """Calls per timed sample so that one sample of the slowest call lasts about ``sample_s``
    (a millisecond-long model step timed alone is mostly timer and scheduler noise)."""
    import time

    slowest = 0.0
    for c in calls:
        c()  # warm-up: first-call costs (native build, caches) stay out of the estimate
        t0 = time.perf_counter()
        c()
        slowest = max(slowest, time.perf_counter() - t0)
    return max(1, min(100, round(sample_s / max(slowest, 1e-6))))


def _repeated(call: Callable[[], Any], n: int) -> Callable[[], Any]:
    if n == 1:
        return call

    def run() -> None:
        for _ in range(n):
            call()

    return run


def measure_model(case: ModelCase, threads: int, repeats: int, quick: bool = False,
                  memory: bool = True) -> list[dict[str, Any]]:
    """One row per mode (:data:`MODES`) for ``case`` at ``threads`` torch threads (restored after)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        shape = case.shape(quick)
        ref, ours = twins(case)
        gen = torch.Generator().manual_seed(1)
        x = torch.randn(shape, generator=gen)
        with torch.no_grad():
            out = ref.eval()(x)  # (N, classes) or (N, classes, *spatial) for unet
        target = torch.randint(0, out.shape[1], (out.shape[0], *out.shape[2:]), generator=gen)
        rows = []
        for mode in MODES:
            for m in (ref, ours):
                m.train(mode == "train")
            if mode == "inference":
                calls = [_inference(ref, x), _inference(ours, x)]
            else:
                calls = [_train_step(ref, x, target), _train_step(ours, x, target)]
            inner = _calls_per_sample(calls)
            calls = [_repeated(c, inner) for c in calls]
            (t_min, t_med), (a_min, a_med) = (
                (lo / inner, mid / inner) for lo, mid in interleaved(calls, repeats))
            mem = [peak_rss_bytes(c) for c in calls] if memory and mode == "train" else [None, None]
            rows.append({
                "model": case.label, "zoo": case.model, "input": "x".join(map(str, shape)),
                "threads": threads, "mode": mode, "extra": case.extra,
                "torch_ms_min": t_min, "torch_ms_median": t_med,
                "anyconv_ms_min": a_min, "anyconv_ms_median": a_med,
                "ratio": a_min / t_min, "ratio_median": a_med / t_med,
                "torch_peak_mib": None if mem[0] is None else mem[0] / 2**20,
                "anyconv_peak_mib": None if mem[1] is None else mem[1] / 2**20,
            })
        return rows
    finally:
        torch.set_num_threads(saved)


def format_model_rows(rows: list[dict[str, Any]]) -> str:
    """The per-model table, then the geometric mean of the ratios per thread count and mode."""
    def mib(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.1f}" if v < 10 else f"{v:.0f}"

    head = (f"{'model':19s} {'input':13s} {'thr':>3s} {'mode':9s} {'torch ms':>9s} {'(median)':>9s} "
            f"{'anyconv ms':>10s} {'(median)':>9s} {'ratio':>6s} {'(med)':>6s} {'peak MiB t/a':>13s}")
    lines = [head, "-" * len(head)]
    for r in rows:
        peak = "" if r["mode"] != "train" else f"{mib(r['torch_peak_mib'])}/{mib(r['anyconv_peak_mib'])}"
        lines.append(
            f"{r['model']:19s} {r['input']:13s} {r['threads']:3d} {r['mode']:9s} {r['torch_ms_min']:9.2f} "
            f"{r['torch_ms_median']:9.2f} {r['anyconv_ms_min']:10.2f} {r['anyconv_ms_median']:9.2f} "
            f"{r['ratio']:6.2f} {r['ratio_median']:6.2f} {peak:>13s}")
    lines += ["", "geometric mean of ratio anyconv/torch (min times; median times), models of the zoo "
                  "(rows marked .small not included):"]
    by: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for r in rows:
        if not r["extra"]:
            by.setdefault((r["threads"], r["mode"]), []).append(r)
    for (t, m), rs in sorted(by.items()):
        lines.append(f"  {t} thread(s) {m:9s} {geomean([r['ratio'] for r in rs]):6.3f}; "
                     f"{geomean([r['ratio_median'] for r in rs]):6.3f}  ({len(rs)} models)")
    lines.append("peak MiB: the resident set's growth during one training step (everything the step "
                 "touched at its peak: tensors, library scratch), torch/anyconv; n/a where the OS cannot say")
    return "\n".join(lines)
