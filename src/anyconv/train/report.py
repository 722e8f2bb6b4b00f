"""What a run writes beside its checkpoints: ``metrics.csv``, ``metrics.jsonl``, ``curves.png``."""

from __future__ import annotations

import csv
import json
import os
from typing import Any

COLUMNS = ("epoch", "step", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "epoch_time_s", "samples_per_s")


def write_metrics(run_dir: str, history: list[dict[str, Any]]) -> None:
    """Rewrite both metric files from the full history (one row per finished epoch).

    Rewriting (rather than appending) keeps the files exact after a kill and ``--resume``.
    """
    with open(os.path.join(run_dir, "metrics.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(history)
    with open(os.path.join(run_dir, "metrics.jsonl"), "w", encoding="utf-8") as f:
        for row in history:
            f.write(json.dumps(row, sort_keys=True) + "\n")


def plot_curves(run_dir: str, history: list[dict[str, Any]]) -> str | None:
    """Loss and accuracy per epoch as ``curves.png`` (None when matplotlib is not installed)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    epochs = [r["epoch"] for r in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.plot(epochs, [r["train_loss"] for r in history], label="train")
    a.plot(epochs, [r["test_loss"] for r in history], label="test")
    a.set_xlabel("epoch")
    a.set_ylabel("cross-entropy")
    a.legend()
    b.plot(epochs, [100 * r["train_acc"] for r in history], label="train")
    b.plot(epochs, [100 * r["test_acc"] for r in history], label="test")
    b.set_xlabel("epoch")
    b.set_ylabel("accuracy (%)")
    b.legend()
    fig.tight_layout()
    path = os.path.join(run_dir, "curves.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
