"""The ``native`` algorithm: the direct sums as a C kernel built with the system compiler.

Its values are checked with the other algorithms (test_algorithms, test_conv, test_gradients
run every registered algorithm); here: the kernel's own code paths (row blocks and dot
products, partial blocks, output-channel blocks of 4 and their remainder, threads, stride
phases, negative and asymmetric padding), Inf/NaN isolation, its memory check, what it is built
from, and that anyconv works without it (turned off, or no working compiler).
"""

from __future__ import annotations

import math
import os
import random
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import anyconv
import anyconv.functional as AF
from anyconv.algorithms import _native_abi, _native_build, _native_copy, auto, native
from anyconv.core.spec import CorrSpec

TORCH_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _reference(x: torch.Tensor, w: torch.Tensor, spec: CorrSpec) -> torch.Tensor:
    """torch's convolution of ``x`` padded (or cropped) by ``spec.padding``."""
    pads = [v for pair in reversed(spec.padding) for v in pair]
    return TORCH_CONV[spec.n](F.pad(x, pads), w, stride=spec.stride, dilation=spec.dilation, groups=spec.groups)


def _random_call(rng: random.Random) -> tuple[torch.Tensor, torch.Tensor, CorrSpec]:
    n = rng.choice([1, 2, 3])
    g, cg, og, b = rng.choice([1, 2, 3]), rng.choice([1, 2, 5]), rng.choice([1, 3, 4, 5, 9]), rng.choice([1, 2])
    k = [rng.choice([1, 2, 3]) if rng.random() < 0.75 else rng.choice([9, 20]) for _ in range(n)]
    s = [rng.choice([1, 1, 2, 3]) for _ in range(n)]
    d = [rng.choice([1, 1, 2]) for _ in range(n)]
    pads = [(rng.choice([-1, 0, 1, 3]), rng.choice([0, 1, 2])) for _ in range(n)]
    size = [rng.randint(1, 40 if n < 3 else 9) for _ in range(n)]
    size = [max(v, (kk - 1) * dd + 1 - a - z) for v, kk, dd, (a, z) in zip(size, k, d, pads)]
    x = torch.randn(b, g * cg, *size, dtype=torch.float64)
    w = torch.randn(g * og, cg, *k, dtype=torch.float64)
    return x, w, CorrSpec(tuple(s), tuple(d), tuple(pads), g)


def test_random_calls_match_torch_in_both_forms_and_dtypes():
    rng = random.Random(7)
    forms = set()
    for _ in range(120):
        x, w, spec = _random_call(rng)
        ref = _reference(x, w, spec)
        forms.add(native.dots_form(x, w, spec))
        torch.testing.assert_close(native.forward(x, w, spec), ref, atol=1e-11, rtol=1e-11)
        y32 = native.forward(x.float(), w.float(), spec)
        assert y32.dtype == torch.float32
        assert (y32.double() - ref).abs().max() <= 1e-5 * max(1.0, ref.abs().max().item())
    assert forms == {False, True}


@pytest.mark.parametrize("dots", [False, True])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_strided_views_are_read_in_place(n, dots):
    # the weight gradient passes batch/channel-swapped views: x is read through its strides (and a
    # dots-form w too), rows contiguous
    size, k = ((14,) * n, (9,) * n) if dots else ((7,) * n, (2,) * n)
    x = torch.randn(3, 4, *size, dtype=torch.float64).transpose(0, 1)  # (4, 3, ...)
    w = torch.randn(3, 6, *k, dtype=torch.float64).transpose(0, 1)  # (6, 3, ...)
    spec = CorrSpec((1,) * n, (2,) * n if dots else (1,) * n, ((1, 2),) * n, 1)
    assert native.dots_form(x, w, spec) == dots and not x.is_contiguous()
    torch.testing.assert_close(native.forward(x, w, spec), _reference(x, w, spec), atol=1e-11, rtol=1e-11)
    xs = torch.randn(2, 6, *[v + 3 for v in size], dtype=torch.float64)[..., 1:-2]  # rows not contiguous
    spec1 = CorrSpec((1,) * n, (1,) * n, ((1, 1),) * n, 2)
    wg = torch.randn(4, 3, *k, dtype=torch.float64)
    torch.testing.assert_close(native.forward(xs, wg, spec1), _reference(xs, wg, spec1), atol=1e-11, rtol=1e-11)


def test_transposed_correlation_matches_torchs_input_gradient():
    # corr_t: the adjoint in x of a correlation with one output channel per group (strided
    # depthwise layers' input gradients, strided depthwise conv_transpose), every phase in one pass
    rng = random.Random(11)
    for _ in range(80):
        n = rng.choice([1, 2, 3])
        g, cg, b = rng.choice([1, 2, 5]), rng.choice([1, 2, 3]), rng.choice([1, 2])
        k = [rng.choice([1, 2, 3, 4]) for _ in range(n)]
        s = [rng.choice([1, 2, 3]) for _ in range(n)]
        d = [rng.choice([1, 2]) for _ in range(n)]
        p = [rng.choice([0, 1, 2]) for _ in range(n)]
        size = [rng.randint(1, 30 if n < 3 else 8) for _ in range(n)]
        size = [max(v, (kk - 1) * dd + 1 - 2 * pp) for v, kk, dd, pp in zip(size, k, d, p)]
        x = torch.randn(b, g * cg, *size, dtype=torch.float64, requires_grad=True)
        w = torch.randn(g, cg, *k, dtype=torch.float64)
        spec = CorrSpec(tuple(s), tuple(d), tuple((v, v) for v in p), g)
        y = TORCH_CONV[n](x, w, stride=s, padding=p, dilation=d, groups=g)
        gy = torch.randn_like(y)
        (ref,) = torch.autograd.grad(y, x, gy)
        assert native.transposed_reason(gy, w, spec, tuple(size)) is None
        torch.testing.assert_close(native.corr_t(gy, w, spec, tuple(size)), ref, atol=1e-11, rtol=1e-11)
    spec = CorrSpec((2, 2), (1, 1), ((1, 1), (1, 1)), 2)
    assert "one output channel per group" in native.transposed_reason(
        torch.randn(1, 4, 3, 3), torch.randn(4, 1, 3, 3), spec, (6, 6))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_transposed_correlation_stride_two_rows_are_interleaved_exactly(dtype):
    # stride 2 in the last dim: both phases of a block of columns at once, interleaved and stored as
    # consecutive columns (several blocks per row, odd and even padding, columns no tap reaches)
    rng = random.Random(5 if dtype == torch.float64 else 6)
    tol = 1e-11 if dtype == torch.float64 else 1e-4
    for _ in range(60):
        n = rng.choice([1, 2, 3])
        g, b = rng.choice([1, 3]), rng.choice([1, 2])
        k = [rng.choice([1, 2, 3, 5]) for _ in range(n)]
        s = [rng.choice([1, 2]) for _ in range(n - 1)] + [2]
        d = [rng.choice([1, 1, 2, 3]) for _ in range(n)]
        p = [rng.choice([0, 1, 2, 3]) for _ in range(n)]
        size = [rng.randint(1, 6) for _ in range(n - 1)] + [rng.randint(1, 150)]
        size = [max(v, (kk - 1) * dd + 1 - 2 * pp) for v, kk, dd, pp in zip(size, k, d, p)]
        x = torch.randn(b, g, *size, dtype=torch.float64, requires_grad=True)
        w = torch.randn(g, 1, *k, dtype=torch.float64)
        spec = CorrSpec(tuple(s), tuple(d), tuple((v, v) for v in p), g)
        y = TORCH_CONV[n](x, w, stride=s, padding=p, dilation=d, groups=g)
        gy = torch.randn_like(y)
        (ref,) = torch.autograd.grad(y, x, gy)
        got = native.corr_t(gy.to(dtype), w.to(dtype), spec, tuple(size))
        assert got.dtype == dtype
        torch.testing.assert_close(got.double(), ref, atol=tol, rtol=tol)


def test_strided_depthwise_gradients_take_the_transposed_kernel(monkeypatch):
    calls = []
    monkeypatch.setattr(native, "corr_t", lambda *a, f=native.corr_t: calls.append(1) or f(*a))
    # large enough for the general path (small calls take algorithms/_small_gemm.py's own backward)
    x = torch.randn(2, 6, 121, 120, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    y = AF.conv(x, w, stride=2, padding=1, groups=6)
    gx, gw = torch.autograd.grad(y.square().sum(), (x, w))
    yt = F.conv2d(x, w, stride=2, padding=1, groups=6)
    tx, tw = torch.autograd.grad(yt.square().sum(), (x, w))
    assert calls, "the strided depthwise input gradient did not use native.corr_t"
    torch.testing.assert_close(gx, tx, atol=1e-11, rtol=1e-11)
    torch.testing.assert_close(gw, tw, atol=1e-11, rtol=1e-11)
    yt2 = AF.conv_transpose(y.detach(), w.detach(), stride=2, padding=1, groups=6, output_padding=1)
    torch.testing.assert_close(yt2, F.conv_transpose2d(y.detach(), w.detach(), stride=2, padding=1, groups=6,
                                                       output_padding=1), atol=1e-11, rtol=1e-11)


@pytest.mark.parametrize("threads", [1, 2, 5])
def test_threads_split_samples_groups_and_output_channels(threads, monkeypatch):
    # (1 sample x 1 group) < threads: output channels are split into chunks across threads
    monkeypatch.setattr(_native_abi, "MIN_MACS_PER_THREAD", 1)  # these small calls on every thread
    cases = [((1, 3, 23, 30), (13, 3, 3, 3), 1), ((2, 6, 17, 9), (6, 1, 3, 3), 6), ((1, 4, 40), (10, 2, 5), 2)]
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        for xs, ws, g in cases:
            x, w = torch.randn(xs, dtype=torch.float64), torch.randn(ws, dtype=torch.float64)
            n = len(xs) - 2
            spec = CorrSpec((1,) * n, (1,) * n, ((1, 2),) * n, g)
            assert _native_abi.geometry(x, w, spec).threads == threads
            plan = _native_abi.plan(x, w, spec)
            if plan is not None:  # output channels in chunks only when (sample, group) units are fewer than threads
                units, og = xs[0] * g, ws[0] // g
                assert plan.chunks == (1 if units >= threads else min(og, -(-threads // units)))
            torch.testing.assert_close(native.forward(x, w, spec), _reference(x, w, spec), atol=1e-11, rtol=1e-11)
    finally:
        torch.set_num_threads(old)


@pytest.mark.parametrize("dots", [False, True])
def test_inf_and_nan_reach_only_the_outputs_that_read_them(dots):
    # the kernel reads whole vectors past a row's end (masked) and computes whole blocks (cropped):
    # an Inf or NaN there must not leak into outputs that do not read it
    if dots:  # a weight-gradient shape: kernel rows longer than the output rows
        x, w = torch.randn(1, 1, 12, 40, dtype=torch.float64), torch.randn(1, 1, 10, 37, dtype=torch.float64)
    else:
        x, w = torch.randn(1, 1, 12, 40, dtype=torch.float64), torch.randn(5, 1, 3, 3, dtype=torch.float64)
    x[0, 0, 5, 39] = math.inf
    x[0, 0, 0, 0] = math.nan
    spec = CorrSpec((1, 1), (1, 1), ((0, 0), (0, 0)), 1)
    assert native.dots_form(x, w, spec) == dots
    y, ref = native.forward(x, w, spec), _reference(x, w, spec)
    assert torch.equal(y.isnan(), ref.isnan()) and torch.equal(y.isinf(), ref.isinf())
    finite = ref.isfinite()
    assert finite.any()
    torch.testing.assert_close(y[finite], ref[finite], atol=1e-11, rtol=1e-11)


def test_through_the_public_ops_with_gradients():
    x = torch.randn(2, 8, 15, 14, dtype=torch.float64, requires_grad=True)
    w = torch.randn(8, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    y = AF.conv(x, w, stride=2, padding=(1, 2), dilation=(2, 1), groups=4, algorithm="native")
    ref = F.conv2d(x, w, stride=2, padding=(1, 2), dilation=(2, 1), groups=4)
    torch.testing.assert_close(y, ref, atol=1e-11, rtol=1e-11)
    g = torch.autograd.grad(y.square().sum(), (x, w))
    gt = torch.autograd.grad(ref.square().sum(), (x, w))
    for a, b in zip(g, gt):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)
    assert torch.autograd.gradcheck(lambda a, b: AF.conv(a, b, padding=1, groups=4, algorithm="native"),
                                    (x[:1, :, :5, :6].detach().requires_grad_(), w))


def test_refusals_name_their_reason():
    spec = CorrSpec((1,), (1,), ((0, 0),), 1)
    assert "complex" in native.supports(torch.randn(1, 1, 8, dtype=torch.complex64),
                                        torch.randn(1, 1, 3, dtype=torch.complex64), spec)
    assert "CPU" in native.supports(torch.randn(1, 1, 8, device="meta"), torch.randn(1, 1, 3, device="meta"), spec)
    spec4 = CorrSpec((1,) * 4, (1,) * 4, ((0, 0),) * 4, 1)
    assert "1 to 3 spatial dims" in native.supports(torch.randn(1, 1, 3, 3, 3, 3), torch.randn(1, 1, 2, 2, 2, 2), spec4)
    with pytest.raises(ValueError, match="algorithm='native' cannot serve this call: only 1 to 3"):
        AF.conv(torch.randn(1, 1, 3, 3, 3, 3), torch.randn(1, 1, 2, 2, 2, 2), algorithm="native")
    big = CorrSpec((1, 1), (1, 1), ((1, 1), (1, 1)), 1)
    x, w = torch.randn(1, 64, 400, 400), torch.randn(4, 64, 3, 3)
    assert native.supports(x, w, big) is None
    with anyconv.workspace_limit(2**20):
        assert "scratch budget" in native.supports(x, w, big)


def test_auto_picks_native_where_it_is_fastest_and_says_so():
    x, w = torch.randn(2, 144, 56, 56), torch.randn(144, 1, 3, 3)
    assert anyconv.choose_algorithm(x, w, padding=1, groups=144) == "native"
    assert "chosen: native" in anyconv.explain_algorithm(x, w, padding=1, groups=144)


def test_the_kernel_uses_only_the_c_library():
    # no torch (or any other) kernel can hide in the C sources: they include libc, pthreads, OpenMP's
    # runtime header, the compiler's AVX-512 intrinsics (masked loads and stores) and their own headers only
    files = {p.name: p.read_text() for p in _native_build.SOURCES}
    assert {"native.h", "plan.c", "corr.c", "rows.c", "dots.c", "lanes.c", "transposed.c", "copy.c", "gemm.c",
            "gemm.h", "gemm_x.c"} <= set(files)
    for name, source in files.items():
        assert set(re.findall(r"#include <([^>]+)>", source)) <= {"pthread.h", "stdint.h", "stdlib.h", "string.h",
                                                                  "immintrin.h", "omp.h"}, name
        assert set(re.findall(r'#include "([^"]+)"', source)) <= {"native.h", "gemm.h"}, name


def _c_fields(source: str, name: str) -> list[tuple[str, int]]:
    """The ``int64_t`` fields of the C struct ``name`` in ``source``: (name, elements) in order."""
    struct = re.search(r"typedef struct \{([^{}]*)\} " + name + ";", source, re.S).group(1)
    fields = []
    for decl in re.findall(r"int64_t ([^;]+);", re.sub(r"/\*.*?\*/", "", struct, flags=re.S)):
        for part in decl.split(","):
            m = re.fullmatch(r"\s*(\w+)(?:\[(\w+)\])?\s*", part)
            count = m.group(2)
            fields.append((m.group(1), 1 if count is None else int({"COPY_MAX_DIMS": str(native.COPY_MAX_DIMS)}.get(count, count))))
    return fields


def _py_fields(struct: type) -> list[tuple[str, int]]:
    return [(name.rstrip("_"), getattr(kind, "_length_", 1)) for name, kind in struct._fields_]


@pytest.mark.parametrize("struct, file", [(_native_abi.Geom, "native.h"), (_native_abi.Plan, "native.h"),
                                          (_native_abi.CopyGeom, "copy.c"), (_native_abi.GemmArgs, "native.h")])
def test_python_and_c_agree_on_the_abi_structs(struct, file):
    # the ctypes structures are the C structs field by field (names, order, array lengths), and the
    # library's own sizes of them are theirs (checked again when it is loaded)
    source = (_native_build.NATIVE_C / file).read_text()
    assert _py_fields(struct) == _c_fields(source, struct.__name__)
    lib = native.library()
    if lib is not None:
        import ctypes

        assert lib.abi_bytes(_native_abi.STRUCTS.index(struct)) == ctypes.sizeof(struct)


def test_the_plan_reads_shapes_only_and_is_what_runs():
    # the wrappers that auto's cost model reads take meta tensors (shapes, no data) and give the plan of
    # the real tensors; the forward's buffer check is the plan's bytes
    cases = [((2, 32, 30, 31), (32, 1, 5, 5), 32), ((1, 3, 40, 41), (8, 3, 3, 3), 1), ((1, 4, 9, 9), (4, 4, 9, 9), 1)]
    for xs, ws, g in cases:
        x, w = torch.randn(xs), torch.randn(ws)
        xm, wm = x.to("meta"), w.to("meta")
        spec = CorrSpec((1, 1), (1, 1), ((1, 1), (1, 1)), g)
        if native.library() is None:
            pytest.skip(f"no C kernel here: {native.unavailable()}")
        assert native.form_of(xm, wm, spec) == native.form_of(x, w, spec)
        assert native.layout_of(xm, wm, spec) == native.layout_of(x, w, spec)
        assert native.lanes_plan(xm, wm, spec) == native.lanes_plan(x, w, spec)
        assert native.buffer_bytes(xm, wm, spec) == native.buffer_bytes(x, w, spec) > 0
        torch.testing.assert_close(native.forward(x, w, spec), _reference(x.double(), w.double(), spec).float(),
                                   atol=1e-4, rtol=1e-4)


def test_without_the_library_the_plan_says_why(monkeypatch):
    # turned off (as with no compiler): the predicates say no, the plan's readers raise naming the reason,
    # supports refuses, and auto never asks native's cost
    monkeypatch.setattr(_native_abi, "_ENABLED", False)
    x, w = torch.randn(1, 16, 12, 12, device="meta"), torch.randn(16, 1, 3, 3, device="meta")
    spec = CorrSpec((1, 1), (1, 1), ((1, 1), (1, 1)), 16)
    assert not native.lanes_form(x, w, spec) and not native.dots_form(x, w, spec)
    assert not native.reads_input_directly(x, w, spec) and native.buffer_bytes(x, w, spec) == 0
    for reader in (native.form_of, native.layout_of, native.lanes_plan):
        with pytest.raises(ValueError, match="native: the kernel cannot plan this call: turned off"):
            reader(x, w, spec)
    assert "turned off" in native.supports(torch.randn(1, 16, 12, 12), torch.randn(16, 1, 3, 3), spec)
    assert auto.choose(torch.randn(1, 16, 12, 12), torch.randn(16, 1, 3, 3), spec).name != "native"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_stride_two_columns_are_split_by_whole_vectors(dtype):
    # a row's two stride-2 phases are filled by vectors over its inside (the last one overlapping) and
    # element by element at the edges: widths around the vector sizes, odd, even and negative padding
    rng = random.Random(9)
    tol = 1e-11 if dtype == torch.float64 else 1e-4
    for _ in range(150):
        width, k, d = rng.randint(1, 140), rng.randint(1, 5), rng.choice([1, 2])
        pw = (rng.randint(-2, 3), rng.randint(-1, 3))
        if width + sum(pw) < (k - 1) * d + 1:
            continue
        x, w = torch.randn(2, 3, 5, width, dtype=torch.float64), torch.randn(6, 1, 3, k, dtype=torch.float64)
        spec = CorrSpec((1, 2), (1, d), ((1, 1), pw), 3)
        got = native.forward(x.to(dtype), w.to(dtype), spec)
        torch.testing.assert_close(got.double(), _reference(x, w, spec), atol=tol, rtol=tol)


def test_dot_products_of_one_channel_walk_rows_in_blocks_of_four():
    # weight-gradient shapes (kernel rows >= 8, short output rows) with 1-3 output channels per group:
    # blocks of up to 4 output rows x 4 columns (remainders of both), kernel rows 1 or 2 apart
    rng = random.Random(3)
    seen = set()
    for _ in range(80):
        n = rng.choice([1, 2, 3])
        g, cg, og = rng.choice([1, 3]), rng.choice([1, 2]), rng.choice([1, 2, 3])
        out = [rng.randint(1, 2) for _ in range(n - 2)] + [rng.randint(1, 9) for _ in range(min(n, 2) - 1)] + [rng.randint(1, 6)]
        k = [rng.randint(1, 3) for _ in range(n - 1)] + [rng.randint(8, 35)]
        s = [rng.choice([1, 2]) for _ in range(n)]
        d = [rng.choice([1, 1, 2]) for _ in range(n)]
        pads = [(rng.choice([0, 1, 2]), rng.choice([0, 1])) for _ in range(n)]
        size = [(o - 1) * ss + (kk - 1) * dd + 1 - a - z for o, ss, kk, dd, (a, z) in zip(out, s, k, d, pads)]
        if min(size) < 1:
            continue
        x = torch.randn(rng.choice([1, 2]), g * cg, *size, dtype=torch.float64)
        w = torch.randn(g * og, cg, *k, dtype=torch.float64)
        spec = CorrSpec(tuple(s), tuple(d), tuple(pads), g)
        assert native.dots_form(x, w, spec)
        seen.add((out[-2] if n > 1 else 1) % 4)
        torch.testing.assert_close(native.forward(x, w, spec), _reference(x, w, spec), atol=1e-10, rtol=1e-10)
    assert seen == {0, 1, 2, 3}  # whole blocks of 4 rows and every remainder


@pytest.mark.parametrize("xs, ws, stride, groups", [
    ((2, 6, 33, 41), (6, 1, 3, 3), (1, 2), 6),    # depthwise 3x3, stride 1 over rows: 8-row blocks
    ((1, 4, 5, 30, 41), (8, 2, 3, 3, 3), (1, 1, 1), 2),  # 3-D, 4 output channels per group: 2-row blocks
    ((1, 3, 30, 41), (3, 1, 3, 3), (2, 1), 3),    # stride 2 over rows: 4-row blocks
    ((1, 3, 30, 41), (3, 1, 5, 5), (1, 1), 3),
    ((2, 6, 9, 7), (6, 1, 3, 3), (1, 1), 6),      # output rows of 7: blocks of one vector per row
    ((1, 8, 10, 33), (16, 2, 3, 3), (1, 2), 4),   # 4 output channels, rows of 16 (one vector), stride 2
])
def test_python_mirrors_the_kernels_buffer_layout(xs, ws, stride, groups):
    # the cost model's copied elements (``layout_of``) are the C kernel's own buffer, row blocks and a
    # stride-2 split's staging rows included
    x, w = torch.randn(xs), torch.randn(ws)
    n = len(xs) - 2
    spec = CorrSpec(stride, (1,) * n, ((1, 1),) * n, groups)
    lay = native.layout_of(x, w, spec)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert native.buffer_bytes(x, w, spec) == (lay["copied"] + lay["staged"] + 16) * 4
    finally:
        torch.set_num_threads(old)
    torch.testing.assert_close(native.forward(x, w, spec), _reference(x, w, spec), atol=1e-4, rtol=1e-4)


def _has_avx512() -> bool:
    """Whether the library was built with AVX-512 (the CPU may have it and the build not:
    ``ANYCONV_NATIVE_ISA=avx2``)."""
    return _native_abi.lanes_built()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_depthwise_stride_two_columns_read_the_input_directly(dtype):
    # one input and one output channel per group, stride 2 over columns: with AVX-512 the kernel reads x
    # straight (masked loads at a row's ends, rows outside x skipped); every width from 1 to 40 against
    # every left/right padding from -1 to 3 and every kernel width up to 8 meets each mask form
    rng = random.Random(7)
    direct = 0
    for width in range(1, 41):
        for _ in range(3):
            n = rng.choice([1, 2, 2, 3])
            kw, pl, pr = rng.randint(1, 8), rng.randint(-1, 3), rng.randint(-1, 3)
            if width + pl + pr < kw:
                continue
            lead = [rng.randint(1, 5) for _ in range(n - 1)]
            kl = [rng.randint(1, 3) for _ in range(n - 1)]
            lead = [max(v, k) for v, k in zip(lead, kl)]
            g = rng.choice([1, 3])
            x = torch.randn(rng.choice([1, 2]), g, *lead, width, dtype=dtype)
            w = torch.randn(g, 1, *kl, kw, dtype=dtype)
            rows = [rng.choice([1, 2]) for _ in range(n - 1)]
            spec = CorrSpec((*rows, 2), (1,) * n, (*(((k - 1) // 2, k // 2) for k in kl), (pl, pr)), g)
            tol = 1e-4 if dtype == torch.float32 else 1e-10
            torch.testing.assert_close(native.forward(x, w, spec), _reference(x, w, spec), atol=tol, rtol=tol)
            direct += native.reads_input_directly(x, w, spec)
    if _has_avx512():  # elsewhere the same calls go through the padded copy (checked above all the same)
        assert direct > 100


def _lanes_call(rng: random.Random) -> tuple[torch.Tensor, torch.Tensor, CorrSpec]:
    """A random call of one output channel per group and at least 16 groups (form 2's calls)."""
    n = rng.choice([1, 2, 2])
    g, cg, b = rng.choice([16, 17, 20, 32, 33, 48]), rng.choice([1, 1, 2, 3]), rng.choice([1, 2])
    k = [rng.randint(1, 9) for _ in range(n)]
    s = [rng.choice([1, 1, 2, 3]) for _ in range(n)]
    d = [rng.choice([1, 1, 2]) for _ in range(n)]
    pads = [(rng.randint(-1, 5), rng.randint(-1, 5)) for _ in range(n)]
    size = [rng.randint(1, 30) for _ in range(n)]
    size = [max(v, (kk - 1) * dd + 1 - a - z, 1 - a) for v, kk, dd, (a, z) in zip(size, k, d, pads)]
    return torch.randn(b, g * cg, *size), torch.randn(g, cg, *k), CorrSpec(tuple(s), tuple(d), tuple(pads), g)


def test_groups_in_lanes_match_torch():
    # form 2: 16 groups per vector (partial blocks of 1-15 too), every stride, dilation and padding (negative
    # included), several channels per group summed (a weight gradient's batch), 1 and 2 dims, x and w read
    # through their strides; every block shape (1-3 rows x 1-8 columns) and a tile row that feeds no block
    # row (stride over rows > kernel rows) occur
    rng = random.Random(11)
    rows, left, widths = set(), set(), set()
    for i in range(160):
        x, w, spec = _lanes_call(rng)
        if i % 4 == 0:  # a column-major x and a w whose rows are not contiguous with each other
            x = x.transpose(0, 1).contiguous().transpose(0, 1)
            w = torch.randn(w.shape[0], w.shape[1], *w.shape[2:-1], w.shape[-1] + 3)[..., :w.shape[-1]]
        if native.lanes_form(x, w, spec):
            plan, out = native.lanes_plan(x, w, spec), spec.output_spatial(x.shape[2:], w.shape[2:])
            rows.add(plan["rows"])
            left.add(out[0] % 3 if plan["rows"] == 3 else -1)
            widths.add(min(out[-1], 8))
        torch.testing.assert_close(native.forward(x, w, spec), _reference(x.double(), w.double(), spec).float(),
                                   atol=1e-4, rtol=1e-4)
    if _has_avx512():  # blocks of 3 and 1 rows, 3-row columns ending in blocks of 1 and 2, 1-8 wide blocks
        assert rows == {1, 3} and {-1, 0, 1, 2} == left and widths == set(range(1, 9)), (rows, left, widths)


def test_groups_in_lanes_nested_match_torch():
    # form 2's nested variant (F(3, 3) over columns) on wide kernels: every stride, dilation and padding over
    # rows, padding over columns (negative included), sub-kernels with 1-3 real taps, partial tiles at the end
    # of a row, 3-8 tiles per block (2: below), several channels per group, 1 and 2 dims; float32 error within a few
    # units of the direct sums' (normwise, against float64)
    rng = random.Random(5)
    nested, taps, tails, blocks = 0, set(), set(), set()
    for _ in range(250):
        n = rng.choice([1, 2, 2])
        g, cg, b = rng.choice([16, 20, 33]), rng.choice([1, 1, 2]), rng.choice([1, 2])
        k = [rng.randint(1, 15) for _ in range(n - 1)] + [rng.randint(7, 31)]
        s = [rng.choice([1, 2, 3]) for _ in range(n - 1)] + [1]
        d = [rng.choice([1, 2]) for _ in range(n - 1)] + [1]
        pads = [(rng.randint(-1, 8), rng.randint(-1, 8)) for _ in range(n)]
        out = [rng.randint(1, 30) for _ in range(n - 1)] + [rng.choice([rng.randint(4, 24), rng.randint(1, 70)])]
        size = [(o - 1) * st + (kk - 1) * dd + 1 - a - z + rng.randint(0, st - 1)
                for o, st, kk, dd, (a, z) in zip(out, s, k, d, pads)]
        size = [max(v, 1 - a, 1) for v, (a, _) in zip(size, pads)]
        x, w = torch.randn(b, g * cg, *size), torch.randn(g, cg, *k)
        spec = CorrSpec(tuple(s), tuple(d), tuple(pads), g)
        ref = _reference(x.double(), w.double(), spec)
        y = native.forward(x, w, spec)
        assert (y.double() - ref).norm() <= 2e-6 * ref.norm() + 1e-12
        if native.lanes_form(x, w, spec) and native.lanes_plan(x, w, spec)["nest"]:
            nested += 1
            # within the error auto predicts for native (its guard's input for summation algorithms)
            assert (y.double() - ref).norm() <= auto.predicted_error("native", x, w, spec) * ref.norm()
            out = spec.output_spatial(x.shape[2:], w.shape[2:])
            taps.add(k[-1] % 3)
            tails.add(out[-1] % 3)
            touts = -(-out[-1] // 3)
            blocks.add(-(-touts // -(-touts // 8)))  # the widest block of a row (balanced blocks)
    if _has_avx512():
        assert nested > 40 and taps == {0, 1, 2} and tails == {0, 1, 2} and blocks >= set(range(3, 9)), (
            nested, taps, tails, blocks)


@pytest.mark.parametrize("xs, ws, stride, dilation, pad", [
    ((1, 16, 200, 120), (16, 1, 3, 3), (1, 1), (1, 1), (1, 1)),   # 3-row blocks, several bands
    ((2, 40, 90, 70), (40, 1, 7, 7), (2, 2), (1, 1), (3, 3)),     # partial block of 8 groups, bands of stride 2
    ((1, 32, 150, 64), (32, 1, 5, 3), (1, 1), (2, 1), (-1, 2)),   # dilation over rows, negative padding
    ((1, 16, 1, 300), (16, 1, 1, 31), (1, 1), (1, 1), (0, 15)),   # one output row
    ((1, 32, 150, 80), (32, 1, 13, 13), (1, 1), (1, 1), (6, 6)),  # nested, several bands
    ((1, 16, 120, 47), (16, 1, 11, 17), (2, 1), (3, 1), (9, 8)),  # nested, stride and dilation over rows
    ((1, 16, 40, 35), (16, 1, 15, 30), (1, 1), (1, 1), (0, 0)),   # nested, 2 tiles per row (a block of 2)
])
def test_groups_in_lanes_bands_and_layout(xs, ws, stride, dilation, pad):
    # a large plane goes in bands of output rows (each band's input rows filled again, the rows outside x
    # zeroed); the buffer is what native.lanes_plan says
    x, w = torch.randn(xs), torch.randn(ws)
    spec = CorrSpec(stride, dilation, (pad, pad), int(ws[0]))
    torch.testing.assert_close(native.forward(x, w, spec), _reference(x.double(), w.double(), spec).float(),
                               atol=1e-4, rtol=1e-4)
    if not native.lanes_form(x, w, spec):
        assert not _has_avx512()
        return
    out = spec.output_spatial(x.shape[2:], w.shape[2:])
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        plan = native.lanes_plan(x, w, spec)
        if xs[2] > 100:
            assert plan["band"] < out[0]  # more than one band
        k = math.prod(ws[2:])
        # the nested form: a transformed row is 5 vectors per tile; a row scratch, the transformed weights
        nest = 3 * plan["tiles"] + 2 + ws[-2] * plan["sub"] * 5 if plan["nest"] else 0
        assert native.buffer_bytes(x, w, spec) == (plan["hp"] * plan["rowlen"] + k + plan["band"] * out[-1] + nest) * 64
    finally:
        torch.set_num_threads(old)


@pytest.mark.parametrize("threads", [2, 3, 5])
def test_groups_in_lanes_split_rows_over_threads(threads, monkeypatch):
    # more threads than (sample, block of 16 groups) units: the output rows go in bands, one per unit
    monkeypatch.setattr(_native_abi, "MIN_MACS_PER_THREAD", 1)  # these small calls on every thread
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        for xs, ws, pad, stride in [((1, 16, 40, 21), (16, 1, 5, 3), (2, 1), 1), ((1, 20, 33, 17), (20, 1, 3, 3), (1, 1), 2),
                                    ((2, 16, 9, 30), (16, 1, 7, 7), (3, 3), 1),
                                    ((1, 32, 40, 45), (32, 1, 13, 13), (6, 6), 1)]:  # nested (bands too)
            x, w = torch.randn(xs), torch.randn(ws)
            spec = CorrSpec((stride, stride), (1, 1), ((pad[0], pad[0]), (pad[1], pad[1])), int(ws[0]))
            if native.lanes_form(x, w, spec) and threads > xs[0] * -(-ws[0] // 16):  # more threads than units
                out = spec.output_spatial(x.shape[2:], w.shape[2:])
                assert native.lanes_plan(x, w, spec)["band"] < out[0]
                assert native.lanes_plan(x, w, spec)["nest"] == (ws[-1] == 13)
            torch.testing.assert_close(native.forward(x, w, spec), _reference(x.double(), w.double(), spec).float(),
                                       atol=1e-4, rtol=1e-4)
    finally:
        torch.set_num_threads(old)


def test_groups_in_lanes_gradients_match_torch():
    # a depthwise layer's three calls (forward, input gradient, weight gradient over a batch of 3) all
    # have one output channel per group
    x = torch.randn(3, 24, 19, 23, requires_grad=True)
    w = torch.randn(24, 1, 5, 5, requires_grad=True)
    xr, wr = x.detach().double().requires_grad_(), w.detach().double().requires_grad_()
    y = AF.conv2d(x, w, padding=2, groups=24, algorithm="native")
    yr = F.conv2d(xr, wr, padding=2, groups=24)
    g = torch.randn(y.shape)
    y.backward(g)
    yr.backward(g.double())
    torch.testing.assert_close(y, yr.float(), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(x.grad, xr.grad.float(), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(w.grad, wr.grad.float(), atol=1e-3, rtol=1e-4)


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=full, timeout=300)


CHECK = """
    import torch, anyconv, anyconv.functional as AF
    import torch.nn.functional as F
    from anyconv.algorithms import native
    print("REASON", native.unavailable())
    x, w = torch.randn(2, 144, 20, 20, dtype=torch.float64), torch.randn(144, 1, 3, 3, dtype=torch.float64)
    print("CHOICE", anyconv.choose_algorithm(x, w, padding=1, groups=144))
    y = AF.conv(x, w, padding=1, groups=144)
    assert torch.allclose(y, F.conv2d(x, w, padding=1, groups=144), atol=1e-12)
    try:
        AF.conv(x, w, padding=1, groups=144, algorithm="native")
    except ValueError as e:
        print("ERROR", e)
"""


def test_anyconv_works_with_native_turned_off():
    done = _run(CHECK, ANYCONV_NATIVE="0")
    assert done.returncode == 0, done.stderr
    assert "REASON turned off (ANYCONV_NATIVE=0" in done.stdout
    assert "CHOICE native" not in done.stdout
    assert "ERROR conv: algorithm='native' cannot serve this call: turned off" in done.stdout


def test_set_enabled_switches_auto_in_process():
    x, w = torch.randn(2, 144, 20, 20), torch.randn(144, 1, 3, 3)
    assert anyconv.choose_algorithm(x, w, padding=1, groups=144) == "native"
    try:
        native.set_enabled(False)
        assert anyconv.choose_algorithm(x, w, padding=1, groups=144) != "native"
        assert "turned off" in native.supports(x, w, CorrSpec((1, 1), (1, 1), ((1, 1), (1, 1)), 144))
        torch.testing.assert_close(AF.conv(x, w, padding=1, groups=144), F.conv2d(x, w, padding=1, groups=144))
    finally:
        native.set_enabled(True)
    assert anyconv.choose_algorithm(x, w, padding=1, groups=144) == "native"


def test_auto_chooses_again_when_the_thread_count_changes():
    # native's buffers (one per thread) must fit the scratch budget: a choice made with 1 thread is not
    # reused with 4, whose buffers would not fit (auto's cache key has the thread count)
    x, w = torch.empty(4, 64, 256, 256), torch.empty(64, 64, 3, 3)
    spec = CorrSpec((1, 1), (1, 1), ((1, 1), (1, 1)), 1)
    old = torch.get_num_threads()
    try:
        with anyconv.workspace_limit(64 << 20):  # scratch budget 32 MiB: one thread's 17 MB fits, four's 68 MB not
            torch.set_num_threads(1)
            one = auto.choose(x, w, spec).rejected.get("native")
            torch.set_num_threads(4)
            four = auto.choose(x, w, spec).rejected.get("native")
    finally:
        torch.set_num_threads(old)
    if native.library() is None:  # no compiler: refused for that reason both times
        assert one is not None and one == four
    else:
        assert one is None and four is not None and "scratch budget" in four


def test_anyconv_works_without_a_compiler_and_builds_into_its_cache(tmp_path: Path):
    broken = _run(CHECK, CC="false", ANYCONV_CACHE=str(tmp_path / "none"), ANYCONV_NATIVE="1")
    assert broken.returncode == 0, broken.stderr
    assert "REASON the C kernel could not be built or loaded (false failed" in broken.stdout
    assert "CHOICE native" not in broken.stdout and "ERROR conv: algorithm='native'" in broken.stdout
    built = _run(CHECK, ANYCONV_CACHE=str(tmp_path / "cache"), ANYCONV_NATIVE="1")
    assert built.returncode == 0, built.stderr
    assert "REASON None" in built.stdout and "CHOICE native" in built.stdout and "ERROR" not in built.stdout
    assert len(list((tmp_path / "cache").glob("anyconv_native_*.so"))) == 1


def _random_view(rng: random.Random, dtype: torch.dtype) -> torch.Tensor:
    """A permuted, sliced (steps up to 3, offsets) view of a random tensor of 1-7 dims."""
    nd = rng.randint(1, 7)
    shape = [rng.randint(1, 9) for _ in range(nd)]
    base = (torch.randn(*shape, dtype=torch.float64) * 100).to(dtype)
    v = base.permute(*rng.sample(range(nd), nd))
    index = tuple(slice(rng.randint(0, 1) if n > 1 else 0, None, rng.choice([1, 1, 2, 3])) for n in v.shape)
    return v[index]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int32, torch.int64, torch.complex64])
def test_strided_copy_matches_torch_on_random_views(monkeypatch, dtype):
    # every element size the C copy takes (4 and 8 bytes, copied bitwise): permutations, steps,
    # offsets, size-1 dims; compared with torch's copy element for element
    monkeypatch.setattr(_native_copy, "COPY_MIN_ELEMENTS", 1)
    rng = random.Random(11)
    copied = 0
    for _ in range(150):
        v = _random_view(rng, dtype)
        out = torch.empty(v.shape, dtype=dtype)
        if native.copy_(out, v):
            copied += 1
            assert torch.equal(out, v.contiguous()), (v.shape, v.stride())
    assert copied == 150  # none fell back to torch


@pytest.mark.parametrize("threads", [1, 3])
def test_strided_copy_interleaves_and_splits_rows_over_threads(threads):
    # the transposed patches' interleave (short rows read across), large enough for several threads
    cols = torch.randn(2, 16, 2, 2, 2, 16, 16, 16)
    v = cols.permute(0, 1, 5, 2, 6, 3, 7, 4)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        assert torch.equal(native.contiguous(v), v.contiguous())
        out = torch.empty(v.shape)
        assert native.copy_(out, v) and torch.equal(out, v.contiguous())
    finally:
        torch.set_num_threads(old)


def test_strided_copy_declines_what_it_does_not_serve():
    big = torch.randn(64, 1024).t()
    out = torch.empty(big.shape)
    assert not native.copy_(torch.empty(big.shape, dtype=torch.float16), big.half())  # 2-byte elements
    assert not native.copy_(out.double(), big)  # dtypes differ
    small = torch.randn(63, 100).t()
    assert not native.copy_(torch.empty(small.shape), small)  # below COPY_MIN_ELEMENTS: torch copies
    assert not native.copy_(out, big.clone().requires_grad_())  # autograd
    assert native.copy_(out, big) and torch.equal(out, big.contiguous())
    c = torch.randn(256, 256, dtype=torch.complex64).t().conj()  # a lazily conjugated view: torch resolves it
    assert not native.copy_(torch.empty(c.shape, dtype=c.dtype), c)
    assert torch.equal(native.contiguous(c), c.contiguous())


def test_python_and_c_agree_on_the_copy_struct():
    source = (_native_build.NATIVE_C / "copy.c").read_text()
    assert f"#define COPY_MAX_DIMS {native.COPY_MAX_DIMS}" in source
    struct = re.search(r"typedef struct \{([^{}]*)\} CopyGeom;", source, re.S).group(1)
    assert re.sub(r"\s+", " ", struct).strip() == (
        "int64_t nd, esize, threads; int64_t shape[COPY_MAX_DIMS], ds[COPY_MAX_DIMS], ss[COPY_MAX_DIMS];")


@pytest.mark.parametrize("xs, ws, kw", [
    ((3, 6, 17, 15), (6, 1, 3, 3), {"padding": 1, "groups": 6}),                  # depthwise, batch 3
    ((2, 8, 12, 13), (8, 2, 3, 3), {"stride": 2, "padding": (1, 0), "groups": 4}),
    ((4, 5, 40), (5, 1, 4), {"padding": "causal", "groups": 5}),                    # causal 4-tap conv1d
    ((2, 4, 6, 7, 5), (4, 1, 3, 3, 3), {"padding": 1, "dilation": (1, 2, 1), "groups": 4}),
])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_weight_gradient_reads_the_swapped_input_in_place(monkeypatch, xs, ws, kw, dtype):
    # a batch > 1: the weight gradient's (Cg, G*B, *L) input is not a view of x; native reads it through
    # a group stride instead of a copy, with torch's values
    from anyconv.algorithms import _small_gemm as _small

    monkeypatch.setattr(_small, "plan", lambda *a: None)  # small calls: the general path all the same
    used = []
    monkeypatch.setattr(native, "forward_grouped", lambda *a, f=native.forward_grouped: used.append(1) or f(*a))
    x = torch.randn(xs, dtype=torch.float64, requires_grad=True)
    w = torch.randn(ws, dtype=torch.float64, requires_grad=True)
    n = len(xs) - 2
    tkw = dict(kw)
    if tkw.get("padding") == "causal":  # torch gets the causal padding through F.pad
        tkw.pop("padding")
        ref_y = TORCH_CONV[n](F.pad(x, [ws[-1] - 1, 0]), w, **tkw)
    else:
        ref_y = TORCH_CONV[n](x, w, **kw)
    gy = torch.randn_like(ref_y)
    (ref,) = torch.autograd.grad(ref_y, w, gy)
    xd, wd = x.detach().to(dtype).requires_grad_(), w.detach().to(dtype).requires_grad_()
    y = AF.conv(xd, wd, **kw)
    (got,) = torch.autograd.grad(y, wd, gy.to(dtype))
    tol = 1e-10 if dtype == torch.float64 else 1e-3
    torch.testing.assert_close(got.double(), ref, atol=tol, rtol=tol)
    assert used, "the weight gradient did not read the swapped input in place"
    assert got.is_contiguous() and got.dtype == dtype


def test_grouped_view_matches_the_flattened_copy():
    rng = random.Random(2)
    for _ in range(40):
        n = rng.choice([1, 2, 3])
        b, g, cg, og = rng.choice([1, 2]), rng.choice([1, 2, 3]), rng.choice([1, 2, 3]), rng.choice([1, 4, 5])
        size = [rng.randint(3, 12) for _ in range(n)]
        k = [rng.choice([1, 2, 3, 9]) for _ in range(n)]
        size = [max(v, kk) for v, kk in zip(size, k)]
        base = torch.randn(cg, b, g, *size, dtype=torch.float64)  # a group stride that is not Cg x the channel's
        xg = base.permute(1, 2, 0, *range(3, 3 + n))  # (B, G, Cg, *L)
        w = torch.randn(g * og, cg, *k, dtype=torch.float64)
        spec = CorrSpec((1,) * n, (1,) * n, ((1, 0),) * n, g)
        torch.testing.assert_close(native.forward_grouped(xg, w, spec), native.forward(xg.flatten(1, 2), w, spec),
                                   atol=1e-12, rtol=1e-12)


def test_a_small_call_runs_on_fewer_threads():
    """Each of a call's threads gets at least MIN_MACS_PER_THREAD multiply-adds."""
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(4)
        spec = CorrSpec((1, 1), (1, 1), ((1, 1), (1, 1)), 1)
        small = _native_abi.geometry(torch.empty(1, 3, 8, 8, device="meta"), torch.empty(4, 3, 3, 3, device="meta"), spec)
        big_x, big_w = torch.empty(8, 64, 56, 56, device="meta"), torch.empty(64, 64, 3, 3, device="meta")
        big = _native_abi.geometry(big_x, big_w, spec)
        assert small.threads == 1 and big.threads == 4  # 8*64*64*9*56*56 MACs: many per-thread minimums
    finally:
        torch.set_num_threads(old)
