"""``anyconv norm``: the operator (spectral) norm of every conv layer of a model."""

from __future__ import annotations

import argparse
from typing import Any

from ._grammar import add_threads
from ._model_arg import INPUT_HELP

EPILOG = """\
examples:
  anyconv norm cifar_cnn --input 1x3x32x32
  anyconv norm path/to/module.py:MyNet --input 1x1x28x28 --tol 1e-5 --max-iter 1000

Each conv / transposed-conv layer's norm ||A||_2 on the input it receives in this model
(batch 1), by power iteration on A^T A (anyconv.tools.power_iteration).
"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("norm", help="operator norm of each conv layer of a model",
                              description="Print the spectral norm of each conv layer's linear operator.",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="zoo model name or path/to/module.py:ClassName")
    p.add_argument("--input", required=True, help=INPUT_HELP)
    p.add_argument("--tol", type=float, default=1e-4, help="relative tolerance (default 1e-4)")
    p.add_argument("--max-iter", type=int, default=200, help="iteration limit per layer (default 200)")
    add_threads(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import torch

    from ..tools._trace import trace
    from ..tools.operator import power_iteration
    from ._grammar import CommandError, flag_error, reading
    from ._model_arg import model_and_input

    if not args.tol > 0:
        flag_error("--tol", args.tol, "a positive number")
    if args.max_iter < 1:
        flag_error("--max-iter", args.max_iter, "a positive int")
    model, shape, note = model_and_input(args.model, args.input)
    rows = []
    with reading(note, "norm"):
        for c in trace(model, shape):
            if c.leaf and not c.repeat and isinstance(c.module, torch.nn.modules.conv._ConvNd):
                one = (1, *c.input_shape[1:])
                r = power_iteration(c.module, one, tol=args.tol, max_iter=args.max_iter)
                rows.append((c.name, type(c.module).__name__, one, r))
    if not rows:
        raise CommandError(f"{args.model}: no conv layers found")
    print(f"{'layer':<32}{'type':<18}{'input':<22}{'norm':>12}{'iters':>8}  converged")
    for name, kind, one, r in rows:
        print(f"{name:<32}{kind:<18}{'x'.join(map(str, one)):<22}{r.norm:>12.5g}{r.iterations:>8}  {r.converged}")
    return 0
