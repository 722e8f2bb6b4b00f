"""The implicit products' packing by loads (``native_c/gemm_x.c``): vectors of output positions whose reads
are 1 apart (one load) or 2 apart (a stride-2 row: two loads and a permutation), and the wrapped form
(``Geom.wrap``): the product's positions run along every column of the padded rows, so that more of its
vectors are consecutive, and the store drops the columns past the call's own. Against torch: forward and
stride-1 input gradient, 2-3 dims, dilations, padding, float32/float64, the gather and load paths mixed in
one call; bit-identical at every thread count; no read past x's end (a guard page after it); and the rule
for when a product wraps.
"""

from __future__ import annotations

import ctypes
import mmap

import pytest
import torch
import torch.nn.functional as F

import anyconv.functional as AF
from anyconv.algorithms import _gemm, _native_abi, gemm_t, im2col, names, small, small_t, variants
from anyconv.core.spec import CorrSpec
from thread_counts import at_thread_counts

pytestmark = pytest.mark.skipif(_native_abi.unavailable() is not None, reason="no native library")


@pytest.fixture
def wrapped(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Every implicit product the rule lets wrap wraps (any waste); the wrap of each product, recorded."""
    monkeypatch.setenv("ANYCONV_GEMM", "native")
    for name in ("MIN_MACS", "MIN_PRODUCT_MACS", "MIN_N"):
        monkeypatch.setattr(_gemm, name, 0)
    monkeypatch.setattr(_native_abi, "WRAP_ROWS", 10**9)
    monkeypatch.setattr(gemm_t, "REPLACES", tuple(names()))
    for mod in (small, small_t):
        monkeypatch.setattr(mod, "supports", lambda *a, **k: "off in these tests")
    seen: list[bool] = []
    real = _native_abi.padded_geometry

    def spy(*a: object, **k: object) -> tuple[torch.Tensor, _native_abi.Geom]:
        x, geom = real(*a, **k)  # type: ignore[arg-type]
        seen.append(bool(geom.wrap))
        return x, geom

    monkeypatch.setattr(_native_abi, "padded_geometry", spy)
    variants._ROUTES.clear()
    yield seen
    variants._ROUTES.clear()


CASES = [  # (x shape, w shape, padding, dilation): stride 1, rows not whole vectors of 16
    ((2, 5, 9, 11), (7, 5, 3, 3), 1, 1), ((3, 4, 13, 7), (6, 4, 3, 2), (2, 0), 1),
    ((2, 3, 15, 15), (20, 3, 3, 3), 0, 2), ((1, 2, 10, 9), (3, 2, 3, 3), (3, 4), 2),
    ((2, 3, 6, 7, 5), (4, 3, 3, 2, 3), 1, 1), ((4, 17, 5, 30), (13, 17, 1, 5), (0, 2), 1),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_wrapped_products_equal_torch(case: tuple, dtype: torch.dtype, wrapped: list[bool]):
    xs, ws, padding, dilation = case
    conv = {4: F.conv2d, 5: F.conv3d}[len(xs)]
    g = torch.Generator().manual_seed(ws[0])
    x, w = torch.randn(xs, generator=g, dtype=dtype), torch.randn(ws, generator=g, dtype=dtype)
    y = AF.conv(x, w, None, 1, padding, dilation, algorithm="im2col")
    xa = x.clone().requires_grad_(True)
    gy = torch.randn(y.shape, generator=g, dtype=dtype)
    dx, = torch.autograd.grad(AF.conv(xa, w, None, 1, padding, dilation), xa, gy)
    xd = x.double().requires_grad_(True)
    ref = conv(xd, w.double(), None, 1, padding, dilation)
    dref, = torch.autograd.grad(ref, xd, gy.double())
    assert len(wrapped) >= 2 and all(wrapped), "the products did not wrap"
    assert y.is_contiguous() and dx.is_contiguous() and y.shape == ref.shape and dx.shape == x.shape
    bound = 1e-13 if dtype == torch.float64 else 2e-6
    assert ((y.double() - ref).abs().max() / ref.abs().max()).item() < bound
    assert ((dx.double() - dref).abs().max() / dref.abs().max()).item() < bound


def test_wrapped_products_are_bit_identical_at_every_thread_count(monkeypatch: pytest.MonkeyPatch,
                                                                  wrapped: list[bool]):
    monkeypatch.setattr(_native_abi, "MIN_MACS_PER_THREAD", 1)
    x, w = torch.randn(3, 16, 15, 13), torch.randn(50, 16, 3, 3)
    gy = torch.randn(3, 50, 15, 13)

    def run() -> torch.Tensor:  # the forward and the input gradient, flattened into one
        xa = x.clone().requires_grad_(True)
        dx, = torch.autograd.grad(AF.conv2d(xa, w, padding=1), xa, gy)
        return torch.cat([AF.conv2d(x, w, padding=1, algorithm="im2col").flatten(), dx.flatten()])

    results = at_thread_counts(run, (1, 2, 3))
    assert wrapped and all(wrapped)
    assert all(torch.equal(r, results[0]) for r in results)


def _guarded(numel: int) -> tuple[torch.Tensor, mmap.mmap]:
    """A float64 tensor of ``numel`` elements that ends where a page no one may read begins."""
    page = mmap.PAGESIZE
    size = (numel * 8 + page - 1) // page * page
    buf = mmap.mmap(-1, size + page)
    base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    libc = ctypes.CDLL(None)
    assert libc.mprotect(ctypes.c_void_p(base + size), ctypes.c_size_t(page), 0) == 0  # PROT_NONE
    return torch.frombuffer(buf, dtype=torch.float64, count=numel, offset=size - numel * 8), buf


def test_wrapped_reads_stop_at_the_end_of_x(wrapped: list[bool]):
    # no padding: the kernel reads x itself, which ends at a guard page; the last row's dropped columns
    # would read (k - 1) d elements past x's end if the packing loaded them (a segfault here)
    xs, ws = (2, 3, 12, 16), (18, 3, 3, 3)  # 2 x 10 x 16 positions: whole vectors, the last one the last row
    x, keep = _guarded(torch.Size(xs).numel())
    x.copy_(torch.randn(x.shape, dtype=torch.float64))
    x = x.view(xs)
    w = torch.randn(ws, dtype=torch.float64)
    y = im2col.implicit_product(x, w, CorrSpec((1, 1), (1, 1), ((0, 0), (0, 0)), 1))
    assert wrapped == [True] and y is not None
    torch.testing.assert_close(y, F.conv2d(x, w), rtol=1e-12, atol=1e-12)
    del x, keep


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", [((2, 3, 9, 64), (20, 3, 3, 3), 1), ((1, 4, 12, 70), (13, 4, 5, 5), 2),
                                  ((2, 2, 5, 33), (7, 2, 3, 3), 0)])
def test_stride_2_rows_read_by_loads_equal_torch(case: tuple, dtype: torch.dtype, wrapped: list[bool]):
    # output rows of 16 or more positions 2 apart: each vector of them read by two loads and a permutation
    xs, ws, padding = case
    g = torch.Generator().manual_seed(xs[-1])
    x, w = torch.randn(xs, generator=g, dtype=dtype), torch.randn(ws, generator=g, dtype=dtype)
    y = AF.conv2d(x, w, None, 2, padding, algorithm="im2col")
    ref = F.conv2d(x.double(), w.double(), None, 2, padding)
    assert wrapped and not any(wrapped)  # (stride 2: never wrapped)
    assert ((y.double() - ref).abs().max() / ref.abs().max()).item() < (1e-13 if dtype == torch.float64 else 2e-6)


def test_stride_2_reads_stop_at_the_end_of_x(wrapped: list[bool]):
    # rows of 33: a vector of 16 positions 2 apart reads 31 elements, its loads 32; at the row's end (the
    # last row of x, at a guard page) the 32nd would fall past x: that vector is gathered instead
    xs, ws = (1, 2, 5, 33), (9, 2, 3, 3)
    x, keep = _guarded(torch.Size(xs).numel())
    x.copy_(torch.randn(x.shape, dtype=torch.float64))
    x = x.view(xs)
    w = torch.randn(ws, dtype=torch.float64)
    y = im2col.implicit_product(x, w, CorrSpec((2, 2), (1, 1), ((0, 0), (0, 0)), 1))
    assert y is not None
    torch.testing.assert_close(y, F.conv2d(x, w, stride=2), rtol=1e-12, atol=1e-12)
    del x, keep


def test_which_products_wrap():
    def wraps(xs: tuple, ws: tuple, stride: int = 1) -> bool:
        x, w = torch.empty(xs), torch.empty(ws)
        spec = CorrSpec((stride,) * (len(xs) - 2), (1,) * (len(xs) - 2), ((1, 1),) * (len(xs) - 2), 1)
        return bool(_native_abi.padded_geometry(x, w, spec, wrap=True)[1].wrap)

    assert wraps((8, 32, 15, 15), (64, 32, 3, 3))  # 2 of 17 columns dropped, 64 rows
    assert not wraps((4, 256, 8, 8), (256, 256, 3, 3))  # 2 of 10 dropped: the gathers cost less at 256 rows
    assert not wraps((4, 64, 32, 32), (64, 64, 3, 3))  # rows of whole vectors: read by loads already
    assert not wraps((8, 32, 15, 15), (64, 32, 3, 3), stride=2)  # strided rows: not consecutive
    assert not wraps((8, 32, 15), (64, 32, 3))  # 1 dim: no rows to run along
