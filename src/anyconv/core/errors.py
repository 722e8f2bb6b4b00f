"""One shape for every error message anyconv raises on bad user input.

Every message reads ``<op>: `<param>` must be <expected>; got <param>=<value>`` so that a
user can see at once which call, which argument, what was given and what would be right.
"""

from __future__ import annotations

from typing import Any, NoReturn


def _show(value: Any) -> str:
    """A short, readable rendering of a user value (tensors show shape and dtype)."""
    import torch

    if isinstance(value, torch.Tensor):
        return f"Tensor(shape={tuple(value.shape)}, dtype={value.dtype}, device={value.device})"
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def message(op: str, param: str, value: Any, expected: str) -> str:
    """Build the one message shape: which op, which parameter, what was expected, what came."""
    return f"{op}: `{param}` must be {expected}; got {param}={_show(value)}"


def value_error(op: str, param: str, value: Any, expected: str) -> NoReturn:
    """Raise ``ValueError`` in the shared message shape."""
    raise ValueError(message(op, param, value, expected))


def type_error(op: str, param: str, value: Any, expected: str) -> NoReturn:
    """Raise ``TypeError`` in the shared message shape."""
    raise TypeError(message(op, param, value, expected))
