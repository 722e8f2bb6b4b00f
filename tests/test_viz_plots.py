"""anyconv.viz plots: the plotted data equals torch's computation, and the files are written."""

from __future__ import annotations

import math
import sys

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("matplotlib", reason="matplotlib (extra 'viz') is needed to plot")

import anyconv.viz.plots as P  # noqa: E402
from anyconv.viz import FILTERS, plot_feature_maps, plot_filter, plot_kernels, plot_signal, synthetic_image  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def _same(i, k, s, d):
    total = max((math.ceil(i / s) - 1) * s + (k - 1) * d + 1 - i, 0)
    return total // 2, total - total // 2


def test_signal_plot_matches_torch_and_the_learning_material(tmp_path):
    path = tmp_path / "signal.png"
    fig = plot_signal(path=path)
    x = torch.arange(1.0, 10.0, dtype=torch.float64).reshape(1, 1, -1)
    w = torch.tensor([2.0, 1.0, 2.0], dtype=torch.float64).reshape(1, 1, -1)
    pads = [_same(9, 3, 1, 1), (0, 0), (2, 2), (2, 0)]
    strides = [1, 1, 2, 1]
    for ax, (b, a), s in zip(fig.axes[1:], pads, strides):
        line = ax.lines[0]
        ref = F.conv1d(F.pad(x, [b, a]), w, stride=s).reshape(-1)
        assert list(line.get_ydata()) == pytest.approx(ref.tolist(), abs=1e-10)
        centres = [j * s - b + 1.0 for j in range(ref.numel())]
        assert list(line.get_xdata()) == pytest.approx(centres)
    # the numbers printed in the learning material (seed 003)
    assert [round(v) for v in fig.axes[1].lines[0].get_ydata()] == [5, 10, 15, 20, 25, 30, 35, 40, 25]
    assert [round(v) for v in fig.axes[2].lines[0].get_ydata()] == [10, 15, 20, 25, 30, 35, 40]
    assert [round(v) for v in fig.axes[3].lines[0].get_ydata()] == [2, 10, 20, 30, 40, 18]
    from PIL import Image

    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 1000


def test_signal_plot_custom_cases():
    fig = plot_signal([0, 1, 0, 0, 3, 0], [1, -1], cases=[("d=2", {"dilation": 2, "padding": "same"})])
    x = torch.tensor([[[0.0, 1, 0, 0, 3, 0]]], dtype=torch.float64)
    b, a = _same(6, 2, 1, 2)
    ref = F.conv1d(F.pad(x, [b, a]), torch.tensor([[[1.0, -1.0]]], dtype=torch.float64), dilation=2)
    assert list(fig.axes[1].lines[0].get_ydata()) == pytest.approx(ref.reshape(-1).tolist())


@pytest.mark.parametrize("preset", sorted(FILTERS))
def test_filter_plot_matches_torch(preset):
    img = synthetic_image(24)
    fig = plot_filter(img, preset)
    shown = torch.as_tensor(fig.axes[-1 if preset != "sobel" else 3].images[0].get_array())
    x = img.reshape(1, 1, 24, 24)

    def filt(k):
        k = torch.tensor(k, dtype=torch.float64)
        kh, kw = k.shape
        (t, b), (le, r) = _same(24, kh, 1, 1), _same(24, kw, 1, 1)
        return F.conv2d(F.pad(x, [le, r, t, b], mode="reflect"), k.reshape(1, 1, kh, kw))[0, 0]

    if preset == "sobel":
        ref = torch.sqrt(filt(FILTERS["sobel_x"]) ** 2 + filt(FILTERS["sobel_y"]) ** 2)
    else:
        ref = filt(FILTERS[preset])
    torch.testing.assert_close(shown.double(), ref, atol=1e-10, rtol=0)
    assert torch.as_tensor(fig.axes[0].images[0].get_array()).double().allclose(img)


def test_filter_plot_several_rows_and_custom_kernel():
    fig = plot_filter(None, ["blur", [[1.0, 0.0, -1.0]]])
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 6  # 2 rows of image, kernel, filtered
    assert synthetic_image(64).shape == (64, 64)


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Conv2d(3, 5, 2),
    )


def test_kernel_plot_shows_the_weights(tmp_path):
    m = _model()
    fig = plot_kernels(m, path=tmp_path / "k.png", per_layer=4)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 3 + 4
    for j in range(3):
        torch.testing.assert_close(torch.as_tensor(axes[j].images[0].get_array()).double(),
                                   m[0].weight[j, 0].detach().double())
    assert (tmp_path / "k.png").stat().st_size > 1000


def test_feature_map_plot_shows_each_conv_layer_output():
    m = _model()
    x = torch.randn(2, 1, 12, 12)
    fig = plot_feature_maps(m, x, per_layer=3)
    y0 = m[0](x)
    y1 = m[3](m[2](m[1](y0)))
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 1 + 3 + 3
    def shown(ax):
        return torch.as_tensor(ax.images[0].get_array()).float()

    torch.testing.assert_close(shown(axes[0]), x[0, 0])
    for j in range(3):
        torch.testing.assert_close(shown(axes[1 + j]), y0[0, j].detach())
        torch.testing.assert_close(shown(axes[4 + j]), y1[0, j].detach())


def test_feature_maps_of_a_1d_anyconv_model():
    import anyconv.nn as ann

    if not hasattr(ann, "Conv1d"):
        pytest.skip("anyconv.nn.Conv1d not written yet")
    m = torch.nn.Sequential(ann.Conv1d(2, 3, 3), torch.nn.ReLU(), ann.Conv1d(3, 2, 3, stride=2))
    x = torch.randn(1, 2, 15)
    fig = plot_feature_maps(m, x)
    ref = m(x)[0, 1].detach()
    line = [ax for ax in fig.axes if ax.get_visible()][-1].lines[0]
    assert list(line.get_ydata()) == pytest.approx(ref.tolist(), abs=1e-6)


def test_bad_arguments_raise_before_plotting(monkeypatch):
    monkeypatch.setattr(P, "pyplot", lambda: pytest.fail("plotted despite bad arguments"))
    with pytest.raises(ValueError, match="plot_filter: `preset` must be one of"):
        plot_filter(None, "gauss")
    with pytest.raises(ValueError, match="conv: `stride`"):
        plot_signal(cases=[("bad", {"stride": 0})])
    with pytest.raises(ValueError, match="plot_signal: `signal`"):
        plot_signal([[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="plot: `model`"):
        plot_kernels(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="`model`"):
        plot_kernels("resnet")


def test_missing_matplotlib_gives_one_line_naming_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError) as e:
        plot_signal()
    assert "pip install anyconv[viz]" in str(e.value) and "\n" not in str(e.value)
