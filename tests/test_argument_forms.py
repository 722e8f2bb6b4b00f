"""torch's argument forms, row by row: each call runs through torch and through anyconv.

A row is a torch-named op, the arguments in one of torch's forms and what must happen:
``"equal"`` (both compute, same result and, with ``grad``, same gradients) or the name of
the parameter that anyconv's ValueError/TypeError must name where torch raises too. A few
rows give torch other (equivalent) arguments where torch's own function is broken or lacks
the keyword (``lp_pool2d`` with a one-element ``kernel_size``, ``output_size`` of
``conv_transpose2d``). The module rows do the same for ``anyconv.nn`` against ``torch.nn``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
import torch.nn.functional as F

import anyconv
import anyconv.functional as AF


@dataclass(frozen=True)
class Row:
    op: str
    kwargs: dict[str, Any]
    expect: str = "equal"  # or the parameter anyconv must name
    shape: tuple[int, ...] | None = None  # input shape (default: by op family)
    torch_kwargs: dict[str, Any] | None = None  # what torch gets instead, where it differs
    grad: bool = False
    args: tuple[Any, ...] = field(default=())  # positional args after the tensors


def _n(op: str) -> int:
    return int(op[-2])


def _tensors(row: Row) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    n = _n(row.op)
    if row.op.startswith("conv_transpose"):
        x, w = (2, 4, *[5] * n), (4, 3, *[3] * n)
    elif row.op.startswith("conv"):
        x, w = (2, 4, *[7] * n), (6, 4, *[3] * n)
    else:
        x, w = (2, 3, *[8] * n), None
    x = row.shape or x
    out = [torch.randn(x, generator=g, dtype=torch.float64, requires_grad=row.grad)]
    if w is not None:
        out.append(torch.randn(w, generator=g, dtype=torch.float64, requires_grad=row.grad))
    return out


def _rows() -> list[Row]:
    rows: list[Row] = []
    for n in (2, 3):
        for name in ("stride", "dilation"):
            for form in ((2,), [2]):
                rows.append(Row(f"conv{n}d", {name: form}))
                rows.append(Row(f"conv_transpose{n}d", {name: form}))
        rows += [
            Row(f"conv{n}d", {"padding": (1,)}),
            Row(f"conv{n}d", {"padding": [2], "stride": (2,), "dilation": [1]}),
            Row(f"conv{n}d", {"stride": ()}, "stride"),
            Row(f"conv{n}d", {"padding": (1,) * (n + 1)}, "padding"),
            Row(f"conv{n}d", {"dilation": (1,) * (n - 1) + (0,)}, "dilation"),
            Row(f"conv_transpose{n}d", {"padding": (1,)}),
            Row(f"conv_transpose{n}d", {"stride": 2, "output_padding": (1,)}),
            Row(f"conv_transpose{n}d", {"stride": [3], "output_padding": [2], "padding": (1,)}),
            Row(f"conv_transpose{n}d", {"stride": 1, "dilation": 3, "output_padding": (2,)}),
            Row(f"conv_transpose{n}d", {"stride": 2, "output_padding": (2,)}, "output_padding"),
        ]
    for n in (1, 2, 3):
        rows += [  # output_size reaches every size output_padding < max(stride, dilation) reaches
            Row(f"conv_transpose{n}d", {"stride": 2, "dilation": 3, "output_size": (15 + o,) * n},
                torch_kwargs={"stride": 2, "dilation": 3, "output_padding": o}) for o in range(3)
        ]
        rows += [
            Row(f"conv_transpose{n}d", {"stride": 2, "dilation": 3, "output_size": (18,) * n}, "output_size",
                torch_kwargs={"stride": 2, "dilation": 3, "output_padding": 3}),
            Row(f"conv_transpose{n}d", {"stride": 2}, shape=(0, 4, *[5] * n), grad=True),
            Row(f"conv_transpose{n}d", {"stride": 2, "padding": 1, "output_padding": 1},
                shape=(0, 4, *[5] * n), grad=True),
            Row(f"adaptive_max_pool{n}d", {"output_size": 3}, shape=(0, 3, *[8] * n), grad=True),
            Row(f"adaptive_max_pool{n}d", {"output_size": 3, "return_indices": True}, shape=(0, 3, *[8] * n),
                grad=True),
            Row(f"adaptive_max_pool{n}d", {"output_size": 3}, "input", shape=(2, 0, *[8] * n)),
            Row(f"adaptive_avg_pool{n}d", {"output_size": 3}, shape=(0, 3, *[8] * n), grad=True),
        ]
        if n > 1:
            rows.append(Row(f"adaptive_avg_pool{n}d", {"output_size": (3,)}, "output_size"))
            rows.append(Row(f"adaptive_max_pool{n}d", {"output_size": (3,)}, "output_size"))
        for kind in ("max", "avg", "lp"):
            op = f"{kind}_pool{n}d"
            pre: tuple[Any, ...] = (2.0,) if kind == "lp" else ()
            lp_k = {"kernel_size": 3} if kind == "lp" else None  # torch's lp_pool breaks on (3,)
            rows += [
                Row(op, {"kernel_size": (3,)}, args=pre, torch_kwargs=lp_k),
                Row(op, {"kernel_size": [3], "stride": (1,)}, args=pre,
                    torch_kwargs={"kernel_size": 3, "stride": (1,)} if kind == "lp" else None),
                Row(op, {"kernel_size": 2, "stride": ()}, args=pre),
                Row(op, {"kernel_size": 3, "stride": []}, args=pre),
                Row(op, {"kernel_size": 2, "stride": (2,) * (n + 1)}, "stride", args=pre),
                Row(op, {"kernel_size": 2}, "input", shape=(0, 8) if n == 1 else (0, *[8] * n), args=pre),
                Row(op, {"kernel_size": 2}, "input", shape=(2, 0, *[8] * n), args=pre),
                # max pooling's backward on an empty batch is _pool_kernels.scatter_at's to fix
                Row(op, {"kernel_size": 2}, shape=(0, 3, *[8] * n), args=pre, grad=kind != "max"),
            ]
            if kind != "lp":
                rows += [
                    Row(op, {"kernel_size": 3, "stride": 1, "padding": (1,)}),
                    Row(op, {"kernel_size": 3, "stride": [2], "padding": [1], "ceil_mode": True}),
                ]
            if kind == "max":
                rows += [
                    Row(op, {"kernel_size": 2, "stride": 1, "dilation": (2,)}),
                    Row(op, {"kernel_size": 2, "stride": (), "return_indices": True}, grad=True),
                ]
            if kind == "avg" and n > 1:  # torch's avg_pool1d has no divisor_override
                rows += [Row(op, {"kernel_size": 2, "divisor_override": d}, grad=True) for d in (-3, -1, 1, 5)]
                rows += [
                    Row(op, {"kernel_size": 2, "divisor_override": 0}, "divisor_override"),
                    Row(op, {"kernel_size": 2, "divisor_override": 2.0}, "divisor_override"),
                ]
    return rows


ROWS = _rows()


def _torch_call(row: Row, tensors: list[torch.Tensor]) -> Any:
    kwargs = dict(row.torch_kwargs if row.torch_kwargs is not None else row.kwargs)
    return getattr(F, row.op)(*tensors, *row.args, **kwargs)


def _outputs(y: Any) -> list[torch.Tensor]:
    return list(y) if isinstance(y, tuple) else [y]


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.op}-{r.kwargs}-{r.shape}" for r in ROWS])
def test_torch_argument_form(row: Row) -> None:
    if row.expect != "equal":
        with pytest.raises(Exception):  # noqa: B017 - torch raises RuntimeError, TypeError, ...
            _torch_call(row, _tensors(row))
        with pytest.raises((ValueError, TypeError)) as info:
            getattr(AF, row.op)(*_tensors(row), *row.args, **row.kwargs)
        assert f"`{row.expect}`" in str(info.value), str(info.value)
        return
    ta, tb = _tensors(row), _tensors(row)
    want = _outputs(_torch_call(row, ta))
    got = _outputs(getattr(AF, row.op)(*tb, *row.args, **row.kwargs))
    assert [g.shape for g in got] == [w.shape for w in want]
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-9) if g.is_floating_point() else assert_equal(g, w)
    if row.grad:
        gy = torch.randn(want[0].shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        want_g = torch.autograd.grad(want[0], ta, gy)
        got_g = torch.autograd.grad(got[0], tb, gy)
        for g, w in zip(got_g, want_g):
            assert g.shape == w.shape
            torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-9)


def assert_equal(a: torch.Tensor, b: torch.Tensor) -> None:
    assert torch.equal(a, b)


MODULE_ROWS: list[tuple[str, tuple[Any, ...], dict[str, Any], tuple[int, ...], dict[str, Any]]] = [
    # (class, constructor args, constructor kwargs, input shape, forward kwargs)
    ("Conv2d", (3, 4, 3), {"stride": (2,), "padding": (1,), "dilation": [1]}, (2, 3, 9, 9), {}),
    ("Conv3d", (3, 4, 3), {"stride": [2], "padding": [1]}, (1, 3, 6, 6, 6), {}),
    ("ConvTranspose2d", (3, 4, 3), {"stride": (2,), "output_padding": (1,)}, (2, 3, 5, 5), {}),
    ("ConvTranspose3d", (3, 4, 3), {"stride": [2], "padding": (1,)}, (1, 3, 4, 4, 4), {}),
    ("ConvTranspose2d", (3, 4, 3), {"stride": 2, "padding": 1}, (2, 3, 5, 5), {"output_size": (10, 10)}),
    ("MaxPool2d", ((3,),), {"stride": (2,), "padding": (1,)}, (2, 3, 9, 9), {}),
    ("MaxPool3d", (2,), {"stride": ()}, (1, 2, 6, 6, 6), {}),
    ("AvgPool2d", ((2,),), {"stride": [], "divisor_override": -2}, (2, 3, 8, 8), {}),
    ("AvgPool1d", (2,), {"stride": ()}, (2, 3, 8), {}),
    ("AvgPool3d", (2,), {"stride": (1,), "padding": (1,)}, (1, 2, 5, 5, 5), {}),
    ("LPPool2d", (2.0, 2), {"stride": ()}, (2, 3, 8, 8), {}),
    ("LPPool2d", (2.0, 3), {"stride": (1,)}, (2, 3, 8, 8), {}),
]


@pytest.mark.parametrize("row", MODULE_ROWS, ids=[f"{r[0]}-{r[2]}" for r in MODULE_ROWS])
def test_module_argument_form(row: Any) -> None:
    name, args, kwargs, shape, fkw = row
    torch.manual_seed(0)
    ref = getattr(torch.nn, name)(*args, **kwargs).double()
    torch.manual_seed(0)
    mine = getattr(anyconv.nn, name)(*args, **kwargs).double()
    converted = anyconv.nn.convert(ref)  # keeps torch's stored one-element forms
    for a, b in zip(mine.parameters(), ref.parameters()):
        assert torch.equal(a, b)
    x = torch.randn(shape, dtype=torch.float64)
    want = ref(x, **fkw)
    torch.testing.assert_close(mine(x, **fkw), want, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(converted(x, **fkw), want, rtol=1e-9, atol=1e-9)


def test_module_output_size_beyond_stride() -> None:
    """output_size up to (in - 1) * s + (k - 1) * d + 1 + max(s, d) - 1, torch's functional rule."""
    torch.manual_seed(0)
    m = anyconv.nn.ConvTranspose2d(3, 4, 3, stride=2, dilation=3).double()
    x = torch.randn(1, 3, 5, 5, dtype=torch.float64)
    for o in range(3):
        want = F.conv_transpose2d(x, m.weight, m.bias, stride=2, dilation=3, output_padding=o)
        torch.testing.assert_close(m(x, output_size=(15 + o, 15 + o)), want)
    with pytest.raises(ValueError, match="`output_size`"):
        m(x, output_size=(18, 18))
