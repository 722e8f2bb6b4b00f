"""The ``anyconv`` command: a thin argparse layer over importable functions.

Each subcommand lives in ``anyconv/commands/<name>.py`` and provides
``register(subparsers) -> argparse.ArgumentParser`` whose parser has ``func`` set to a
function taking the parsed namespace and returning an exit code. Subcommand modules import
their heavy dependencies inside ``func`` only, so ``anyconv --help`` stays fast.

Bad input (``ValueError``, ``TypeError``, ``OSError``, ``KeyError`` from the user's
arguments, or any other error of the work it asked for) exits with status 2 and a one-line
message, never a traceback. Every command reads sizes, op names and ``--threads`` with the
one grammar of :mod:`anyconv.commands._grammar`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from . import __version__
from .commands._grammar import CommandError, apply_threads

# Subcommands in the order `anyconv --help` lists them; modules that do not exist yet are
# skipped, so each feature adds its command by adding its module.
COMMANDS = (
    "demo",
    "train",
    "eval",
    "predict",
    "bench",
    "shape",
    "summary",
    "norm",
    "animate",
    "plot",
    "playground",
    "doctor",
    "tune",
    "models",
    "datasets",
)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``anyconv demo: error: ...`` and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="anyconv",
        description="anyconv: convolution and pooling, any dimension, on PyTorch tensors.",
        epilog="Example: anyconv demo",
    )
    parser.add_argument("--version", action="version", version=f"anyconv {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"anyconv.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"anyconv.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``anyconv`` console script."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # named by the subcommand, as its other errors are
        where = f"anyconv {args.command}" if getattr(args, "command", None) else "anyconv"
        parser.exit(2, f"{where}: error: unrecognized arguments: {' '.join(extra)} (see {where} --help)\n")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        apply_threads(args)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("anyconv: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`: not an error of the command
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (CommandError, ValueError, TypeError, OSError, KeyError, ImportError) as e:
        text = str(e).strip().splitlines()
        print(f"anyconv {args.command}: error: {text[0] if text else type(e).__name__}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - e.g. a user model's RuntimeError: one line, never a traceback
        text = str(e).strip().splitlines()
        print(f"anyconv {args.command}: error: {type(e).__name__}: {text[0] if text else ''}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
