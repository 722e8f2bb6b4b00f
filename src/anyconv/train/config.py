"""The resolved configuration of a training run: one frozen dataclass, validated in one place."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Any, Literal

from ..core.errors import type_error, value_error

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("none", "cosine", "step")
LAYERS = ("anyconv", "torch")
SEGMENTATION = ("unet",)  # per-pixel outputs: not trained by this classification loop


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (saved as ``config.json`` beside the run).

    The defaults train the MNIST-1D CNN of Greydanus & Kobak (2020) with their optimiser
    (Adam, learning rate 0.01) on batches of 32 for 40 epochs (5000 steps, the paper's budget
    is 6000 steps of 100) with a cosine schedule: about 93-94% test accuracy.

    Examples:
        >>> TrainConfig(epochs=3).replace(lr=0.1).lr
        0.1
    """

    model: str = "mnist1d_cnn"
    dataset: str = "mnist1d"
    data: str | None = None  # a path: overrides ``dataset``
    epochs: int = 40
    batch_size: int = 32
    optimizer: Literal["sgd", "adam"] = "adam"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: Literal["none", "cosine", "step"] = "cosine"
    seed: int = 0
    algorithm: str = "auto"
    device: str = "cpu"
    out: str | None = None
    checkpoint_every: int = 0  # also checkpoint every N steps (0: at epoch ends only)
    layers: Literal["anyconv", "torch"] = "anyconv"  # torch: the same model with torch's layers
    nproc: int = 1
    num_samples: int | None = None  # MNIST-1D size (None: the paper's 5000)
    progress: bool = True

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def __post_init__(self) -> None:
        op = "train"
        for name in ("epochs", "batch_size", "nproc"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                type_error(op, name, value, "a positive int")
            if value < 1:
                value_error(op, name, value, "a positive int")
        for name in ("seed", "checkpoint_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                value_error(op, name, value, "a non-negative int")
        for name in ("lr", "momentum", "weight_decay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                type_error(op, name, value, "a number")
            if not value >= 0 or (name == "lr" and value == 0):
                value_error(op, name, value, "a positive number" if name == "lr" else "a number >= 0")
        for name, options in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("layers", LAYERS)):
            if getattr(self, name) not in options:
                value_error(op, name, getattr(self, name), "one of " + ", ".join(options))
        if self.batch_size % self.nproc:
            value_error(op, "batch_size", self.batch_size, f"a multiple of nproc={self.nproc} (the global batch)")
        if self.num_samples is not None and (not isinstance(self.num_samples, int) or self.num_samples < 10):
            value_error(op, "num_samples", self.num_samples, "an int >= 10 or None")
        from ..models import list_models

        classifiers = [m for m in list_models() if m not in SEGMENTATION]
        if self.model not in classifiers:  # the loop trains image/signal classifiers
            value_error(op, "model", self.model, "a classification model, one of " + ", ".join(classifiers))
        from ..core.spec import check_algorithm

        check_algorithm(op, self.algorithm)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Rebuild from :meth:`to_dict` (unknown keys are an error)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            value_error("train", "config", unknown, "known config keys: " + ", ".join(sorted(names)))
        return cls(**d)

    def save(self, path: str | os.PathLike[str]) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2, sort_keys=True)
            f.write("\n")
