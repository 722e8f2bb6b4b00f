"""Readers for data a user already has on disk (nothing is downloaded).

- MNIST IDX (``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``, ``t10k-*``;
  also Fashion-MNIST, same names), gzip or not;
- CIFAR-10 (``data_batch_1..5``, ``test_batch``) and CIFAR-100 (``train``, ``test``) python
  batches, read with a restricted unpickler that refuses anything but arrays and plain data;
- an ImageFolder tree ``ROOT/{train,test|val}/<class>/<image>`` (needs Pillow);
- a ``.npz`` file with ``x_train, y_train, x_test, y_test`` (or ``x, y, x_test, y_test``).

Images are scaled to [0, 1]. A corrupt or wrong file raises ``ValueError`` naming the file
and what was wrong.
"""

from __future__ import annotations

import gzip
import os
import pickle
import zipfile
from typing import Any

import numpy as np

from . import DataSplits, splits

# IDX type byte -> numpy big-endian dtype
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def _bad(path: str, what: str) -> ValueError:
    return ValueError(f"{path!r}: {what}")


def read_idx(path: str) -> np.ndarray:
    """One IDX file (gzip or not) as an array of its declared type and shape.

    Layout: two zero bytes, a type byte (0x08 uint8 ... 0x0E float64), the rank ``r``, ``r``
    big-endian uint32 sizes, then the data, big-endian, row-major.

    Examples:
        >>> import os, tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "a-idx2-ubyte")
        >>> with open(p, "wb") as f:
        ...     _ = f.write(bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6]))
        >>> read_idx(p)
        array([[1, 2, 3],
               [4, 5, 6]], dtype=uint8)
    """
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise _bad(path, f"is not a valid gzip file ({e})") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES or raw[3] == 0:
        raise _bad(path, f"is not an IDX file (header {raw[:4].hex() or 'empty'}; expected 0000, a type byte, the rank)")
    rank = raw[3]
    head = 4 + 4 * rank
    if len(raw) < head:
        raise _bad(path, f"is truncated inside its IDX header ({len(raw)} bytes)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    need = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - head != need:
        raise _bad(path, f"holds {len(raw) - head} data bytes; its header (shape {shape}, {dtype}) needs {need}")
    return np.frombuffer(raw, dtype=dtype, offset=head).reshape(shape).astype(dtype.newbyteorder("="))


def _find(folder: str, stem: str) -> str | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        p = os.path.join(folder, name)
        if os.path.exists(p):
            return p
    return None


def read_mnist_idx(folder: str) -> DataSplits:
    """MNIST-format IDX files in ``folder`` -> ``(N, 1, 28, 28)`` images in [0, 1]."""
    parts = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        imgs = _find(folder, f"{prefix}-images-idx3-ubyte")
        labs = _find(folder, f"{prefix}-labels-idx1-ubyte")
        if imgs is None or labs is None:
            raise _bad(folder, f"lacks {prefix}-images-idx3-ubyte[.gz] or {prefix}-labels-idx1-ubyte[.gz]")
        x, y = read_idx(imgs), read_idx(labs)
        if x.ndim != 3:
            raise _bad(imgs, f"has rank {x.ndim}; expected 3 (count, rows, cols)")
        if y.ndim != 1 or len(y) != len(x):
            raise _bad(labs, f"has shape {y.shape}; expected ({len(x)},) labels for {imgs!r}")
        parts[split] = (x[:, None].astype(np.float32) / 255.0, y.astype(np.int64))
    return splits(os.path.basename(os.path.normpath(folder)), *parts["train"], *parts["test"])


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and plain containers only; any other global is refused."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name} (only arrays and plain data are allowed)")


def load_batch(path: str) -> dict[str, Any]:
    """One CIFAR python batch as a dict with str keys (restricted unpickling)."""
    with open(path, "rb") as f:
        try:
            d = _ArrayUnpickler(f, encoding="bytes").load()
        except pickle.UnpicklingError as e:
            if str(e).startswith("refused"):
                raise _bad(path, f"is not a safe CIFAR python batch: {e}") from e
            raise _bad(path, f"is corrupt or not a CIFAR python batch ({e})") from e
        except (EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
            raise _bad(path, f"is corrupt or not a CIFAR python batch ({type(e).__name__}: {e})") from e
    if not isinstance(d, dict):
        raise _bad(path, f"holds a {type(d).__name__}; a CIFAR batch is a dict")
    return {(k.decode() if isinstance(k, bytes) else str(k)): v for k, v in d.items()}


def _cifar_arrays(path: str, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    d = load_batch(path)
    if "data" not in d or label_key not in d:
        raise _bad(path, f"has keys {sorted(d)}; a CIFAR batch needs 'data' and {label_key!r}")
    x, y = np.asarray(d["data"]), np.asarray(d[label_key], dtype=np.int64)
    if x.ndim != 2 or x.shape[1] != 3072 or len(y) != len(x):
        raise _bad(path, f"has data {x.shape} and {len(y)} labels; expected (N, 3072) and N labels")
    return x.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0, y


def read_cifar(folder: str, label_mode: str = "fine") -> DataSplits:
    """CIFAR-10 or CIFAR-100 python batches in ``folder`` -> ``(N, 3, 32, 32)`` images in [0, 1]."""
    if os.path.exists(os.path.join(folder, "data_batch_1")):
        files = sorted(f for f in os.listdir(folder) if f.startswith("data_batch_"))
        parts = [_cifar_arrays(os.path.join(folder, f), "labels") for f in files]
        x_test, y_test = _cifar_arrays(os.path.join(folder, "test_batch"), "labels")
        return splits("cifar10", np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                      x_test, y_test, num_classes=10)
    key = {"fine": "fine_labels", "coarse": "coarse_labels"}.get(label_mode)
    if key is None:
        raise ValueError(f"read_cifar: `label_mode` must be 'fine' or 'coarse'; got label_mode={label_mode!r}")
    x, y = _cifar_arrays(os.path.join(folder, "train"), key)
    x_test, y_test = _cifar_arrays(os.path.join(folder, "test"), key)
    return splits("cifar100", x, y, x_test, y_test, num_classes=100 if key == "fine_labels" else 20)


def read_npz(path: str, test_fraction: float = 0.2, seed: int = 0) -> DataSplits:
    """A ``.npz`` with ``x_train, y_train, x_test, y_test`` (or ``x, y`` [+ ``x_test, y_test``]).

    Without a test split, a seeded random ``test_fraction`` of ``x`` is held out. ``x`` is
    ``(N, C, *spatial)`` or ``(N, L)``; integer images (uint8) are scaled to [0, 1].

    Shape:
        ``x: (N - round(N * test_fraction), *sample)``, ``x_test: (round(N * test_fraction), *sample)``
        when the file has no test split.

    Examples:
        >>> import os, tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "d.npz")
        >>> np.savez(p, x=np.zeros((10, 1, 4, 4), np.uint8), y=np.arange(10) % 2)
        >>> d = read_npz(p)
        >>> d.x.shape, d.x_test.shape, d.num_classes
        (torch.Size([8, 1, 4, 4]), torch.Size([2, 1, 4, 4]), 2)
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise _bad(path, f"is not a readable .npz file ({e})") from e
    x = arrays.get("x_train", arrays.get("x"))
    y = arrays.get("y_train", arrays.get("y"))
    if x is None or y is None:
        raise _bad(path, f"has arrays {sorted(arrays)}; expected x_train, y_train, x_test, y_test (or x, y)")
    xt, yt = arrays.get("x_test"), arrays.get("y_test")
    if (xt is None) != (yt is None):
        raise _bad(path, "has only one of x_test, y_test")
    if len(x) != len(y):
        raise _bad(path, f"x and y have shapes {x.shape}, {y.shape}; expected N samples and N int labels")
    if xt is None:
        order = np.random.RandomState(seed).permutation(len(x))
        n = int(round(len(x) * test_fraction))
        x, y, xt, yt = x[order[n:]], y[order[n:]], x[order[:n]], y[order[:n]]
    assert yt is not None and xt is not None
    for a, b, what in ((x, y, "x_train/y_train"), (xt, yt, "x_test/y_test")):
        if len(a) != len(b) or b.ndim != 1 or not np.issubdtype(b.dtype, np.integer):
            raise _bad(path, f"{what} have shapes {a.shape}, {b.shape} ({b.dtype}); expected N samples and N int labels")
    if x.shape[1:] != xt.shape[1:] or x.ndim < 2:
        raise _bad(path, f"train samples {x.shape[1:]} and test samples {xt.shape[1:]} differ or have no feature axis")
    scale = 255.0 if np.issubdtype(x.dtype, np.integer) else 1.0
    return splits(os.path.splitext(os.path.basename(path))[0], x / scale, y, xt / scale, yt)


def read_image_folder(root: str, grayscale: bool | None = None) -> DataSplits:
    """``ROOT/train/<class>/*`` and ``ROOT/test/<class>/*`` (or ``val``): same-size images (Pillow)."""
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError("reading an image folder needs Pillow: pip install 'anyconv[viz]'") from e
    test_dir = next((d for d in ("test", "val") if os.path.isdir(os.path.join(root, d))), None)
    if not os.path.isdir(os.path.join(root, "train")) or test_dir is None:
        raise _bad(root, "is not an image folder: expected train/<class>/ and test/<class>/ (or val/) subfolders")
    classes = sorted(d.name for d in os.scandir(os.path.join(root, "train")) if d.is_dir())
    if not classes:
        raise _bad(os.path.join(root, "train"), "has no class subfolders")
    out, shape = [], None
    for split in ("train", test_dir):
        xs, ys = [], []
        for label, name in enumerate(classes):
            folder = os.path.join(root, split, name)
            for f in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
                if not f.lower().endswith(_IMAGE_EXT):
                    continue
                p = os.path.join(folder, f)
                try:
                    with Image.open(p) as im:
                        if grayscale is None:
                            grayscale = im.mode in ("1", "L", "I", "I;16", "F")
                        a = np.asarray(im.convert("L" if grayscale else "RGB"), dtype=np.float32) / 255.0
                except (OSError, ValueError) as e:
                    raise _bad(p, f"is not a readable image ({e})") from e
                a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)  # (C, H, W)
                if shape is None:
                    shape = a.shape
                elif a.shape != shape:
                    raise _bad(p, f"has size {a.shape[1:]}; the images before it have {shape[1:]} (resize them alike)")
                xs.append(a)
                ys.append(label)
        if not xs:
            raise _bad(os.path.join(root, split), "holds no images")
        out += [np.stack(xs), np.asarray(ys)]
    x, y, x_test, y_test = out
    return splits(os.path.basename(os.path.normpath(root)), x, y, x_test, y_test, classes=classes, num_classes=len(classes))


def read_path(path: str, **options: Any) -> DataSplits:
    """Pick the reader from what ``path`` holds (see the module docstring)."""
    if os.path.isfile(path):
        if path.endswith(".npz"):
            return read_npz(path, **options)
        raise _bad(path, "is a file of unknown kind; give a .npz file or a folder (MNIST IDX, CIFAR batches, images)")
    names = set(os.listdir(path))
    if "data_batch_1" in names or {"train", "test", "meta"} <= names and os.path.isfile(os.path.join(path, "train")):
        return read_cifar(path, **options)
    if any(n.startswith(("train-images", "train-labels")) for n in names):
        return read_mnist_idx(path)
    if os.path.isdir(os.path.join(path, "train")):
        return read_image_folder(path, **options)
    raise _bad(path, "holds no known dataset (MNIST IDX files, CIFAR python batches, train/ and test/ image folders)")


__all__ = ["load_batch", "read_cifar", "read_idx", "read_image_folder", "read_mnist_idx", "read_npz", "read_path"]
