"""``anyconv demo``: the learning material's examples through anyconv and torch, side by side.

Runs :func:`anyconv.commands._demo_examples.run_examples` (no flags, no download needed) and exits with
status 1 if anyconv and torch differ by more than the tolerance. Further demo sections (a
training demo, ...) are appended to ``SECTIONS``: ``"module:function"`` paths of functions
``(print_fn) -> int`` returning an exit status.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

SECTIONS: tuple[str, ...] = ("anyconv.train.demo:demo_section",)
TOLERANCE = {"float64": 1e-10, "float32": 1e-3}

EPILOG = """examples:
  anyconv demo                  # every example in float64; prints both results and the largest difference
  anyconv demo --dtype float32  # the same in float32 (tolerance 1e-3)
  anyconv demo --examples-only  # the examples alone, without the training comparison
"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="run the learning material's convolution examples through anyconv and torch",
        description="Run the learning material's convolution examples through anyconv and torch side by "
        "side; print both results and the largest difference.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dtype", choices=sorted(TOLERANCE), default="float64", help="dtype of the examples")
    parser.add_argument(
        "--tolerance", type=float, default=None, help="largest difference allowed (default: 1e-10 for float64, 1e-3 for float32)"
    )
    parser.add_argument(
        "--examples-only", action="store_true", help="run the examples only, not the training sections"
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import torch

    from ._demo_examples import run_examples

    tolerance = TOLERANCE[args.dtype] if args.tolerance is None else args.tolerance
    if not tolerance >= 0:
        raise ValueError(f"`--tolerance` must be a non-negative number; got --tolerance={args.tolerance}")
    worst = run_examples(print, getattr(torch, args.dtype))
    status = 0 if worst <= tolerance else 1
    print(f"{'OK' if status == 0 else 'FAILED'}: largest difference {worst:.2e} (tolerance {tolerance:g})")
    for path in () if args.examples_only else SECTIONS:
        module, _, name = path.partition(":")
        status = max(status, int(getattr(importlib.import_module(module), name)(print)))
    return status
