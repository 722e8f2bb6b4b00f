"""channels_last in, channels_last out: outputs and gradients in the memory format torch gives.

For every algorithm, conv and conv_transpose (input and/or weight channels_last), the pools, the
adaptive pools and the drop-in modules, forward and backward: the output, input gradient and weight
gradient must be laid out as torch's (``is_contiguous`` in both formats equal) with torch's values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as F

import anyconv.algorithms as A
import anyconv.functional as AF
import anyconv.nn as ANN

CL = {4: torch.channels_last, 5: torch.channels_last_3d}
ROW = torch.contiguous_format


def _layout(t: torch.Tensor) -> tuple[bool, bool]:
    return t.is_contiguous(), t.is_contiguous(memory_format=CL[t.dim()])


def check(ours: Callable[..., torch.Tensor], theirs: Callable[..., torch.Tensor], *inputs: torch.Tensor) -> None:
    """Same values and layouts as torch for the output and the gradient of every input."""
    ins = [t.detach().clone(memory_format=torch.preserve_format).requires_grad_(t.is_floating_point()) for t in inputs]
    refs = [t.detach().clone(memory_format=torch.preserve_format).requires_grad_(t.is_floating_point()) for t in inputs]
    y, r = ours(*ins), theirs(*refs)
    torch.testing.assert_close(y, r, atol=1e-4, rtol=1e-4)
    assert _layout(y) == _layout(r), f"output layout {_layout(y)}, torch {_layout(r)}"
    gy = torch.randn(r.shape)
    grads = torch.autograd.grad(y, [t for t in ins if t.requires_grad], gy)
    ref_grads = torch.autograd.grad(r, [t for t in refs if t.requires_grad], gy)
    for i, (g, rg) in enumerate(zip(grads, ref_grads)):
        torch.testing.assert_close(g, rg, atol=1e-4, rtol=1e-4)
        assert _layout(g) == _layout(rg), f"gradient {i} layout {_layout(g)}, torch {_layout(rg)}"


FORMATS = [("x", CL, None), ("w", None, CL), ("both", CL, CL)]


def _as(t: torch.Tensor, fmt: dict | None) -> torch.Tensor:
    return t.contiguous(memory_format=fmt[t.dim()]) if fmt else t


def _algorithms(x: torch.Tensor, w: torch.Tensor, **kw: Any) -> list[str]:
    names = ["auto"]
    for name in A.names():
        try:
            AF.conv(x, w, algorithm=name, **kw)
            names.append(name)
        except ValueError:
            pass
    return names


@pytest.mark.parametrize("which", FORMATS, ids=[f[0] for f in FORMATS])
@pytest.mark.parametrize("n", (2, 3))
def test_conv_every_algorithm(n: int, which: tuple) -> None:
    _, xf, wf = which
    x = _as(torch.randn(2, 4, *[6] * n), xf)
    w = _as(torch.randn(6, 4, *[3] * n), wf)
    ref = F.conv2d if n == 2 else F.conv3d
    for algo in _algorithms(x.contiguous(), w.contiguous(), padding=1):
        check(lambda a, b, algo=algo: AF.conv(a, b, padding=1, algorithm=algo), lambda a, b: ref(a, b, padding=1), x, w)


def test_conv_issue_example_small_path() -> None:
    x = torch.randn(1, 2, 6, 6).contiguous(memory_format=torch.channels_last)
    check(lambda a, b: AF.conv2d(a, b, padding=1), lambda a, b: F.conv2d(a, b, padding=1), x, torch.randn(3, 2, 3, 3))


@pytest.mark.parametrize("which", FORMATS, ids=[f[0] for f in FORMATS])
def test_conv_grouped_strided_depthwise(which: tuple) -> None:
    _, xf, wf = which
    for w_shape, kw in (((8, 1, 3, 3), dict(groups=8, padding=1)), ((4, 4, 3, 3), dict(stride=2)),
                        ((16, 2, 5, 5), dict(groups=4, padding=2, stride=2))):
        x = _as(torch.randn(2, 8, 9, 9), xf)
        w = _as(torch.randn(*w_shape), wf)
        c_in = w.shape[1] * int(kw.get("groups", 1))  # type: ignore[call-overload]
        if c_in != 8:
            x = _as(torch.randn(2, c_in, 9, 9), xf)
        check(lambda a, b, kw=kw: AF.conv(a, b, **kw), lambda a, b, kw=kw: F.conv2d(a, b, **kw), x, w)


@pytest.mark.parametrize("which", FORMATS, ids=[f[0] for f in FORMATS])
def test_conv_transpose(which: tuple) -> None:
    _, xf, wf = which
    x = _as(torch.randn(2, 4, 5, 5), xf)
    w = _as(torch.randn(4, 3, 3, 3), wf)
    check(lambda a, b: AF.conv_transpose(a, b, stride=2, padding=1), lambda a, b: F.conv_transpose2d(a, b, stride=2, padding=1), x, w)
    x3 = _as(torch.randn(1, 4, 4, 4, 4), xf)
    w3 = _as(torch.randn(4, 2, 2, 2, 2), wf)
    check(lambda a, b: AF.conv_transpose(a, b, stride=2), lambda a, b: F.conv_transpose3d(a, b, stride=2), x3, w3)


POOLS = [
    ("max", lambda t: AF.max_pool(t, 2), lambda t: F.max_pool2d(t, 2)),
    ("max-strided-padded", lambda t: AF.max_pool(t, 3, stride=2, padding=1), lambda t: F.max_pool2d(t, 3, 2, 1)),
    ("avg", lambda t: AF.avg_pool(t, 3, stride=2, padding=1), lambda t: F.avg_pool2d(t, 3, 2, 1)),
    ("lp", lambda t: AF.lp_pool(t, 2, 2), lambda t: F.lp_pool2d(t, 2, 2)),
    ("adaptive-avg", lambda t: AF.adaptive_avg_pool(t, 4), lambda t: F.adaptive_avg_pool2d(t, 4)),
    ("adaptive-max", lambda t: AF.adaptive_max_pool(t, 3), lambda t: F.adaptive_max_pool2d(t, 3)),
]


@pytest.mark.parametrize("pool", POOLS, ids=[p[0] for p in POOLS])
def test_pools(pool: tuple) -> None:
    _, ours, theirs = pool
    check(ours, theirs, torch.randn(2, 3, 8, 8).contiguous(memory_format=torch.channels_last))


def test_pools_3d() -> None:
    x = torch.randn(2, 3, 6, 6, 6).contiguous(memory_format=torch.channels_last_3d)
    check(lambda t: AF.max_pool(t, 2), lambda t: F.max_pool3d(t, 2), x)
    check(lambda t: AF.avg_pool(t, 2), lambda t: F.avg_pool3d(t, 2), x)
    check(lambda t: AF.adaptive_avg_pool(t, 2), lambda t: F.adaptive_avg_pool3d(t, 2), x)


def test_max_pool_indices_layout() -> None:
    x = torch.randn(2, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    v, i = AF.max_pool(x, 2, return_indices=True)
    rv, ri = F.max_pool2d(x, 2, return_indices=True)
    assert torch.equal(i, ri) and _layout(i) == _layout(ri) and _layout(v) == _layout(rv)


MODULES = [
    ("Conv2d", lambda: ANN.Conv2d(3, 5, 3, padding=1), lambda: tnn.Conv2d(3, 5, 3, padding=1)),
    ("ConvTranspose2d", lambda: ANN.ConvTranspose2d(3, 5, 3, stride=2), lambda: tnn.ConvTranspose2d(3, 5, 3, stride=2)),
    ("MaxPool2d", lambda: ANN.MaxPool2d(2), lambda: tnn.MaxPool2d(2)),
    ("AvgPool2d", lambda: ANN.AvgPool2d(2), lambda: tnn.AvgPool2d(2)),
    ("AdaptiveAvgPool2d", lambda: ANN.AdaptiveAvgPool2d(2), lambda: tnn.AdaptiveAvgPool2d(2)),
]


@pytest.mark.parametrize("module", MODULES, ids=[m[0] for m in MODULES])
def test_modules(module: tuple) -> None:
    _, make_ours, make_theirs = module
    torch.manual_seed(0)
    ours = make_ours()
    torch.manual_seed(0)
    theirs = make_theirs()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    check(ours, theirs, x)
    if list(ours.parameters()):  # a channels_last model (model.to(memory_format=...)) as well
        ours, theirs = ours.to(memory_format=torch.channels_last), theirs.to(memory_format=torch.channels_last)
        check(ours, theirs, x.contiguous())


# torch's rule, measured (see anyconv.functional._layout): the fuzzer's calls (seed 7) and the cases
# that tell the rule apart, each against torch itself on the same (channels_last) operands
def _cl_strides(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """Channels-last strides even where C = 1 (``.contiguous(memory_format=...)`` keeps those row-major)."""
    return torch.movedim(torch.randn(shape[0], *shape[2:], shape[1]).to(dtype), -1, 1)


RULE = [  # (name, op, x, w, kwargs, threads)
    ("fuzz825-T3d-bf16", "T", (2, 2, 3, 3, 4), (2, 1, 2, 2, 3), dict(stride=(1, 2, 3), dilation=(1, 1, 2), groups=2,
                                                                      padding=(0, 1, 0)), torch.bfloat16),
    ("fuzz1359-T3d-f32", "T", (2, 2, 4, 3, 1), (2, 2, 2, 1, 3), dict(stride=(3, 1, 2), dilation=(1, 2, 2)), torch.float32),
    ("T3d-f64-rowmajor", "T", (2, 2, 4, 3, 1), (2, 2, 2, 1, 3), dict(stride=(3, 1, 2), dilation=(1, 2, 2)), torch.float64),
    ("T3d-f16-rowmajor", "T", (2, 2, 3, 3, 4), (2, 1, 2, 2, 3), dict(stride=2, groups=2), torch.float16),
    ("T3d-outpad-big", "T", (2, 2, 3, 3, 3), (2, 2, 2, 2, 2), dict(stride=1, dilation=2, output_padding=1), torch.float32),
    ("T3d-k1-dilated", "T", (1, 4, 5, 5, 5), (4, 1, 2, 1, 1), dict(dilation=(1, 2, 1), groups=2), torch.float32),
    ("C3d-f64-rowmajor", "C", (2, 3, 5, 5, 5), (4, 3, 2, 2, 2), dict(padding=1), torch.float64),
    ("C3d-f32-batch1-small", "C", (1, 3, 5, 5, 5), (4, 3, 2, 2, 2), dict(padding=1), torch.float32),
    ("C3d-f32-batch2", "C", (2, 3, 5, 5, 5), (4, 3, 2, 2, 2), dict(padding=1), torch.float32),
    ("C3d-C1-cl-strides", "C", (1, 1, 5, 5, 3), (2, 1, 2, 2, 2), dict(stride=(2, 3, 2), dilation=(2, 1, 1)), torch.float32),
    ("C2d-C1-cl-strides", "C", (2, 1, 6, 5), (3, 1, 2, 2), dict(padding=1), torch.float64),
    ("T2d-C1-cl-strides", "T", (2, 1, 3, 2), (1, 2, 1, 3), dict(stride=2, dilation=(2, 1), padding=(0, 1),
                                                                output_padding=1), torch.bfloat16),
]


@pytest.mark.parametrize("threads", (1, 2))
@pytest.mark.parametrize("case", RULE, ids=[c[0] for c in RULE])
def test_torch_layout_rule(case: tuple, threads: int) -> None:
    _, op, xs, ws, kw, dtype = case
    x, w = _cl_strides(xs, dtype), torch.randn(ws).to(dtype)
    n = len(xs) - 2
    ours = AF.conv if op == "C" else AF.conv_transpose
    theirs = {("C", 2): F.conv2d, ("C", 3): F.conv3d, ("T", 2): F.conv_transpose2d, ("T", 3): F.conv_transpose3d}[op, n]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)  # torch's float32 kernel choice (so its layout) reads the thread count
    try:
        r = theirs(x, w, **kw)
        y = ours(x, w, **kw)
    finally:
        torch.set_num_threads(before)
    tol = 1e-4 if dtype in (torch.float32, torch.float64) else 5e-2
    torch.testing.assert_close(y.float(), r.float(), atol=tol, rtol=tol)
    assert _layout(y) == _layout(r), f"output layout {_layout(y)}, torch {_layout(r)}"


@pytest.mark.parametrize("which", FORMATS, ids=[f[0] for f in FORMATS])
def test_conv3d_float64_row_major_gradients(which: tuple) -> None:
    """torch's 3-D float64 convolutions (its slow kernels) give row-major results and gradients."""
    _, xf, wf = which
    x, w = _as(torch.randn(2, 3, 5, 5, 5, dtype=torch.float64), xf), _as(torch.randn(4, 3, 2, 2, 2, dtype=torch.float64), wf)
    check(lambda a, b: AF.conv(a, b, padding=1), lambda a, b: F.conv3d(a, b, padding=1), x, w)
    check(AF.conv_transpose, F.conv_transpose3d, x, _as(torch.randn(3, 4, 2, 2, 2, dtype=torch.float64), wf))


def test_strides_like_channels_last_is_torchs() -> None:
    """anyconv's reading of strides is torch's ``suggest_memory_format`` (sizes with 1s, slices, permutes)."""
    from torch._prims_common import suggest_memory_format

    from anyconv.functional._layout import strides_like_channels_last

    gen = torch.Generator().manual_seed(0)
    for _ in range(400):
        dims = int(torch.randint(4, 6, (1,), generator=gen))
        shape = [int(v) for v in torch.randint(1, 4, (dims,), generator=gen)]
        t = torch.randn(shape).permute(*torch.randperm(dims, generator=gen).tolist())
        if bool(torch.rand(1, generator=gen) < 0.3):
            t = t[..., ::2]
        assert strides_like_channels_last(t) == (suggest_memory_format(t) != torch.contiguous_format), (t.shape, t.stride())


@pytest.mark.parametrize("shape", [(2, 2, 3, 5), (2, 3, 4, 6), (1, 2, 4, 4), (2, 3, 4, 4, 6)])
def test_max_unpool_layout(shape: tuple[int, ...]) -> None:
    """The fuzzer's calls (seed 7: 1192, 1397, 2504): 2-D max unpooling follows its input's layout, 3-D
    gives row-major; the input gradient is row-major."""
    x = torch.randn(shape, dtype=torch.float64).contiguous(memory_format=CL[len(shape)])
    pool, unpool = (F.max_pool2d, F.max_unpool2d) if len(shape) == 4 else (F.max_pool3d, F.max_unpool3d)
    v, i = pool(x, 2, return_indices=True)
    size = shape[2:]  # (the default size may not hold every index of an odd-sized input)
    check(lambda a: AF.max_unpool(a, i, 2, output_size=size), lambda a: unpool(a, i, 2, output_size=size), v)
