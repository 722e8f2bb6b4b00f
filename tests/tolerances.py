"""One tolerance table for every differential test, keyed by dtype.

``rtol``/``atol`` are used as ``|actual - expected| <= atol * scale + rtol * |expected|``,
computed in float64 (complex128). For float64/complex128 ``scale`` is 1 (tight absolute
tolerance: test tensors hold values of order 1). For the single and half precision dtypes
``scale`` is the largest magnitude of the reference (at least 1), because the rounding error of
a sum (a weight gradient sums over every output position) grows with the size of its terms and
the summation order differs between algorithms. bfloat16/float16 references are computed in
float64 from the same (rounded) inputs; float32/complex64 references are torch's in the same dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Tol:
    rtol: float
    atol: float
    relative_to_max: bool = False


TOLERANCES: dict[torch.dtype, Tol] = {
    torch.float64: Tol(rtol=1e-9, atol=1e-10),
    torch.complex128: Tol(rtol=1e-9, atol=1e-10),
    torch.float32: Tol(rtol=1e-5, atol=2e-5, relative_to_max=True),
    torch.complex64: Tol(rtol=1e-5, atol=2e-5, relative_to_max=True),
    torch.float16: Tol(rtol=1e-2, atol=1e-2, relative_to_max=True),
    torch.bfloat16: Tol(rtol=4e-2, atol=4e-2, relative_to_max=True),
}

#: the dtype a reference is computed in for each tested dtype
REFERENCE_DTYPE: dict[torch.dtype, torch.dtype] = {
    torch.float64: torch.float64,
    torch.float32: torch.float32,
    torch.complex128: torch.complex128,
    torch.complex64: torch.complex64,
    torch.float16: torch.float64,
    torch.bfloat16: torch.float64,
}


def assert_close(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype, what: str = "") -> None:
    """Fail unless ``actual`` matches ``expected`` within the tolerance of ``dtype``."""
    tol = TOLERANCES[dtype]
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    wide = torch.complex128 if actual.is_complex() or expected.is_complex() else torch.float64
    a, e = actual.detach().to(wide), expected.detach().to(wide)
    if e.numel() == 0:
        return
    scale = max(e.abs().max().item(), 1.0) if tol.relative_to_max else 1.0
    err = (a - e).abs()
    bound = tol.atol * scale + tol.rtol * e.abs()
    bad = ~(err <= bound)
    if bool(bad.any()):
        i = int(bad.flatten().nonzero()[0])
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {e.numel()} elements differ beyond {tol} "
            f"(max error {err.max().item():.3g}; first at flat index {i}: "
            f"{a.flatten()[i].item()} vs {e.flatten()[i].item()})"
        )
