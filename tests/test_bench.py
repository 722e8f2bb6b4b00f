"""``anyconv bench --models`` and the machine line: the table, the JSON rows, the flag errors, the peak.

The whole-model run is one subprocess on the two smallest models with ``--quick`` and one repeat
(a few seconds); timings are not judged, only that they are there, positive and consistent.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from anyconv.bench import machine
from anyconv.bench.models import MODELS, select_models
from anyconv.bench.runner import peak_rss_bytes
from anyconv.cli import main

SRC = Path(__file__).resolve().parents[1] / "src" / "anyconv"


@pytest.fixture(scope="module")
def models_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], dict]:
    out = tmp_path_factory.mktemp("bench") / "models.json"
    # torch takes its default thread count from OMP_NUM_THREADS, else MKL_NUM_THREADS (dev.sh sets both to 1)
    env = {**os.environ, "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "PYTHONPATH": str(SRC.parent)}
    proc = subprocess.run(
        [sys.executable, "-m", "anyconv", "bench", "--models", "mnist1d_cnn,lenet5", "--quick",
         "--repeats", "1", "--json", str(out)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return proc, json.loads(out.read_text())


def test_models_table_has_the_machine_the_rows_and_the_means(models_run):
    proc, _ = models_run
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("cpu: ") and machine.cpu_model() in lines[0]
    assert re.search(r"measured peak .*GFLOP/s at 1 thread, .*GFLOP/s at 2 threads", lines[1])
    assert "Zen" not in proc.stdout or "Zen" in machine.cpu_model()
    header = next(i for i, line in enumerate(lines) if line.startswith("model "))
    assert "ratio" in lines[header] and "peak MiB" in lines[header]
    table = [line.split() for line in lines[header + 2:] if line.startswith(("mnist1d_cnn ", "lenet5 "))]
    assert {(r[0], r[2], r[3]) for r in table} == {
        (m, t, mode) for m in ("mnist1d_cnn", "lenet5") for t in ("1", "2") for mode in ("inference", "train")}
    means = [line for line in lines if re.match(r"\s+[12] thread\(s\) (inference|train)", line)]
    assert len(means) == 4
    assert f"torch {torch.__version__}" in proc.stdout
    assert proc.stderr == ""  # no tracing or profiler noise


def test_models_json_rows_are_consistent(models_run):
    proc, data = models_run
    info, rows = data["info"], data["rows"]
    assert info["complete"] and info["threads"] == [1, 2]
    assert info["torch"] == torch.__version__ and info["isa"] == machine.isa()
    assert set(info["peak_gflops"]) == {"1", "2"} and all(v > 0 for v in info["peak_gflops"].values())
    assert len(rows) == 8
    for r in rows:
        assert 0 < r["torch_ms_min"] <= r["torch_ms_median"] and 0 < r["anyconv_ms_min"] <= r["anyconv_ms_median"]
        assert r["ratio"] == pytest.approx(r["anyconv_ms_min"] / r["torch_ms_min"])
        quick = next(c.quick for c in MODELS if c.label == r["model"])
        assert r["input"] == "x".join(map(str, quick))
        assert (r["torch_peak_mib"] is None) == (r["mode"] == "inference") or sys.platform != "linux"
    # the printed geometric mean is the mean of the JSON rows' ratios
    train1 = [r["ratio"] for r in rows if r["threads"] == 1 and r["mode"] == "train"]
    mean = math.exp(sum(map(math.log, train1)) / len(train1))
    line = next(x for x in proc.stdout.splitlines() if re.match(r"\s+1 thread\(s\) train", x))
    assert float(line.split()[3].rstrip(";")) == pytest.approx(mean, abs=6e-4)


@pytest.mark.parametrize("argv, flag", [
    (["bench", "--models", "resnet19"], "--models"),
    (["bench", "--models", "lenet5,,nope"], "--models"),
    (["bench", "--models", "lenet5", "conv1d"], "--models"),
    (["bench", "--models", "--repeats", "0"], "--repeats"),
    (["bench", "--models", "--threads", "0"], "--threads"),
    (["bench", "--models", "lenet5", "--out", "rows.csv"], "--out"),
])
def test_bad_values_are_one_line_exit_2(argv, flag, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"`{flag}`" in err and "Traceback" not in err


def test_models_list_and_selection(capsys):
    assert main(["bench", "--models", "--list"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()] == [c.label for c in MODELS]
    assert {"resnet18", "resnet50", "mobilenet_v2", "vgg11", "unet", "cifar_cnn", "mnist1d_cnn", "lenet5",
            "mobilenet_v2.small"} == {c.label for c in MODELS}
    small = select_models("mobilenet_v2.small")[0]
    assert small.input == (2, 3, 64, 64) and small.extra
    assert select_models("all") == list(MODELS) == select_models(None)


def test_matmul_peak_is_measured_and_threads_restored():
    before = torch.get_num_threads()
    peaks = machine.measured_peaks([2])
    assert set(peaks) == {1, 2} and all(v > 0 for v in peaks.values())
    assert torch.get_num_threads() == before
    assert "1 thread" in machine.describe(peaks) and machine.cpu_model() in machine.describe(peaks)


def test_no_machine_is_hard_coded():
    # the peak and the CPU come from the machine the benchmark runs on, never from a default
    for path in SRC.rglob("*"):
        if path.suffix in (".py", ".c", ".h", ".json"):
            assert not re.search(r"zen ?[0-9]", path.read_text(errors="replace"), re.I), path


def test_peak_rss_sees_a_touched_allocation():
    if peak_rss_bytes(lambda: None) is None:
        pytest.skip("the OS does not let a process reset its resident-set high-water mark")
    nbytes = 64 * 2**20
    peak = peak_rss_bytes(lambda: torch.ones(nbytes // 4))
    assert peak is not None and peak >= 0.9 * nbytes
