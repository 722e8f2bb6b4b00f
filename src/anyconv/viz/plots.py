"""Matplotlib figures of 1-D and 2-D convolution: a signal through several paddings, an image filter.

Every number plotted is computed by :func:`anyconv.functional.conv`. matplotlib is imported
when a function is called (extra ``viz``), with the non-interactive ``Agg`` backend unless
one was chosen already.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from ..core.args import choice
from ..core.errors import type_error, value_error
from ._deps import require

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=torch.float64)
FILTERS: dict[str, list[list[float]]] = {
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "edge": [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
    "edge_x": [[1, -1]],
    "blur": (torch.outer(_BINOMIAL, _BINOMIAL) / 256).tolist(),
    "box_blur": [[1 / 9] * 3] * 3,
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "sobel_x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "sobel_y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "sobel": [],  # magnitude of sobel_x and sobel_y, sqrt(gx^2 + gy^2)
}

DEFAULT_CASES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("padding='same'", {"padding": "same"}),
    ("padding='valid'", {"padding": "valid"}),
    ("padding=2, stride=2", {"padding": 2, "stride": 2}),
    ("padding='causal'", {"padding": "causal"}),
)


def pyplot() -> Any:
    """matplotlib.pyplot with a non-interactive backend (one-line error if matplotlib is missing)."""
    mpl = require("matplotlib", "plotting")
    if "matplotlib.pyplot" not in __import__("sys").modules:
        mpl.use("Agg")
    return require("matplotlib.pyplot", "plotting")


def _finish(fig: Any, path: str | os.PathLike[str] | None, dpi: int = 110) -> Any:
    if path is not None:
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return fig


def synthetic_image(size: int = 64) -> torch.Tensor:
    """A built-in grayscale test image in ``[0, 1]``: a gradient, a disk, a square and stripes.

    Shape:
        ``(size, size)``, float64.

    Examples:
        >>> img = synthetic_image(32)
        >>> img.shape, bool(img.min() >= 0), bool(img.max() <= 1)
        (torch.Size([32, 32]), True, True)
    """
    if not isinstance(size, int) or isinstance(size, bool) or size < 8:
        value_error("synthetic_image", "size", size, "an int >= 8")
    t = torch.linspace(0, 1, size, dtype=torch.float64)
    y, x = torch.meshgrid(t, t, indexing="ij")
    img = 0.15 + 0.25 * x  # soft horizontal gradient
    disk = (x - 0.3) ** 2 + (y - 0.32) ** 2 < 0.2**2
    img = torch.where(disk, torch.full_like(img, 0.95), img)
    square = (x > 0.55) & (x < 0.88) & (y > 0.12) & (y < 0.45)
    img = torch.where(square, torch.full_like(img, 0.05), img)
    stripes = (y > 0.6) & (y < 0.9) & (x > 0.1) & (x < 0.9)
    img = torch.where(stripes, 0.5 + 0.45 * torch.sign(torch.sin(x * 40)), img)
    return img.clamp(0, 1)


def _as_1d(name: str, value: Any, default: Sequence[float]) -> torch.Tensor:
    if value is None:
        return torch.tensor(default, dtype=torch.float64)
    t = torch.as_tensor(value, dtype=torch.float64) if not isinstance(value, torch.Tensor) else value.double()
    t = t.squeeze()
    if t.dim() != 1 or t.numel() < 1:
        value_error("plot_signal", name, value, "a 1-d sequence of numbers")
    return t


def signal_outputs(
    signal: torch.Tensor, kernel: torch.Tensor, params: dict[str, Any]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(centres, outputs)``: each output of ``conv1d(signal, kernel, **params)`` and the input
    position of the centre of the window it read, ``j * s - before + (k - 1) * d / 2``."""
    from ..core.spec import conv_spec
    from ..functional import conv

    x, w = signal.reshape(1, 1, -1), kernel.reshape(1, 1, -1)
    p = dict(params)
    spec = conv_spec("conv", x, w, None, p.get("stride", 1), p.get("padding", 0), p.get("dilation", 1),
                     1, p.get("padding_mode", "zeros"), False, "auto")
    y = conv(x, w, **p).reshape(-1)
    s, d, (before, _) = spec.core.stride[0], spec.core.dilation[0], spec.core.padding[0]
    centres = torch.arange(y.numel(), dtype=torch.float64) * s - before + (kernel.numel() - 1) * d / 2
    return centres, y


def plot_signal(
    signal: Any = None,
    kernel: Any = None,
    cases: Sequence[tuple[str, dict[str, Any]]] = DEFAULT_CASES,
    path: str | os.PathLike[str] | None = None,
) -> Any:
    """A 1-D signal, its kernel, and ``conv1d`` outputs for several padding/stride choices.

    Each output is drawn at the input position of the centre of the window it read, so the
    panels line up with the signal: 'same' keeps every position, 'valid' loses the edges,
    a stride keeps every s-th, 'causal' only looks back.

    Args:
        signal: 1-D numbers (default ``1..9``, as in the learning material).
        kernel: 1-D numbers (default ``[2, 1, 2]``).
        cases: ``(title, conv keyword arguments)`` per panel.
        path: if given, the figure is saved there (PNG, SVG, PDF by suffix).

    Returns:
        The matplotlib Figure (panel 0: signal and kernel; then one panel per case).

    Examples:
        >>> fig = plot_signal()
        >>> [round(v) for v in fig.axes[1].lines[0].get_ydata()]
        [5, 10, 15, 20, 25, 30, 35, 40, 25]
    """
    x = _as_1d("signal", signal, [float(v) for v in range(1, 10)])
    w = _as_1d("kernel", kernel, [2.0, 1.0, 2.0])
    results = [(title, *signal_outputs(x, w, params)) for title, params in cases]  # errors before drawing
    plt = pyplot()
    fig, axs = plt.subplots(1, 1 + len(results), figsize=(3.6 * (1 + len(results)), 3.2), layout="constrained",
                            sharex=True, squeeze=False)
    axs = axs[0]
    axs[0].plot(range(x.numel()), x.tolist(), marker="o", label="signal")
    axs[0].plot(range(w.numel()), w.tolist(), marker="s", color="purple", label="kernel")
    axs[0].set_title("signal and kernel")
    axs[0].legend(loc="upper left", fontsize=8)
    colours = ["tab:orange", "tab:green", "tab:red", "tab:brown", "tab:pink", "tab:olive"]
    for ax, (title, centres, y), colour in zip(axs[1:], results, colours * 4):
        ax.plot(centres.tolist(), y.tolist(), marker="o", color=colour)
        ax.set_title(f"{title}: {y.numel()} outputs", fontsize=10)
        ax.axvspan(-0.5, x.numel() - 0.5, color="0.93", zorder=0)
    for ax in axs:
        ax.set_xlabel("input position (output: window centre)", fontsize=8)
        ax.grid(alpha=0.3)
    return _finish(fig, path)


def _kernels(preset: Any) -> tuple[str, list[torch.Tensor]]:
    if isinstance(preset, str):
        name = choice("plot_filter", "preset", preset, tuple(FILTERS))
        if name == "sobel":
            return name, [torch.tensor(FILTERS["sobel_x"], dtype=torch.float64),
                          torch.tensor(FILTERS["sobel_y"], dtype=torch.float64)]
        return name, [torch.tensor(FILTERS[name], dtype=torch.float64)]
    t = torch.as_tensor(preset, dtype=torch.float64)
    if t.dim() != 2:
        value_error("plot_filter", "preset", preset, "a preset name or a 2-d kernel")
    return "custom", [t]


def filter_image(image: torch.Tensor, preset: Any) -> tuple[str, list[torch.Tensor], torch.Tensor]:
    """``(name, kernels, filtered)``: ``image`` through the preset with 'same' reflect padding.

    'sobel' gives the gradient magnitude ``sqrt(gx^2 + gy^2)`` of its two kernels.
    """
    from ..functional import conv

    name, kernels = _kernels(preset)
    x = image.reshape(1, 1, *image.shape)
    outs = [conv(x, k.reshape(1, 1, *k.shape), padding="same", padding_mode="reflect")[0, 0] for k in kernels]
    filtered = outs[0] if len(outs) == 1 else torch.sqrt(sum(o**2 for o in outs))  # type: ignore[arg-type]
    return name, kernels, filtered


def plot_filter(
    image: Any = None,
    presets: str | Any | Sequence[str] = ("edge", "blur", "sobel"),
    path: str | os.PathLike[str] | None = None,
) -> Any:
    """An image, a kernel and the filtered image, one row per preset (or custom 2-D kernel).

    ``filtered = conv2d(image, kernel, padding='same', padding_mode='reflect')``; presets are
    ``anyconv.viz.FILTERS`` (edge, edge_x, blur, box_blur, sharpen, sobel_x, sobel_y, sobel).

    Args:
        image: a 2-D tensor (default :func:`synthetic_image`).
        presets: a preset name, a 2-D kernel, or a sequence of them.
        path: if given, the figure is saved there.

    Returns:
        The matplotlib Figure (per row: image, kernel(s) with their numbers, filtered).

    Examples:
        >>> fig = plot_filter(presets="blur")
        >>> fig.axes[2].images[0].get_array().shape
        (64, 64)
    """
    img = synthetic_image() if image is None else image
    if not isinstance(img, torch.Tensor) or img.dim() != 2:
        type_error("plot_filter", "image", image, "a 2-d tensor (H, W)")
    img = img.double()
    many = isinstance(presets, (list, tuple)) and (not presets or not isinstance(presets[0], (int, float)))
    items = list(presets) if many else [presets]
    if not items:
        value_error("plot_filter", "presets", presets, "at least one preset")
    rows = [filter_image(img, p) for p in items]  # errors before drawing
    plt = pyplot()
    ncols = 2 + max(len(k) for _, k, _ in rows)
    fig, axs = plt.subplots(len(rows), ncols, figsize=(2.9 * ncols, 2.9 * len(rows)), layout="constrained",
                            squeeze=False)
    for r, (name, kernels, out) in enumerate(rows):
        axs[r][0].imshow(img.numpy(), cmap="gray", vmin=0, vmax=1)
        axs[r][0].set_title("image" if r == 0 else "", fontsize=10)
        for j, k in enumerate(kernels):
            ax = axs[r][1 + j]
            lim = float(k.abs().max()) or 1.0
            ax.imshow(k.numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
            if k.numel() <= 49:
                for (a, b), v in zip(torch.cartesian_prod(torch.arange(k.shape[0]), torch.arange(k.shape[1])).tolist(),
                                     k.reshape(-1).tolist()):
                    ax.text(b, a, f"{v:.2g}", ha="center", va="center", fontsize=8 if k.numel() <= 9 else 7,
                            color="white" if abs(v) > 0.55 * lim else "black")
            ax.set_title(f"kernel {name}" + (f" [{'xy'[j]}]" if len(kernels) > 1 else ""), fontsize=10)
        out_ax = axs[r][1 + len(kernels)]
        out_ax.imshow(out.numpy(), cmap="gray")
        out_ax.set_title(f"{name}: " + ("|gradient|" if len(kernels) > 1 else "filtered"), fontsize=10)
        for j in range(2 + len(kernels), ncols):
            axs[r][j].set_visible(False)
        for ax in axs[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    return _finish(fig, path)
