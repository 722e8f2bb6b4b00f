"""``anyconv train``: train a model of the zoo on a dataset, with checkpoints, metrics and resume."""

from __future__ import annotations

import argparse
import os
from typing import Any

from ._grammar import CommandError, add_threads, flag_error

EPILOG = """examples:
  anyconv train                                   # MNIST-1D CNN on MNIST-1D (generated, no download)
  anyconv train --dataset digits --model cifar_cnn --epochs 20
  anyconv train --data ~/data/cifar-10-batches-py --model resnet18 --optimizer sgd --lr 0.1 --schedule cosine
  anyconv train --resume runs/mnist1d_cnn-mnist1d-20250101-120000
  anyconv train --nproc 2                         # data parallel, 2 processes (gloo on CPU)
  torchrun --nproc-per-node 2 -m anyconv train    # the same, launched by torchrun

writes RUN/config.json, RUN/metrics.csv, RUN/metrics.jsonl, RUN/last.pt (checkpoint),
RUN/result.json and RUN/curves.png (with matplotlib) under --out or runs/."""

# flags that may change a resumed run (everything else comes from its checkpoint)
RESUME_OVERRIDES = ("epochs", "device", "progress", "checkpoint_every")


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train", help="train a model (default: the MNIST-1D CNN on MNIST-1D)",
        description="Train a model of anyconv's zoo with anyconv's layers.", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", help="model name (anyconv.models.list_models()); default mnist1d_cnn for mnist1d, else cifar_cnn")
    p.add_argument("--dataset", help="dataset name: mnist1d (default) or digits (needs scikit-learn)")
    p.add_argument("--data", metavar="PATH", help="data on disk: MNIST IDX folder, CIFAR batches, ImageFolder or .npz")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, dest="batch_size", help="global batch size (split over --nproc)")
    p.add_argument("--optimizer", choices=("sgd", "adam"))
    p.add_argument("--lr", type=float, help="learning rate (default 0.01)")
    p.add_argument("--momentum", type=float, help="SGD momentum (default 0.9)")
    p.add_argument("--weight-decay", type=float, dest="weight_decay")
    p.add_argument("--schedule", choices=("none", "cosine", "step"), help="learning-rate schedule (default cosine)")
    p.add_argument("--seed", type=int)
    p.add_argument("--algorithm", help="anyconv algorithm of every layer (default auto)")
    p.add_argument("--layers", choices=("anyconv", "torch"), help="torch: the same model on torch's layers (reference)")
    p.add_argument("--device", help="cpu (default), cuda, cuda:N or auto")
    p.add_argument("--out", metavar="DIR", help="run folder (default runs/MODEL-DATA-TIME)")
    p.add_argument("--resume", metavar="RUN", help="continue a run: its folder or a checkpoint file")
    p.add_argument("--checkpoint-every", type=int, dest="checkpoint_every", metavar="STEPS",
                   help="also checkpoint every STEPS optimiser steps (default: at epoch ends)")
    p.add_argument("--nproc", type=int, help="number of data-parallel processes to spawn (default 1)")
    p.add_argument("--num-samples", type=int, dest="num_samples", help="MNIST-1D size (default 5000)")
    p.add_argument("--no-progress", action="store_false", dest="progress", default=None, help="no progress bar")
    add_threads(p)
    p.set_defaults(func=run)
    return p


FIELDS = ("model", "dataset", "data", "epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay",
          "schedule", "seed", "algorithm", "layers", "device", "out", "checkpoint_every", "nproc", "num_samples",
          "progress")


def config_from_args(args: argparse.Namespace) -> Any:
    """The TrainConfig the flags ask for (unset flags keep the defaults)."""
    from ..train import TrainConfig

    given = {k: getattr(args, k) for k in FIELDS if getattr(args, k, None) is not None}
    if "data" in given:
        given["data"] = os.path.expanduser(given["data"])
        if not os.path.exists(given["data"]):
            raise FileNotFoundError(f"--data {given['data']!r} does not exist")
    if "data" in given:
        given["dataset"] = os.path.basename(os.path.normpath(given["data"]))
    else:
        from ..data import NAMES

        if given.get("dataset", "mnist1d") not in NAMES:
            raise ValueError(f"train: `--dataset` must be one of {', '.join(NAMES)} (or give --data PATH); "
                             f"got --dataset={given['dataset']!r}")
    if "model" not in given and (given.get("dataset", "mnist1d") != "mnist1d" or "data" in given):
        given["model"] = "cifar_cnn"
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:  # launched by torchrun: the world is the launcher's
        given["nproc"] = world
    try:
        return TrainConfig(**given)
    except (ValueError, TypeError) as e:  # the config's message, with the flag for the field
        text = (str(e).strip().splitlines() or [type(e).__name__])[0]
        for key in FIELDS:
            flag = "--" + key.replace("_", "-")
            text = text.replace(f"`{key}`", f"`{flag}`").replace(f"got {key}=", f"got {flag}=")
        raise CommandError(text) from e


def check_model_fits(model: str, dataset: str | None, data: str | None) -> None:
    """A one-line error naming ``--model`` when a zoo model's dims differ from a named dataset's samples.

    (Data on disk is checked by the training loop once it is read.) The model is built on the
    ``meta`` device: no memory, no initialisation.
    """
    import torch

    from ..models import create_model, list_models
    from ._model_arg import first_conv
    from .datasets import SAMPLE_SHAPES

    if model.lower() not in list_models():
        flag_error("--model", model, "a model of anyconv.models (`anyconv models` lists them)")
    sample = SAMPLE_SHAPES.get((dataset or "mnist1d").lower())
    if data is not None or sample is None:
        return
    with torch.device("meta"):
        conv = first_conv(create_model(model))
    n, k = (len(conv.kernel_size) if conv is not None else None), len(sample) - 1
    if n is not None and n != k:
        shape = "x".join(map(str, sample))
        flag_error("--model", model, f"a {k}-D model for --dataset {dataset or 'mnist1d'}: {model} is a {n}-D "
                   f"model and does not take its {k}-D samples ({shape}); `anyconv models` lists the models "
                   "with their input shapes, `anyconv datasets` the datasets")


def _algorithm_error(e: ValueError, algorithm: str) -> None:
    """Re-raise a layer's refusal of ``--algorithm`` as an error naming the flag, not the data."""
    import re

    m = re.search(r"(\w+): algorithm='\w+' cannot serve this call: (.*)$", str(e).strip().splitlines()[0])
    from ..algorithms import names

    if m is not None and algorithm in names():  # a named algorithm refused (auto never refuses)
        raise CommandError(f"`--algorithm` must serve every conv/pool layer of the model ({m.group(1)} refused: "
                           f"{m.group(2)}); --algorithm auto (the default) picks per layer; "
                           f"got --algorithm={algorithm!r}") from e


def spawn(config: dict[str, Any], nproc: int, resume: str | None = None) -> None:
    """Spawn the data-parallel workers; a worker's failure becomes a one-line error."""
    from ..train.launch import spawn as _spawn

    try:
        _spawn(config, nproc, resume)
    except Exception as e:  # torch.multiprocessing.ProcessRaisedException carries the worker's traceback
        lines = [line for line in str(e).strip().splitlines() if line.strip()]
        raise CommandError(f"a training process failed: {lines[-1] if lines else type(e).__name__}") from e


def run(args: argparse.Namespace) -> int:
    from ..train import TrainConfig, train
    from ..train.checkpoint import load_checkpoint

    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if args.resume:
        ckpt = load_checkpoint(args.resume)
        overrides = {k: getattr(args, k) for k in RESUME_OVERRIDES if getattr(args, k, None) is not None}
        cfg = TrainConfig.from_dict({**ckpt["config"], **overrides})
        if cfg.nproc > 1 and not launched:
            spawn(cfg.to_dict(), cfg.nproc, resume=args.resume)
            return 0
        train(cfg, resume=args.resume, overrides=overrides)
        return 0
    cfg = config_from_args(args)
    check_model_fits(cfg.model, cfg.dataset, cfg.data)
    if cfg.nproc > 1 and not launched:
        from ..train.loop import default_run_dir

        cfg = cfg.replace(out=cfg.out or default_run_dir(cfg))
        spawn(cfg.to_dict(), cfg.nproc)
        return 0
    try:
        train(cfg)
    except ValueError as e:
        _algorithm_error(e, cfg.algorithm)
        raise
    return 0
