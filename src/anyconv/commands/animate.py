"""``anyconv animate``: write a step-by-step animation of a conv, transposed conv or pooling."""

from __future__ import annotations

import argparse
import ast
from typing import Any

EPILOG = """examples:
  anyconv animate --input-size 5,5 --kernel-size 3 --stride 2 --padding same --out conv.gif
  anyconv animate --input-size 9 --kernel-size 3 --dilation 2 --padding "[(2, 1)]" --out dilated.gif
  anyconv animate --op conv_transpose --input-size 3,3 --stride 2 --padding 1 --output-padding 1 --out up.gif
  anyconv animate --op max_pool --input-size 6,6 --kernel-size 2 --out pool.gif

Values are Python literals: 3, "5,5" (a tuple), "((0, 1), (1, 0))" (before/after pairs), or a
padding string (valid, same, same_lower, causal). The output suffix picks the format:
.gif, .png (APNG), .webp or .mp4 (needs ffmpeg)."""


def literal(text: str) -> Any:
    """A command-line value as a Python literal (``"5,5"`` -> ``(5, 5)``), else the text itself.

    >>> literal("5,5"), literal("same"), literal("[(0, 1)]"), literal("3")
    ((5, 5), 'same', [(0, 1)], 3)
    """
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "animate",
        help="animate a 1-D/2-D conv, transposed conv or pooling step by step (GIF)",
        description="Write an animation with one frame per output position: the padded input, "
        "the window read, the kernel and the output cell being written, numbers from anyconv itself.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--op", default="conv", help="conv | conv_transpose | max_pool | avg_pool (default conv)")
    p.add_argument("--input-size", type=literal, default=(5, 5), help="spatial size, e.g. 7 or 5,5 (default 5,5)")
    p.add_argument("--kernel-size", type=literal, default=3, help="kernel size, e.g. 3 or 2,3 (default 3)")
    p.add_argument("--stride", type=literal, default=None, help="stride (default: the op's default)")
    p.add_argument("--padding", type=literal, default=0, help="int, ints, pairs or valid/same/same_lower/causal")
    p.add_argument("--dilation", type=literal, default=1)
    p.add_argument("--groups", type=int, default=1)
    p.add_argument("--in-channels", type=int, default=1)
    p.add_argument("--out-channels", type=int, default=None)
    p.add_argument("--output-padding", type=literal, default=0, help="conv_transpose only")
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

    size = args.input_size if isinstance(args.input_size, (tuple, list)) else (args.input_size,)
    anim = animate_conv(
        args.out,
        op=args.op,
        input_size=size,
        kernel_size=args.kernel_size,
        stride=args.stride,
        padding=args.padding,
        dilation=args.dilation,
        groups=args.groups,
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
