"""``anyconv predict``: class predictions of a checkpoint for samples in files or from a dataset."""

from __future__ import annotations

import argparse
from typing import Any

from ._grammar import add_threads

EPILOG = """examples:
  anyconv predict runs/RUN --dataset mnist1d --index 0 1 2     # test samples 0, 1, 2 of a dataset
  anyconv predict runs/RUN/last.pt signals.npy --top 3         # a .npy sample or batch
  anyconv predict runs/RUN digit.png                           # an image (needs Pillow)"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "predict", help="predict classes with a checkpoint", epilog=EPILOG,
        description="Predict the classes of samples with a trained checkpoint.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", help="a run folder (its last.pt) or a checkpoint file")
    p.add_argument("inputs", nargs="*", help=".npy / .npz (array 'x') files or images: a batch N x C x spatial, "
                   "one sample C x spatial, or (1-channel data) its spatial size, e.g. an array of shape (40,)")
    p.add_argument("--dataset", help="take samples from this dataset's test split (with --index)")
    p.add_argument("--index", type=int, nargs="+", default=[0], help="test-split indices (default 0)")
    p.add_argument("--top", type=int, default=1, help="show the K most likely classes")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print one JSON object per sample")
    add_threads(p)
    p.set_defaults(func=run)
    return p


def _read(path: str) -> Any:
    """One input file as a tensor; ``.npy``/``.npz`` are never unpickled (object arrays are refused)."""
    import zipfile

    import numpy as np
    import torch

    if path.endswith((".npy", ".npz")):
        try:
            loaded = np.load(path, allow_pickle=False)
            if isinstance(loaded, np.ndarray):  # .npy
                return torch.as_tensor(loaded)
            with loaded as z:
                names, x = sorted(z.files), (z["x"] if "x" in z.files else None)
        except (ValueError, EOFError, zipfile.BadZipFile) as e:
            raise ValueError(f"{path!r}: is not a readable array file of numbers ({e})") from e
        if x is None:
            raise ValueError(f"{path!r}: has arrays {names}; expected one named 'x'")
        return torch.as_tensor(x)
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError(f"{path!r}: reading images needs Pillow (pip install 'anyconv[viz]')") from e
    with Image.open(path) as im:
        a = np.asarray(im, dtype=np.float32) / 255.0
    return torch.as_tensor(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))


def as_batch(x: Any, ckpt: dict[str, Any], path: str) -> Any:
    """An input file's array as a batch: one sample (one short of ``(N, *sample)``, or the spatial
    size of a 1-channel sample) gets batch 1; anything else of the wrong shape is a one-line error."""
    from ._grammar import flag_error

    sample = tuple(ckpt.get("data", {}).get("sample_shape") or ())
    if not sample:
        return x
    shape = tuple(x.shape)
    if shape == sample or (sample[0] == 1 and shape == sample[1:]):
        return x.reshape(1, *sample)
    if len(shape) == len(sample) + 1 and shape[1:] == sample:
        return x
    if sample[0] == 1 and len(shape) == len(sample) and shape[1:] == sample[1:]:
        return x.unsqueeze(1)  # (N, *spatial) -> (N, 1, *spatial)
    one = "x".join(map(str, sample))
    flag_error("inputs", f"{path} (array of shape {'x'.join(map(str, shape)) or 'scalar'})",
               f"a batch Nx{one} or one sample {one}" + (f" or {'x'.join(map(str, sample[1:]))}" if sample[0] == 1 else "")
               + " for this model")


def run(args: argparse.Namespace) -> int:
    import json

    import torch

    from ..cli import CommandError
    from ..data import load_dataset
    from ..train.restore import check_samples, model_from_checkpoint

    if args.top < 1:
        raise ValueError(f"`--top` must be a positive int; got --top={args.top}")
    model, ckpt, cfg = model_from_checkpoint(args.checkpoint, args.device)
    classes = ckpt.get("data", {}).get("classes") or []
    batches: list[tuple[str, torch.Tensor]] = []
    if args.dataset:
        data = load_dataset(args.dataset)
        for i in args.index:
            if not -len(data.y_test) <= i < len(data.y_test):
                raise ValueError(f"`--index` must be in [0, {len(data.y_test)}); got --index={i}")
            batches.append((f"{data.name}[{i}] (label {int(data.y_test[i])})", data.x_test[i : i + 1]))
    for path in args.inputs:
        batches.append((path, check_samples(as_batch(_read(path), ckpt, path), ckpt, path)))
    if not batches:
        raise CommandError("nothing to predict: give input files or --dataset NAME --index I...")
    device = next(model.parameters()).device
    k = min(args.top, int(ckpt.get("data", {}).get("num_classes", args.top)))
    with torch.no_grad():
        for name, x in batches:
            x = check_samples(x, ckpt, name)
            prob = model(x.to(device)).softmax(-1).cpu()  # (N, classes)
            for j, row in enumerate(prob):
                p, c = row.topk(k)
                label = f"{name}#{j}" if len(prob) > 1 else name
                names = [classes[i] if i < len(classes) else str(i) for i in c.tolist()]
                if args.json:
                    print(json.dumps({"input": label, "classes": names, "probabilities": p.tolist()}))
                else:
                    print(f"{label}: " + ", ".join(f"{n} ({100 * q:.1f}%)" for n, q in zip(names, p.tolist())))
    return 0
