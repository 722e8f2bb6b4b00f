"""``anyconv datasets``: what ``anyconv train --dataset`` / ``--data`` can read, one line each."""

from __future__ import annotations

import argparse
from typing import Any

EPILOG = """examples:
  anyconv datasets
  anyconv train --dataset digits --model cifar_cnn
  anyconv train --data ~/data/cifar-10-batches-py --model resnet18

SAMPLE is one sample's shape (C x spatial); nothing is ever downloaded."""

# one sample's shape of each named dataset (what anyconv.data's generators give by default)
SAMPLE_SHAPES: dict[str, tuple[int, ...]] = {"mnist1d": (1, 40), "digits": (1, 16, 16)}
# (name or --data form, one sample's shape, classes, what it is); names first, then readers
DATASETS: tuple[tuple[str, str, str, str], ...] = (
    ("mnist1d", "1x40", "10", "MNIST-1D, generated in process (4000 train / 1000 test; --num-samples)"),
    ("digits", "1x16x16", "10", "scikit-learn's 8x8 digits upsampled (1797 images; needs scikit-learn)"),
    ("--data MNIST_DIR", "1x28x28", "10", "MNIST / Fashion-MNIST IDX files (train-images-idx3-ubyte[.gz], t10k-*)"),
    ("--data CIFAR_DIR", "3x32x32", "10/100", "CIFAR-10 (data_batch_1..5, test_batch) or CIFAR-100 python batches"),
    ("--data IMAGE_ROOT", "CxHxW", "folders", "ImageFolder tree ROOT/{train,test|val}/<class>/<image> (Pillow)"),
    ("--data FILE.npz", "as stored", "labels", ".npz with x_train, y_train, x_test, y_test (or x, y, x_test, y_test)"),
)


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "datasets", help="list the datasets train/eval/predict read (generated or already on disk)",
        description="List what anyconv's data readers and generators provide, one line each.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import json

    for name, sample, classes, text in DATASETS:
        if args.json:
            print(json.dumps({"name": name, "sample": sample, "classes": classes, "description": text}))
        else:
            print(f"{name:18s} {sample:10s} {classes:>8s} classes  {text}")
    return 0
