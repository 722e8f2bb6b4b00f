"""Nothing unpickles what the user did not write: every file-taking argument of every subcommand.

The subcommands' arguments are enumerated from ``anyconv.cli.build_parser()``. ``ARGS``
classifies every argument whose name suggests a path; an argument it does not know fails
:func:`test_every_pathlike_argument_is_classified`, and every ``"input"`` argument must have a
case in ``CASES`` that plants a pickle payload (one that *would* create a marker file if it were
unpickled: checked by a control load) and runs the command: exit status 2, one line naming the
file, no traceback, no marker.
"""

from __future__ import annotations

import argparse
import io
import os
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from anyconv.cli import build_parser, main
from anyconv.train import TrainConfig, train

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
# a name that suggests a path: a new argument matching it must be classified in ARGS
PATHLIKE = re.compile(r"weight|resume|checkpoint|ckpt|input|data|file|path|run|load|model|out|dir|state|"
                      r"pickle|config|cache|image|npz|npy|pt$|save|source|from")

# (subcommand, dest) -> kind. input: a file anyconv reads (must have a case in CASES);
# code: a Python file the user names to import (running it is the point); output: written only;
# other: not a path (a name, a shape, a number, a switch).
ARGS = {
    ("train", "data"): "input", ("train", "resume"): "input", ("train", "out"): "output",
    ("train", "model"): "other", ("train", "dataset"): "other", ("train", "checkpoint_every"): "other",
    ("train", "weight_decay"): "other",
    ("eval", "checkpoint"): "input", ("eval", "data"): "input", ("eval", "dataset"): "input",
    ("predict", "checkpoint"): "input", ("predict", "inputs"): "input", ("predict", "dataset"): "input",
    ("plot", "weights"): "input", ("plot", "out"): "output", ("plot", "model"): "other",
    ("plot", "input_size"): "other", ("plot", "trust_pickle"): "other",
    ("summary", "model"): "code", ("summary", "input"): "other",
    ("norm", "model"): "code", ("norm", "input"): "other",
    ("shape", "input"): "other", ("shape", "out_channels"): "other", ("shape", "output_padding"): "other",
    ("shape", "output_size"): "other", ("shape", "weight_shape"): "other",
    ("animate", "input_size"): "other", ("animate", "out"): "output", ("animate", "out_channels"): "other",
    ("animate", "output_padding"): "other",
    ("bench", "out"): "output", ("tune", "out"): "output", ("bench", "models"): "other", ("bench", "json"): "output",
    ("playground", "out"): "output",
}


class Payload:
    """Unpickling this calls ``open(marker, "w")``: the marker file appears."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (io.open, (self.marker, "w"))


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _pathlike(action: argparse.Action) -> bool:
    names = [action.dest, *action.option_strings, str(action.metavar or "")]
    return isinstance(action.type, argparse.FileType) or any(PATHLIKE.search(n.lower()) for n in names)


def test_every_pathlike_argument_is_classified():
    seen, missing = set(), []
    for name, parser in _subcommands().items():
        for action in parser._actions:
            key = (name, action.dest)
            seen.add(key)
            if _pathlike(action) and key not in ARGS:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, f"classify these arguments in ARGS (input/code/output/other) and test them: {missing}"
    stale = sorted(set(ARGS) - seen)
    assert not stale, f"ARGS names arguments the parsers do not have: {stale}"


# ---- planting payloads (each checks that the payload fires when unpickled unsafely) -----------------

def _fires(marker: Path, load) -> None:
    assert not marker.exists()
    load()
    assert marker.exists(), "control: the payload must run when unpickled unsafely"
    marker.unlink()


def plant_torch(path: Path, marker: Path) -> Path:
    torch.save({"format": "anyconv-checkpoint", "version": 1, "config": {}, "model": {}, "x": Payload(marker)}, path)
    _fires(marker, lambda: torch.load(path, weights_only=False))
    return path


def plant_cifar(folder: Path, marker: Path) -> Path:
    folder.mkdir()
    for name in ("data_batch_1", "test_batch"):
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": Payload(marker), b"labels": [0]}, f)
        _fires(marker, lambda n=name: pickle.loads((folder / n).read_bytes()))
    return folder


def plant_npy(path: Path, marker: Path) -> Path:
    np.save(path, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    _fires(marker, lambda: np.load(path, allow_pickle=True))
    return path


def plant_npz(path: Path, marker: Path) -> Path:
    obj = np.array([Payload(marker)], dtype=object)
    np.savez(path, x=obj, y=np.zeros(1, np.int64), x_train=obj, y_train=np.zeros(1, np.int64))
    _fires(marker, lambda: np.load(path, allow_pickle=True)["x"])
    return path


def plant_run(folder: Path, marker: Path) -> Path:
    folder.mkdir()
    plant_torch(folder / "last.pt", marker)
    return folder


# (subcommand, dest) -> cases: (label, argv builder(tmp, marker, good_run) -> (argv, the planted file's name))
CASES = {
    ("train", "resume"): [
        ("file", lambda t, m, g: (["train", "--resume", str(plant_torch(t / "evil.pt", m))], "evil.pt")),
        ("folder", lambda t, m, g: (["train", "--resume", str(plant_run(t / "evil", m))], "last.pt")),
    ],
    ("train", "data"): [
        ("cifar", lambda t, m, g: (["train", "--data", str(plant_cifar(t / "cifar", m)), "--out", str(t / "o")],
                                   "data_batch_1")),
        ("npz", lambda t, m, g: (["train", "--data", str(plant_npz(t / "evil.npz", m)), "--out", str(t / "o")],
                                 "evil.npz")),
    ],
    ("eval", "checkpoint"): [
        ("file", lambda t, m, g: (["eval", str(plant_torch(t / "evil.pt", m))], "evil.pt")),
        ("folder", lambda t, m, g: (["eval", str(plant_run(t / "evil", m))], "last.pt")),
    ],
    ("eval", "data"): [
        ("cifar", lambda t, m, g: (["eval", str(g), "--data", str(plant_cifar(t / "cifar", m))], "data_batch_1")),
        ("npz", lambda t, m, g: (["eval", str(g), "--data", str(plant_npz(t / "evil.npz", m))], "evil.npz")),
    ],
    ("eval", "dataset"): [
        ("cifar", lambda t, m, g: (["eval", str(g), "--dataset", str(plant_cifar(t / "cifar", m))], "data_batch_1")),
    ],
    ("predict", "checkpoint"): [
        ("file", lambda t, m, g: (["predict", str(plant_torch(t / "evil.pt", m)), "--dataset", "mnist1d"], "evil.pt")),
    ],
    ("predict", "inputs"): [
        ("npy", lambda t, m, g: (["predict", str(g), str(plant_npy(t / "evil.npy", m))], "evil.npy")),
        ("npz", lambda t, m, g: (["predict", str(g), str(plant_npz(t / "evil.npz", m))], "evil.npz")),
        ("pt", lambda t, m, g: (["predict", str(g), str(plant_torch(t / "evil.pt", m))], "evil.pt")),
    ],
    ("predict", "dataset"): [
        ("cifar", lambda t, m, g: (["predict", str(g), "--dataset", str(plant_cifar(t / "cifar", m))],
                                   "data_batch_1")),
    ],
    ("plot", "weights"): [
        ("pt", lambda t, m, g: (["plot", "kernels", "--model", "lenet5", "--weights", str(plant_torch(t / "evil.pt", m)),
                                 "--out", str(t / "k.png")], "evil.pt")),
    ],
    # code: a Python file is imported by design; a pickle given there is never unpickled
    ("summary", "model"): [
        ("pt", lambda t, m, g: (["summary", str(plant_torch(t / "evil.pt", m)), "--input", "1x1x28x28"], "evil.pt")),
        ("py", lambda t, m, g: (["summary", f"{plant_torch(t / 'evil.py', m)}:Net", "--input", "1x1x28x28"],
                                "evil.py")),
    ],
    ("norm", "model"): [
        ("py", lambda t, m, g: (["norm", f"{plant_torch(t / 'evil.py', m)}:Net", "--input", "1x1x28x28"], "evil.py")),
    ],
}


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("untrusted") / "run"
    train(TrainConfig(epochs=1, num_samples=60, batch_size=20, progress=False, out=str(out)),
          print_fn=lambda *a, **k: None)
    return out


def test_every_input_argument_has_a_payload_case():
    inputs = {k for k, kind in ARGS.items() if kind in ("input", "code")}
    assert inputs == set(CASES), f"input arguments without a case: {sorted(inputs - set(CASES))}"


@pytest.mark.parametrize("key, label", [(k, label) for k, cases in CASES.items() for label, _ in cases],
                         ids=lambda v: "-".join(v) if isinstance(v, tuple) else v)
def test_a_pickle_payload_is_never_unpickled(key, label, good_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "marker"
    build = dict(CASES[key])[label]
    argv, planted = build(tmp_path, marker, good_run)
    capsys.readouterr()
    try:
        code = main(argv)
    finally:
        assert not marker.exists(), f"{argv}: the payload ran"
    err = capsys.readouterr().err.strip()
    assert code == 2, (argv, err)
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert planted in err, f"the error must name the file {planted}: {err}"


def test_plot_refusal_names_the_flag_and_the_way_out(tmp_path, capsys):
    marker = tmp_path / "marker"
    evil = plant_torch(tmp_path / "evil.pt", marker)
    assert main(["plot", "kernels", "--weights", str(evil), "--out", str(tmp_path / "k.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--weights" in err and "evil.pt" in err and "more than tensors and plain data" in err, err
    assert "--trust-pickle" in err and not marker.exists(), err


def test_trust_pickle_loads_a_genuine_pickled_module(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 3))
    torch.save(model, tmp_path / "model.pt")
    out = tmp_path / "k.png"
    assert main(["plot", "kernels", "--weights", str(tmp_path / "model.pt"), "--out", str(out)]) == 2
    assert not out.exists()
    assert main(["plot", "kernels", "--weights", str(tmp_path / "model.pt"), "--trust-pickle", "--out", str(out)]) == 0
    assert out.stat().st_size > 1000


def test_checkpoints_and_state_dicts_load_without_trust(good_run, tmp_path):
    torch.save(torch.load(good_run / "last.pt", weights_only=True)["model"], tmp_path / "state.pt")
    for weights in (good_run / "last.pt", tmp_path / "state.pt"):
        out = tmp_path / f"{weights.stem}.png"
        assert main(["plot", "kernels", "--model", "mnist1d_cnn", "--weights", str(weights), "--out", str(out)]) == 0
        assert out.is_file()


def test_help_states_the_risk(capsys):
    with pytest.raises(SystemExit):
        main(["plot", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--trust-pickle" in text and "only for files you wrote yourself" in text


def test_refusals_in_a_fresh_process_have_no_traceback(tmp_path):
    marker = tmp_path / "marker"
    evil = plant_torch(tmp_path / "evil.pt", marker)
    shutil.copy(evil, tmp_path / "last.pt")
    for argv in (["plot", "kernels", "--weights", str(evil)], ["train", "--resume", str(tmp_path)]):
        p = subprocess.run([sys.executable, "-m", "anyconv", *argv], env=ENV, capture_output=True, text=True,
                           timeout=120, cwd=tmp_path)
        assert p.returncode == 2 and "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert not marker.exists(), argv
