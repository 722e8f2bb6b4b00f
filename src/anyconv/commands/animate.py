"""``anyconv animate``: write a step-by-step animation of a conv, transposed conv or pooling."""

from __future__ import annotations

import argparse
import ast
from typing import Any

EPILOG = """examples:
  anyconv animate --input-size 5x5 --kernel-size 3 --stride 2 --padding same --out conv.gif
  anyconv animate --input-size 6x6 --in-channels 4 --out-channels 2 --groups 2 --padding-mode reflect --padding 1 --out g.gif
  anyconv animate --transpose --input-size 3x3 --stride 2 --padding 1 --output-padding 1 --out up.gif
  anyconv animate --input-size 9 --kernel-size 3 --dilation 2 --padding "[(2, 1)]" --out dilated.gif
  anyconv animate --op max_pool --input-size 6,6 --kernel-size 2 --out pool.gif

Sizes (input, kernel, stride, dilation, output padding) are 5, 5x5 or 5,5. Padding is a Python
literal: 3, "1,2" (a tuple), "((0, 1), (1, 0))" (before/after pairs), or a padding string
(valid, same, same_lower, causal). The output suffix picks the format: .gif, .png (APNG), .webp or .mp4 (needs ffmpeg)."""


def literal(text: str) -> Any:
    """A command-line value as a Python literal (``"5,5"`` -> ``(5, 5)``), else the text itself.

    >>> literal("5,5"), literal("same"), literal("[(0, 1)]"), literal("3")
    ((5, 5), 'same', [(0, 1)], 3)
    """
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def sizes(flag: str, keep_tuple: bool = False) -> Any:
    """The shared size grammar (``5``, ``5x5``, ``5,5``); one size becomes an int (every dim)."""
    from ._grammar import sizes_type

    convert = sizes_type(flag)
    return lambda text: (lambda v: v if keep_tuple or len(v) > 1 else v[0])(convert(text))


def size(text: str) -> Any:
    """A non-negative size (output padding): ``0``, ``1x0`` or ``1,0`` -> an int or a tuple of ints.

    >>> size("0"), size("1x0"), size("1,0"), size("(0, 1)")
    (0, (1, 0), (1, 0), (0, 1))
    """
    t = text.strip().lower()
    if "x" in t and all(p.strip().isdigit() for p in t.split("x")):
        return tuple(int(p) for p in t.split("x"))
    value = literal(t)
    if isinstance(value, int) or (isinstance(value, tuple) and value and all(isinstance(v, int) for v in value)):
        return value
    raise argparse.ArgumentTypeError(f"must be a size like 5, 5x5 or 5,5; got {text!r}")


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "animate",
        help="animate a 1-D/2-D conv, transposed conv or pooling step by step (GIF)",
        description="Write an animation with one frame per output position: the padded input, "
        "the window read, the kernel and the output cell being written, numbers from anyconv itself.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--op", default="conv", help="conv | conv_transpose | max_pool | avg_pool, or a torch spelling "
                   "(conv2d, ConvTranspose2d, MaxPool2d, convT, maxpool; default conv)")
    p.add_argument("--transpose", action="store_true", help="same as --op conv_transpose")
    p.add_argument("--input-size", type=sizes("--input-size", True), default=(5, 5), help="spatial size: 7, 5x5 or 5,5 (default 5x5)")
    p.add_argument("--kernel-size", type=sizes("--kernel-size"), default=3, help="kernel size: 3, 2x3 or 2,3 (default 3)")
    p.add_argument("--stride", type=sizes("--stride"), default=None, help="stride: 2, 2x1 or 2,1 (default: the op's default)")
    p.add_argument("--padding", type=literal, default=0, help="int, ints, pairs or valid/same/same_lower/causal")
    p.add_argument("--padding-mode", default="zeros", help="conv: zeros | reflect | replicate | circular")
    p.add_argument("--dilation", type=sizes("--dilation"), default=1, help="dilation: 2, 1x2 or 1,2 (default 1)")
    p.add_argument("--groups", type=int, default=1, help="channel groups (default 1)")
    p.add_argument("--in-channels", type=int, default=1)
    p.add_argument("--out-channels", type=int, default=None)
    p.add_argument("--output-padding", type=size, default=0, help="conv_transpose only: 1, 1x0 or 1,0")
    p.add_argument("--ceil-mode", action="store_true", help="pooling only")
    p.add_argument("--no-count-include-pad", action="store_true", help="avg_pool: ignore padded cells")
    p.add_argument("--numbers", action=argparse.BooleanOptionalAction, default=None,
                   help="draw the values (default: when the grids are small)")
    p.add_argument("--cell", type=int, default=40, help="cell size in pixels (default 40)")
    p.add_argument("--duration", type=int, default=700, help="milliseconds per frame (default 700)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated integer data")
    p.add_argument("--out", "-o", default="conv.gif", help="output file (default conv.gif)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..viz.animate import animate_conv
    from ._grammar import canonical_op

    # one op vocabulary with `anyconv shape`: conv2d, Conv2d, convT, MaxPool2d, maxpool ... (dims from --input-size)
    args.op, _ = canonical_op(args.op, "--op", allowed=("conv", "conv_transpose", "max_pool", "avg_pool"))
    if args.transpose and args.op not in ("conv", "conv_transpose"):
        from ..cli import CommandError

        raise CommandError(f"`--transpose` goes with --op conv (or conv_transpose); got --op {args.op}")
    shape = args.input_size if isinstance(args.input_size, (tuple, list)) else (args.input_size,)
    anim = animate_conv(
        args.out,
        op="conv_transpose" if args.transpose else args.op,
        input_size=shape,
        kernel_size=args.kernel_size,
        stride=args.stride,
        padding=args.padding,
        dilation=args.dilation,
        groups=args.groups,
        padding_mode=args.padding_mode,
        in_channels=args.in_channels,
        out_channels=args.out_channels,
        output_padding=args.output_padding,
        ceil_mode=args.ceil_mode,
        count_include_pad=not args.no_count_include_pad,
        numbers=args.numbers,
        cell=args.cell,
        duration_ms=args.duration,
        seed=args.seed,
    )
    print(f"wrote {args.out}: {len(anim)} frames of {anim.frames[0].size[0]}x{anim.frames[0].size[1]} "
          f"({anim.plan.title})")
    return 0
