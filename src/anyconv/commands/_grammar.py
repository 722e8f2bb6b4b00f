"""The command line's one grammar: sizes, op names, one-short inputs, ``--threads``, errors.

Every ``anyconv`` command reads sizes with :func:`parse_sizes` (``5x5``, ``5,5`` and ``5``
all mean the same thing), op names with :func:`canonical_op` (functional names, torch's
module names and a few short aliases), and raises :func:`flag_error` for a bad value: one
line that names the flag, what was expected and what came, shown with exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

SIZES_FORMS = "5x5, 5,5 or 5"

# canonical op base -> aliases (compared lower-case, without '_', '-' and a trailing 'Nd')
OP_ALIASES: dict[str, tuple[str, ...]] = {
    "conv": ("convolution", "correlation"),
    "conv_transpose": ("convt", "deconv", "transposedconv", "convtransposed", "upconv"),
    "max_pool": ("maxpool", "maxpooling"),
    "avg_pool": ("avgpool", "averagepool", "meanpool"),
    "lp_pool": ("lppool", "powerpool"),
    "adaptive_avg_pool": ("adaptiveavgpool",),
    "adaptive_max_pool": ("adaptivemaxpool",),
    "unfold": ("im2col",),
}
_LOOKUP = {alias: base for base, aliases in OP_ALIASES.items() for alias in (base.replace("_", ""), *aliases)}
_OP_RE = re.compile(r"([a-z]+?)([1-9])d")
OPS_HELP = (
    "OP: conv, conv_transpose, max_pool, avg_pool, lp_pool, adaptive_avg_pool, adaptive_max_pool, "
    "unfold, each also with its dims (conv2d, max_pool3d, ...); torch's spellings (Conv2d, MaxPool2d, "
    "ConvTranspose2d, maxpool, avgpool) and aliases (convT, deconv) are accepted"
)
THREADS_HELP = "torch threads for the work (torch.set_num_threads; default: torch's current)"


class CommandError(Exception):
    """An error whose message is shown to the user as is (one line, exit status 2)."""


def flag_error(flag: str, value: Any, expected: str) -> NoReturn:
    """Raise the command line's one error shape: ``\\`--flag\\` must be <expected>; got --flag=<value>``.

    >>> flag_error("--input", "3xa", "sizes like 5x5")
    Traceback (most recent call last):
    ...
    anyconv.commands._grammar.CommandError: `--input` must be sizes like 5x5; got --input='3xa'
    """
    raise CommandError(f"`{flag}` must be {expected}; got {flag}={value!r}")


def parse_sizes(text: Any, flag: str, count: int | None = None) -> tuple[int, ...]:
    """Positive sizes written ``5x5``, ``5,5``, ``(5, 5)`` or ``5``; ``count`` broadcasts one size.

    Shape:
        ``count=None``: as many sizes as written; ``count=n``: one size is repeated ``n``
        times, else exactly ``n`` sizes are required.

    Raises:
        CommandError: not positive ints, or not ``count`` of them (names ``flag``).

    Examples:
        >>> parse_sizes("1x3x32x32", "--input"), parse_sizes("5,5", "--want"), parse_sizes("5", "--k", 2)
        ((1, 3, 32, 32), (5, 5), (5, 5))
    """
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    if isinstance(text, (tuple, list)):
        text = ",".join(map(str, text))
    expected = f"positive sizes like {SIZES_FORMS}"
    if not isinstance(text, str):
        flag_error(flag, text, expected)
    body = text.strip().strip("()[]").strip().rstrip(",")
    parts = [p.strip() for p in re.split(r"[x,X*]", body)] if body else []
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        flag_error(flag, text, expected)
    sizes = tuple(int(p) for p in parts)
    if count is not None and len(sizes) == 1:
        sizes = sizes * count
    if count is not None and len(sizes) != count:
        flag_error(flag, text, f"1 or {count} positive sizes ({SIZES_FORMS})")
    return sizes


def sizes_type(flag: str) -> Any:
    """An argparse ``type=`` for a sizes flag: its errors name the flag (argparse adds nothing)."""

    def convert(text: str) -> tuple[int, ...]:
        try:
            return parse_sizes(text, flag)
        except CommandError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return convert


def numbers_type(flag: str) -> Any:
    """An argparse ``type=`` for a list of numbers written ``1,2,3`` (or ``1x2x3``, ``[1, 2, 3]``, ``5``).

    >>> numbers_type("--signal")("1,-2.5,3")
    (1.0, -2.5, 3.0)
    """

    def convert(text: str) -> tuple[float, ...]:
        body = text.strip().strip("()[]").strip().rstrip(",")
        try:
            values = tuple(float(p) for p in re.split(r"[,x\s]+", body))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"`{flag}` must be numbers like 1,2,3 (or 1x2x3); got {flag}={text!r}") from None
        return values

    return convert


def canonical_op(text: str, flag: str, allowed: Sequence[str] | None = None) -> tuple[str, int | None]:
    """``"Conv2d"`` / ``"conv2d"`` / ``"maxpool"`` -> ``("conv", 2)`` / ``("conv", 2)`` / ``("max_pool", None)``.

    Raises:
        CommandError: an unknown name or one outside ``allowed`` (the message lists the names).

    Examples:
        >>> canonical_op("ConvTranspose2d", "OP"), canonical_op("maxpool", "--op"), canonical_op("convT", "OP")
        (('conv_transpose', 2), ('max_pool', None), ('conv_transpose', None))
    """
    bases = tuple(allowed or OP_ALIASES)
    key = re.sub(r"[_\-\s]", "", str(text).lower())
    m = _OP_RE.fullmatch(key)
    base = _LOOKUP.get(m.group(1) if m else key)
    if base is None or base not in bases:
        flag_error(flag, text, "one of " + ", ".join(bases) + " (optionally with dims, e.g. conv2d; "
                   "torch's spellings such as MaxPool2d and aliases such as convT are accepted)")
    return base, int(m.group(2)) if m else None


def op_name(base: str, n: int | None) -> str:
    """``("conv", 2)`` -> ``"conv2d"``; ``("unfold", None)`` -> ``"unfold"``."""
    return base if n is None or base == "unfold" else f"{base}{n}d"


def batched(sizes: tuple[int, ...], n: int, channels: int, flag: str, what: str) -> tuple[tuple[int, ...], str | None]:
    """Sizes of an input to a layer with ``n`` spatial dims as a batched shape ``(N, C, *spatial)``.

    ``n + 2`` sizes are a batch; ``n + 1`` (one short of the batched rank) one sample
    ``(C, *spatial)``, read as batch 1; ``n`` (or one size, repeated) the spatial size of one
    sample with ``channels`` channels. The second result says how a short input was read.

    Raises:
        CommandError: any other number of sizes (names ``flag`` and ``what`` takes).

    Examples:
        >>> batched((3, 224, 224), 2, 3, "--input", "resnet18")
        ((1, 3, 224, 224), '--input 3x224x224 read as one sample (C, H, W): batch shape 1x3x224x224')
        >>> batched((2, 3, 8, 8), 2, 3, "--input", "conv2d")[0], batched((8,), 2, 1, "--input", "conv2d")[0]
        ((2, 3, 8, 8), (1, 1, 8, 8))
    """
    dims = {1: "L", 2: "H, W", 3: "D, H, W"}.get(n, ", ".join(f"S{i}" for i in range(n)))
    given = "x".join(map(str, sizes))
    if len(sizes) == n + 2:
        return sizes, None
    if len(sizes) == n + 1:
        shape = (1, *sizes)
        how = f"one sample (C, {dims})"
    elif len(sizes) == n or len(sizes) == 1:
        shape = (1, channels, *(sizes * n if len(sizes) == 1 else sizes))
        how = f"the spatial size ({dims}) of one {channels}-channel sample"
    else:
        flag_error(flag, given, f"N x C x {dims.replace(', ', ' x ')} sizes for {what} ({n + 2} sizes), "
                   f"or {n + 1} for one sample (C, {dims}), or {n} for its spatial size")
    return shape, f"{flag} {given} read as {how}: batch shape {'x'.join(map(str, shape))}"


@contextlib.contextmanager
def reading(note: str | None, prog: str) -> Iterator[None]:
    """Run a command's work knowing how a short input was read (:func:`batched`'s note).

    On success the note goes to stderr as ``anyconv PROG: note: ...``; an error of the work
    gets it appended to its one line, so a message never talks about a shape the user did
    not type without saying where that shape came from.
    """
    try:
        yield
    except (CommandError, ValueError, TypeError, RuntimeError) as e:
        if note is None:
            raise
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CommandError(f"{first} ({note})") from e
    if note is not None:
        print(f"anyconv {prog}: note: {note}", file=sys.stderr)


def add_threads(parser: argparse.ArgumentParser) -> None:
    """Add ``--threads N`` (see :func:`apply_threads`)."""
    parser.add_argument("--threads", type=int, default=None, metavar="N", help=THREADS_HELP)


def apply_threads(args: argparse.Namespace) -> None:
    """``torch.set_num_threads(args.threads)`` when given; a non-positive count is a one-line error."""
    threads = getattr(args, "threads", None)
    if threads is None:
        return
    if threads < 1:
        flag_error("--threads", threads, "a positive int")
    import torch

    torch.set_num_threads(threads)
