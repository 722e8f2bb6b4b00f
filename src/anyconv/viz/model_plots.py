"""Matplotlib figures of a model: its learned kernels and the feature maps of an input, layer by layer.

Works with any ``torch.nn.Module``: a conv layer is any submodule with a ``weight`` of at
least 3 dims whose class name contains ``Conv`` (torch's and anyconv's ``Conv*d``,
``ConvNd``, ``ConvTranspose*d``...). Feature maps are captured with forward hooks.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ..core.errors import type_error, value_error
from .plots import _finish, pyplot


def conv_layers(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """``(name, module)`` of every conv layer of ``model``, in registration order.

    Examples:
        >>> m = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 8, 3))
        >>> [name for name, _ in conv_layers(m)]
        ['0', '2']
    """
    if not isinstance(model, torch.nn.Module):
        type_error("conv_layers", "model", model, "a torch.nn.Module")
    out = []
    for name, mod in model.named_modules():
        w = getattr(mod, "weight", None)
        if "Conv" in type(mod).__name__ and isinstance(w, torch.Tensor) and w.dim() >= 3:
            out.append((name, mod))
    return out


def _weight(mod: torch.nn.Module) -> torch.Tensor:
    w = getattr(mod, "weight")  # noqa: B009 (a Tensor by conv_layers' test)
    assert isinstance(w, torch.Tensor)
    return w.detach().double().cpu()


def _image_of(t: torch.Tensor) -> torch.Tensor:
    """A 2-D view of a kernel or feature map with >= 2 spatial dims (central slices beyond 2)."""
    while t.dim() > 2:
        t = t[t.shape[0] // 2]
    return t


def _check(model: Any, max_layers: Any, per_layer: Any) -> list[tuple[str, torch.nn.Module]]:
    layers = conv_layers(model)
    if not layers:
        value_error("plot", "model", type(model).__name__, "a model with at least one conv layer")
    for name, v in (("max_layers", max_layers), ("per_layer", per_layer)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            value_error("plot", name, v, "a positive int")
    return layers[:max_layers]


def plot_kernels(
    model: torch.nn.Module,
    path: str | os.PathLike[str] | None = None,
    max_layers: int = 8,
    per_layer: int = 12,
) -> Any:
    """The kernels of every conv layer (one row per layer, up to ``per_layer`` kernels each).

    Kernel ``o`` shows ``weight[o, 0]`` (its slice for input channel 0; a first layer with 3
    input channels is shown as an RGB image); 1-D kernels are line plots, kernels with more
    than 2 spatial dims show their central slice.

    Returns:
        The matplotlib Figure.

    Examples:
        >>> m = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Conv2d(4, 2, 5))
        >>> fig = plot_kernels(m)
        >>> len([ax for ax in fig.axes if ax.get_visible()])
        6
    """
    layers = _check(model, max_layers, per_layer)
    plt = pyplot()
    weights = [(name, _weight(mod)) for name, mod in layers]
    ncols = min(per_layer, max(int(w.shape[0]) for _, w in weights))
    fig, axs = plt.subplots(len(layers), ncols, figsize=(1.3 * ncols + 1, 1.45 * len(layers) + 0.4),
                            squeeze=False, layout="constrained")
    for r, (name, w) in enumerate(weights):
        count = min(per_layer, w.shape[0])
        for j in range(ncols):
            ax = axs[r][j]
            if j >= count:
                ax.set_visible(False)
                continue
            if w.dim() == 3:
                ax.plot(w[j, 0].tolist(), marker=".")
                ax.set_xticks([])
                ax.tick_params(labelsize=6)
            elif w.dim() == 4 and w.shape[1] == 3:
                rgb = w[j].permute(1, 2, 0)
                rgb = (rgb - rgb.min()) / (rgb.max() - rgb.min() + 1e-12)
                ax.imshow(rgb.numpy())
            else:
                k = _image_of(w[j, 0])
                lim = float(k.abs().max()) or 1.0
                ax.imshow(k.numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
            if w.dim() > 3:
                ax.set_xticks([])
                ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(f"{name or 'model'}\n{tuple(w.shape)}", fontsize=7)
    fig.suptitle(f"{type(model).__name__}: conv kernels (weight[o, 0] per output channel o)", fontsize=10)
    return _finish(fig, path)


def feature_maps(model: torch.nn.Module, input: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """``(layer name, output)`` of every conv layer for one forward pass of ``input`` (no grad)."""
    layers = conv_layers(model)
    captured: list[tuple[str, torch.Tensor]] = []
    hooks = [mod.register_forward_hook(lambda _m, _i, out, name=name: captured.append((name, out.detach())))
             for name, mod in layers]
    try:
        with torch.no_grad():
            model(input)
    finally:
        for h in hooks:
            h.remove()
    return captured


def plot_feature_maps(
    model: torch.nn.Module,
    input: torch.Tensor,
    path: str | os.PathLike[str] | None = None,
    max_layers: int = 8,
    per_layer: int = 8,
) -> Any:
    """The input and the feature maps of every conv layer for it, one row per layer.

    Row 0 is the input (first sample, first channel); row ``l`` shows up to ``per_layer``
    output channels of conv layer ``l`` for the first sample (2-D maps as images, 1-D as lines).

    Args:
        model: any torch module with conv layers (put it in eval mode first if it has dropout).
        input: a batch the model accepts, e.g. ``(1, C, H, W)``.

    Returns:
        The matplotlib Figure.

    Examples:
        >>> m = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.ReLU(), torch.nn.Conv2d(3, 2, 3))
        >>> fig = plot_feature_maps(m, torch.randn(1, 1, 12, 12))
        >>> shown = [ax for ax in fig.axes if ax.get_visible()]  # input, 3 maps of '0', 2 of '2'
        >>> len(shown), shown[1].images[0].get_array().shape
        (6, (10, 10))
    """
    _check(model, max_layers, per_layer)
    if not isinstance(input, torch.Tensor):
        type_error("plot_feature_maps", "input", input, "a torch.Tensor batch")
    maps = feature_maps(model, input)[:max_layers]
    plt = pyplot()
    ncols = max(2, min(per_layer, max(int(t.shape[1]) for _, t in maps)))
    fig, axs = plt.subplots(1 + len(maps), ncols, figsize=(1.5 * ncols + 1, 1.5 * (1 + len(maps)) + 0.4),
                            squeeze=False, layout="constrained")
    rows = [("input", input.detach()[:1, :1])] + [(n or "model", t[:1]) for n, t in maps]
    for r, (name, t) in enumerate(rows):
        t = t[0].double().cpu()  # (C, *spatial)
        for j in range(ncols):
            ax = axs[r][j]
            if j >= t.shape[0]:
                ax.set_visible(False)
                continue
            if t.dim() == 2:
                ax.plot(t[j].tolist(), linewidth=0.9)
                ax.tick_params(labelsize=6)
            else:
                ax.imshow(_image_of(t[j]).numpy(), cmap="viridis")
                ax.set_xticks([])
                ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(f"{name}\n{tuple(t.shape)}", fontsize=7)
    fig.suptitle(f"{type(model).__name__}: feature maps layer by layer (first sample)", fontsize=10)
    return _finish(fig, path)
