"""Training: exact resume after a kill, data parallel == single process, anyconv == torch layers, run files."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from anyconv.train import TrainConfig, load_checkpoint, train

QUIET = dict(progress=False)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _quiet(*args, **kwargs):
    return None


def _weights(run):
    return torch.load(os.path.join(run, "last.pt"), weights_only=True)["model"]


def _tiny_images(path, n=24, n_test=8, seed=0):
    rng = np.random.RandomState(seed)
    y = np.arange(n + n_test) % 3
    x = rng.rand(n + n_test, 1, 12, 12).astype(np.float32) + y[:, None, None, None] * 0.3
    np.savez(path, x_train=x[:n], y_train=y[:n], x_test=x[n:], y_test=y[n:])
    return str(path)


def test_run_folder_files(tmp_path):
    cfg = TrainConfig(epochs=2, num_samples=100, batch_size=20, out=str(tmp_path / "run"), **QUIET)
    result = train(cfg, print_fn=_quiet)
    run = tmp_path / "run"
    saved = json.loads((run / "config.json").read_text())
    assert TrainConfig.from_dict(saved) == cfg
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    lines = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert [int(r["epoch"]) for r in rows] == [1, 2] == [r["epoch"] for r in lines]
    assert lines[-1]["step"] == 2 * 4 and float(rows[1]["test_acc"]) == lines[1]["test_acc"]
    ckpt = load_checkpoint(run)  # weights_only=True inside
    assert ckpt["epoch"] == 2 and ckpt["batch"] == 0 and ckpt["data"]["sample_shape"] == [1, 40]
    assert json.loads((run / "result.json").read_text())["test_acc"] == result["test_acc"] == lines[-1]["test_acc"]
    pytest.importorskip("matplotlib")
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_interrupted_run_resumes_to_identical_weights(tmp_path):
    cfg = TrainConfig(epochs=3, num_samples=120, batch_size=25, checkpoint_every=1, **QUIET)
    full = train(cfg.replace(out=str(tmp_path / "full")), print_fn=_quiet)

    def stop(step):
        if step == 6:  # epoch 2, batch 2 of 4 (96 train samples, batch 25)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg.replace(out=str(tmp_path / "cut")), print_fn=_quiet, on_step=stop)
    ckpt = load_checkpoint(tmp_path / "cut")
    assert (ckpt["epoch"], ckpt["batch"], ckpt["step"]) == (1, 2, 6)
    resumed = train(cfg, resume=str(tmp_path / "cut"), print_fn=_quiet)
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    assert all(torch.equal(a[k], b[k]) for k in a)
    strip = [{k: v for k, v in r.items() if k not in ("epoch_time_s", "samples_per_s")} for r in full["history"]]
    assert strip == [{k: v for k, v in r.items() if k not in ("epoch_time_s", "samples_per_s")} for r in resumed["history"]]


def test_sigkill_mid_epoch_then_resume_gives_the_same_weights(tmp_path):
    # a real SIGKILL (no cleanup, no exception) right after optimiser step 7, in a BN + dropout-free model
    data = _tiny_images(tmp_path / "d.npz")
    common = dict(model="cifar_cnn", data=data, dataset="d", epochs=3, batch_size=5, checkpoint_every=2, **QUIET)
    script = textwrap.dedent(f"""
        import os, signal
        from anyconv.train import TrainConfig, train
        cfg = TrainConfig(**{common!r}, out={str(tmp_path / 'cut')!r})
        train(cfg, print_fn=lambda *a: None,
              on_step=lambda s: os.kill(os.getpid(), signal.SIGKILL) if s == 7 else None)
    """)
    proc = subprocess.run([sys.executable, "-c", script], env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr
    assert load_checkpoint(tmp_path / "cut")["step"] == 6  # the last checkpoint before the kill
    out = subprocess.run([sys.executable, "-m", "anyconv", "train", "--resume", str(tmp_path / "cut"), "--no-progress"],
                         env=ENV, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    train(TrainConfig(**common, out=str(tmp_path / "full")), print_fn=_quiet)
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_two_gloo_processes_equal_one_process_on_the_global_batch(tmp_path):
    # cifar_cnn has BatchNorm: the two ranks must normalise over the global batch (synchronised BN).
    # SGD, not Adam: the conv biases before BN get exactly-zero gradients up to rounding noise,
    # which Adam would blow up to +-lr steps (the function stays the same, the biases would not).
    data = _tiny_images(tmp_path / "d.npz")
    args = [sys.executable, "-m", "anyconv", "train", "--data", data, "--model", "cifar_cnn", "--epochs", "2",
            "--batch-size", "8", "--optimizer", "sgd", "--lr", "0.05", "--no-progress", "--nproc", "2", "--out", str(tmp_path / "two")]
    two = subprocess.run(args, env=ENV, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr
    assert "2 process(es)" in two.stdout
    one = TrainConfig(model="cifar_cnn", data=data, dataset="d", epochs=2, batch_size=8, optimizer="sgd", lr=0.05,
                      out=str(tmp_path / "one"), **QUIET)
    train(one, print_fn=_quiet)
    a, b = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert list(a) == list(b)
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6, msg=k)
    assert load_checkpoint(tmp_path / "two")["config"]["nproc"] == 2


def test_anyconv_layers_train_like_torch_layers(tmp_path):
    cfg = TrainConfig(epochs=2, num_samples=200, batch_size=20, **QUIET)
    ours = train(cfg.replace(out=str(tmp_path / "a")), print_fn=_quiet)
    ref = train(cfg.replace(out=str(tmp_path / "t"), layers="torch"), print_fn=_quiet)
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "t")
    for k in a:  # 16 Adam steps in float32 from the same initial weights
        torch.testing.assert_close(a[k], b[k], rtol=1e-3, atol=1e-4, msg=k)
    assert abs(ours["test_acc"] - ref["test_acc"]) <= 0.05


@pytest.mark.parametrize(
    "changes, word",
    [({"epochs": 0}, "epochs"), ({"optimizer": "rmsprop"}, "optimizer"), ({"lr": -1.0}, "lr"),
     ({"schedule": "linear"}, "schedule"), ({"model": "resnet17"}, "model"), ({"model": "unet"}, "classification"), ({"nproc": 3}, "batch_size"),
     ({"algorithm": "magic"}, "algorithm"), ({"batch_size": 2.0}, "batch_size")],
)
def test_config_validation(changes, word):
    with pytest.raises((ValueError, TypeError), match=word):
        TrainConfig(**changes)


@pytest.mark.parametrize("schedule, last_lr", [("cosine", 0.0), ("step", 0.01 * 0.1**3), ("none", 0.01)])
def test_schedules_and_sgd(tmp_path, schedule, last_lr):
    cfg = TrainConfig(epochs=3, num_samples=60, batch_size=16, schedule=schedule, optimizer="sgd",
                      out=str(tmp_path / schedule), **QUIET)
    result = train(cfg, print_fn=_quiet)
    assert result["steps"] == 3 * 3
    assert result["history"][-1]["lr"] == pytest.approx(last_lr, abs=1e-12)


def test_resume_with_more_epochs_follows_the_longer_schedule(tmp_path):
    cfg = TrainConfig(epochs=2, num_samples=60, batch_size=16, out=str(tmp_path / "r"), **QUIET)
    train(cfg, print_fn=_quiet)
    longer = train(cfg, resume=str(tmp_path / "r"), print_fn=_quiet, overrides={"epochs": 4})
    assert [r["epoch"] for r in longer["history"]] == [1, 2, 3, 4] and longer["steps"] == 4 * 3
    import math

    lrs = [r["lr"] for r in longer["history"]]  # cosine over 12 steps: lr(t) = 0.01 (1 + cos(pi t / 12)) / 2
    assert lrs[2:] == pytest.approx([0.01 * (1 + math.cos(math.pi * t / 12)) / 2 for t in (9, 12)], abs=1e-12)
