"""``anyconv eval``: accuracy and loss of a checkpoint on a dataset's test (or train) split."""

from __future__ import annotations

import argparse
from typing import Any

from ._grammar import add_threads

EPILOG = """examples:
  anyconv eval runs/mnist1d_cnn-mnist1d-20250101-120000          # the run's own test split
  anyconv eval runs/RUN/last.pt --split train --json
  anyconv eval runs/RUN --data ~/data/mnist                     # another dataset of the same shape"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "eval", help="evaluate a checkpoint (accuracy, loss)", epilog=EPILOG,
        description="Evaluate a trained checkpoint on a dataset split.", formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", help="a run folder (its last.pt) or a checkpoint file")
    p.add_argument("--dataset", help="dataset name (default: the run's)")
    p.add_argument("--data", metavar="PATH", help="data on disk (default: the run's)")
    p.add_argument("--split", choices=("test", "train"), default="test")
    p.add_argument("--device", default="cpu")
    p.add_argument("--algorithm", help="anyconv algorithm (default: the run's)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_threads(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import json

    from ..data import load_dataset
    from ..train.loop import evaluate, load_data
    from ..train.restore import check_samples, model_from_checkpoint

    model, ckpt, cfg = model_from_checkpoint(args.checkpoint, args.device, args.algorithm)
    data = load_dataset(args.data or args.dataset) if (args.data or args.dataset) else load_data(cfg)
    x, y = (data.x_test, data.y_test) if args.split == "test" else (data.x, data.y)
    x = check_samples(x, ckpt, f"{data.name} ({args.split})")
    loss, acc = evaluate(model, x, y, next(model.parameters()).device)
    result = {"model": cfg.model, "data": data.name, "split": args.split, "samples": len(y), "loss": loss, "accuracy": acc}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{cfg.model} on {data.name} {args.split} ({len(y)} samples): accuracy {100 * acc:.2f}%, loss {loss:.4f}")
    return 0
