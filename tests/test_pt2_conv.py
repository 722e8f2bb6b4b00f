"""PyTorch 2 subsystems on anyconv's conv operators (``torch.ops.anyconv.corr``, ``corr_t``, ``corr_w``).

Each subsystem is checked against eager anyconv or torch's own layers: ``torch.library.opcheck``
(schema, fake kernel, autograd registration, aot_dispatch), ``torch.compile`` (fullgraph, zero
graph breaks, dynamic batch), ``torch.export`` (+ save/load in a fresh process), ``torch.jit.trace``,
``torch.func`` (vmap of grad, jvp, jacfwd, jacrev) and forward-mode AD, meta tensors, autocast.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, jacfwd, jacrev, jvp, vmap

import anyconv
import anyconv.functional as AF
import anyconv.nn as ann
from anyconv import ops

D = torch.float64


def _t(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=D)


# (x shape, w shape, stride, padding pairs, dilation, groups)
SAMPLES = [
    ((2, 4, 9), (6, 2, 3), [2], [1, 0], [1], 2),
    ((1, 3, 7, 6), (4, 3, 3, 2), [1, 2], [1, 1, 0, 2], [2, 1], 1),
    ((2, 2, 5, 4, 4), (2, 2, 2, 3, 2), [1, 1, 2], [0, 1, 1, 1, 0, 0], [1, 1, 1], 1),
]


def _out(xs, ws, stride, pads, dil):
    return [(i + pads[2 * j] + pads[2 * j + 1] - d * (k - 1) - 1) // s + 1
            for j, (i, k, s, d) in enumerate(zip(xs[2:], ws[2:], stride, dil))]


@pytest.mark.parametrize("sample", SAMPLES, ids=["1d_groups", "2d_dilation", "3d"])
def test_opcheck_every_op(sample):
    torch.manual_seed(0)
    xs, ws, stride, pads, dil, g = sample
    x, w = _t(*xs).requires_grad_(), _t(*ws).requires_grad_()
    b = _t(ws[0]).requires_grad_()
    gy = _t(xs[0], ws[0], *_out(xs, ws, stride, pads, dil)).requires_grad_()
    calls = [
        (ops.corr, (x, w, b, stride, pads, dil, g, "auto", "conv")),
        (ops.corr, (x, w, None, stride, pads, dil, g, "direct", "conv")),
        (ops.corr_t, (gy, w, stride, pads, dil, g, list(xs[2:]), "auto", "")),
        (ops.corr_w, (x, gy, stride, pads, dil, g, list(ws[2:]), "auto")),
    ]
    for op, args in calls:
        result = torch.library.opcheck(op, args)
        assert all(v == "SUCCESS" for v in result.values()), (op, result)


def _model() -> torch.nn.Module:
    torch.manual_seed(1)
    return torch.nn.Sequential(
        ann.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
        ann.Conv2d(8, 8, 3, stride=2, padding="same", groups=2, padding_mode="reflect"), torch.nn.ReLU(),
        ann.ConvTranspose2d(8, 4, 2, stride=2), torch.nn.Flatten(), torch.nn.LazyLinear(3),
    )


def _grads(m: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    m.zero_grad()
    y = m(x)
    y.square().sum().backward()
    return y.detach(), [p.grad.clone() for p in m.parameters()]


def test_compile_fullgraph_no_breaks_equals_eager():
    m = _model()
    x = torch.randn(2, 3, 12, 12)
    m(x)  # materialise the lazy layer
    explained = torch._dynamo.explain(m)(x)
    assert explained.graph_break_count == 0, explained.break_reasons
    y0, g0 = _grads(m, x)
    y1, g1 = _grads(torch.compile(m, fullgraph=True), x)
    torch.testing.assert_close(y1, y0, rtol=1e-5, atol=1e-5)
    for a, b in zip(g1, g0):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_compile_dynamic_batch():
    torch._dynamo.reset()
    m = torch.nn.Sequential(ann.Conv1d(2, 4, 3, padding="same"), torch.nn.ReLU(), ann.Conv1d(4, 3, 5, stride=2))
    c = torch.compile(m, fullgraph=True, dynamic=True)
    for batch in (3, 5):
        x = torch.randn(batch, 2, 20)
        torch.testing.assert_close(c(x), m(x), rtol=1e-5, atol=1e-5)


def test_export_runs_and_shows_anyconv_nodes():
    m = _model()
    x = torch.randn(2, 3, 12, 12)
    m(x)
    for strict in (False, True):
        ep = torch.export.export(m, (x,), strict=strict)
        targets = [str(n.target) for n in ep.graph.nodes if n.op == "call_function"]
        assert targets.count("anyconv.corr.default") == 2 and targets.count("anyconv.corr_t.default") == 1
        torch.testing.assert_close(ep.module()(x), m(x))


def test_export_dynamic_batch_save_load_fresh_process(tmp_path):
    m = torch.nn.Sequential(ann.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), ann.Conv2d(4, 2, 3, stride=2))
    x = torch.randn(3, 3, 10, 10)
    batch = torch.export.Dim("batch", min=1, max=64)
    ep = torch.export.export(m, (x,), dynamic_shapes=({0: batch},))
    path = tmp_path / "m.pt2"
    torch.export.save(ep, path)
    x2 = torch.randn(5, 3, 10, 10)
    torch.save({"x": x2, "y": m(x2).detach()}, tmp_path / "io.pt")
    code = textwrap.dedent(f"""
        import torch, anyconv
        ep = torch.export.load({str(path)!r})
        io = torch.load({str(tmp_path / "io.pt")!r})
        torch.testing.assert_close(ep.module()(io["x"]), io["y"])
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]


def test_jit_trace_matches_eager():
    m = torch.nn.Sequential(ann.Conv2d(3, 4, 3, padding="same", padding_mode="reflect"), torch.nn.ReLU(),
                            ann.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1))
    x = torch.randn(2, 3, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", torch.jit.TracerWarning)  # none from anyconv
        traced = torch.jit.trace(m, x)  # check_trace on: a second run must agree
    x2 = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(traced(x2), m(x2))
    assert "anyconv::corr" in str(traced.inlined_graph)


def test_vmap_grad_per_sample_gradients_match_a_loop_over_torch():
    torch.manual_seed(3)
    m = torch.nn.Sequential(ann.Conv1d(2, 4, 3, padding=1), torch.nn.ReLU(), ann.Conv1d(4, 3, 3, stride=2))
    twin = torch.nn.Sequential(torch.nn.Conv1d(2, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv1d(4, 3, 3, stride=2))
    twin.load_state_dict(m.state_dict())
    params = {k: v.detach() for k, v in m.named_parameters()}
    x, t = torch.randn(5, 2, 11), torch.randn(5, 3, 5)

    def loss(model, p, xi, ti):
        return (functional_call(model, p, (xi.unsqueeze(0),)) - ti).square().mean()

    per_sample = vmap(grad(lambda p, xi, ti: loss(m, p, xi, ti)), in_dims=(None, 0, 0))(params, x, t)
    for i in range(5):
        want = torch.autograd.grad(loss(twin, dict(twin.named_parameters()), x[i], t[i]), list(twin.parameters()))
        for (k, _), w in zip(twin.named_parameters(), want):
            torch.testing.assert_close(per_sample[k][i], w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("transposed", [False, True], ids=["conv", "conv_transpose"])
def test_jvp_jacfwd_jacrev_forward_ad_match_torch(transposed):
    torch.manual_seed(4)
    if transposed:
        def f(a, b):
            return AF.conv_transpose(a, b, stride=2, padding=1, groups=2)

        def r(a, b):
            return F.conv_transpose2d(a, b, stride=2, padding=1, groups=2)

        x, w = _t(2, 4, 4, 4), _t(4, 3, 3, 3)
    else:
        def f(a, b):
            return AF.conv(a, b, stride=2, padding=1, dilation=(1, 2), groups=2)

        def r(a, b):
            return F.conv2d(a, b, stride=2, padding=1, dilation=(1, 2), groups=2)

        x, w = _t(2, 4, 7, 7), _t(6, 2, 3, 3)
    tx, tw = torch.randn_like(x), torch.randn_like(w)
    torch.testing.assert_close(jvp(f, (x, w), (tx, tw))[1], jvp(r, (x, w), (tx, tw))[1])
    torch.testing.assert_close(jacfwd(f, argnums=(0, 1))(x[:1], w), jacfwd(r, argnums=(0, 1))(x[:1], w))
    torch.testing.assert_close(jacrev(f, argnums=1)(x[:1], w), jacrev(r, argnums=1)(x[:1], w))
    import torch.autograd.forward_ad as fwad

    with fwad.dual_level():
        got = fwad.unpack_dual(f(fwad.make_dual(x, tx), fwad.make_dual(w, tw))).tangent
        want = fwad.unpack_dual(r(fwad.make_dual(x, tx), fwad.make_dual(w, tw))).tangent
    torch.testing.assert_close(got, want)


def test_bias_tangent_and_vmapped_weights():
    torch.manual_seed(5)
    x, w, b = _t(2, 3, 8), _t(4, 3, 3), _t(4)
    tb = torch.randn_like(b)
    got = jvp(lambda c: AF.conv(x, w, c, padding=1), (b,), (tb,))[1]
    torch.testing.assert_close(got, jvp(lambda c: F.conv1d(x, w, c, padding=1), (b,), (tb,))[1])
    ws, bs = _t(3, 4, 3, 3), _t(3, 4)  # three weights and biases, one input: the group fold
    got = vmap(lambda a, c: AF.conv(x, a, c, stride=2), in_dims=(0, 0))(ws, bs)
    want = torch.stack([F.conv1d(x, ws[i], bs[i], stride=2) for i in range(3)])
    torch.testing.assert_close(got, want)


def test_meta_device_and_fake_mode():
    m = copy.deepcopy(_model().to("meta"))
    m[-1] = torch.nn.Identity()
    y = m(torch.empty(2, 3, 12, 12, device="meta"))
    assert y.device.type == "meta" and y.shape == (2, 4 * 12 * 12)
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        z = AF.conv(torch.empty(2, 3, 9, 9), torch.empty(5, 3, 3, 3), stride=2, padding="same")
    assert z.shape == (2, 5, 5, 5)


def test_explain_algorithm_still_traces_the_core_calls():
    x, w = torch.randn(2, 3, 16, 16), torch.randn(4, 3, 3, 3)
    from anyconv.tools.choose import core_calls

    calls = core_calls("conv", x, w, backward=True, padding=1)
    assert [c[0] for c in calls] == ["forward", "grad_input", "grad_weight"]


def test_autocast_cpu_bfloat16_two_convs_match_torch():
    torch.manual_seed(6)
    twin = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 3))
    m = anyconv.nn.convert(copy.deepcopy(twin))
    x = torch.randn(2, 3, 10, 10)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, want = m(x), twin(x)
        z = AF.conv_transpose(y, torch.randn(4, 2, 2, 2))
    assert y.dtype == want.dtype == z.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), want.float(), rtol=0.05, atol=0.05)
    y.float().sum().backward()
    assert all(p.grad.dtype == torch.float32 for p in m.parameters())
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the operator's own rule, called directly
        d = ops.corr(x, torch.randn(4, 3, 3, 3), None, [1, 1], [0] * 4, [1, 1], 1, "auto", "conv")
    assert d.dtype == torch.bfloat16


def test_errors_before_the_op_under_compile():
    c = torch.compile(lambda a, b: AF.conv(a, b, stride=0), fullgraph=True)
    with pytest.raises(Exception, match="`stride` must be"):
        c(torch.randn(1, 2, 8), torch.randn(3, 2, 3))


def test_jit_script_refuses_in_one_clear_line():
    m = torch.nn.Sequential(torch.nn.ReLU(), ann.Conv2d(3, 4, 3))
    with pytest.raises(TypeError, match=r"Conv2d: torch.jit.script is not supported .* torch.jit.trace, torch.compile"):
        torch.jit.script(m)
