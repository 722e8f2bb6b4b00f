"""``animate_conv``: a step-by-step animation of a 1-D or 2-D conv, transposed conv or pooling.

In the style of the convolution-arithmetic figures (Dumoulin & Visin, 2016): one frame per
output position, showing the padded input, the window the output reads (dilation gaps
visible), the kernel, and the output cell being written, with the numbers when they fit.
What each frame shows comes from anyconv's own front door and sliding-window view, the
numbers from the op itself (see :mod:`anyconv.viz._frames`); Pillow draws and encodes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from ..core.args import as_int, choice, int_tuple
from ..core.errors import value_error
from ._deps import require
from ._draw import Layout, render
from ._frames import OPS, Plan, check_steps, conv_plan, conv_transpose_plan, pool_plan

MAX_FRAMES = 400
Op = Literal["conv", "conv_transpose", "max_pool", "avg_pool"]


@dataclass
class Animation:
    """The frames of an animation and what they show.

    Attributes:
        plan: the call step by step (grid, kernel, output, one step per output position).
        frames: one RGB ``PIL.Image`` per output position, all of one size.
        layout: pixel positions of the grids in every frame.
        duration_ms: display time of one frame (the last one is held three times as long).
    """

    plan: Plan
    frames: list[Any]
    layout: Layout
    duration_ms: int

    def __len__(self) -> int:
        return len(self.frames)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the animation; the suffix picks the format: .gif, .png (APNG), .webp or .mp4.

        MP4 needs an ``ffmpeg`` program (on PATH or from the ``imageio-ffmpeg`` package).
        """
        out = Path(path)
        suffix = out.suffix.lower()
        choice("Animation.save", "path suffix", suffix, (".gif", ".png", ".webp", ".mp4"))
        if suffix == ".mp4":
            _save_mp4(self.frames, out, self.duration_ms)
            return out
        durations = [self.duration_ms] * (len(self.frames) - 1) + [3 * self.duration_ms]
        first, rest = self.frames[0], self.frames[1:]
        extra: dict[str, Any] = {"optimize": True} if suffix == ".gif" else {}
        if suffix == ".webp":
            extra = {"lossless": True}
        first.save(out, save_all=True, append_images=rest, duration=durations, loop=0, **extra)
        return out


def _ffmpeg() -> str | None:
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg  # type: ignore[import-not-found]

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        return None


def _save_mp4(frames: list[Any], out: Path, duration_ms: int) -> None:
    exe = _ffmpeg()
    if exe is None:
        raise OSError("writing MP4 needs the ffmpeg program (or pip install imageio-ffmpeg); "
                      "save as .gif instead")
    w, h = frames[0].size
    w2, h2 = w + w % 2, h + h % 2  # yuv420p wants even sizes
    fps = max(1.0, 1000.0 / duration_ms)
    cmd = [exe, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w2}x{h2}",
           "-r", f"{fps:.4f}", "-i", "-", "-pix_fmt", "yuv420p", "-vcodec", "libx264", str(out)]
    image = require("PIL.Image", "writing MP4")
    data = b""
    for f in frames + [frames[-1]] * 2:
        canvas = image.new("RGB", (w2, h2), (255, 255, 255))
        canvas.paste(f, (0, 0))
        data += canvas.tobytes()
    subprocess.run(cmd, input=data, check=True)


def _data(
    op: str, n_in: tuple[int, ...], kernel: tuple[int, ...], c_in: int, c_out: int, groups: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Small integer input (0..3) and weights (0..2), reproducible from ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 4, (c_in, *n_in), generator=gen).double()
    if op == "conv":
        return x, torch.randint(0, 3, (c_out, c_in // groups, *kernel), generator=gen).double()
    if op == "conv_transpose":
        return x, torch.randint(0, 3, (c_in, c_out // groups, *kernel), generator=gen).double()
    return x, None


def _dims(name: str, input: torch.Tensor | None, input_size: Any, kernel_size: Any) -> int:
    if input is not None:
        if not isinstance(input, torch.Tensor) or input.dim() not in (2, 3):
            value_error(name, "input", input, "an unbatched (C, L) or (C, H, W) tensor")
        return input.dim() - 1
    for v in (input_size, kernel_size):
        if isinstance(v, Sequence) and not isinstance(v, str):
            if len(v) not in (1, 2):
                value_error(name, "input_size", input_size, "1 or 2 spatial sizes (1-D or 2-D)")
            return len(v)
    return 2


def animate_conv(
    path: str | os.PathLike[str] | None = None,
    *,
    op: Op = "conv",
    input_size: int | Sequence[int] = 5,
    kernel_size: int | Sequence[int] = 3,
    stride: int | Sequence[int] | None = None,
    padding: Any = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    in_channels: int = 1,
    out_channels: int | None = None,
    output_padding: int | Sequence[int] = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    input: torch.Tensor | None = None,
    weight: torch.Tensor | None = None,
    numbers: bool | None = None,
    cell: int = 40,
    duration_ms: int = 700,
    seed: int = 0,
) -> Animation:
    """Animate a 1-D or 2-D ``conv``, ``conv_transpose``, ``max_pool`` or ``avg_pool`` step by step.

    Frame ``t`` shows output position ``t`` (row-major) being written:
    ``y[o, p] = sum_{c, q} x_pad[g(o) C_g + c, p * stride + q * dilation] * w[o, c, q]``
    (pooling: the max or mean over the window; transposed conv: a stride-1 conv with the
    flipped kernel over the input with ``stride - 1`` zeros inserted between elements).

    Args:
        path: if given, the animation is saved there (.gif, .png, .webp or .mp4).
        op: ``"conv"``, ``"conv_transpose"``, ``"max_pool"`` or ``"avg_pool"``.
        input_size: spatial size (1 or 2 ints) of the generated input; ignored with ``input``.
        kernel_size: kernel (window) size; ignored for conv ops when ``weight`` is given.
        stride, padding, dilation, groups, output_padding, ceil_mode, count_include_pad,
            padding_mode: the op's own arguments, every form the op accepts (``stride=None``: the
            op's default; ``padding_mode`` is conv's, the padding cells then show the copied values).
        in_channels, out_channels: channels of the generated input and weight
            (``out_channels`` defaults to ``in_channels``).
        input: an unbatched ``(C, L)`` or ``(C, H, W)`` input to use instead of random
            integers 0..3; weight: the conv weight to use instead of random integers 0..2.
        numbers: draw the values (default: when every grid is at most 16 cells a side).
        cell: cell size in pixels; duration_ms: time per frame; seed: for the generated data.

    Returns:
        An :class:`Animation` with one frame per output position.

    Shape:
        ``len(frames) = prod(out_i)``, ``out_i`` the op's output size (e.g. for conv
        ``floor((in_i + before_i + after_i - dilation_i * (k_i - 1) - 1) / stride_i) + 1``).

    Raises:
        ValueError, TypeError: bad arguments, with the op's own message, before any drawing.
        ImportError: Pillow is missing (``pip install anyconv[viz]``).

    Examples:
        >>> anim = animate_conv(input_size=(5, 5), kernel_size=3, stride=2, padding="same")
        >>> len(anim.frames), anim.plan.output.shape, anim.plan.steps[1].out_index
        (9, torch.Size([1, 3, 3]), (0, 1))
        >>> [s.cells[0] for s in anim.plan.steps[:2]]  # the window moves by the stride
        [(0, 0), (0, 2)]
    """
    name = "animate_conv"
    op = choice(name, "op", op, OPS)  # type: ignore[assignment]
    n = _dims(name, input, input_size, kernel_size)
    c_in = as_int(name, "in_channels", in_channels, "a positive int")
    if c_in < 1:
        value_error(name, "in_channels", in_channels, "a positive int")
    c_out = c_in if out_channels is None else as_int(name, "out_channels", out_channels, "a positive int")
    if c_out < 1:
        value_error(name, "out_channels", out_channels, "a positive int")
    cell = as_int(name, "cell", cell, "an int between 12 and 200")
    if not 12 <= cell <= 200:
        value_error(name, "cell", cell, "an int between 12 and 200")
    duration_ms = as_int(name, "duration_ms", duration_ms, "a positive int")
    if duration_ms < 1:
        value_error(name, "duration_ms", duration_ms, "a positive int")
    if input is None:
        size = int_tuple(name, "input_size", input_size, n)
        if op in ("conv", "conv_transpose") and weight is None:
            g = as_int(op, "groups", groups, "a positive int")
            if g < 1 or c_in % g or c_out % g:
                value_error(op, "groups", groups, f"a positive divisor of in_channels ({c_in}) and out_channels ({c_out})")
    if op in ("conv", "conv_transpose") and weight is not None:
        kernel = tuple(weight.shape[2:]) if isinstance(weight, torch.Tensor) else ()
    else:
        kernel = int_tuple(op, "kernel_size", kernel_size, n)
    if input is None:
        input, gen_w = _data(op, size, kernel, c_in, c_out, int(groups), seed)
        weight = gen_w if weight is None else weight
    elif weight is None and op in ("conv", "conv_transpose"):
        c = input.shape[0]
        g = as_int(op, "groups", groups, "a positive int")
        if g < 1 or c % g or c_out % g:
            value_error(op, "groups", groups, f"a positive divisor of the input channels ({c})")
        weight = _data(op, tuple(input.shape[1:]), kernel, c, c_out, g, seed)[1]
        weight = weight.to(input.dtype) if weight is not None and input.is_floating_point() else weight
    if op != "conv" and padding_mode != "zeros":
        value_error(name, "padding_mode", padding_mode, "'zeros' for op=" + repr(op) + " (other modes are conv's)")
    if op == "conv":
        plan = conv_plan(input, weight, 1 if stride is None else stride, padding, dilation, groups,  # type: ignore[arg-type]
                         padding_mode)
    elif op == "conv_transpose":
        plan = conv_transpose_plan(input, weight, 1 if stride is None else stride, padding,  # type: ignore[arg-type]
                                   output_padding, groups, dilation)
    else:
        plan = pool_plan(op, input, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad)
    check_steps(plan)
    if len(plan.steps) > MAX_FRAMES:
        value_error(name, "input_size", input_size, f"a size giving at most {MAX_FRAMES} output positions "
                    f"(this call has {len(plan.steps)})")
    if numbers is None:
        numbers = max(*plan.grid_source.shape, *plan.output.shape[1:]) <= 16 and cell >= 24
    frames, lay = render(plan, cell, bool(numbers))
    anim = Animation(plan, frames, lay, duration_ms)
    if path is not None:
        anim.save(path)
    return anim
