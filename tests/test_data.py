"""Data: MNIST-1D generator vs the public package, digits, and the on-disk readers (good and bad files)."""

from __future__ import annotations

import gzip
import os
import pickle
import struct

import numpy as np
import pytest
import torch

from anyconv.data import load_dataset
from anyconv.data.mnist1d import make_mnist1d, templates
from anyconv.data.readers import load_batch, read_idx


def test_mnist1d_equals_public_package():
    mnist1d = pytest.importorskip("mnist1d.data")  # test-only dependency: pip install mnist1d
    ref = mnist1d.make_dataset(mnist1d.get_dataset_args())
    ours = make_mnist1d()
    for k in ("x", "x_test", "t"):
        np.testing.assert_allclose(getattr(ours, k), ref[k], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ours.y, ref["y"])
    np.testing.assert_array_equal(ours.y_test, ref["y_test"])


def test_mnist1d_paper_properties():
    d = make_mnist1d()
    assert d.x.shape == (4000, 40) and d.x_test.shape == (1000, 40)
    allx = np.concatenate([d.x, d.x_test])
    assert abs(allx.mean()) < 1e-12 and abs(allx.std() - 1) < 1e-12  # standardised as a whole
    assert np.bincount(np.concatenate([d.y, d.y_test])).tolist() == [500] * 10
    x, t = templates()
    assert x.shape == (10, 12) and np.all(x[:, 0] == 0)  # every template starts at 0
    assert np.allclose(t, np.linspace(-5, 5, 12) / 6)


def test_mnist1d_seed_changes_data_and_bad_sizes():
    a, b = make_mnist1d(num_samples=50, seed=1), make_mnist1d(num_samples=50, seed=2)
    assert not np.allclose(a.x, b.x)
    with pytest.raises(ValueError, match="num_samples"):
        make_mnist1d(num_samples=5)
    with pytest.raises(ValueError, match="train_split"):
        make_mnist1d(train_split=1.0)


def test_load_dataset_mnist1d_layout():
    d = load_dataset("mnist1d", num_samples=100)
    assert d.x.shape == (80, 1, 40) and d.x.dtype == torch.float32 and d.y.dtype == torch.int64
    assert d.num_classes == 10 and d.in_channels == 1


def test_digits():
    pytest.importorskip("sklearn")
    d = load_dataset("digits")
    assert d.x.shape[1:] == (1, 16, 16) and len(d.y) + len(d.y_test) == 1797
    assert len(d.y_test) == round(1797 * 0.2)
    assert float(d.x.min()) == 0.0 and float(d.x.max()) == 1.0
    # nearest upsampling: each 2x2 block is constant
    assert torch.equal(d.x[:, :, ::2, ::2], d.x[:, :, 1::2, 1::2])


def test_unknown_dataset():
    with pytest.raises(ValueError, match="mnist1d, digits"):
        load_dataset("imagenet")


# ---- MNIST IDX ---------------------------------------------------------------------------
def _idx(array: np.ndarray, code: int = 0x08) -> bytes:
    return bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape) + array.tobytes()


def _mnist_folder(tmp_path, gz: bool):
    rng = np.random.RandomState(0)
    for prefix, n in (("train", 6), ("t10k", 4)):
        imgs = rng.randint(0, 256, size=(n, 28, 28)).astype(np.uint8)
        labs = rng.randint(0, 10, size=n).astype(np.uint8)
        for name, arr in ((f"{prefix}-images-idx3-ubyte", imgs), (f"{prefix}-labels-idx1-ubyte", labs)):
            data = _idx(arr)
            path = tmp_path / (name + (".gz" if gz else ""))
            path.write_bytes(gzip.compress(data) if gz else data)
    return rng


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_folder(tmp_path, gz):
    _mnist_folder(tmp_path, gz)
    d = load_dataset(tmp_path)
    raw = np.frombuffer(
        (gzip.decompress if gz else bytes)((tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else ""))).read_bytes()),
        dtype=np.uint8, offset=16,
    ).reshape(6, 28, 28)
    assert d.x.shape == (6, 1, 28, 28) and d.x_test.shape == (4, 1, 28, 28)
    torch.testing.assert_close(d.x[:, 0], torch.tensor(raw, dtype=torch.float32) / 255)


def test_idx_big_endian_types(tmp_path):
    a = np.arange(6, dtype=">i4").reshape(2, 3)
    (tmp_path / "a.idx").write_bytes(_idx(a, 0x0C))
    np.testing.assert_array_equal(read_idx(str(tmp_path / "a.idx")), np.arange(6).reshape(2, 3))


@pytest.mark.parametrize(
    "content, words",
    [(b"\x08\x03abcd", "not an IDX file"), (_idx(np.zeros((2, 28, 28), np.uint8))[:-5], "needs 1568"),
     (b"\x1f\x8bgarbage", "gzip"), (bytes([0, 0, 8, 3, 0, 0]), "truncated")],
)
def test_bad_idx_files_name_the_file(tmp_path, content, words):
    _mnist_folder(tmp_path, False)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(content)
    with pytest.raises(ValueError, match=words) as e:
        load_dataset(tmp_path)
    assert "train-images-idx3-ubyte" in str(e.value)


def test_idx_label_count_mismatch(tmp_path):
    _mnist_folder(tmp_path, False)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx(np.zeros(3, np.uint8)))
    with pytest.raises(ValueError, match="t10k-labels"):
        load_dataset(tmp_path)


# ---- CIFAR -------------------------------------------------------------------------------
def _cifar10(tmp_path, batches=2, n=5):
    rng = np.random.RandomState(1)
    for name in [f"data_batch_{i}" for i in range(1, batches + 1)] + ["test_batch"]:
        d = {b"data": rng.randint(0, 256, size=(n, 3072)).astype(np.uint8), b"labels": rng.randint(0, 10, n).tolist(),
             b"batch_label": name.encode()}
        (tmp_path / name).write_bytes(pickle.dumps(d, protocol=2))


def test_cifar10_batches(tmp_path):
    _cifar10(tmp_path)
    d = load_dataset(tmp_path)
    with open(tmp_path / "data_batch_2", "rb") as f:
        raw = pickle.load(f)
    assert d.x.shape == (10, 3, 32, 32) and d.x_test.shape == (5, 3, 32, 32) and d.num_classes == 10
    # row-major 3072 = 3 planes of 32 x 32 (R, G, B)
    torch.testing.assert_close(d.x[5:, 1, 0, :], torch.tensor(raw[b"data"][:, 1024:1056], dtype=torch.float32) / 255)
    assert d.y[5:].tolist() == raw[b"labels"]


def test_cifar100_fine_and_coarse(tmp_path):
    rng = np.random.RandomState(2)
    for name in ("train", "test"):
        d = {b"data": rng.randint(0, 256, (4, 3072)).astype(np.uint8), b"fine_labels": [3, 99, 5, 7],
             b"coarse_labels": [1, 2, 19, 0]}
        (tmp_path / name).write_bytes(pickle.dumps(d, protocol=4))
    (tmp_path / "meta").write_bytes(pickle.dumps({b"fine_label_names": []}))
    fine = load_dataset(tmp_path)
    assert fine.num_classes == 100 and fine.y.tolist() == [3, 99, 5, 7]
    coarse = load_dataset(tmp_path, label_mode="coarse")
    assert coarse.num_classes == 20 and coarse.y.tolist() == [1, 2, 19, 0]


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_cifar_unpickler_refuses_code(tmp_path):
    _cifar10(tmp_path)
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({b"data": _Evil(), b"labels": []}, protocol=2))
    with pytest.raises(ValueError, match="refused to load .*system") as e:
        load_dataset(tmp_path)
    assert "data_batch_1" in str(e.value)


@pytest.mark.parametrize(
    "payload, words",
    [(b"not a pickle", "corrupt"), (pickle.dumps([1, 2]), "holds a list"),
     (pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}), r"expected \(N, 3072\)"),
     (pickle.dumps({b"pixels": 1}), "needs 'data'")],
)
def test_bad_cifar_batches(tmp_path, payload, words):
    _cifar10(tmp_path)
    (tmp_path / "test_batch").write_bytes(payload)
    with pytest.raises(ValueError, match=words) as e:
        load_dataset(tmp_path)
    assert "test_batch" in str(e.value)


def test_load_batch_plain(tmp_path):
    p = tmp_path / "b"
    p.write_bytes(pickle.dumps({b"data": np.ones((1, 3072), np.uint8), b"labels": [4]}, protocol=2))
    assert load_batch(str(p))["labels"] == [4]


# ---- npz and ImageFolder ---------------------------------------------------------------------
def test_npz_with_and_without_test_split(tmp_path):
    x = np.random.RandomState(3).rand(10, 2, 5).astype(np.float32)
    y = np.arange(10) % 3
    np.savez(tmp_path / "full.npz", x_train=x[:7], y_train=y[:7], x_test=x[7:], y_test=y[7:])
    d = load_dataset(tmp_path / "full.npz")
    assert d.x.shape == (7, 2, 5) and d.num_classes == 3
    torch.testing.assert_close(d.x_test, torch.tensor(x[7:]))
    np.savez(tmp_path / "xy.npz", x=x, y=y)
    d = load_dataset(tmp_path / "xy.npz")
    assert len(d.y) == 8 and len(d.y_test) == 2
    assert sorted(d.y.tolist() + d.y_test.tolist()) == sorted(y.tolist())


@pytest.mark.parametrize(
    "arrays, words",
    [({"a": np.zeros(3)}, "expected x_train"), ({"x": np.zeros((3, 2)), "y": np.zeros(2, int)}, "N int labels"),
     ({"x": np.zeros((3, 2)), "y": np.zeros(3)}, "int labels"),
     ({"x": np.zeros((3, 2)), "y": np.zeros(3, int), "x_test": np.zeros((1, 2))}, "only one of")],
)
def test_bad_npz(tmp_path, arrays, words):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(ValueError, match=words) as e:
        load_dataset(tmp_path / "d.npz")
    assert "d.npz" in str(e.value)


def test_corrupt_npz_and_unknown_paths(tmp_path):
    (tmp_path / "c.npz").write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(ValueError, match="c.npz"):
        load_dataset(tmp_path / "c.npz")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(ValueError, match="unknown kind"):
        load_dataset(tmp_path / "f.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no known dataset"):
        load_dataset(tmp_path / "empty")


def test_image_folder(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.RandomState(4)
    pixels = {}
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(n):
                a = rng.randint(0, 256, (6, 5, 3)).astype(np.uint8)
                Image.fromarray(a).save(tmp_path / split / cls / f"{i}.png")
                pixels[(split, cls, i)] = a
    d = load_dataset(tmp_path)
    assert d.classes == ["cat", "dog"] and d.x.shape == (6, 3, 6, 5) and d.x_test.shape == (4, 3, 6, 5)
    assert d.y.tolist() == [0, 0, 0, 1, 1, 1]
    torch.testing.assert_close(d.x[4], torch.tensor(pixels[("train", "dog", 1)].transpose(2, 0, 1) / 255.0).float())
    Image.fromarray(np.zeros((7, 5, 3), np.uint8)).save(tmp_path / "test" / "dog" / "9.png")
    with pytest.raises(ValueError, match="9.png"):
        load_dataset(tmp_path)
    (tmp_path / "test" / "dog" / "9.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="not a readable image"):
        load_dataset(tmp_path)
