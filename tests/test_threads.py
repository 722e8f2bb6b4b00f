"""Thread safety: per-context workspace limits, the shared caches, and a stress run of every op.

Run with ``-s`` to see the stress run's call count.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F

import anyconv
import anyconv.functional as AF
from anyconv.algorithms import _small_gemm as _small
from anyconv.core import workspace as _workspace
from anyconv.core.cache import BoundedCache
from anyconv.core.spec import CorrSpec

MIB = 2**20
TIMEOUT = 10.0  # seconds any thread waits for its partner before the test fails


@pytest.fixture(autouse=True)
def _default_limit() -> Iterator[None]:
    """Every test starts and ends with the default limit (even against a leaky implementation)."""
    yield
    anyconv.set_workspace_limit(_workspace.DEFAULT_WORKSPACE_LIMIT)


def _run_threads(*targets: Callable[[], None]) -> None:
    errors: list[str] = []

    def guarded(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException:  # noqa: BLE001 - reported below with its traceback
                errors.append(traceback.format_exc())
        return run

    threads = [threading.Thread(target=guarded(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT * 2)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors[0]


# ----------------------------------------------------------------------- (a) workspace limit


def test_overlapping_workspace_blocks_in_two_threads() -> None:
    """T1 enters 64 MiB, T2 enters 2 MiB, T1 exits, T2 exits: each saw its own limit, and the
    limit afterwards is the default (a module global left it at 64 MiB and let T2 see T1's)."""
    default = anyconv.get_workspace_limit()
    t1_in, t2_in, t1_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, int] = {}

    def t1() -> None:
        with anyconv.workspace_limit(64 * MIB):
            t1_in.set()
            assert t2_in.wait(TIMEOUT)
            seen["t1 inside, t2 inside"] = anyconv.get_workspace_limit()
        seen["t1 after"] = anyconv.get_workspace_limit()
        t1_out.set()

    def t2() -> None:
        assert t1_in.wait(TIMEOUT)
        seen["t2 before, t1 inside"] = anyconv.get_workspace_limit()
        with anyconv.workspace_limit(2 * MIB):
            t2_in.set()
            assert t1_out.wait(TIMEOUT)
            seen["t2 inside, t1 out"] = anyconv.get_workspace_limit()
            seen["t2 scratch"] = _workspace.scratch_budget()
        seen["t2 after"] = anyconv.get_workspace_limit()

    _run_threads(t1, t2)
    assert seen == {
        "t1 inside, t2 inside": 64 * MIB, "t1 after": default, "t2 before, t1 inside": default,
        "t2 inside, t1 out": 2 * MIB, "t2 scratch": MIB, "t2 after": default,
    }
    assert anyconv.get_workspace_limit() == default


def test_overlapping_workspace_blocks_in_two_asyncio_tasks() -> None:
    """The same interleaving with two tasks of one event loop (one thread)."""
    default = anyconv.get_workspace_limit()
    seen: dict[str, int] = {}

    async def main() -> None:
        t1_in, t2_in, t1_out = asyncio.Event(), asyncio.Event(), asyncio.Event()

        async def t1() -> None:
            with anyconv.workspace_limit(64 * MIB):
                t1_in.set()
                await t2_in.wait()
                seen["t1 inside"] = anyconv.get_workspace_limit()
            seen["t1 after"] = anyconv.get_workspace_limit()
            t1_out.set()

        async def t2() -> None:
            await t1_in.wait()
            seen["t2 before"] = anyconv.get_workspace_limit()
            with anyconv.workspace_limit(2 * MIB):
                t2_in.set()
                await t1_out.wait()
                seen["t2 inside"] = anyconv.get_workspace_limit()
            seen["t2 after"] = anyconv.get_workspace_limit()

        await asyncio.wait_for(asyncio.gather(t1(), t2()), TIMEOUT)
        seen["loop after"] = anyconv.get_workspace_limit()

    asyncio.run(main())
    assert seen == {"t1 inside": 64 * MIB, "t1 after": default, "t2 before": default, "t2 inside": 2 * MIB,
                    "t2 after": default, "loop after": default}
    assert anyconv.get_workspace_limit() == default


def test_set_workspace_limit_is_the_process_default() -> None:
    """``set_workspace_limit`` reaches every thread outside a block; a block governs its thread only."""
    seen: list[int] = []
    with anyconv.workspace_limit(3 * MIB):
        anyconv.set_workspace_limit(5 * MIB)
        assert anyconv.get_workspace_limit() == 3 * MIB  # the block still governs here
        _run_threads(lambda: seen.append(anyconv.get_workspace_limit()))
    assert seen == [5 * MIB] and anyconv.get_workspace_limit() == 5 * MIB


# ---------------------------------------------------------------------------- (b) stress run


def _conv_case(r: random.Random, transpose: bool) -> tuple[Callable[[], Any], Callable[[], Any], bool]:
    n = r.choice([1, 2])
    g = r.choice([1, 1, 2])
    c, o = g * r.randint(1, 3), g * r.randint(1, 3)
    k = [r.randint(1, 3) for _ in range(n)]
    size = [r.randint(5, 9) for _ in range(n)]  # >= the largest dilated kernel
    s, p, d = r.randint(1, 2), r.randint(0, 1), r.randint(1, 2)
    grad = r.random() < 0.4
    x = torch.randn(r.randint(1, 3), c, *size, dtype=torch.float64, requires_grad=grad)
    if transpose:
        w = torch.randn(c, o // g, *k, dtype=torch.float64, requires_grad=grad)
        op = r.choice([p, 0])  # output_padding < stride or dilation
        op = op if op < max(s, d) else 0
        ref = {1: F.conv_transpose1d, 2: F.conv_transpose2d}[n]
        return (lambda: AF.conv_transpose(x, w, stride=s, padding=p, output_padding=op, groups=g, dilation=d,
                                          algorithm=_algorithm(r)),
                lambda: ref(x, w, stride=s, padding=p, output_padding=op, groups=g, dilation=d), grad)
    w = torch.randn(o, c // g, *k, dtype=torch.float64, requires_grad=grad)
    b = torch.randn(o, dtype=torch.float64) if r.random() < 0.5 else None
    ref = {1: F.conv1d, 2: F.conv2d}[n]
    return (lambda: AF.conv(x, w, b, stride=s, padding=p, dilation=d, groups=g, algorithm=_algorithm(r)),
            lambda: ref(x, w, b, stride=s, padding=p, dilation=d, groups=g), grad)


def _algorithm(r: random.Random) -> str:
    return r.choice(["auto"] * 4 + list(anyconv.algorithms.names()))


def _pool_case(r: random.Random) -> tuple[Callable[[], Any], Callable[[], Any], bool]:
    n = r.choice([1, 2])
    x = torch.randn(r.randint(1, 3), r.randint(1, 3), *[r.randint(5, 9) for _ in range(n)], dtype=torch.float64)
    k, s = r.randint(1, 3), r.randint(1, 2)
    p = r.randint(0, k // 2)
    kind = r.choice(["max", "avg", "lp", "adaptive_avg", "adaptive_max", "unfold_fold"])
    if kind == "max":
        return (lambda: AF.max_pool(x, k, s, p, _n=n), lambda: getattr(F, f"max_pool{n}d")(x, k, s, p), False)
    if kind == "avg":
        return (lambda: AF.avg_pool(x, k, s, p, _n=n), lambda: getattr(F, f"avg_pool{n}d")(x, k, s, p), False)
    if kind == "lp":
        xa = x.abs()
        return (lambda: AF.lp_pool(xa, 2.0, k, s, _n=n), lambda: getattr(F, f"lp_pool{n}d")(xa, 2.0, k, s), False)
    out = tuple(r.randint(1, 4) for _ in range(n))
    if kind == "adaptive_avg":
        return (lambda: AF.adaptive_avg_pool(x, out, _n=n), lambda: getattr(F, f"adaptive_avg_pool{n}d")(x, out), False)
    if kind == "adaptive_max":
        return (lambda: AF.adaptive_max_pool(x, out, _n=n), lambda: getattr(F, f"adaptive_max_pool{n}d")(x, out), False)
    x4 = torch.randn(r.randint(1, 2), r.randint(1, 3), r.randint(4, 8), r.randint(4, 8), dtype=torch.float64)
    size = tuple(x4.shape[2:])

    def ours() -> torch.Tensor:
        return AF.fold(AF.unfold(x4, k, 1, p, s), size, k, 1, p, s)

    return ours, lambda: F.fold(F.unfold(x4, k, 1, p, s), size, k, 1, p, s), False


def _check(ours: Callable[[], Any], ref: Callable[[], Any], grad: bool) -> None:
    got, want = ours(), ref()
    torch.testing.assert_close(got, want, rtol=1e-7, atol=1e-7)
    if grad:
        leaves = [t for t in _leaves(want) if t.requires_grad]
        gy = torch.randn_like(want)
        for a, b in zip(torch.autograd.grad(got, leaves, gy), torch.autograd.grad(want, leaves, gy)):
            torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-7)


def _leaves(y: torch.Tensor) -> list[torch.Tensor]:
    """The leaf tensors a reference output depends on (its inputs with requires_grad)."""
    seen, out, todo = set(), [], [y.grad_fn]
    while todo:
        fn = todo.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        if hasattr(fn, "variable"):
            out.append(fn.variable)
        todo += [f for f, _ in fn.next_functions]
    return out


def _explain_case(r: random.Random) -> None:
    x = torch.randn(r.randint(1, 2), 2, r.randint(6, 12))
    w = torch.randn(r.choice([1, 3]), 2, r.randint(1, 3))
    names = set(anyconv.algorithms.names())
    assert anyconv.choose_algorithm(x, w, padding=1) in names
    assert isinstance(anyconv.explain_algorithm(x, w, stride=2), str)


def _stress_worker(seed: int, deadline: float, counts: list[int], failures: list[str]) -> None:
    r = random.Random(seed)
    torch.manual_seed(seed)  # (per thread in torch's CPU generator: shapes come from r)
    calls = 0
    while time.perf_counter() < deadline:
        kind = r.random()
        limit = r.choice([None, None, MIB, 2 * MIB, 64 * MIB])
        try:
            with anyconv.workspace_limit(limit) if limit else contextlib.nullcontext():
                if kind < 0.08:
                    _explain_case(r)
                else:
                    ours, ref, grad = _conv_case(r, kind < 0.3) if kind < 0.6 else _pool_case(r)
                    try:
                        _check(ours, ref, grad)
                    except ValueError as e:
                        # an explicit algorithm that cannot serve the call says why; the reason is its
                        # capability, never a workspace limit (tiny calls fit every limit)
                        if "cannot serve this call" not in str(e) or "budget" in str(e) or "workspace" in str(e):
                            raise
                assert anyconv.get_workspace_limit() == (limit or _workspace.DEFAULT_WORKSPACE_LIMIT)
            calls += 1
        except BaseException:  # noqa: BLE001 - every failure is reported by the test
            failures.append(traceback.format_exc())
            if len(failures) > 20:
                break
    counts.append(calls)


def test_stress_every_op_in_eight_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """8 threads for 3 s: random ops, shapes, algorithms and workspace blocks, each result (and
    gradient) checked against torch's. The shared caches are made small so that entries are
    evicted while other threads use them (the small path's indices: a few plans' worth)."""
    from anyconv.algorithms import auto
    from anyconv.core import spec as _spec

    monkeypatch.setattr(_spec, "_SPEC_CACHE", BoundedCache(16))
    monkeypatch.setattr(auto, "_CACHE", BoundedCache(16))
    monkeypatch.setattr(_small, "_PLANS", BoundedCache(8))
    monkeypatch.setattr(_small, "_COL2IM_PLANS", BoundedCache(4))
    monkeypatch.setattr(_small, "_INDICES", BoundedCache(64, max_weight=8192, weight=lambda t: t.numel() * 8))
    threads_before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        counts: list[int] = []
        failures: list[str] = []
        deadline = time.perf_counter() + 3.0
        workers = [threading.Thread(target=_stress_worker, args=(seed, deadline, counts, failures))
                   for seed in range(8)]
        for t in workers:
            t.start()
        for t in workers:
            t.join(60)
    finally:
        torch.set_num_threads(threads_before)
    assert not any(t.is_alive() for t in workers), "a worker hung"
    print(f"\nstress: {sum(counts)} checked calls in 8 threads ({counts}), {len(failures)} failures")
    assert not failures, f"{len(failures)} failures; first:\n{failures[0]}"
    assert len(counts) == 8 and sum(counts) >= 200
    assert anyconv.get_workspace_limit() == _workspace.DEFAULT_WORKSPACE_LIMIT


# ------------------------------------------------------------------------ (c) the _small plans


def test_small_plans_are_immutable() -> None:
    p = _small.Plan.of((1, 1, 4), (1, 1, 3), CorrSpec((2,), (1,), ((1, 1),), 1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.pad = None  # type: ignore[misc]


def test_small_path_survives_index_eviction_between_lookup_and_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deterministic interleaving: after every index lookup the small path makes in thread A,
    thread B empties the index cache (what a call overflowing ``INDEX_BUDGET`` does) before A goes
    on. A path that re-read a shared plan's index after checking it (the old lazily filled
    ``Plan.gather``, reset by any thread's eviction) would then use ``None``."""
    indices: BoundedCache[tuple[_small.Plan, int], torch.Tensor] = BoundedCache(64)
    a_looked, b_evicted = threading.Event(), threading.Event()
    in_a = threading.local()
    evictions: list[int] = []

    class Hooked(BoundedCache[tuple[_small.Plan, int], torch.Tensor]):
        def get(self, key: Any, default: Any = None) -> Any:
            value = indices.get(key, default)
            if getattr(in_a, "on", False):
                a_looked.set()
                assert b_evicted.wait(TIMEOUT)
                b_evicted.clear()
            return value

        def get_or_make(self, key: Any, make: Any) -> Any:
            value = indices.get_or_make(key, make)
            return self.get(key, value) if value is not None else value

    monkeypatch.setattr(_small, "_INDICES", Hooked(64))
    x = torch.randn(3, 2, 9, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    gy = torch.randn(3, 4, 5, dtype=torch.float64)
    done = threading.Event()
    got: list[tuple[torch.Tensor, ...]] = []

    def a() -> None:
        in_a.on = True
        try:
            from anyconv import algorithms

            algorithms.record_executed(True)
            try:
                y = AF.conv(x, w, padding=1, stride=2)
            finally:
                ran = algorithms.record_executed(False)
            assert ran == [("corr", "small")]  # the small variant served it (its plan kept for backward)
            got.append((y.detach(), *torch.autograd.grad(y, (x, w), gy)))
        finally:
            in_a.on = False
            done.set()

    def b() -> None:
        while not done.is_set():
            if a_looked.wait(0.01):
                a_looked.clear()
                indices.clear()
                evictions.append(1)
                b_evicted.set()

    _run_threads(a, b)
    ref = F.conv1d(x, w, padding=1, stride=2)
    want = (ref.detach(), *torch.autograd.grad(ref, (x, w), gy))
    assert evictions, "the hook never ran: the small path did not look up an index"
    for g, wv in zip(got[0], want):
        torch.testing.assert_close(g, wv, rtol=1e-10, atol=1e-10)
