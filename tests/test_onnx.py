"""ONNX export (``anyconv.onnx``): anyconv's operators as standard ONNX operators, run by onnxruntime.

Skipped where onnx, onnxscript or onnxruntime is not installed (the ``test`` extra has them).
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("onnxscript")
ort = pytest.importorskip("onnxruntime")

import anyconv.nn as ann  # noqa: E402
import anyconv.onnx  # noqa: E402
from anyconv.models import create_model  # noqa: E402

STANDARD = {"Abs", "Add", "Clip", "Concat", "Conv", "ConvTranspose", "Div", "Gather", "GatherElements", "Gemm",
            "MaxPool", "Mul", "Pow", "ReduceMean", "Relu", "Reshape", "Sign", "Slice", "Tanh", "Mod", "Constant"}


def _run(m: torch.nn.Module, x: torch.Tensor, tmp_path) -> tuple[float, set[str]]:
    m.eval()
    program = anyconv.onnx.export(m, (x,))
    path = str(tmp_path / "m.onnx")
    program.save(path)
    ops = {n.op_type for n in program.model.graph}
    assert all(n.domain in ("", "ai.onnx") for n in program.model.graph), "no custom domain"
    session = ort.InferenceSession(path)
    y = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        return (torch.from_numpy(y) - m(x)).abs().max().item(), ops


CASES = {
    "conv_modes_transpose": (lambda: torch.nn.Sequential(
        ann.Conv2d(3, 4, 3, padding="same", padding_mode="reflect"),
        ann.Conv2d(4, 4, 3, stride=2, groups=2, padding=[(2, 1), (1, 0)], dilation=(1, 2)),
        ann.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)), (2, 3, 10, 10)),
    "pools_ceil": (lambda: torch.nn.Sequential(
        ann.MaxPool2d(3, 2, 1, ceil_mode=True), ann.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
        ann.LPPool2d(2, 2), ann.AdaptiveAvgPool2d(2)), (2, 3, 17, 17)),
    "conv1d": (lambda: torch.nn.Sequential(ann.Conv1d(2, 3, 5, stride=2, padding="causal"), ann.MaxPool1d(2)),
               (2, 2, 21)),
    "conv3d": (lambda: torch.nn.Sequential(ann.Conv3d(2, 3, 3, padding=1), ann.AvgPool3d(2)), (1, 2, 6, 6, 6)),
    "lenet5": (lambda: create_model("lenet5"), (2, 1, 28, 28)),
    "unet": (lambda: create_model("unet", in_channels=1), (2, 1, 16, 16)),
    "resnet18": (lambda: create_model("resnet18", num_classes=7), (1, 3, 32, 32)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_onnxruntime_matches_eager(name, tmp_path):
    make, shape = CASES[name]
    torch.manual_seed(0)
    err, ops = _run(make(), torch.randn(shape), tmp_path)
    assert err < 1e-4, err
    assert ops <= STANDARD, ops - STANDARD


def test_gradient_operators_refuse_with_their_name():
    table = anyconv.onnx.translation_table()
    with pytest.raises(NotImplementedError, match="anyconv::window_sum_t"):
        table[torch.ops.anyconv.window_sum_t.default]()


@pytest.mark.parametrize("name", list(CASES))
def test_plain_torchscript_export_after_import(name, tmp_path):
    """``torch.onnx.export(..., dynamo=False)`` with nothing but ``import anyconv``: the symbolic functions
    registered at import write standard nodes, and onnxruntime agrees with eager."""
    import warnings

    import onnx

    make, shape = CASES[name]
    torch.manual_seed(0)
    m, x = make().eval(), torch.randn(shape)
    path = str(tmp_path / "m.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's own deprecation notice
        torch.onnx.export(m, (x,), path, dynamo=False)
    graph = onnx.load(path).graph
    ops = {n.op_type for n in graph.node}
    assert all(n.domain in ("", "ai.onnx") for n in graph.node), "no custom domain"
    assert ops <= STANDARD | {"Cast", "Shape", "Pad", "Flatten", "Identity", "MatMul"}, ops
    session = ort.InferenceSession(path)
    y = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        assert (torch.from_numpy(y) - m(x)).abs().max().item() < 1e-4


@pytest.mark.parametrize("name", ["conv_modes_transpose", "pools_ceil", "lenet5"])
def test_plain_dynamo_export_after_import(name, tmp_path):
    """``torch.onnx.export(m, args, dynamo=True)`` with no translation table: ``import anyconv.onnx``
    registered the translations with torch's exporter."""
    make, shape = CASES[name]
    torch.manual_seed(0)
    m, x = make().eval(), torch.randn(shape)
    program = torch.onnx.export(m, (x,), dynamo=True)
    assert all(n.domain in ("", "ai.onnx") for n in program.model.graph), "no custom domain"
    path = str(tmp_path / "m.onnx")
    program.save(path)
    session = ort.InferenceSession(path)
    y = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        assert (torch.from_numpy(y) - m(x)).abs().max().item() < 1e-4


@pytest.mark.parametrize("dynamo", [True, False])
def test_adaptive_avg_with_uneven_windows_refuses_by_name(dynamo, tmp_path):
    m = torch.nn.Sequential(ann.Conv2d(3, 4, 3), ann.AdaptiveAvgPool2d((3, 4))).eval()
    with pytest.raises(Exception, match="anyconv::adaptive_avg .*uneven windows"):
        if dynamo:
            anyconv.onnx.export(m, (torch.randn(1, 3, 8, 8),))
        else:
            torch.onnx.export(m, (torch.randn(1, 3, 8, 8),), str(tmp_path / "m.onnx"), dynamo=False)
