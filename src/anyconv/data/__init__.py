"""Datasets for training, offline: MNIST-1D generated in process, scikit-learn's digits, files on disk.

``load_dataset(name)`` returns a :class:`DataSplits` of in-memory tensors; ``name`` is
``"mnist1d"``, ``"digits"`` or a path to data a user already has (MNIST IDX files, CIFAR-10/100
python batches, an ImageFolder tree, a ``.npz`` file; see :mod:`anyconv.data.readers`).

Examples:
    >>> d = load_dataset("mnist1d", num_samples=200)
    >>> d.x.shape, d.x_test.shape, d.num_classes, d.in_channels
    (torch.Size([160, 1, 40]), torch.Size([40, 1, 40]), 10, 1)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

NAMES = ("mnist1d", "digits")


@dataclass
class DataSplits:
    """A train and a test split in memory: ``x (N, C, *spatial)`` float32, ``y (N,)`` int64."""

    name: str
    x: torch.Tensor
    y: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    classes: list[str] = field(default_factory=list)

    @property
    def in_channels(self) -> int:
        return int(self.x.shape[1])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def describe(self) -> dict[str, Any]:
        """Plain-data summary (saved in checkpoints so that eval/predict can check inputs)."""
        return {
            "name": self.name, "train": len(self.y), "test": len(self.y_test), "num_classes": self.num_classes,
            "sample_shape": list(self.sample_shape), "classes": list(self.classes),
        }


def splits(
    name: str, x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
    classes: list[str] | None = None, num_classes: int | None = None,
) -> DataSplits:
    """Build :class:`DataSplits` from numpy arrays (adds a channel axis to ``(N, L)`` signals)."""
    xt = torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32)
    xv = torch.as_tensor(np.ascontiguousarray(x_test), dtype=torch.float32)
    if xt.dim() == 2:
        xt, xv = xt.unsqueeze(1), xv.unsqueeze(1)  # (N, L) -> (N, 1, L)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.int64)
    yv = torch.as_tensor(np.asarray(y_test), dtype=torch.int64)
    k = num_classes or int(max(int(yt.max()) if len(yt) else 0, int(yv.max()) if len(yv) else 0) + 1)
    return DataSplits(name, xt, yt, xv, yv, k, list(classes or [str(i) for i in range(k)]))


def load_mnist1d(num_samples: int = 5000, seed: int = 42) -> DataSplits:
    """MNIST-1D (4000 train / 1000 test signals of length 40 by default), generated in process."""
    from .mnist1d import make_mnist1d

    d = make_mnist1d(num_samples=num_samples, seed=seed)
    return splits("mnist1d", d.x, d.y, d.x_test, d.y_test, num_classes=10)


def load_digits(size: int = 16, test_fraction: float = 0.2, seed: int = 0) -> DataSplits:
    """scikit-learn's bundled 8x8 digits (1797 images), upsampled to ``size`` x ``size``, scaled to [0, 1].

    Nearest-neighbour upsampling (``size`` a multiple of 8) lets models with two 2x2 poolings
    (e.g. ``cifar_cnn``) see them. The test split is a seeded random ``test_fraction`` of the images.

    Raises:
        ImportError: scikit-learn is not installed (``pip install anyconv[digits]``).
    """
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError as e:
        raise ImportError("the digits dataset needs scikit-learn: pip install 'anyconv[digits]'") from e
    if size % 8 or size < 8:
        raise ValueError(f"load_digits: `size` must be a positive multiple of 8; got size={size!r}")
    bunch = sk_digits()
    images = bunch.images.astype(np.float32) / 16.0  # (1797, 8, 8)
    f = size // 8
    images = images.repeat(f, axis=1).repeat(f, axis=2)[:, None]  # (1797, 1, size, size)
    order = np.random.RandomState(seed).permutation(len(images))
    n_test = int(round(len(images) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return splits("digits", images[train], bunch.target[train], images[test], bunch.target[test], num_classes=10)


def load_dataset(name: str | os.PathLike[str], **options: Any) -> DataSplits:
    """Load a dataset by name (``"mnist1d"``, ``"digits"``) or from a path on disk.

    Raises:
        ValueError: unknown name, or a file that is corrupt or not in a known format (the
            message names the file and what was wrong).
        OSError: a path that does not exist.
    """
    key = os.fspath(name)
    if key.lower() == "mnist1d":
        return load_mnist1d(**options)
    if key.lower() == "digits":
        return load_digits(**options)
    if os.path.exists(key):
        from .readers import read_path

        return read_path(key, **options)
    raise ValueError(
        f"load_dataset: `name` must be one of {', '.join(NAMES)} or an existing path; got name={key!r}"
    )


__all__ = ["NAMES", "DataSplits", "load_dataset", "load_digits", "load_mnist1d", "splits"]
