"""``anyconv shape``: output shape, applied padding and the formula with numbers, for a chain of ops."""

from __future__ import annotations

import argparse
import re
import textwrap
from typing import Any

from ._grammar import (
    OPS_HELP,
    CommandError,
    add_threads,
    batched,
    canonical_op,
    flag_error,
    op_name,
    parse_sizes,
    reading,
)

EPILOG = """\
examples:
  anyconv shape conv2d --input 1x3x32x32 --kernel 5 --stride 2 --padding same
  anyconv shape conv2d --input 1x3x32x32 --kernel 3 --out-channels 16 --then "maxpool 2" --then "conv 3 out=32 s=2 p=1"
  anyconv shape conv_transpose2d --input 1x16x8x8 --kernel 4 --stride 2 --padding 1 --json
  anyconv shape conv2d --input 1x3x32x32 --kernel 5 --stride 2 --want 16x16   (finds the padding)
  anyconv shape Conv2d --input 32x32 --kernel 3     (one 1-channel 32x32 sample: batch shape 1x1x32x32)

--input: N x C x spatial sizes (1x3x32x32); for an op with its dims (conv2d), one sample
C x spatial (3x32x32) or its spatial size (32x32, or 32 for every dim) is read as batch 1 (with
1 channel), and stderr says so. Sizes and per-dim values: 5x5, 5,5 or 5.

stage grammar for --then:  OP [KERNEL] [key=value ...]
  """ + textwrap.fill(OPS_HELP, 92, subsequent_indent="      ") + """
  keys: k|kernel, s|stride, p|padding, d|dilation, g|groups, out|channels, op|output_padding,
        ceil|ceil_mode, size|output_size, norm|norm_type, mode|padding_mode
  values: 3 | 3,5 or 3x5 (per dim) | 1:2,0:1 ((before, after) per dim) | same | valid | causal | true
"""
_KEYS = {"k": "kernel_size", "kernel": "kernel_size", "s": "stride", "p": "padding", "d": "dilation",
         "g": "groups", "out": "out_channels", "channels": "out_channels", "op": "output_padding",
         "ceil": "ceil_mode", "size": "output_size", "norm": "norm_type", "mode": "padding_mode"}
# the first op's flags -> its keyword arguments
_FLAGS = (("--kernel", "kernel_size"), ("--stride", "stride"), ("--padding", "padding"),
          ("--dilation", "dilation"), ("--groups", "groups"), ("--out-channels", "out_channels"),
          ("--output-padding", "output_padding"), ("--output-size", "output_size"),
          ("--weight-shape", "weight_shape"), ("--norm-type", "norm_type"), ("--padding-mode", "padding_mode"))


def value(text: str) -> Any:
    """``"3"`` -> 3, ``"3,5"`` / ``"3x5"`` -> (3, 5), ``"1:2,0:1"`` -> ((1, 2), (0, 1)), ``"true"`` -> True."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if re.fullmatch(r"\d+(x\d+)+", low):
        low = low.replace("x", ",")
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
    words = text.split()
    if not words:
        flag_error("--then", text, "a stage: OP [KERNEL] [key=value ...]")
    op = op_name(*canonical_op(words[0], "--then"))
    params: dict[str, Any] = {}
    for w in words[1:]:
        if "=" in w:
            k, v = w.split("=", 1)
            params[_KEYS.get(k, k)] = value(v)
        elif "kernel_size" not in params and "output_size" not in params:
            params["output_size" if op.startswith("adaptive") else "kernel_size"] = value(w)
        else:
            flag_error("--then", text, f"OP [KERNEL] [key=value ...] (unexpected {w!r})")
    return op, params


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("shape", help="output shape, padding and formula of an op (or a chain)",
                              description="Print the output shape, the padding applied per side and the "
                                          "formula with the numbers filled in.",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("op", metavar="OP", help="conv2d, conv, conv_transpose2d, max_pool2d, avg_pool, "
                   "adaptive_avg_pool2d, unfold, ... (torch's spellings and aliases too: see below)")
    p.add_argument("--input", required=True, help="input shape N x C x spatial, e.g. 1x3x32x32 (for conv2d "
                   "etc. one sample 3x32x32 or its size 32x32 is batch 1)")
    for flag, key in _FLAGS:
        p.add_argument(flag, dest=key, help=f"{key} (stage value syntax)")
    p.add_argument("--ceil-mode", action="store_true", help="pooling: round the output size up")
    p.add_argument("--want", metavar="SIZES", help="wanted output spatial size (e.g. 16x16): the first op's "
                   "padding is found (symmetric when possible, else the extra element at the end)")
    p.add_argument("--then", action="append", default=[], metavar="STAGE", help="a further op on the output")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_threads(p)
    p.set_defaults(func=run)
    return p


def _dims(n: int) -> list[str]:
    return {1: ["L"], 2: ["H", "W"], 3: ["D", "H", "W"]}.get(n, [f"dim{i}" for i in range(n)])


def _input(op: str, n: int | None, text: str) -> tuple[tuple[int, ...], str | None]:
    """``--input`` as a batched shape (and how a short one was read) for ``op`` with ``n`` dims."""
    sizes = parse_sizes(text, "--input")
    if n is not None and op != "unfold":
        return batched(sizes, n, 1, "--input", op)
    if len(sizes) < 3:
        flag_error("--input", text, f"N x C x spatial sizes for {op} (3 or more, e.g. 1x3x32x32; or name the "
                   "dims, e.g. conv2d, to give one sample or its spatial size)")
    return sizes, None


def _explain(op: str, shape: tuple[int, ...], params: dict[str, Any], stage: str | None) -> Any:
    """``explain_shape``; its error names the flag (first op) or the --then stage it came from."""
    from ..tools.shapes import explain_shape

    try:
        return explain_shape(op, shape, **params)
    except (ValueError, TypeError) as e:
        text = (str(e).strip().splitlines() or [type(e).__name__])[0]
        if stage is not None:
            raise CommandError(f"{text} (in --then {stage!r})") from e
        for flag, key in _FLAGS:
            text = text.replace(f"`{key}`", f"`{flag}`").replace(f"got {key}=", f"got {flag}=")
        flag = "--kernel" if "kernel_size" in params else "--weight-shape"
        text = re.sub(r"got weight=Tensor\(shape=(\(.*?\)),.*\)$", rf"got {flag}=\1 (the weight's shape)",
                      text.replace("`weight`", f"`{flag}`"))
        raise CommandError(text) from e


def run(args: argparse.Namespace) -> int:
    import json

    base, n = canonical_op(args.op, "OP")
    op0 = op_name(base, n)
    shape, note = _input(op0, n, args.input)
    first: dict[str, Any] = {}
    for flag, key in _FLAGS:
        raw = getattr(args, key)
        if raw is not None:
            first[key] = parse_sizes(raw, flag) if key == "weight_shape" else value(raw)
    if args.ceil_mode:
        first["ceil_mode"] = True
    if args.want:
        from ..tools.padding import padding_for

        if "padding" in first:
            flag_error("--want", args.want, "given without --padding (--want finds the padding)")
        want = parse_sizes(args.want, "--want", len(shape) - 2)
        with reading(note, "shape"):
            first["padding"] = padding_for(op0, shape, want, **first)
        note = None
    stages = [(op0, first, None)] + [(*parse_stage(t), t) for t in args.then]
    infos = []
    with reading(note, "shape"):
        for op, params, stage in stages:
            info = _explain(op, shape, params, stage)
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
