"""Speed algorithms (fft, winograd, depthwise, matrix, tuned im2col) and the ``auto`` chooser.

Every algorithm is compared with ``direct`` (float64, tight) and with torch's kernels
(float32 within the algorithm's documented error bound); ``auto`` must always work and never
pick an algorithm outside its accuracy guard. Timing lives in the benchmarks only.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import anyconv
import anyconv.functional as AF
from anyconv import algorithms
from anyconv.algorithms import auto, fft, im2col, winograd
from anyconv.core.spec import CorrSpec
from anyconv.tools.choose import core_call

NEW = ("fft", "winograd", "depthwise", "matrix", "im2col", "kn2row", "positions", "shifted", "native")

# (input shape, weight shape, conv kwargs)
CALLS = [
    ((2, 3, 17), (4, 3, 5), {}),
    ((2, 4, 20), (8, 1, 5), {"groups": 4, "stride": 3, "dilation": 2, "padding": [(3, 1)]}),
    ((1, 4, 40), (4, 2, 3), {"groups": 2, "padding": "causal"}),
    ((2, 6, 9, 11), (4, 3, 3, 3), {"groups": 2, "padding": 1}),
    ((1, 4, 10, 9), (4, 1, 3, 3), {"groups": 4, "padding": "same"}),
    ((2, 6, 9, 7), (4, 6, 1, 1), {"stride": (2, 1), "padding": 1}),
    ((1, 6, 9, 11), (4, 3, 3, 2), {"groups": 2, "stride": (2, 1), "dilation": (1, 3), "padding": 2}),
    ((1, 2, 5, 6, 7), (3, 2, 3, 3, 3), {"padding": 1}),
    ((1, 3, 6, 5, 7), (3, 1, 2, 3, 2), {"groups": 3, "stride": 2, "padding": "same"}),
    ((1, 2, 4, 5, 3, 4), (2, 2, 3, 3, 3, 3), {"padding": 1}),
    ((1, 2, 7, 6), (2, 2, 3, 3), {"padding": 1, "padding_mode": "reflect"}),
    ((2, 3, 12), (2, 3, 10), {}),  # more taps than positions (weight-gradient shape)
    ((1, 4, 9, 9), (2, 2, 7, 7), {"groups": 2, "dilation": (1, 2), "padding": [(0, 0), (3, 3)]}),
]


def _tensors(xs, ws, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(xs, generator=g, dtype=torch.float64)
    w = torch.randn(ws, generator=g, dtype=torch.float64) / math.sqrt(math.prod(ws[1:]))
    return x.to(dtype), w.to(dtype)


def _torch_conv(x, w, kw):
    n = w.dim() - 2
    if n > 3 or isinstance(kw.get("padding"), list) or kw.get("padding") in ("causal", "same"):
        return None
    kw = dict(kw)
    fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[n]
    mode = kw.pop("padding_mode", "zeros")
    if mode != "zeros":
        p = kw.pop("padding")
        x = F.pad(x, [p] * (2 * n), mode=mode)
    return fn(x, w, **kw)


def _normwise(y, ref):
    return ((y.to(ref.dtype) - ref).abs().max() / ref.abs().max()).item()


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("call", range(len(CALLS)))
def test_exact_in_float64_and_bounded_in_float32(name, call):
    xs, ws, kw = CALLS[call]
    x, w = _tensors(xs, ws)
    ref = AF.conv(x, w, algorithm="direct", **kw)
    xc, wc, spec = core_call("conv", x, w, **kw)
    reason = algorithms.get(name).supports(xc, wc, spec)
    if reason is not None:
        assert isinstance(reason, str) and reason
        with pytest.raises(ValueError, match=reason.split("(")[0][:30]):
            AF.conv(x, w, algorithm=name, **kw)
        return
    y = AF.conv(x, w, algorithm=name, **kw)
    torch.testing.assert_close(y, ref, atol=1e-10, rtol=1e-10)
    t = _torch_conv(x, w, kw)
    if t is not None:
        torch.testing.assert_close(ref, t, atol=1e-10, rtol=1e-10)
    y32 = AF.conv(x.float(), w.float(), algorithm=name, **kw)
    assert y32.dtype == torch.float32
    assert _normwise(y32, ref) <= auto.predicted_error(name, xc.float(), wc.float(), spec)


@pytest.mark.parametrize("name", ("fft", "winograd", "depthwise", "matrix", "native"))
def test_gradients(name):
    x, w = _tensors((1, 2, 6, 5), (2, 1, 3, 3))
    x.requires_grad_(True)
    w.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: AF.conv(a, b, groups=2, padding=1, algorithm=name), (x, w))
    y = AF.conv(x, w, groups=2, padding=1, algorithm=name)
    gx, gw = torch.autograd.grad(y.square().sum(), (x, w))
    yt = F.conv2d(x, w, groups=2, padding=1)
    tx, tw = torch.autograd.grad(yt.square().sum(), (x, w))
    torch.testing.assert_close(gx, tx, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(gw, tw, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("name", ("fft", "winograd", "depthwise", "matrix"))
@pytest.mark.parametrize("dtype", (torch.complex128, torch.float16, torch.bfloat16))
def test_other_dtypes(name, dtype):
    x, w = _tensors((1, 2, 8, 7), (2, 1, 3, 3))
    if dtype.is_complex:
        x = torch.complex(x, x.flip(-1))
        w = torch.complex(w, -w)
    ref = AF.conv(x.to(torch.complex128 if dtype.is_complex else torch.float64),
                  w.to(torch.complex128 if dtype.is_complex else torch.float64), groups=2, algorithm="direct")
    y = AF.conv(x.to(dtype), w.to(dtype), groups=2, algorithm=name)
    assert y.dtype == dtype
    tol = 1e-10 if dtype.is_complex else 2 * float(torch.finfo(dtype).eps)
    assert (y.to(ref.dtype) - ref).abs().max().item() <= tol * ref.abs().max().item()


def test_conv_transpose_through_fft_and_winograd():
    x, w = _tensors((2, 4, 7, 6), (4, 3, 3, 3))
    ref = F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1)
    for name in ("fft", "matrix"):
        y = AF.conv_transpose(x, w, stride=2, padding=1, output_padding=1, algorithm=name)
        torch.testing.assert_close(y, ref, atol=1e-10, rtol=1e-10)
    y = AF.conv_transpose(x, w, padding=1, algorithm="winograd")
    torch.testing.assert_close(y, F.conv_transpose2d(x, w, padding=1), atol=1e-10, rtol=1e-10)


def test_refusals_name_their_reason():
    x, w = _tensors((1, 2, 9, 9), (2, 2, 3, 3))
    with pytest.raises(ValueError, match="only stride 1"):
        AF.conv(x, w, stride=2, algorithm="winograd")
    with pytest.raises(ValueError, match="only 3-tap kernels"):
        AF.conv(x, w[..., :2], algorithm="winograd")
    with pytest.raises(ValueError, match="only depthwise kernels"):
        AF.conv(x, w, algorithm="depthwise")
    big_x, big_w = torch.randn(1, 16, 64, 64), torch.randn(16, 16, 5, 5)
    with anyconv.workspace_limit(2**20), pytest.raises(ValueError, match="workspace limit"):
        AF.conv(big_x, big_w, algorithm="matrix")


def test_fft_memory_stays_under_the_workspace_limit(monkeypatch):
    limit = 2**20
    x, w = torch.randn(1, 2, 300_000), torch.randn(2, 2, 301)
    sizes = []
    real = torch.fft.rfftn

    def spy(t, *a, **k):
        sizes.append(t.numel() * t.element_size())
        return real(t, *a, **k)

    monkeypatch.setattr(torch.fft, "rfftn", spy)
    with anyconv.workspace_limit(limit):
        y = AF.conv(x, w, padding=150, algorithm="fft")
        p = fft.plan(tuple(x.shape), tuple(w.shape), CorrSpec((1,), (1,), ((150, 150),), 1))
    assert p["nb"][0] > 1  # overlap-save blocks, not one transform of the whole signal
    assert len(sizes) > 2 and max(sizes) * fft.SCRATCH_FACTOR <= limit
    monkeypatch.undo()
    ref = F.conv1d(x, w, padding=150)
    assert _normwise(y, ref.double()) < 1e-5


@pytest.mark.parametrize("name, xs, ws, kw", [
    # positions: the flat kernel spans all 64 channels of a row
    ("positions", (20, 64, 5), (64, 64, 2), {"padding": 1, "stride": 2}),
    # positions: dilation splits the input into phases
    ("positions", (32, 16, 6, 6), (32, 16, 3, 3), {"padding": 1, "dilation": 2}),
    # shifted: the batch is tiled (one sample per tile)
    ("shifted", (6, 8, 40, 40), (16, 8, 3, 3), {"padding": 2, "dilation": 2}),
    ("shifted", (3, 4, 9, 8, 7), (6, 2, 2, 3, 2), {"padding": (1, 0, 2), "groups": 2}),
    ("shifted", (5, 6, 33, 31), (4, 3, 3, 5), {"padding": (1, 2), "stride": (2, 3), "dilation": (3, 1), "groups": 2}),
    # depthwise: batch-tiled too (one sample per tile), strided and dilated
    ("depthwise", (6, 8, 40, 40), (16, 1, 3, 3), {"padding": 1, "groups": 8, "stride": 2, "dilation": 2}),
])
def test_flat_offset_algorithms_tile_under_a_small_workspace(name, xs, ws, kw):
    x, w = _tensors(xs, ws)
    with anyconv.workspace_limit(2**20):
        y = AF.conv(x, w, algorithm=name, **kw)
    torch.testing.assert_close(y, _torch_conv(x, w, kw), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("xs, ws, kw", [
    ((3, 4, 37, 29), (6, 4, 3, 3), {"padding": 1}),  # 10 x 8 tiles per sample, last ones partial
    ((2, 6, 23, 41), (4, 3, 3, 3), {"padding": (0, 2), "groups": 2}),
    ((3, 4, 301), (5, 4, 3), {"padding": 1}),
])
def test_winograd_chunks_of_tiles(xs, ws, kw, monkeypatch):
    """Winograd works through the tiles in cache-sized chunks (balanced rows of tiles): with
    chunks of a few tiles the result is the same as torch's."""
    monkeypatch.setattr(winograd, "CHUNK_BYTES", 1)
    monkeypatch.setattr(winograd, "MIN_CHUNK_TILES", {1: 7, 2: 5, 3: 5})
    x, w = _tensors(xs, ws)
    y = AF.conv(x, w, algorithm="winograd", **kw)
    torch.testing.assert_close(y, _torch_conv(x, w, kw), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("xs, ws, kw", [
    ((2, 12, 9, 8), (9, 4, 3, 3), {"padding": 1, "groups": 3}),  # one group per chunk, all positions
    ((3, 8, 17), (8, 2, 5), {"padding": 2, "groups": 4, "dilation": 2}),
    ((2, 6, 7, 9), (4, 6, 2, 3), {"stride": 2, "padding": (1, 0)}),  # tiles of positions
    ((4, 4, 5, 5), (6, 2, 3, 3), {"groups": 2}),  # weight-gradient shape: kernel innermost
    ((1, 12, 2, 3), (12, 2, 2, 2), {"groups": 6}),  # 2 positions: chunks of 2 groups, untiled
])
def test_im2col_chunks_of_positions_and_groups(xs, ws, kw, monkeypatch):
    """im2col builds its columns in tiles of positions and, within a tile, chunks of whole
    groups: with tiny chunks the result and both gradients are torch's."""
    monkeypatch.setattr(im2col, "CHUNK_BYTES", 1)
    monkeypatch.setattr(im2col, "MIN_CHUNK_POSITIONS", 5)
    _check_with_gradients("im2col", xs, ws, kw)


def _check_with_gradients(name, xs, ws, kw):
    """``algorithm=name``'s result and both gradients equal torch's (float64)."""
    x, w = _tensors(xs, ws)
    x.requires_grad_(True)
    w.requires_grad_(True)
    y = AF.conv(x, w, algorithm=name, **kw)
    ref = _torch_conv(x, w, kw)
    torch.testing.assert_close(y, ref, rtol=1e-10, atol=1e-10)
    gy = torch.randn_like(ref)
    for a, b in zip(torch.autograd.grad(y, (x, w), gy), torch.autograd.grad(ref, (x, w), gy)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("xs, ws, kw", [
    ((2, 4, 13, 11), (7, 4, 3, 3), {"padding": 1}),  # output channels in chunks of 2, 2, 2, 1
    ((2, 6, 9, 10), (10, 3, 3, 3), {"padding": (7, 0), "groups": 2}),  # per group; tile rows reading zeros only
    ((3, 4, 31), (9, 4, 3), {"padding": 2}),
    ((1, 2, 5, 4, 6), (5, 2, 3, 3, 3), {"padding": 1}),
])
def test_winograd_chunks_of_output_channels(xs, ws, kw, monkeypatch):
    """A large transformed kernel is made and used in chunks of output channels (per group),
    with the tiles in chunks of their own and each chunk's input padded on its own: the result
    and both gradients are torch's."""
    monkeypatch.setattr(winograd, "KERNEL_CHUNK_BYTES", 1)  # 1 output channel per group and chunk
    monkeypatch.setattr(winograd, "CHUNK_BYTES", 1)
    monkeypatch.setattr(winograd, "MIN_CHUNK_TILES", {1: 3, 2: 2, 3: 2})
    _check_with_gradients("winograd", xs, ws, kw)


@pytest.mark.parametrize("xs, ws, kw", [
    ((2, 6, 37, 29), (12, 1, 7, 5), {"padding": 3, "groups": 6}),  # depthwise, 2 outputs per channel
    ((3, 5, 40), (5, 1, 9), {"padding": 4, "groups": 5, "stride": 2, "dilation": 2}),
    ((2, 4, 33, 21), (6, 2, 5, 5), {"padding": (2, 1), "groups": 2}),  # channels contracted: blocks only
])
def test_fft_chunks_of_channels_and_blocks(xs, ws, kw, monkeypatch):
    """FFT works through (sample, [channel,] block) units in chunks; depthwise kernels are
    chunked over channels too. Tiny chunks give the same result as torch."""
    monkeypatch.setattr(fft, "CHUNK_BYTES", 1)
    monkeypatch.setattr(fft, "MIN_CHUNK_UNITS", 3)

    def short_blocks(length, e, s, out, alpha, cap=None):  # blocks of a few outputs: many blocks per dim
        n = fft.fast_length(e + 4)
        t = min((n - e) // s + 1, out)
        return n, t, -(-out // t)

    monkeypatch.setattr(fft, "_dim_plan", short_blocks)
    x, w = _tensors(xs, ws)
    y = AF.conv(x, w, algorithm="fft", **kw)
    torch.testing.assert_close(y, _torch_conv(x, w, kw), rtol=1e-10, atol=1e-10)


def test_fft_blocks_are_shortened_to_the_block_budget_within_the_work_slack():
    """A long signal is cut into blocks whose scratch and kernel spectrum fit ``BLOCK_BYTES``
    (one whole-signal block would need 4.7 MiB here), unless shorter blocks cost more than
    ``BLOCK_SLACK`` times the work: a weight gradient (the kernel as long as the signal, one
    output per block if shortened) keeps its one block."""
    spec = CorrSpec((1,), (1,), ((511, 511),), 1)
    p = fft.plan((1, 4, 32768), (4, 4, 1023), spec)
    assert p["nb"][0] > 1
    assert sum(fft._block_bytes(p["n"], (1, 4, 32768), (4, 4, 1023), 1, 4)) <= fft.BLOCK_BYTES
    whole = fft._dim_plan(32768 + 1022, 1023, 1, 32768, 8.0)
    assert whole == (34560, 32768, 1)
    assert p["nb"][0] * p["n"][0] * (math.log2(p["n"][0]) + 8.0) <= fft.BLOCK_SLACK * 34560 * (math.log2(34560) + 8.0)
    spec_w = CorrSpec((1,), (1,), ((2047, 2047),), 1)
    assert fft.plan((1, 1, 65536), (4095, 1, 65536), spec_w)["nb"] == (1,)


@pytest.mark.parametrize("xs, ws, kw", [
    ((2, 3, 300), (4, 3, 40), {"padding": 7}),
    ((1, 4, 41, 37), (4, 1, 9, 7), {"padding": (4, 3), "groups": 4, "stride": (2, 1)}),
    ((2, 2, 12, 11, 10), (3, 2, 5, 4, 3), {"padding": 2, "dilation": (1, 2, 1)}),
])
def test_fft_shortened_blocks(xs, ws, kw, monkeypatch):
    """With a tiny ``BLOCK_BYTES`` (the shortest blocks in every dim) and no work limit the result
    and both gradients are torch's."""
    monkeypatch.setattr(fft, "BLOCK_BYTES", 1)
    monkeypatch.setattr(fft, "BLOCK_SLACK", 1e9)
    _check_with_gradients("fft", xs, ws, kw)


@pytest.mark.parametrize("xs, ws, kw", [
    ((2, 6, 13, 11), (6, 1, 3, 3), {"padding": 1, "groups": 6}),  # 'same': the centre tap writes first
    ((2, 4, 9, 10), (8, 1, 3, 2), {"padding": (2, 1), "dilation": (2, 3), "groups": 4}),  # 2 outputs per channel
    ((1, 3, 4), (3, 1, 3), {"padding": 3, "groups": 3}),  # no tap reaches every output: zero-filled first
    ((2, 5, 7, 6, 5), (5, 1, 2, 3, 2), {"padding": (1, 0, 1), "groups": 5}),
])
def test_depthwise_stride_one_passes_over_clipped_views(xs, ws, kw):
    """Stride-1 depthwise calls take passes over the in-range part of each tap (no padded copy)."""
    x, w = _tensors(xs, ws)
    torch.testing.assert_close(AF.conv(x, w, algorithm="depthwise", **kw), _torch_conv(x, w, kw),
                               rtol=1e-10, atol=1e-10)
    x16, w16 = x.to(torch.bfloat16), w.to(torch.bfloat16)  # accumulated in float32
    ref = _torch_conv(x16.double(), w16.double(), kw)
    y16 = AF.conv(x16, w16, algorithm="depthwise", **kw)
    assert y16.dtype == torch.bfloat16
    assert (y16.double() - ref).abs().max() <= 2 * 2**-8 * ref.abs().max()


def test_im2col_kernel_innermost_layout_for_long_kernel_rows():
    """Kernel rows longer than output rows (a weight gradient's shape) use the kernel-innermost
    columns even with fewer taps than positions; both layouts give torch's result."""
    from anyconv.algorithms import im2col

    x, w = _tensors((40, 2, 9, 9), (6, 2, 7, 7))  # taps 49 < positions 40 * 3 * 3, rows 7 > 3
    assert im2col.kernel_innermost((3, 3), (7, 7), 40) and not im2col.kernel_innermost((7, 7), (3, 3), 2)
    for kw in ({}, {"padding": (1, 4), "dilation": (1, 2)}, {"groups": 2}):
        wk = w[:, :1] if kw.get("groups") else w
        torch.testing.assert_close(AF.conv(x, wk, algorithm="im2col", **kw), _torch_conv(x, wk, kw),
                                   rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("xs, ws, kw", [
    ((3, 4, 30, 30), (5, 4, 30, 30), {}),                            # a 1x1 layer's weight gradient
    ((2, 6, 59, 39), (4, 3, 30, 20), {"dilation": (2, 2), "groups": 2}),  # every other input
    ((2, 3, 600), (3, 1, 600), {"groups": 3}),
    ((1, 2, 8, 9, 8), (3, 2, 8, 8, 8), {"stride": 2}),               # the last input row unread
])
def test_im2col_one_window_is_a_product_per_channel(xs, ws, kw):
    """One output position, no padding: the window is a view of the input and the call a matrix
    product per input channel, summed (no column copy); torch's values, in float64 and float32."""
    from anyconv.algorithms import im2col
    from anyconv.core.spec import CorrSpec

    x, w = _tensors(xs, ws)
    n = len(xs) - 2
    spec = CorrSpec((kw.get("stride", 1),) * n, kw.get("dilation", (1,) * n), ((0, 0),) * n, kw.get("groups", 1))
    assert im2col.one_window(x, w, spec)
    torch.testing.assert_close(AF.conv(x, w, algorithm="im2col", **kw), _torch_conv(x, w, kw), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(AF.conv(x.float(), w.float(), algorithm="im2col", **kw),
                               _torch_conv(x, w, kw).float(), rtol=1e-4, atol=1e-4)
    assert not im2col.one_window(x, w, CorrSpec(spec.stride, spec.dilation, ((0, 1),) + spec.padding[1:], spec.groups))


def test_flat_offset_algorithms_refuse_what_they_cannot_serve():
    x, w = _tensors((1, 2, 9, 9), (2, 2, 3, 3))
    with pytest.raises(ValueError, match="algorithm='shifted' cannot serve this call: 1-tap kernels"):
        AF.conv(x, w[..., :1, :1], stride=2, algorithm="shifted")
    with pytest.raises(ValueError, match="at most 512 output positions"):
        AF.conv(torch.randn(1, 1, 600), torch.randn(1, 1, 3), algorithm="positions")
    with anyconv.workspace_limit(2**20), pytest.raises(ValueError, match="scratch budget"):
        AF.conv(torch.randn(1, 1, 300_000), torch.randn(1, 1, 3), algorithm="shifted")


def test_fast_lengths_are_5_smooth():
    for n in (1, 2, 97, 1000, 4097, 65537):
        m = fft.fast_length(n)
        assert m >= n
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        assert r == 1


@pytest.mark.parametrize(("n", "m"), [(1, 2), (1, 4), (1, 6), (2, 2), (2, 4), (2, 6), (3, 2)])
def test_winograd_accuracy_is_within_the_documented_growth(n, m):
    x, w = _tensors((2, 16, *([14] * n)), (8, 16, *([3] * n)), seed=n * 10 + m)
    spec = CorrSpec((1,) * n, (1,) * n, ((1, 1),) * n, 1)
    ref = algorithms.get("direct").forward(x, w, spec)
    y64 = winograd.forward(x, w, spec, m=m)
    torch.testing.assert_close(y64, ref, atol=1e-10, rtol=1e-10)
    err = _normwise(winograd.forward(x.float(), w.float(), spec, m=m), ref)
    assert err <= winograd.WINOGRAD_GROWTH[n][m] * 2.0**-24


AUTO_CALLS = CALLS + [
    ((1, 1, 5000), (1, 1, 801), {"padding": 400}),
    ((1, 8, 24, 24), (8, 1, 11, 11), {"groups": 8, "padding": 5}),
]


@pytest.mark.parametrize("call", range(len(AUTO_CALLS)))
@pytest.mark.parametrize("dtype", (torch.float32, torch.float64, torch.complex64))
def test_auto_always_works_and_respects_its_guard(call, dtype):
    xs, ws, kw = AUTO_CALLS[call]
    x, w = _tensors(xs, ws)
    if dtype.is_complex:  # genuinely complex data, reference in complex128
        x, w = torch.complex(x, x.flip(1)), torch.complex(w, -w.flip(0))
    ref = AF.conv(x, w, algorithm="direct", **kw)
    xd, wd = x.to(dtype), w.to(dtype)
    y = AF.conv(xd, wd, **kw)
    xc, wc, spec = core_call("conv", xd, wd, **kw)
    choice = auto.choose(xc, wc, spec)
    bound = auto.ACCURACY_ULPS * auto.unit_roundoff(dtype)
    assert choice.errors[choice.name] <= bound or choice.name not in ("fft", "winograd")
    assert _normwise(y, ref) <= max(bound, choice.errors[choice.name])


def test_accuracy_guard_rejects_and_explains(monkeypatch):
    x, w = torch.randn(1, 4, 12, 12), torch.randn(4, 4, 3, 3)
    xc, wc, spec = core_call("conv", x, w, padding=1)
    monkeypatch.setitem(winograd.WINOGRAD_GROWTH, 2, {m: 1e9 for m in (2, 4, 6)})
    monkeypatch.setattr(fft, "FFT_GROWTH_PER_LOG2", 1e9)
    auto.clear_cache()  # choices are cached per call: the modules' constants changed in place
    try:
        c = auto.choose(xc, wc, spec)
        assert "accuracy guard" in c.rejected["winograd"] and "accuracy guard" in c.rejected["fft"]
        assert c.name not in ("winograd", "fft")
        assert "accuracy guard" in anyconv.explain_algorithm(x, w, padding=1)
        torch.testing.assert_close(AF.conv(x, w, padding=1), F.conv2d(x, w, padding=1), atol=1e-5, rtol=1e-5)
    finally:
        monkeypatch.undo()
        auto.clear_cache()


def test_auto_prefers_fft_for_long_kernels_and_explains_backward():
    x, w = torch.randn(1, 1, 20000), torch.randn(1, 1, 2001)
    assert anyconv.choose_algorithm(x, w) == "fft"
    text = anyconv.explain_algorithm(x, w, padding=1000)
    labels = [line.split(":")[0] for line in text.splitlines() if not line.startswith(" ")]
    assert labels == ["forward", "grad_input", "grad_weight"]
    assert text.count("chosen: fft") == 3


def test_choose_algorithm_measure_and_transpose():
    x, w = torch.randn(1, 2, 8, 8), torch.randn(2, 3, 3, 3)
    name, times = anyconv.choose_algorithm(x, w, stride=2, transpose=True, measure=True, repeats=1)
    assert set(times) >= {"direct", "im2col", "fft"} and name in times
    # under auto a stride-2 transposed conv is split into stride-1 phase correlations
    # (algorithms/polyphase.py), each measured through the registry like any other call
    with pytest.raises(ValueError, match="groups"):
        anyconv.choose_algorithm(x, torch.randn(3, 2, 3, 3), groups=2)


def test_pointwise_fast_path_matches_torch():
    x, w = _tensors((2, 6, 9, 7), (4, 3, 1, 1))
    for kw in ({"groups": 2}, {"groups": 2, "stride": 2, "padding": 1}):
        torch.testing.assert_close(AF.conv(x, w, algorithm="im2col", **kw), F.conv2d(x, w, **kw),
                                   atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("taps", [0, 64])  # 0: by phases only; 64: small kernels by columns
@pytest.mark.parametrize("seed", range(6))
def test_polyphase_transpose_is_the_adjoint(seed, taps, monkeypatch):
    from anyconv.algorithms import polyphase
    from anyconv.algorithms._operator import conv_operator
    from anyconv.algorithms.polyphase import corr_t

    monkeypatch.setattr(polyphase, "COL2IM_MAX_TAPS", taps)

    gen = torch.Generator().manual_seed(seed)
    n = 1 + seed % 3
    ri = lambda lo, hi: int(torch.randint(lo, hi + 1, (1,), generator=gen))  # noqa: E731
    groups, cg, og = ri(1, 2), ri(1, 2), ri(1, 2)
    kernel = [ri(1, 4) for _ in range(n)]
    spec = CorrSpec(tuple(ri(1, 3) for _ in range(n)), tuple(ri(1, 3) for _ in range(n)),
                    tuple((ri(0, 2), ri(0, 2)) for _ in range(n)), groups)
    in_spatial = [ri(6, 9) for _ in range(n)]
    out = spec.output_spatial(in_spatial, kernel)
    g = torch.randn(2, groups * og, *out, generator=gen, dtype=torch.float64)
    w = torch.randn(groups * og, cg, *kernel, generator=gen, dtype=torch.float64)
    a = conv_operator(w, in_spatial, spec, dense=True)  # (O*P, C*L)
    ref = (g.reshape(2, -1) @ a).reshape(2, groups * cg, *in_spatial)
    torch.testing.assert_close(corr_t(g, w, spec, in_spatial, "auto"), ref, atol=1e-10, rtol=1e-10)


def test_bench_command(capsys, tmp_path):
    from anyconv.cli import main

    out = tmp_path / "bench.json"
    assert main(["bench", "long1d.k1023_16k", "--mode", "forward", "--repeats", "1", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "long1d.k1023_16k" in text and "geometric mean" in text and "threads" in text
    import json

    row = json.loads(out.read_text())["rows"][0]
    assert row["algorithm"] == "fft" and row["torch_ms_min"] > 0 and row["anyconv_ms_min"] > 0
    assert main(["bench", "no_such_case"]) == 2
    assert "group.case" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    assert "anyconv bench --quick" in capsys.readouterr().out


def test_bench_suite_selection():
    from anyconv.bench.suite import CASES, QUICK, groups, select

    assert {c.group for c in select(quick=True)} == set(groups())
    assert all(q in {c.key for c in CASES} for q in QUICK)
    assert [c.key for c in select(["long1d"])] == [c.key for c in CASES if c.group == "long1d"]
    case = select(["resnet18.conv3x3_56"])[0]
    assert case.flops() == 2 * 2 * 64 * 56 * 56 * 64 * 9


@pytest.mark.parametrize("xs, ws, kw", [
    ((2, 6, 1, 1), (8, 6, 3, 3), {"padding": 1}),  # ResNet's last stage at 1x1: 8 channels > 2 positions
    ((1, 4, 3, 2), (12, 2, 2, 3), {"groups": 2, "stride": (2, 1), "dilation": (1, 2), "padding": (1, 2)}),
    ((1, 3, 4), (9, 3, 3), {"stride": 3}),
])
def test_col2im_input_gradient_of_wide_layers(xs, ws, kw, monkeypatch):
    """More output channels per group than output positions: the input gradient is ``w^T @ gy``
    scattered back (no flipped weight copy); it and the (uncopied) weight gradient match torch."""
    from anyconv.algorithms import _small_gemm as _small

    used = []
    real = _small.col2im_pays
    monkeypatch.setattr(_small, "col2im_pays", lambda *a: used.append(real(*a)) or used[-1])
    monkeypatch.setattr(_small, "plan", lambda *a: None)  # the general path, not the small-call one
    x, w = _tensors(xs, ws)
    x.requires_grad_(True)
    w.requires_grad_(True)
    y = AF.conv(x, w, **kw)
    gy = torch.randn_like(y)
    dx, dw = torch.autograd.grad(y, (x, w), gy)
    xr, wr = x.detach().requires_grad_(True), w.detach().requires_grad_(True)
    ex, ew = torch.autograd.grad(_torch_conv(xr, wr, kw), (xr, wr), gy)
    assert used == [True]
    torch.testing.assert_close(dx, ex, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(dw, ew, rtol=1e-10, atol=1e-10)
    assert dw.is_contiguous() and list(dw.stride()) == [math.prod(dw.shape[i + 1:]) for i in range(dw.dim())]


@pytest.mark.parametrize("xs, ws, kw", [
    ((2, 4, 3, 5), (4, 3, 2, 2), {"stride": 2}),                                   # 2x2 s2 "up-conv"
    ((1, 6, 2, 3, 2), (6, 2, 2, 2, 2), {"stride": 2, "groups": 2}),                # 3-D, groups
    ((3, 2, 4), (2, 3, 3), {"stride": 3, "padding": 1, "output_padding": 2}),     # padding crops
    ((2, 4, 3, 2), (4, 1, 3, 1), {"stride": (3, 1), "padding": (2, 0), "groups": 4}),
    ((1, 8, 16, 16, 16), (8, 4, 2, 2, 2), {"stride": 2}),  # large enough for native's strided copy
])
def test_kernel_equal_stride_transpose_is_one_gemm(xs, ws, kw, monkeypatch):
    """Kernel == stride (non-overlapping windows): the transposed correlation is one GEMM plus
    an interleave (no per-phase sub-calls), with torch's values, gradients and a contiguous output."""
    from anyconv.algorithms import polyphase

    used = []
    real = polyphase.patches
    monkeypatch.setattr(polyphase, "patches", lambda *a: used.append(1) or real(*a))
    x, w = _tensors(xs, ws)
    x.requires_grad_(True)
    w.requires_grad_(True)
    y = AF.conv_transpose(x, w, **kw)
    n = len(xs) - 2
    ref = getattr(F, f"conv_transpose{n}d")(x, w, **kw)
    gy = torch.randn_like(ref)
    torch.testing.assert_close(y, ref, rtol=1e-10, atol=1e-10)
    for a, e in zip(torch.autograd.grad(y, (x, w), gy), torch.autograd.grad(ref, (x, w), gy)):
        torch.testing.assert_close(a, e, rtol=1e-10, atol=1e-10)
    assert used and y.is_contiguous()


@pytest.mark.parametrize("xs, ws, kw", [
    ((2, 4, 7, 6), (4, 6, 4, 4), {"stride": 2, "padding": 1}),  # DCGAN-style 4x4 s2
    ((1, 6, 5, 4, 3), (6, 2, 3, 2, 3), {"stride": (2, 3, 1), "groups": 3, "output_padding": (1, 0, 0)}),
    ((3, 2, 9), (2, 4, 3), {"stride": 2, "dilation": 3, "padding": 5}),  # taps reaching nothing
    ((2, 3, 4, 4), (3, 5, 3, 1), {"stride": (3, 2), "padding": (4, 0)}),
    ((2, 4, 5, 5), (4, 3, 1, 2), {"stride": 3, "output_padding": (2, 1)}),  # phases without taps
])
def test_transpose_by_columns_and_phase_sums(xs, ws, kw, monkeypatch):
    """Small kernels with several gradient channels per group: the transposed correlation is one
    1x1 correlation per chunk of channels (a chunk per channel here), its taps summed per output
    phase and copied into the phase's strided positions, with torch's values and gradients."""
    from anyconv.algorithms import polyphase

    used = []
    real = polyphase.col2im
    monkeypatch.setattr(polyphase, "col2im", lambda *a: used.append(1) or real(*a))
    monkeypatch.setattr(polyphase, "COL2IM_CHUNK_BYTES", 1)
    x, w = _tensors(xs, ws)
    x.requires_grad_(True)
    w.requires_grad_(True)
    y = AF.conv_transpose(x, w, **kw)
    ref = getattr(F, f"conv_transpose{len(xs) - 2}d")(x, w, **kw)
    gy = torch.randn_like(ref)
    torch.testing.assert_close(y, ref, rtol=1e-10, atol=1e-10)
    for a, e in zip(torch.autograd.grad(y, (x, w), gy), torch.autograd.grad(ref, (x, w), gy)):
        torch.testing.assert_close(a, e, rtol=1e-10, atol=1e-10)
    assert used


def test_tracing_in_one_thread_leaves_other_threads_alone():
    """``explain_algorithm`` traces a call on meta tensors by recording the core calls; a
    convolution running in another thread at that moment computes as usual."""
    import threading

    x, w = _tensors((2, 3, 12, 12), (4, 3, 3, 3), torch.float32)
    want = F.conv2d(x, w, padding=1)
    errors: list[str] = []
    stop = threading.Event()

    def worker():
        while not stop.is_set():
            try:
                y = AF.conv(x, w, padding=1, algorithm="im2col")
                if y.is_meta or not torch.allclose(y, want, atol=1e-5):
                    errors.append("wrong result")
            except Exception as e:  # noqa: BLE001 - any failure in the other thread is the bug
                errors.append(repr(e))

    t = threading.Thread(target=worker)
    t.start()
    try:
        for _ in range(200):
            anyconv.explain_algorithm(torch.randn(2, 8, 40, 40), torch.randn(8, 8, 5, 5), padding=2)
    finally:
        stop.set()
        t.join()
    assert not errors, errors[:3]
