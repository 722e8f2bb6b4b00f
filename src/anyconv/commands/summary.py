"""``anyconv summary``: torchinfo-style table of a zoo model or a model class in a file."""

from __future__ import annotations

import argparse
from typing import Any

from ._grammar import add_threads
from ._model_arg import INPUT_HELP

EPILOG = """\
examples:
  anyconv summary resnet18 --input 1x3x224x224
  anyconv summary cifar_cnn --input 1x3x32x32 --columns output_size,num_params
  anyconv summary path/to/module.py:MyNet --input 1x1x28x28 --depth 2

MODEL is a zoo name (anyconv.models.list_models()) or path/to/module.py:ClassName (built with
no arguments). Columns: output_size, num_params, kernel_size, mult_adds, receptive_field, algorithm.
"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("summary", help="model table: shapes, params, mult-adds, receptive field",
                              description="Summarise a model in torchinfo's layout, plus receptive field and "
                                          "the algorithm auto picks per conv layer.",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="zoo model name or path/to/module.py:ClassName")
    p.add_argument("--input", required=True, help=INPUT_HELP)
    p.add_argument("--depth", type=int, default=3, help="deepest level of rows shown (default 3, as torchinfo)")
    p.add_argument("--columns", default=None, help="comma-separated column names")
    p.add_argument("--wide", action="store_true", help="torchinfo's layout (25-character columns, no width limit)")
    p.add_argument("--no-extras", dest="extras", action="store_false",
                   help="torchinfo's columns only (no receptive field, no algorithm)")
    add_threads(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..tools.summary import DEFAULT_COLUMNS, summary
    from ._grammar import reading
    from ._model_arg import model_and_input

    cols = tuple(c.strip() for c in args.columns.split(",")) if args.columns else DEFAULT_COLUMNS
    model, shape, note = model_and_input(args.model, args.input)
    with reading(note, "summary"):
        print(summary(model, shape, col_names=cols, depth=args.depth, wide=args.wide, extras=args.extras))
    return 0
