"""``unfold``/``fold`` for N = 1..4 against torch (N = 2) and loop references (every N).

Outputs and gradients are compared; fold is checked to be unfold's adjoint, and
``fold(unfold(x))`` to be ``x`` times the number of blocks covering each element.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F

import anyconv.functional as AF
from differential import compare
from references import ref_fold, ref_unfold
from samples import unfold_samples
from tolerances import assert_close

SAMPLES = list(unfold_samples())


def _gen(key: str) -> torch.Generator:
    return torch.Generator().manual_seed(sum(map(ord, key)))


def _torch_accepts(kwargs: dict[str, Any]) -> bool:
    """torch's unfold/fold take ints or int tuples only (no pairs, no padding strings)."""
    pad = kwargs.get("padding", 0)
    return isinstance(pad, int) or (isinstance(pad, tuple) and all(isinstance(p, int) for p in pad))


def _batched_ref(fn: Any, batched: bool) -> Any:
    def ref(t: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        out = fn(t if batched else t.unsqueeze(0), *args, **kwargs)
        return out if batched else out.squeeze(0)

    return ref


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.complex128], ids=str)
@pytest.mark.parametrize("sid,n,batched,shape,kwargs", SAMPLES, ids=[s[0] for s in SAMPLES])
def test_unfold_matches_reference(sid: str, n: int, batched: bool, shape: tuple[int, ...], kwargs: dict[str, Any],
                                  dtype: torch.dtype) -> None:
    x = torch.randn(shape, dtype=torch.complex128 if dtype.is_complex else torch.float64, generator=_gen(sid))
    ref = _batched_ref(ref_unfold, batched)
    compare(lambda t: AF.unfold(t, **kwargs), lambda t: ref(t, **kwargs), (x,), dtype, names=("input",))
    if n == 2 and _torch_accepts(kwargs):
        compare(lambda t: AF.unfold(t, **kwargs), lambda t: F.unfold(t, **kwargs), (x,), dtype, names=("input",))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.complex128], ids=str)
@pytest.mark.parametrize("sid,n,batched,shape,kwargs", SAMPLES, ids=[s[0] for s in SAMPLES])
def test_fold_matches_reference(sid: str, n: int, batched: bool, shape: tuple[int, ...], kwargs: dict[str, Any],
                                dtype: torch.dtype) -> None:
    size: Any = list(shape[-n:])
    cols_shape = ref_unfold(torch.zeros((1, *shape[-n - 1:])), **kwargs).shape[1:]
    cols = torch.randn(((shape[0],) if batched else ()) + tuple(cols_shape),
                       dtype=torch.complex128 if dtype.is_complex else torch.float64, generator=_gen(sid))
    ref = _batched_ref(ref_fold, batched)
    compare(lambda t: AF.fold(t, size, **kwargs), lambda t: ref(t, size, **kwargs), (cols,), dtype, names=("input",))
    if n == 2 and _torch_accepts(kwargs):
        compare(lambda t: AF.fold(t, size, **kwargs), lambda t: F.fold(t, size, **kwargs), (cols,), dtype,
                names=("input",))


@pytest.mark.parametrize("sid,n,batched,shape,kwargs", [s for s in SAMPLES if s[2]], ids=[s[0] for s in SAMPLES if s[2]])
def test_fold_is_adjoint_of_unfold(sid: str, n: int, batched: bool, shape: tuple[int, ...], kwargs: dict[str, Any]) -> None:
    gen = _gen(sid)
    x = torch.randn(shape, dtype=torch.float64, generator=gen)
    u = AF.unfold(x, **kwargs)
    c = torch.randn(u.shape, dtype=torch.float64, generator=gen)
    lhs = (u * c).sum()
    rhs = (x * AF.fold(c, list(shape[2:]), **kwargs)).sum()
    assert abs(lhs.item() - rhs.item()) <= 1e-10 * max(1.0, abs(lhs.item()))


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_fold_unfold_counts_coverage(n: int) -> None:
    """fold(unfold(ones)) counts, per element, the blocks that cover it (by hand for k=2, s=1)."""
    x = torch.ones((1, 1) + (3,) * n, dtype=torch.float64)
    y = AF.fold(AF.unfold(x, [2] * n), [3] * n, [2] * n)
    per_dim = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64)  # element 0 and 2: one block, 1: two
    expected = per_dim
    for _ in range(n - 1):
        expected = expected.unsqueeze(-1) * per_dim
    assert_close(y[0, 0], expected, torch.float64)


def test_fold_default_n_is_2_like_torch() -> None:
    cols = torch.randn(2, 3 * 4, 9, dtype=torch.float64)
    assert_close(AF.fold(cols, 4, 2), F.fold(cols, 4, 2), torch.float64)  # type: ignore[arg-type]
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64)
    assert_close(AF.unfold(x, 2, stride=2), F.unfold(x, 2, stride=2), torch.float64)
