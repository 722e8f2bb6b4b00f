"""Error tables: every bad argument raises ValueError/TypeError naming op, parameter and value.

Rows come from ``samples.*_ERRORS``: ``(name, kwargs, exception type, message regex)``. Each
row is run through the generic op and (where the rank fits) through the torch-named alias,
and the message must have the one shared shape ``op: `param` must be ...; got param=...``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import torch

import anyconv
import anyconv.functional as AF
from samples import CONV_ERRORS, CONV_T_ERRORS, FOLD_ERRORS, UNFOLD_ERRORS

SHAPE = re.compile(r"^(\w+): `(\w+)` must be .+; got \2=.+", re.S)


def _check(fn: Any, op: str, kwargs: dict[str, Any], exc: type[Exception], pattern: str) -> None:
    with pytest.raises(exc) as info:
        fn(**kwargs)
    assert type(info.value) is exc, f"raised {type(info.value).__name__}, expected {exc.__name__}"
    msg = str(info.value)
    assert re.search(pattern, msg), f"message {msg!r} does not match {pattern!r}"
    m = SHAPE.match(msg)
    assert m, f"message {msg!r} is not in the shared shape"
    assert m.group(1) == op, f"message names op {m.group(1)!r}, expected {op!r}"


def _without_op_prefix(pattern: str) -> str:
    return re.sub(r"^\w+: ", "", pattern)


@pytest.mark.parametrize("name,kwargs,exc,pattern", CONV_ERRORS, ids=[r[0] for r in CONV_ERRORS])
def test_conv_errors(name: str, kwargs: dict[str, Any], exc: type[Exception], pattern: str) -> None:
    _check(AF.conv, "conv", kwargs, exc, pattern)


@pytest.mark.parametrize("name,kwargs,exc,pattern", CONV_ERRORS, ids=[r[0] for r in CONV_ERRORS])
def test_conv2d_alias_errors(name: str, kwargs: dict[str, Any], exc: type[Exception], pattern: str) -> None:
    if name in ("weight_rank",):  # the alias checks the rank first, with its own message
        pattern = r"`weight`.*4-d tensor"
    _check(AF.conv2d, "conv2d", kwargs, exc, _without_op_prefix(pattern))


@pytest.mark.parametrize("name,kwargs,exc,pattern", CONV_T_ERRORS, ids=[r[0] for r in CONV_T_ERRORS])
def test_conv_transpose_errors(name: str, kwargs: dict[str, Any], exc: type[Exception], pattern: str) -> None:
    _check(AF.conv_transpose, "conv_transpose", kwargs, exc, pattern)
    _check(AF.conv_transpose2d, "conv_transpose2d", kwargs, exc, _without_op_prefix(pattern))


@pytest.mark.parametrize("name,kwargs,exc,pattern", UNFOLD_ERRORS, ids=[r[0] for r in UNFOLD_ERRORS])
def test_unfold_errors(name: str, kwargs: dict[str, Any], exc: type[Exception], pattern: str) -> None:
    _check(AF.unfold, "unfold", kwargs, exc, pattern)


@pytest.mark.parametrize("name,kwargs,exc,pattern", FOLD_ERRORS, ids=[r[0] for r in FOLD_ERRORS])
def test_fold_errors(name: str, kwargs: dict[str, Any], exc: type[Exception], pattern: str) -> None:
    _check(AF.fold, "fold", kwargs, exc, pattern)


@pytest.mark.parametrize("n,alias", [(1, AF.conv1d), (2, AF.conv2d), (3, AF.conv3d), (1, AF.conv_transpose1d),
                                     (2, AF.conv_transpose2d), (3, AF.conv_transpose3d)])
def test_alias_rank_error(n: int, alias: Any) -> None:
    w = torch.zeros((2, 2) + (2,) * (n + 1))
    with pytest.raises(ValueError, match=rf"^{alias.__name__}: `weight` must be a {n + 2}-d tensor"):
        alias(torch.zeros((1, 2) + (4,) * (n + 1)), w)


def test_errors_come_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad argument never reaches an algorithm (validation happens in the front door)."""
    from anyconv import algorithms

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an algorithm ran before validation finished")

    monkeypatch.setattr(algorithms, "run", boom)
    x, w = torch.zeros(1, 2, 5, 5), torch.zeros(3, 2, 3, 3)
    for kwargs in ({"stride": 0}, {"padding": "full"}, {"padding_mode": "x"}, {"algorithm": "x"}, {"dilation": 9}):
        with pytest.raises(ValueError):
            AF.conv(x, w, **kwargs)
    with pytest.raises(ValueError):
        AF.conv_transpose(x[:, :2], torch.zeros(2, 3, 3, 3), output_size=[30, 30])


def test_workspace_limit_errors() -> None:
    with pytest.raises(ValueError, match=r"set_workspace_limit: `nbytes` must be .*2\*\*20"):
        anyconv.set_workspace_limit(100)
    with pytest.raises(TypeError, match=r"`nbytes`"):
        anyconv.set_workspace_limit(2.0**21)  # type: ignore[arg-type]
