"""The training part of ``anyconv demo``: anyconv's layers against torch's on the same run.

1. The MNIST-1D CNN on MNIST-1D (generated in process), trained twice from the same initial
   weights, data order and seed: once with anyconv's conv layers, once with torch's; the two
   test accuracies and epoch times are printed side by side.
2. The learning material's CIFAR-10 model on scikit-learn's 8x8 digits (upsampled to 16x16),
   when scikit-learn is installed.

Nothing is downloaded and nothing is left on disk (runs go to a temporary folder).
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable
from typing import Any

from .config import TrainConfig
from .loop import train

MNIST1D = TrainConfig(epochs=30, batch_size=32, progress=False)
DIGITS = TrainConfig(model="cifar_cnn", dataset="digits", epochs=8, batch_size=32, progress=False)


def _quiet(*args: Any, **kwargs: Any) -> None:
    return None


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    times = [r["epoch_time_s"] for r in result["history"]]
    return {"test_acc": result["test_acc"], "epoch_time_s": statistics.median(times), "train_time_s": sum(times),
            "params": result["params"], "epochs": len(times)}


def run_training_demo(print_fn: Callable[..., Any] = print, mnist1d: TrainConfig = MNIST1D,
                      digits: TrainConfig | None = DIGITS) -> dict[str, Any]:
    """Train the demo models and print a side-by-side comparison; return the numbers.

    Returns:
        ``{"mnist1d": {"anyconv": {...}, "torch": {...}}, "digits": {...} | None}``; each entry
        has ``test_acc``, ``epoch_time_s`` (median), ``train_time_s``, ``params``, ``epochs``.
    """
    out: dict[str, Any] = {"mnist1d": {}, "digits": None}
    c = mnist1d
    print_fn(
        f"\nTraining the MNIST-1D CNN (Greydanus & Kobak 2020) on MNIST-1D generated in process: "
        f"{c.epochs} epochs, batch {c.batch_size}, {c.optimizer} lr {c.lr}, {c.schedule} schedule, seed {c.seed}; "
        "same initial weights, data order and seed for both layer kinds."
    )
    with tempfile.TemporaryDirectory(prefix="anyconv-demo-") as tmp:
        for layers in ("anyconv", "torch"):
            print_fn(f"  training with {layers} layers ...")
            result = train(c.replace(layers=layers, out=f"{tmp}/{layers}"), print_fn=_quiet)
            out["mnist1d"][layers] = _summary(result)
        a, t = out["mnist1d"]["anyconv"], out["mnist1d"]["torch"]
        print_fn(f"  {'layers':<10}{'test accuracy':>15}{'epoch time':>13}{'total':>10}")
        for name, r in (("anyconv", a), ("torch", t)):
            print_fn(f"  {name:<10}{100 * r['test_acc']:>14.1f}%{r['epoch_time_s']:>12.2f}s{r['train_time_s']:>9.1f}s")
        print_fn(
            f"  ({a['params']:,} parameters; epoch time = median training time per epoch on this machine, "
            f"anyconv / torch = {a['epoch_time_s'] / max(t['epoch_time_s'], 1e-9):.1f}x)"
        )
        if digits is None:
            return out
        try:
            import sklearn  # noqa: F401
        except ImportError:
            print_fn("\n(scikit-learn is not installed: skipping the digits run; pip install 'anyconv[digits]')")
            return out
        d = digits
        print_fn(
            f"\nTraining the learning material's CIFAR-10 model on scikit-learn's digits (16x16): "
            f"{d.epochs} epochs, batch {d.batch_size}, {d.optimizer} lr {d.lr} ..."
        )
        out["digits"] = _summary(train(d.replace(out=f"{tmp}/digits"), print_fn=_quiet))
        r = out["digits"]
        print_fn(
            f"  cifar_cnn ({r['params']:,} parameters) test accuracy {100 * r['test_acc']:.1f}%, "
            f"{r['epoch_time_s']:.2f}s per epoch"
        )
    return out


def demo_section(print_fn: Callable[..., Any] = print) -> int:
    """``anyconv demo``'s training section: exit status 1 when anyconv's accuracy is off torch's.

    The two MNIST-1D runs start from the same weights and see the same batches, so their
    accuracies differ only by float32 rounding carried through training; more than
    ``ACCURACY_GAP`` apart means a defect, not noise.
    """
    result = run_training_demo(print_fn)
    gap = abs(result["mnist1d"]["anyconv"]["test_acc"] - result["mnist1d"]["torch"]["test_acc"])
    if gap > ACCURACY_GAP:
        print_fn(f"FAILED: anyconv and torch layers differ by {100 * gap:.1f} accuracy points (> {100 * ACCURACY_GAP:g})")
        return 1
    return 0


ACCURACY_GAP = 0.03
