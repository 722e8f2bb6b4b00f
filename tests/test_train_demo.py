"""The training section of ``anyconv demo`` (run small here; the real one trains 20 epochs)."""

from __future__ import annotations

import pytest

from anyconv.train import TrainConfig
from anyconv.train.demo import run_training_demo


def test_training_demo_compares_anyconv_and_torch_layers():
    pytest.importorskip("sklearn")
    lines: list[str] = []
    out = run_training_demo(
        lambda *a: lines.append(" ".join(map(str, a))),
        mnist1d=TrainConfig(epochs=2, num_samples=100, batch_size=20, progress=False),
        digits=TrainConfig(model="cifar_cnn", dataset="digits", epochs=1, batch_size=64, progress=False),
    )
    a, t = out["mnist1d"]["anyconv"], out["mnist1d"]["torch"]
    assert a["epochs"] == t["epochs"] == 2 and a["params"] == t["params"] == 5210
    # same initial weights and batches: 10 Adam steps in float32 end at (nearly) the same accuracy
    assert abs(a["test_acc"] - t["test_acc"]) <= 0.05
    text = "\n".join(lines)
    assert "anyconv" in text and "torch" in text and f"{100 * a['test_acc']:.1f}%" in text
    assert out["digits"] is not None and 0.0 <= out["digits"]["test_acc"] <= 1.0 and "digits" in text
