"""Canonicalisation of raw user arguments into plain per-dimension tuples.

These helpers are the only place that looks at raw ``stride=``/``padding=``/... values; they
return tuples of ints (or a padding string) and raise the shared ``ValueError``/``TypeError``
message shape for anything else.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

from .errors import type_error, value_error
from .types import Pairs

PADDING_STRINGS = ("valid", "same", "same_lower", "causal")


def as_int(op: str, name: str, value: Any, expected: str) -> int:
    """``value`` as a Python int (bools and floats refused with a TypeError)."""
    if isinstance(value, bool):
        type_error(op, name, value, expected)
    try:
        return operator.index(value)
    except TypeError:
        type_error(op, name, value, expected)


def is_sequence(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def torch_form(value: Any, n: int) -> Any:
    """torch's argument form: a one-element sequence stands for the same value in all ``n`` dims.

    torch's ``conv2d``/``max_pool2d``/... and its modules broadcast ``stride=[2]``,
    ``padding=(1,)`` and the like to every spatial dim; anyconv's torch-named aliases and
    modules pass their arguments through this first. Anything else comes back unchanged.

    >>> torch_form((1,), 3), torch_form([2], 1), torch_form((1, 2), 2), torch_form(3, 2)
    ((1, 1, 1), [2], (1, 2), 3)
    """
    if n > 1 and is_sequence(value) and len(value) == 1:
        return tuple(value) * n
    return value


def int_tuple(op: str, name: str, value: Any, n: int, minimum: int = 1) -> tuple[int, ...]:
    """An int or a sequence of ``n`` ints, each ``>= minimum``, as a tuple of ``n`` ints."""
    what = "positive" if minimum == 1 else ("non-negative" if minimum == 0 else f">= {minimum}")
    expected = f"a {what} int or a sequence of {n} {what} ints"
    if is_sequence(value):
        if len(value) != n:
            value_error(op, name, value, expected)
        out = tuple(as_int(op, name, v, expected) for v in value)
    elif hasattr(value, "dim") and hasattr(value, "tolist"):  # a tensor: not accepted
        type_error(op, name, value, expected)
    else:
        out = (as_int(op, name, value, expected),) * n
    if any(v < minimum for v in out):
        value_error(op, name, value, expected)
    return out


def padding_arg(
    op: str, value: Any, n: int, strings: Sequence[str] = PADDING_STRINGS, name: str = "padding"
) -> str | Pairs:
    """A padding argument as one of ``strings`` or as ``n`` non-negative ``(before, after)`` pairs.

    Accepted forms: an int; a sequence of ``n`` ints (symmetric per dim); a sequence of ``n``
    ``(before, after)`` pairs (ints and pairs may be mixed); one of ``strings``.
    """
    forms = " | ".join(repr(s) for s in strings)
    expected = (
        f"a non-negative int, a sequence of {n} non-negative ints, a sequence of {n} "
        f"(before, after) pairs of non-negative ints" + (f", or one of {forms}" if strings else "")
    )
    if isinstance(value, str):
        if value not in strings:
            value_error(op, name, value, expected)
        return value
    if is_sequence(value):
        if len(value) != n:
            value_error(op, name, value, expected)
        pairs = []
        for item in value:
            if is_sequence(item):
                if len(item) != 2:
                    value_error(op, name, value, expected)
                b, a = (as_int(op, name, v, expected) for v in item)
            else:
                b = a = as_int(op, name, item, expected)
            pairs.append((b, a))
        out = tuple(pairs)
    elif hasattr(value, "dim") and hasattr(value, "tolist"):
        type_error(op, name, value, expected)
    else:
        p = as_int(op, name, value, expected)
        out = ((p, p),) * n
    if any(b < 0 or a < 0 for b, a in out):
        value_error(op, name, value, expected)
    return out


def choice(op: str, name: str, value: Any, options: Sequence[str]) -> str:
    """``value`` checked to be one of ``options``."""
    expected = "one of " + ", ".join(repr(o) for o in options)
    if not isinstance(value, str):
        type_error(op, name, value, expected)
    if value not in options:
        value_error(op, name, value, expected)
    return value


def boolean(op: str, name: str, value: Any) -> bool:
    """``value`` checked to be a bool."""
    if not isinstance(value, bool):
        type_error(op, name, value, "a bool")
    return value
