"""``explain_algorithm`` and ``choose_algorithm`` report what runs (issue 20).

Random core calls (forward, input gradient, weight gradient; conv and conv_transpose; 1-3 spatial
dims, groups, strides, dilations, paddings; small calls and calls above the small-call GEMM's
size): for each, the computations ``explain_algorithm`` reports (one per operator call: a variant
or the registry algorithm of the derived correlation) must be the ones that execute in eager,
recorded by ``algorithms.record_executed`` (every operator call's first computation).
"""

from __future__ import annotations

import random
import re

import pytest
import torch

import anyconv
import anyconv.functional as AF
from anyconv import algorithms

CALLS = 240


def _draw(rng: random.Random) -> tuple[bool, torch.Tensor, torch.Tensor, dict[str, object]]:
    n = rng.choice((1, 1, 2, 2, 3))
    transpose = rng.random() < 0.35
    groups = rng.choice((1, 1, 2, 4))
    cg_in, cg_out = rng.choice((1, 2, 4)), rng.choice((1, 2, 3))
    if rng.random() < 0.2:  # depthwise
        cg_in, cg_out, groups = 1, 1, rng.choice((4, 16))
    big = rng.random() < 0.25
    side = {1: (60, 400), 2: (10, 30), 3: (5, 9)}[n][big]
    batch = rng.choice((1, 2, 3))
    kernel = [rng.choice((1, 2, 3, 3, 4, 5)) for _ in range(n)]
    stride = [rng.choice((1, 1, 2, 3)) for _ in range(n)]
    dilation = [rng.choice((1, 1, 1, 2)) for _ in range(n)]
    size = [max(side + rng.randrange(-2, 3), (k - 1) * d + 1) for k, d in zip(kernel, dilation)]
    c_in, c_out = cg_in * groups, cg_out * groups
    x = torch.randn(batch, c_in, *size)
    params: dict[str, object] = {"stride": stride, "dilation": dilation, "groups": groups}
    if transpose:
        w = torch.randn(c_in, cg_out, *kernel)
        params["padding"] = [rng.randrange(0, (k - 1) * d + 1) for k, d in zip(kernel, dilation)]
    else:
        w = torch.randn(c_out, cg_in, *kernel)
        params["padding"] = rng.choice((0, "same")) if all(s == 1 for s in stride) else [rng.randrange(0, k) for k in kernel]
    return transpose, x, w, params


def _explained(text: str) -> list[str]:
    return re.findall(r"^  chosen: (\w+):", text, flags=re.M)


def _executed(transpose: bool, x: torch.Tensor, w: torch.Tensor, params: dict[str, object]) -> list[str]:
    xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
    algorithms.record_executed(True)
    try:
        fn = AF.conv_transpose if transpose else AF.conv
        y = fn(xr, wr, **params)  # type: ignore[arg-type]
        y.backward(torch.randn_like(y))
    finally:
        done = algorithms.record_executed(False)
    assert done is not None
    return [name for _, name in done]


@pytest.mark.parametrize("seed", range(CALLS))
def test_explain_reports_what_runs(seed: int) -> None:
    rng = random.Random(seed)
    transpose, x, w, params = _draw(rng)
    text = anyconv.explain_algorithm(x, w, transpose=transpose, **params)  # type: ignore[arg-type]
    reported = _explained(text)
    assert len(reported) == 3, text
    ran = _executed(transpose, x, w, params)
    assert ran == reported, f"{tuple(x.shape)} {tuple(w.shape)} {params} transpose={transpose}: ran {ran}\n{text}"
    # choose_algorithm returns a registered name (API): a variant is reported as its algorithm
    public = anyconv.choose_algorithm(x, w, transpose=transpose, **params)  # type: ignore[arg-type]
    family = ran[0] if ran[0] in algorithms.names() else getattr(algorithms.variant(ran[0]), "ALGORITHM", None)
    assert public in algorithms.names() and (family is None or public == family)


def test_recorder_is_per_thread_and_off_by_default() -> None:
    import threading

    x, w = torch.randn(1, 2, 9), torch.randn(3, 2, 3)
    AF.conv(x, w)  # nothing records
    seen: list[object] = []
    algorithms.record_executed(True)
    try:
        t = threading.Thread(target=lambda: seen.append(AF.conv(x, w).shape))
        t.start()
        t.join()
        AF.conv(x, w)
    finally:
        done = algorithms.record_executed(False)
    assert done is not None and len(done) == 1 and done[0][0] == "corr"
