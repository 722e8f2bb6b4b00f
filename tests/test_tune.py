"""``auto``'s cost model data, machine profiles (``anyconv tune``) and measured choices (``set_autotune``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import anyconv
import anyconv.functional as AF
from anyconv import algorithms
from anyconv.algorithms import auto, autotune, fit, profile
from anyconv.tools.choose import core_call, core_calls, on_device

# (input, weight, kwargs): 1-3 dims, dense, depthwise, grouped, strided, dilated, 1x1, long kernel
CALLS = [
    ((2, 8, 16, 16), (16, 8, 3, 3), {"padding": 1}),
    ((2, 16, 14, 14), (16, 1, 3, 3), {"padding": 1, "groups": 16}),
    ((2, 32, 14, 14), (32, 1, 7, 7), {"padding": 3, "groups": 32}),
    ((2, 8, 12, 12), (16, 2, 3, 3), {"groups": 4, "stride": 2}),
    ((4, 8, 64), (8, 8, 5), {"padding": 4, "dilation": 2}),
    ((2, 16, 8, 8), (32, 16, 1, 1), {}),
    ((1, 2, 2000), (2, 2, 255), {"padding": 127}),
    ((1, 4, 6, 6, 6), (4, 4, 3, 3, 3), {"padding": 1}),
]


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """A private ANYCONV_CACHE, the machine profile looked up (not the tests' shipped-only setting), and
    the profile cache, auto's cache and autotune reset afterwards."""
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    monkeypatch.setenv("ANYCONV_CACHE", str(cache))
    monkeypatch.delenv("ANYCONV_PROFILE", raising=False)
    profile.reset()
    yield cache
    monkeypatch.undo()
    profile.reset()
    auto.clear_cache()


def _key() -> dict:
    return profile.machine_key(torch.get_num_threads())


def _doc(key: dict, scale: float = 2.0) -> dict:
    table = {n: {f: scale * v for f, v in c.items()} for n, c in profile.shipped().coefficients.items()}
    return {"format": 1, "fitted_on": {**key, "date": "2026-01-01", "calls": 3}, "coefficients": table}


def _write(path: Path, text: str, mode: int = 0o600) -> None:
    path.write_text(text)
    os.chmod(path, mode)


def test_shipped_coefficients_cover_every_algorithm_and_predict_positive_times():
    shipped = json.loads(profile.SHIPPED.read_text())
    assert shipped["format"] == 1 and shipped["fitted_on"]["threads"] >= 1
    table = profile.shipped().coefficients
    for name in algorithms.names():
        mod = algorithms.get(name)
        assert callable(mod.cost_features) and name in table, name
        assert hasattr(mod, "COMPUTE_DTYPE") and (hasattr(mod, "ERROR_GROWTH") or hasattr(mod, "error_growth"))
    served = set()
    for xs, ws, kw in CALLS:
        for _label, xm, wm, spec in core_calls("conv", torch.empty(xs), torch.empty(ws), backward=True, **kw):
            x, w = on_device(xm, torch.device("cpu")), on_device(wm, torch.device("cpu"))
            for name in algorithms.names():
                if algorithms.get(name).supports(x, w, spec) is not None:
                    continue
                served.add(name)
                feats = auto.features(name, x, w, spec)
                assert set(feats) <= set(table[name]), (name, set(feats) - set(table[name]))
                assert all(np.isfinite(v) and v >= 0 for v in feats.values()), (name, feats)
                assert auto.estimate_ms(name, x, w, spec) > 0, name
    assert served >= set(algorithms.names()) - {"native"} - ({"native"} if algorithms.native.unavailable() else set())


def test_compute_dtype_and_error_growth_come_from_the_modules():
    x, w = torch.zeros(()).expand(1, 4, 12, 12), torch.zeros(()).expand(4, 4, 3, 3)
    _, _, spec = core_call("conv", torch.empty(1, 4, 12, 12), torch.empty(4, 4, 3, 3), padding=1)
    assert auto.compute_dtype("winograd", torch.bfloat16) == torch.float32
    assert auto.compute_dtype("im2col", torch.bfloat16) == torch.bfloat16
    assert auto.error_growth("winograd", x, w, spec) == algorithms.winograd.WINOGRAD_GROWTH[2][4]
    assert auto.error_growth("im2col", x, w, spec) == pytest.approx(2.0 * (4 * 9) ** 0.5)


def test_nnls_recovers_known_coefficients():
    rng = np.random.default_rng(0)
    a = rng.random((30, 4))
    truth = np.array([0.5, 0.0, 2.0, 1e-3])
    assert np.allclose(fit.nnls(a, a @ truth), truth, atol=1e-9)
    # a negative least-squares solution is clamped: the best non-negative one is 0 there
    assert fit.nnls(np.eye(2), np.array([3.0, -1.0])).tolist() == [3.0, 0.0]
    rows = [({"calls": 1.0, "macs": float(m)}, 0.02 + 3e-8 * m) for m in (1e4, 1e5, 1e6, 1e7, 3e7)]
    coef = fit.fit_nnls(rows)
    assert coef["calls"] == pytest.approx(0.02, rel=1e-6) and coef["macs"] == pytest.approx(3e-8, rel=1e-6)


def test_profile_round_trip_is_used_and_explained(machine):
    key = _key()
    # (fitted at the shipped default's matrix-product rate: the GEMM terms scale alike)
    path = profile.store(_doc(key)["coefficients"], {**key, "calls": 3,
                                                      "gemm_gflops": profile.shipped().fitted_on["gemm_gflops"]})
    assert path.parent == machine and path == profile.path_for(key)
    active = profile.active()
    assert active.source == str(path) and not active.note
    assert active.coefficients == _doc(key)["coefficients"]
    x, w = torch.zeros(()).expand(2, 8, 16, 16), torch.zeros(()).expand(16, 8, 3, 3)
    _, _, spec = core_call("conv", torch.empty(2, 8, 16, 16), torch.empty(16, 8, 3, 3), padding=1)
    assert auto.estimate_ms("im2col", x, w, spec) == pytest.approx(2 * auto.estimate_ms("im2col", x, w, spec,
                                                                                         profile.shipped()))
    text = anyconv.explain_algorithm(torch.randn(2, 8, 16, 16), torch.randn(16, 8, 3, 3), padding=1, backward=False)
    assert f"cost model: machine profile {path}" in text and f"threads {key['threads']}" in text


@pytest.mark.parametrize("damage", ["not json", "negative", "format", "world-writable", "symlink", "empty table"])
def test_damaged_profile_is_ignored_with_a_reason(machine, damage):
    key = _key()
    path = profile.path_for(key)
    doc = _doc(key)
    if damage == "not json":
        _write(path, json.dumps(doc)[:-20])
    elif damage == "negative":
        doc["coefficients"]["im2col"]["macs"] = -1.0
        _write(path, json.dumps(doc))
    elif damage == "format":
        _write(path, json.dumps({**doc, "format": 99}))
    elif damage == "world-writable":
        _write(path, json.dumps(doc), 0o666)
    elif damage == "symlink":
        real = machine / "elsewhere.json"
        _write(real, json.dumps(doc))
        path.symlink_to(real)
    else:
        _write(path, json.dumps({**doc, "coefficients": {}}))
    active = profile.active()
    assert active.source == "shipped default" and active.coefficients == profile.shipped().coefficients
    reason = {"not json": "not valid JSON", "negative": "invalid coefficients for 'im2col'",
              "format": "not a profile of format 1", "world-writable": "writable by others",
              "symlink": "cannot be opened", "empty table": "lacks"}[damage]
    assert "ignored" in active.note and reason in active.note, active.note
    assert reason in anyconv.explain_algorithm(torch.randn(1, 2, 8), torch.randn(3, 2, 3), backward=False)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="changing a file's owner needs root")
def test_foreign_profile_is_ignored(machine):
    path = profile.path_for(_key())
    _write(path, json.dumps(_doc(_key())))
    os.chown(path, 12345, -1)
    assert "owned by uid 12345" in profile.active().note


@pytest.mark.parametrize("field", ["threads", "torch", "cpu", "anyconv", "isa"])
def test_profile_of_another_key_is_ignored(machine, field):
    key = _key()
    other = {**key, field: key[field] + 1 if field == "threads" else f"{key[field]}-other"}
    _write(profile.path_for(key), json.dumps(_doc(other)))  # stored under this key's name, fitted for another
    active = profile.active()
    assert active.source == "shipped default" and f"another key: {field}" in active.note
    with pytest.raises(ValueError, match="another key"):
        profile.parse(json.dumps(_doc(other)), "x", key)


def test_env_default_ignores_a_stored_profile(machine, monkeypatch):
    profile.store(_doc(_key())["coefficients"], {**_key(), "calls": 3})
    monkeypatch.setenv("ANYCONV_PROFILE", "default")
    profile.reset()
    assert profile.active().source == "shipped default" and not profile.active().note


def _cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "anyconv", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_tune_command_writes_a_valid_profile(tmp_path):
    cache = tmp_path / "cache"
    env = {**os.environ, "ANYCONV_CACHE": str(cache), "ANYCONV_NATIVE": "0", "OMP_NUM_THREADS": "1"}
    env.pop("ANYCONV_PROFILE", None)
    done = _cli("tune", "--quick", "--budget", "5", "--threads", "1", env=env)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "GFLOP/s" in out and "GB/s" in out and "shipped default" in out and "this profile" in out
    files = list(cache.glob("profile-*.json"))
    assert len(files) == 1 and f"profile written to {files[0]}" in out
    loaded = profile.read(files[0], profile.machine_key(1))  # the checks auto applies, with this key
    assert set(loaded.coefficients) >= set(algorithms.names()) and loaded.fitted_on["calls"] > 0
    assert loaded.fitted_on["peak_gflops"] > 0 and loaded.fitted_on["bandwidth_gbs"] > 0
    timed = [line.split()[0] for line in out.splitlines()
             if line.startswith("  ") and len(line.split()) > 1 and line.split()[1] not in ("-", "median")]
    assert "im2col" in timed


def test_tune_command_flags_are_checked(tmp_path):
    env = {**os.environ, "ANYCONV_CACHE": str(tmp_path)}
    bad = _cli("tune", "--budget", "0", env=env)
    assert bad.returncode == 2 and "`--budget` must be a positive number" in bad.stderr
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    both = _cli("tune", "--print", "--out", str(tmp_path / "p.json"), env=env)
    assert both.returncode == 2 and "not allowed with" in both.stderr


@pytest.fixture
def autotuned():
    autotune.clear()
    anyconv.set_autotune(True)
    yield
    anyconv.set_autotune(False)
    autotune.clear()
    auto.clear_cache()


def test_set_autotune_checks_its_argument():
    with pytest.raises(TypeError, match="`enabled` must be a bool"):
        anyconv.set_autotune(1)  # type: ignore[arg-type]


def test_autotune_keeps_the_measured_fastest_which_serves(autotuned, monkeypatch):
    # large enough for the registry (a small call's GEMM variant would serve a smaller one)
    x, w = torch.randn(4, 32, 28, 28), torch.randn(32, 32, 3, 3)
    xc, wc, spec = core_call("conv", x, w, padding=1)
    model = auto._choose(xc, wc, spec)
    ranked = sorted(model.estimates, key=model.estimates.__getitem__)
    assert len(ranked) >= 2
    runner_up = ranked[1]
    fake = iter([5.0, 1.0, 9.0])  # measured ms of the candidates in predicted order: the second is fastest
    calls = []

    def timed(fn, device_type):
        calls.append(fn)
        fn()
        return next(fake)

    monkeypatch.setattr(autotune, "time_ms", timed)
    c = auto.choose(xc, wc, spec)
    assert c.name == runner_up and c.measured[runner_up] == 1.0 and "measured fastest" in c.reason
    assert algorithms.get(c.name).supports(xc, wc, spec) is None
    n = len(calls)
    assert auto.choose(xc, wc, spec).name == runner_up and len(calls) == n  # measured once per key
    # the result is within auto's accuracy bound (normwise, float32: the runner-up may be winograd)
    ref = F.conv2d(x.double(), w.double(), padding=1)
    bound = auto.ACCURACY_ULPS * auto.unit_roundoff(torch.float32)
    assert ((AF.conv(x, w, padding=1).double() - ref).abs().max() / ref.abs().max()).item() <= bound
    text = anyconv.explain_algorithm(x, w, padding=1, backward=False)
    assert f"chosen: {runner_up}: " in text and f"{runner_up}: measured fastest (autotune)" in text


def test_autotune_real_timing_serves_and_matches_torch(autotuned):
    for xs, ws, kw in CALLS[:6]:
        x = torch.randn(xs, dtype=torch.float64, requires_grad=True)
        w = torch.randn(ws, dtype=torch.float64, requires_grad=True)
        y = AF.conv(x, w, **kw)
        ref = getattr(F, f"conv{len(xs) - 2}d")(x, w, **kw)
        torch.testing.assert_close(y, ref, rtol=1e-10, atol=1e-10)
        gy = torch.randn_like(y)
        torch.testing.assert_close(torch.autograd.grad(y, (x, w), gy), torch.autograd.grad(ref, (x, w), gy),
                                   rtol=1e-10, atol=1e-10)
        xc, wc, spec = core_call("conv", x, w, **kw)
        c = auto.choose(xc, wc, spec)
        if len(c.estimates) > 1:
            assert c.measured and c.name == min(c.measured, key=c.measured.__getitem__)


def test_autotune_never_measures_meta_or_fake(autotuned, monkeypatch):
    from torch._subclasses.fake_tensor import FakeTensorMode

    monkeypatch.setattr(autotune, "time_ms", lambda fn, dt: pytest.fail("timed a meta or fake call"))
    _, _, spec = core_call("conv", torch.empty(2, 8, 16, 16), torch.empty(16, 8, 3, 3), padding=1)
    x, w = torch.empty(2, 8, 16, 16, device="meta"), torch.empty(16, 8, 3, 3, device="meta")
    assert not auto.choose(x, w, spec).measured
    with FakeTensorMode():
        xf, wf = torch.empty(2, 8, 16, 16), torch.empty(16, 8, 3, 3)
        assert not auto.choose(xf, wf, spec).measured
        assert AF.conv(xf, wf, padding=1).shape == (2, 16, 16, 16)
    text = anyconv.explain_algorithm(torch.empty(2, 8, 16, 16, device="meta"), torch.empty(16, 8, 3, 3, device="meta"),
                                     padding=1)
    assert "measured" not in text


def test_autotune_under_jit_trace_records_only_the_op(autotuned):
    """``torch.jit.trace`` runs the op's kernel eagerly with recording paused: a measurement there is an
    eager one, and the trace holds the anyconv op (which chooses when it runs), no timing ops."""
    xr, wr = torch.randn(1, 3, 10, 10), torch.randn(4, 3, 3, 3)
    traced = torch.jit.trace(lambda a, b: AF.conv(a, b, padding=1), (xr, wr), check_trace=False)
    graph = str(traced.graph)
    assert "anyconv::" in graph and "randn" not in graph
    x2 = torch.randn(1, 3, 10, 10)
    torch.testing.assert_close(traced(x2, wr), F.conv2d(x2, wr, padding=1), rtol=1e-4, atol=1e-4)


def test_autotune_is_thread_safe(autotuned):
    errors: list[BaseException] = []
    shapes = [(xs, ws, kw) for xs, ws, kw in CALLS[:6]]

    def work(seed: int) -> None:
        try:
            for i in range(6):
                xs, ws, kw = shapes[(seed + i) % len(shapes)]
                x, w = torch.randn(xs), torch.randn(ws)
                ref = getattr(F, f"conv{len(xs) - 2}d")(x, w, **kw)
                torch.testing.assert_close(AF.conv(x, w, **kw), ref, rtol=1e-4, atol=1e-4)
        except BaseException as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_autotune_leaves_the_random_stream_alone(autotuned):
    x, w = torch.randn(2, 8, 12, 12), torch.randn(8, 8, 3, 3)
    state = torch.get_rng_state()
    AF.conv(x, w, padding=1)  # first call of this shape: measured
    xc, wc, spec = core_call("conv", x, w, padding=1)
    assert auto.choose(xc, wc, spec).measured
    assert torch.equal(torch.get_rng_state(), state)
