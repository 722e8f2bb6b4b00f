"""``anyconv shape``: output shape, applied padding and the formula with numbers, for a chain of ops."""

from __future__ import annotations

import argparse
from typing import Any

EPILOG = """\
examples:
  anyconv shape conv2d --input 1x3x32x32 --kernel 5 --stride 2 --padding same
  anyconv shape conv2d --input 1x3x32x32 --kernel 3 --out-channels 16 --then "maxpool 2" --then "conv 3 out=32 s=2 p=1"
  anyconv shape conv_transpose2d --input 1x16x8x8 --kernel 4 --stride 2 --padding 1 --json
  anyconv shape conv2d --input 1x3x32x32 --kernel 5 --stride 2 --want 16x16   (finds the padding)

stage grammar for --then:  OP [KERNEL] [key=value ...]
  OP: conv, conv_transpose (or convT, deconv), maxpool, avgpool, lppool, adaptiveavgpool,
      adaptivemaxpool, unfold, or any functional name/alias (conv3d, max_pool2d, ...)
  keys: k|kernel, s|stride, p|padding, d|dilation, g|groups, out|channels, op|output_padding,
        ceil|ceil_mode, size|output_size, norm|norm_type, mode|padding_mode
  values: 3 | 3,5 (per dim) | 1:2,0:1 ((before, after) per dim) | same | valid | causal | true
"""
_OPS = {"convt": "conv_transpose", "deconv": "conv_transpose", "maxpool": "max_pool", "avgpool": "avg_pool",
        "lppool": "lp_pool", "adaptiveavgpool": "adaptive_avg_pool", "adaptivemaxpool": "adaptive_max_pool"}
_KEYS = {"k": "kernel_size", "kernel": "kernel_size", "s": "stride", "p": "padding", "d": "dilation",
         "g": "groups", "out": "out_channels", "channels": "out_channels", "op": "output_padding",
         "ceil": "ceil_mode", "size": "output_size", "norm": "norm_type", "mode": "padding_mode"}


def value(text: str) -> Any:
    """``"3"`` -> 3, ``"3,5"`` -> (3, 5), ``"1:2,0:1"`` -> ((1, 2), (0, 1)), ``"true"`` -> True."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        if ":" in low:
            return tuple(tuple(int(v) for v in part.split(":")) for part in low.split(","))
        if "," in low:
            return tuple(int(v) for v in low.split(","))
        return int(low)
    except ValueError:
        try:
            return float(low)
        except ValueError:
            return text.strip()


def parse_stage(text: str) -> tuple[str, dict[str, Any]]:
    """``"maxpool 2 s=1"`` -> ``("max_pool", {"kernel_size": 2, "stride": 1})``."""
    from ..cli import CommandError

    words = text.split()
    if not words:
        raise CommandError("empty --then stage (expected: OP [KERNEL] [key=value ...])")
    op = _OPS.get(words[0].lower().replace("_", ""), words[0])
    params: dict[str, Any] = {}
    for w in words[1:]:
        if "=" in w:
            k, v = w.split("=", 1)
            params[_KEYS.get(k, k)] = value(v)
        elif "kernel_size" not in params and "output_size" not in params:
            params["output_size" if op.startswith("adaptive") else "kernel_size"] = value(w)
        else:
            raise CommandError(f"stage {text!r}: unexpected {w!r} (expected key=value)")
    return op, params


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("shape", help="output shape, padding and formula of an op (or a chain)",
                              description="Print the output shape, the padding applied per side and the "
                                          "formula with the numbers filled in.",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("op", help="conv2d, conv, conv_transpose2d, max_pool2d, avg_pool, adaptive_avg_pool2d, unfold, ...")
    p.add_argument("--input", required=True, help="input shape, e.g. 1x3x32x32")
    for flag, key in (("--kernel", "kernel_size"), ("--stride", "stride"), ("--padding", "padding"),
                      ("--dilation", "dilation"), ("--groups", "groups"), ("--out-channels", "out_channels"),
                      ("--output-padding", "output_padding"), ("--output-size", "output_size"),
                      ("--weight-shape", "weight_shape"), ("--norm-type", "norm_type"),
                      ("--padding-mode", "padding_mode")):
        p.add_argument(flag, dest=key, help=f"{key} (stage value syntax)")
    p.add_argument("--ceil-mode", action="store_true", help="pooling: round the output size up")
    p.add_argument("--want", metavar="SIZES", help="wanted output spatial size (e.g. 16x16): the first op's "
                   "padding is found (symmetric when possible, else the extra element at the end)")
    p.add_argument("--then", action="append", default=[], metavar="STAGE", help="a further op on the output")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)
    return p


def _dims(n: int) -> list[str]:
    return {1: ["L"], 2: ["H", "W"], 3: ["D", "H", "W"]}.get(n, [f"dim{i}" for i in range(n)])


def run(args: argparse.Namespace) -> int:
    import json

    from ..cli import CommandError
    from ..tools.shapes import explain_shape

    try:
        shape = tuple(int(v) for v in args.input.lower().split("x"))
    except ValueError:
        raise CommandError(f"--input must look like 1x3x32x32; got {args.input!r}") from None
    first: dict[str, Any] = {}
    for key in ("kernel_size", "stride", "padding", "dilation", "groups", "out_channels", "output_padding",
                "output_size", "weight_shape", "norm_type", "padding_mode"):
        raw = getattr(args, key)
        if raw is not None:
            v = value(raw)
            first[key] = tuple(int(t) for t in raw.lower().split("x")) if key == "weight_shape" else v
    if args.ceil_mode:
        first["ceil_mode"] = True
    op0 = _OPS.get(args.op.lower().replace("_", ""), args.op)
    if args.want:
        from ..tools.padding import padding_for

        if "padding" in first:
            raise CommandError("give either --padding or --want, not both")
        try:
            want = tuple(int(v) for v in args.want.lower().split("x"))
        except ValueError:
            raise CommandError(f"--want must look like 16x16; got {args.want!r}") from None
        first["padding"] = padding_for(op0, shape, want, **first)
    stages = [(op0, first)] + [parse_stage(t) for t in args.then]
    infos = []
    for op, params in stages:
        info = explain_shape(op, shape, **params)
        infos.append(info)
        shape = info.output_shape
    if args.json:
        print(json.dumps([i.as_dict() for i in infos], indent=2))
        return 0
    for info in infos:
        names = _dims(len(info.formulas))
        print(f"{info.op}: {list(info.input_shape)} -> {list(info.output_shape)}")
        pads = ", ".join(f"{d} {b}+{a}" for d, (b, a) in zip(names, info.padding))
        label = "crop" if info.kind == "conv_transpose" else "padding (before+after)"
        print(f"  {label}: {pads}")
        print(f"  {info.formula}")
        for d, f in zip(names, info.formulas):
            print(f"  {d}: {f}")
        for note in info.notes:
            print(f"  note: {note}")
    if len(infos) > 1:
        print(f"final shape: {list(infos[-1].output_shape)}")
    return 0
