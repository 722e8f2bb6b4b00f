"""PyTorch 2 subsystems on anyconv's pooling operators and the model zoo.

``torch.library.opcheck`` on every pooling operator; ``torch.compile`` (fullgraph, no graph break)
and ``torch.export`` of pooling models and of small zoo models vs eager; ``torch.func`` (vmap of
grad, jvp, jacfwd) and forward-mode AD vs torch's pooling; meta tensors.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.func import grad, jacfwd, jvp, vmap

import anyconv.functional as AF
import anyconv.nn as ann
from anyconv.models import create_model
from anyconv.ops import _adaptive, _pool

D = torch.float64


def test_opcheck_every_pool_op():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 7, 6, dtype=D, requires_grad=True)
    geo = ([3, 2], [2, 2], [1, 1, 0, 1], [1, 2], [4, 3])  # kernel, stride, padding, dilation, out
    vals, idx = _pool.max_pool(x.detach(), *geo, True)
    g = torch.randn_like(vals).requires_grad_()
    calls = [
        (_pool.max_pool, (x, *geo, True)),
        (_pool.max_pool, (x.detach(), *geo, False)),
        (_pool.index_scatter, (g, idx, [7, 6])),
        (_pool.index_gather, (x, idx)),
        (_pool.window_sum_op, (x, *geo, D)),
        (_pool.window_sum_t_op, (g, *geo, [7, 6])),
        (_adaptive.adaptive_avg, (x, [7, 6], [4, 4], False)),
        (_adaptive.adaptive_avg, (torch.randn(2, 3, 4, 4, dtype=D, requires_grad=True), [7, 6], [4, 4], True)),
    ]
    for op, args in calls:
        result = torch.library.opcheck(op, args)
        assert all(v == "SUCCESS" for v in result.values()), (op, result)


def _pool_model() -> torch.nn.Module:
    torch.manual_seed(1)
    return torch.nn.Sequential(
        ann.Conv2d(3, 6, 3, padding=1), ann.MaxPool2d(2), torch.nn.ReLU(),
        ann.AvgPool2d(3, stride=1, padding=1, count_include_pad=False), ann.LPPool2d(2, 2),
        ann.AdaptiveMaxPool2d(3), ann.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
    )


def test_compile_and_export_pooling_model():
    m = _pool_model()
    x = torch.randn(2, 3, 16, 16)
    explained = torch._dynamo.explain(m)(x)
    assert explained.graph_break_count == 0, explained.break_reasons
    c = torch.compile(m, fullgraph=True)
    torch.testing.assert_close(c(x), m(x))
    c(x).square().sum().backward()
    got = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    m(x).square().sum().backward()
    for a, p in zip(got, m.parameters()):
        torch.testing.assert_close(a, p.grad, rtol=1e-4, atol=1e-5)
    ep = torch.export.export(m, (x,))
    targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    assert {"anyconv.max_pool.default", "anyconv.window_sum.default"} <= targets
    torch.testing.assert_close(ep.module()(x), m(x))


@pytest.mark.parametrize("name, shape", [("lenet5", (2, 1, 28, 28)), ("mnist1d_cnn", (3, 1, 40)),
                                         ("cifar_cnn", (2, 3, 16, 16))])
def test_zoo_compile_fullgraph_and_export(name, shape):
    torch._dynamo.reset()
    torch.manual_seed(2)
    m = create_model(name, in_channels=shape[1]).eval()
    x = torch.randn(shape)
    assert torch._dynamo.explain(m)(x).graph_break_count == 0
    torch.testing.assert_close(torch.compile(m, fullgraph=True)(x), m(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.export.export(m, (x,)).module()(x), m(x))
    with torch.device("meta"):
        meta = create_model(name, in_channels=shape[1]).eval()
    assert meta(torch.empty(shape, device="meta")).shape == m(x).shape


POOLS = [
    (lambda a: AF.max_pool(a, 3, 2, 1), lambda a: F.max_pool2d(a, 3, 2, 1)),
    (lambda a: AF.avg_pool(a, 3, 2, 1, count_include_pad=False), lambda a: F.avg_pool2d(a, 3, 2, 1, count_include_pad=False)),
    (lambda a: AF.lp_pool(a, 2, 2), lambda a: F.lp_pool2d(a, 2, 2)),
    (lambda a: AF.adaptive_max_pool(a, 3), lambda a: F.adaptive_max_pool2d(a, 3)),
    (lambda a: AF.adaptive_avg_pool(a, (4, 5)), lambda a: F.adaptive_avg_pool2d(a, (4, 5))),  # uneven windows
]


@pytest.mark.parametrize("k", range(len(POOLS)), ids=["max", "avg", "lp", "adaptive_max", "adaptive_avg"])
def test_func_transforms_match_torch(k):
    f, r = POOLS[k]
    torch.manual_seed(3)
    x = torch.randn(4, 2, 7, 7, dtype=D)
    t = torch.randn_like(x)
    torch.testing.assert_close(jvp(f, (x,), (t,))[1], jvp(r, (x,), (t,))[1])
    torch.testing.assert_close(jacfwd(f)(x[:1, :1]), jacfwd(r)(x[:1, :1]))

    def loss(fn, xi):
        return fn(xi.unsqueeze(0)).square().sum()

    torch.testing.assert_close(vmap(grad(lambda xi: loss(f, xi)))(x), vmap(grad(lambda xi: loss(r, xi)))(x))
    import torch.autograd.forward_ad as fwad

    with fwad.dual_level():
        got = fwad.unpack_dual(f(fwad.make_dual(x, t))).tangent
        want = fwad.unpack_dual(r(fwad.make_dual(x, t))).tangent
    torch.testing.assert_close(got, want)


def test_pool_double_backward_and_meta():
    x = torch.randn(2, 2, 6, 6, dtype=D, requires_grad=True)
    for f, _ in POOLS:
        assert torch.autograd.gradgradcheck(f, (x,))
        assert f(torch.empty(2, 2, 6, 6, device="meta")).device.type == "meta"


def test_adaptive_avg_uneven_is_one_operator_under_compile_export_trace():
    """AlexNet's 6x6 adaptive average of a 1x1 map (uneven windows): the data-dependent GEMM/window-sum
    choice is inside the operator, so the traced, compiled and exported models are the eager one."""
    import warnings

    torch._dynamo.reset()
    torch.manual_seed(4)
    m = torch.nn.Sequential(ann.Conv2d(3, 4, 3), ann.AdaptiveAvgPool2d((6, 5)), torch.nn.Flatten())
    x = torch.randn(2, 3, 4, 5)
    assert torch._dynamo.explain(m)(x).graph_break_count == 0
    torch.testing.assert_close(torch.compile(m, fullgraph=True)(x), m(x))
    ep = torch.export.export(m, (x,))
    assert "anyconv.adaptive_avg.default" in {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    x2 = x.clone()
    x2[0, 0, 1, 1] = float("inf")  # the exported program takes the window-sum path for it, as eager does
    torch.testing.assert_close(ep.module()(x2), m(x2), equal_nan=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", torch.jit.TracerWarning)
        traced = torch.jit.trace(m, (x,), check_trace=True)
    torch.testing.assert_close(traced(x2), m(x2), equal_nan=True)
