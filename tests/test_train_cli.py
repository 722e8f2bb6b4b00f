"""``anyconv train / eval / predict`` on the command line: help examples, runs, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from anyconv.cli import main
from anyconv.models import create_model, with_torch_layers

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    code = main(["train", "--epochs", "2", "--num-samples", "150", "--batch-size", "30", "--out", str(out), "--no-progress"])
    assert code == 0
    return out


@pytest.mark.parametrize("command", ["train", "eval", "predict"])
def test_help_has_an_example(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "example" in text.lower() and f"anyconv {command}" in text


def test_train_prints_progress_and_final_accuracy(run_dir):
    result = json.loads((run_dir / "result.json").read_text())
    assert 0.0 <= result["test_acc"] <= 1.0 and result["steps"] == 2 * 4


def test_eval_reports_the_run_accuracy(run_dir, capsys):
    assert main(["eval", str(run_dir), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["accuracy"] == json.loads((run_dir / "result.json").read_text())["test_acc"]
    assert got["samples"] == 30 and got["split"] == "test"


def test_predict_matches_a_torch_reference(run_dir, tmp_path, capsys):
    state = torch.load(run_dir / "last.pt", weights_only=True)["model"]
    ref = with_torch_layers(create_model("mnist1d_cnn"))
    ref.load_state_dict(state)
    x = np.random.RandomState(0).randn(3, 40).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert main(["predict", str(run_dir / "last.pt"), str(tmp_path / "x.npy"), "--top", "2", "--json"]) == 0
    rows = [json.loads(s) for s in capsys.readouterr().out.splitlines()]
    with torch.no_grad():
        p = ref.eval()(torch.tensor(x)).softmax(-1)
    for row, pr in zip(rows, p):
        assert int(row["classes"][0]) == int(pr.argmax())
        assert row["probabilities"][0] == pytest.approx(float(pr.max()), abs=1e-5)
    assert main(["predict", str(run_dir), "--dataset", "mnist1d", "--index", "0", "3"]) == 0
    assert capsys.readouterr().out.count("mnist1d[") == 2


@pytest.mark.parametrize(
    "argv, words",
    [(["train", "--epochs", "0"], "epochs"), (["train", "--model", "nope"], "model"),
     (["train", "--data", "/no/such/dir"], "does not exist"), (["train", "--batch-size", "5", "--nproc", "2"], "batch-size"),
     (["train", "--device", "tpu"], "device"), (["train", "--dataset", "imagenet"], "--dataset"),
     (["train", "--model", "cifar_cnn", "--num-samples", "100", "--out", "/tmp/anyconv-never-written"], "does not take"), (["eval", "/no/such/run"], "does not exist"),
     (["predict", "/no/such/run"], "does not exist"), (["train", "--resume", "/no/such/run"], "does not exist")],
)
def test_bad_input_is_one_line(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err


def test_wrong_inputs_for_a_checkpoint(run_dir, tmp_path, capsys):
    np.save(tmp_path / "bad.npy", np.zeros((2, 41), np.float32))
    assert main(["predict", str(run_dir), str(tmp_path / "bad.npy")]) == 2
    assert "bad.npy" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert main(["eval", str(tmp_path / "junk.pt")]) == 2
    assert "junk.pt" in capsys.readouterr().err


def test_subprocess_errors_have_no_traceback(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"junk")
    for argv in (["train", "--lr", "-1"], ["eval", str(tmp_path / "junk.pt")]):
        p = subprocess.run([sys.executable, "-m", "anyconv", *argv], env=ENV, capture_output=True, text=True, timeout=120)
        assert p.returncode == 2 and "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_train_lenet5_on_an_idx_folder_then_eval(tmp_path, capsys):
    import struct

    rng = np.random.RandomState(0)
    data = tmp_path / "mnist"
    data.mkdir()
    for prefix, n in (("train", 20), ("t10k", 10)):
        x = rng.randint(0, 256, (n, 28, 28)).astype(np.uint8)
        y = (np.arange(n) % 10).astype(np.uint8)
        for name, a in ((f"{prefix}-images-idx3-ubyte", x), (f"{prefix}-labels-idx1-ubyte", y)):
            (data / name).write_bytes(bytes([0, 0, 8, a.ndim]) + b"".join(struct.pack(">I", s) for s in a.shape) + a.tobytes())
    out = tmp_path / "run"
    argv = ["train", "--data", str(data), "--model", "lenet5", "--epochs", "1", "--batch-size", "10", "--out", str(out),
            "--no-progress"]
    assert main(argv) == 0
    assert "lenet5" in capsys.readouterr().out
    assert main(["eval", str(out), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["samples"] == 10 and got["data"] == "mnist"
