"""anyconv.viz.animate_conv: frames, windows, numbers and errors, checked independently."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import anyconv.functional as AF

PIL = pytest.importorskip("PIL", reason="Pillow (extra 'viz') is needed to draw")
from PIL import Image  # noqa: E402

from anyconv.viz import animate_conv  # noqa: E402
from anyconv.viz._draw import GROUP_COLOURS, INPUT_COLOURS, KERNEL_COLOURS, OUTPUT_COLOURS  # noqa: E402

STRONG = INPUT_COLOURS[0][1]

# (input size, kernel, stride, padding, dilation): every padding form
CONV_CASES = [
    ((7,), 3, 1, 0, 1),
    ((9,), 3, 2, 2, 1),
    ((8,), 3, 3, "same", 1),
    ((8,), 2, 3, "same_lower", 2),
    ((6,), 3, 2, "causal", 1),
    ((7,), 3, 2, [(2, 0)], 2),
    ((5, 5), 3, 1, "valid", 1),
    ((5, 6), 3, 2, "same", 1),
    ((6, 5), (2, 3), (2, 1), ((0, 1), (2, 1)), (1, 2)),
    ((4, 4), 2, 1, 1, 2),
]


def _ref_same(i: int, k: int, s: int, d: int, lower: bool) -> tuple[int, int]:
    total = max((math.ceil(i / s) - 1) * s + (k - 1) * d + 1 - i, 0)
    return (total - total // 2, total // 2) if lower else (total // 2, total - total // 2)


def _ref_pairs(size, k, s, padding, d):
    """Padding pairs computed here, independently of anyconv's shape code."""
    n = len(size)
    k, s, d = ((v,) * n if isinstance(v, int) else tuple(v) for v in (k, s, d))
    if padding == "valid":
        return [(0, 0)] * n
    if padding in ("same", "same_lower"):
        return [_ref_same(i, kk, ss, dd, padding == "same_lower") for i, kk, ss, dd in zip(size, k, s, d)]
    if padding == "causal":
        return [((kk - 1) * dd, 0) for kk, dd in zip(k, d)]
    if isinstance(padding, int):
        return [(padding, padding)] * n
    return [tuple(p) if not isinstance(p, int) else (p, p) for p in padding]


def _torch_conv(x, w, s, pairs, d):
    n = x.dim() - 1
    flat = [v for b, a in reversed(pairs) for v in (b, a)]
    xp = F.pad(x.unsqueeze(0), flat)
    fn = F.conv1d if n == 1 else F.conv2d
    return fn(xp, w, stride=s, dilation=d).squeeze(0)


def _bbox(frame: Image.Image, colour, region) -> tuple[int, int, int, int]:
    """Bounding box of the pixels of exactly ``colour`` inside ``region`` (x0, y0, x1, y1)."""
    raw = bytearray(frame.crop(region).convert("RGB").tobytes())
    t = torch.frombuffer(raw, dtype=torch.uint8).to(torch.int32).reshape(region[3] - region[1], region[2] - region[0], 3)
    mask = (t == torch.tensor(colour, dtype=torch.int32)).all(-1)
    ys, xs = torch.nonzero(mask, as_tuple=True)
    assert len(xs), "no window pixels found"
    return (int(xs.min()) + region[0], int(ys.min()) + region[1], int(xs.max()) + region[0], int(ys.max()) + region[1])


@pytest.mark.parametrize("size, k, s, padding, d", CONV_CASES)
def test_conv_frames_windows_and_numbers(size, k, s, padding, d):
    anim = animate_conv(input_size=size, kernel_size=k, stride=s, padding=padding, dilation=d, cell=16)
    plan = anim.plan
    n = len(size)
    x = plan.grid_values  # the drawn input (with padding)
    pairs = _ref_pairs(size, k, s, padding, d)
    ks, ss, ds = ((v,) * n if isinstance(v, int) else tuple(v) for v in (k, s, d))
    # the drawn grid is the input padded by independently computed pairs
    assert tuple(plan.grid_source.shape[-n:]) == tuple(i + b + a for i, (b, a) in zip(size, pairs))
    # the numbers: equal to torch's convolution of the same data (float64, tight)
    w = plan.kernel.squeeze(2) if n == 1 else plan.kernel
    xin = x[:, 0] if n == 1 else x
    inner = tuple(slice(b, b + i) for i, (b, _) in zip(size, pairs))
    ref = _torch_conv(xin[(slice(None), *inner)], w, ss, pairs, ds)
    out = plan.output[:, 0] if n == 1 else plan.output
    torch.testing.assert_close(out, ref, atol=1e-10, rtol=0)
    # one frame per output position, all of one size
    assert len(anim.frames) == ref[0].numel() == len(plan.steps)
    assert len({f.size for f in anim.frames}) == 1
    # each step's window: cells p * s + q * d (independent formula), row-major over outputs
    o_w = ref.shape[-1]
    for t, st in enumerate(plan.steps):
        i, j = divmod(t, o_w)
        assert st.out_index == (i, j)
        kh, kw = (1, ks[0]) if n == 1 else ks
        sh, sw = (1, ss[0]) if n == 1 else ss
        dh, dw = (1, ds[0]) if n == 1 else ds
        expect = [(i * sh + a * dh, j * sw + b * dw) for a in range(kh) for b in range(kw)]
        assert list(st.cells) == expect
        # the window times the kernel gives the output cell (picture agrees with the op)
        vals = torch.stack([x[0][rc] for rc in st.cells])
        assert torch.allclose((vals * plan.kernel[0, 0].reshape(-1)).sum(), plan.output[0, i, j])


@pytest.mark.parametrize("stride, dilation", [(1, 1), (2, 1), (3, 2)])
def test_highlighted_window_moves_by_the_stride_in_pixels(stride, dilation):
    cell = 20
    anim = animate_conv(input_size=(9, 9), kernel_size=2, stride=stride, padding=1, dilation=dilation, cell=cell)
    lay, plan = anim.layout, anim.plan
    hg, wg = plan.grid_source.shape
    x0, y0 = lay.inputs[0]
    region = (x0, y0, x0 + wg * cell + 1, y0 + hg * cell + 1)
    ow = plan.output.shape[-1]
    boxes = [_bbox(f, STRONG, region) for f in anim.frames]
    span = (2 - 1) * dilation + 1
    for t, box in enumerate(boxes):
        i, j = divmod(t, ow)
        # the window covers the dilated kernel span and sits at output position * stride
        assert box[2] - box[0] == pytest.approx(span * cell, abs=5)  # less the 2-px outline
        assert box[0] - x0 == pytest.approx(j * stride * cell, abs=2)
        assert box[1] - y0 == pytest.approx(i * stride * cell, abs=2)
        if t and j:
            assert box[0] - boxes[t - 1][0] == stride * cell
    # the output cell written in frame t is strong, the next one still blank
    ox, oy = lay.outputs[0]
    f = anim.frames[1]
    assert f.getpixel((ox + cell + cell // 2, oy + 3)) == OUTPUT_COLOURS[0][1]
    assert f.getpixel((ox + 2 * cell + cell // 2, oy + 3)) == (255, 255, 255)


def test_dilation_gaps_stay_unhighlighted():
    anim = animate_conv(input_size=(1, 7), kernel_size=(1, 3), dilation=2, cell=20)
    x0, y0 = anim.layout.inputs[0]
    f = anim.frames[0]
    centre = [f.getpixel((x0 + c * 20 + 3, y0 + 10)) for c in range(6)]
    assert [p == STRONG for p in centre] == [True, False, True, False, True, False]


def test_groups_are_drawn_per_channel():
    anim = animate_conv(input_size=(8,), kernel_size=3, in_channels=4, out_channels=2, groups=2, stride=2, cell=16)
    plan = anim.plan
    assert len(anim.layout.inputs) == 4 and len(anim.layout.outputs) == 2
    assert [plan.group_of_input(c) for c in range(4)] == [0, 0, 1, 1]
    x = plan.grid_values[:, 0]
    ref = F.conv1d(x.unsqueeze(0), plan.kernel.squeeze(2), stride=2, groups=2).squeeze(0)
    torch.testing.assert_close(plan.output[:, 0], ref, atol=1e-10, rtol=0)
    # group 1 is drawn in its own colour in input channel 2
    x0, y0 = anim.layout.inputs[2]
    assert anim.frames[0].getpixel((x0 + 3, y0 + 3)) == GROUP_COLOURS[1][1]


@pytest.mark.parametrize(
    "size, k, s, padding, op, d",
    [((3,), 3, 2, 0, 0, 1), ((4,), 2, 3, "same", 0, 1), ((3, 3), 3, 2, 1, 1, 1), ((2, 3), 2, 2, "valid", 0, 2),
     ((3,), 1, 3, "same", 0, 1), ((4,), 3, 1, [(3, 1)], 0, 1)],
)
def test_conv_transpose_as_zero_insertion(size, k, s, padding, op, d):
    anim = animate_conv(op="conv_transpose", input_size=size, kernel_size=k, stride=s, padding=padding,
                        output_padding=op, dilation=d, in_channels=2, out_channels=2, cell=14)
    plan = anim.plan
    n = len(size)
    gen = torch.Generator().manual_seed(0)  # the documented generated data (seed 0)
    x = torch.randint(0, 4, (2, *size), generator=gen).double()
    w = torch.randint(0, 3, (2, 2, *((k,) * n)), generator=gen).double()
    fn = F.conv_transpose1d if n == 1 else F.conv_transpose2d
    if padding == "same":  # TF 'same' for transposed conv: crop of the full output
        full = fn(x.unsqueeze(0), w, stride=s, dilation=d).squeeze(0)
        total = (k - 1) * d + 1 - s
        b = max(total, 0) // 2
        ref = full[..., b: b + size[-1] * s] if total >= 0 else F.pad(full, [0, -total])
    elif isinstance(padding, list):
        full = fn(x.unsqueeze(0), w, stride=s, dilation=d).squeeze(0)
        ref = full[..., padding[0][0]: full.shape[-1] - padding[0][1]]
    else:
        ref = fn(x.unsqueeze(0), w, stride=s, padding=0 if padding == "valid" else padding,
                 output_padding=op, dilation=d).squeeze(0)
    out = plan.output[:, 0] if n == 1 else plan.output
    torch.testing.assert_close(out, ref, atol=1e-10, rtol=0)
    assert len(anim.frames) == ref[0].numel()
    # stride-1 window over the zero-stuffed grid: input element m sits at cell pad_before + m * s
    src = plan.grid_source[0] if n == 1 else plan.grid_source
    cols = torch.nonzero(src.reshape(-1, src.shape[-1])[0] >= 0).flatten() if n == 1 else None
    if cols is not None and len(cols) > 1:
        assert set(torch.diff(cols).tolist()) == {s}  # stride - 1 zeros between input elements
    ow = plan.output.shape[-1]
    for t in range(1, len(plan.steps)):
        if t % ow:  # along a row the window moves one cell of the stuffed grid
            assert plan.steps[t].cells[0][1] - plan.steps[t - 1].cells[0][1] == 1
    for o in range(2):
        for st in plan.steps:
            v = sum(float(plan.grid_values[c][rc]) * float(plan.kernel[o, c].reshape(-1)[q])
                    for c in range(2) for q, rc in enumerate(st.cells))
            assert v == pytest.approx(float(plan.output[o][st.out_index]), abs=1e-9)
    # every input element is on the grid, unless a crop beyond (k - 1) * d cut it off
    on_grid = int((src >= 0).sum())
    assert on_grid == math.prod(size) or (isinstance(padding, list) and on_grid < math.prod(size))


def test_gif_round_trip(tmp_path):
    path = tmp_path / "a.gif"
    anim = animate_conv(path, input_size=(4, 4), kernel_size=2, stride=2, cell=16)
    with Image.open(path) as im:
        assert im.n_frames == 4 == len(anim)
        assert im.size == anim.frames[0].size
    anim.save(tmp_path / "a.png")
    anim.save(tmp_path / "a.webp")
    with Image.open(tmp_path / "a.png") as im:
        assert getattr(im, "n_frames", 1) == 4
    with pytest.raises(ValueError, match="path suffix"):
        anim.save(tmp_path / "a.bmp")


def _message(fn):
    with pytest.raises((ValueError, TypeError)) as e:
        fn()
    return type(e.value), str(e.value)


@pytest.mark.parametrize(
    "kwargs",
    [dict(stride=0), dict(padding="full"), dict(dilation=(1, 0)), dict(padding=-1), dict(stride=1.5),
     dict(padding=((1, 2),)), dict(kernel_size=9, padding=0)],
)
def test_bad_parameters_give_the_ops_own_error_before_drawing(kwargs, monkeypatch):
    import anyconv.viz.animate as A

    monkeypatch.setattr(A, "render", lambda *a, **k: pytest.fail("drew despite bad arguments"))
    x = torch.zeros(1, 5, 5, dtype=torch.float64)
    w = torch.zeros(1, 1, *(2 * (kwargs.pop("kernel_size", 3),)), dtype=torch.float64)
    ours = _message(lambda: animate_conv(input=x, weight=w, **kwargs))
    theirs = _message(lambda: AF.conv(x, w, **kwargs))
    assert ours == theirs


def test_bad_transpose_and_animation_parameters():
    with pytest.raises(ValueError, match="conv_transpose: `output_padding`"):
        animate_conv(op="conv_transpose", input_size=(3,), stride=1, output_padding=2)
    with pytest.raises(ValueError, match="animate_conv: `op`"):
        animate_conv(op="pool")
    with pytest.raises(ValueError, match="conv: `groups`"):
        animate_conv(in_channels=3, groups=2)
    with pytest.raises(ValueError, match="animate_conv: `input_size`"):
        animate_conv(input_size=(40, 40), kernel_size=1)
    with pytest.raises(ValueError, match="animate_conv: `input_size`"):
        animate_conv(input_size=(3, 3, 3))


@pytest.mark.skipif(not hasattr(AF, "max_pool"), reason="anyconv.functional.max_pool not written yet")
@pytest.mark.parametrize("op", ["max_pool", "avg_pool"])
def test_pooling_frames(op):
    anim = animate_conv(op=op, input_size=(5, 5), kernel_size=2, stride=2, padding=((0, 1), (1, 0)), cell=16)
    plan = anim.plan
    x = plan.grid_values[0]
    pairs = [(0, 1), (1, 0)]
    xin = x[0:5, 1:6].unsqueeze(0).unsqueeze(0)
    xp = F.pad(xin, [1, 0, 0, 1], value=-math.inf if op == "max_pool" else 0.0)
    ref = (F.max_pool2d if op == "max_pool" else F.avg_pool2d)(xp, 2, 2).squeeze(0)
    torch.testing.assert_close(plan.output, ref, atol=1e-10, rtol=0)
    assert len(anim.frames) == ref[0].numel() == 9
    assert plan.padding == tuple(pairs)
    assert [s.cells[0] for s in plan.steps[:2]] == [(0, 0), (0, 2)]


def test_missing_pillow_gives_one_line_naming_the_extra(monkeypatch):
    for name in ("PIL", "PIL.Image", "PIL.ImageDraw", "PIL.ImageFont"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError) as e:
        animate_conv(input_size=(3,), kernel_size=2)
    assert "pip install anyconv[viz]" in str(e.value) and "\n" not in str(e.value)


def test_import_anyconv_stays_light():
    code = ("import sys, anyconv, anyconv.viz; anyconv.viz.__all__; "
            "bad = [m for m in ('PIL', 'matplotlib') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.skipif(not hasattr(AF, "avg_pool"), reason="anyconv.functional.avg_pool not written yet")
def test_pooling_ceil_mode_cells_beyond_the_padding_are_not_counted():
    from anyconv.viz._draw import caption
    from anyconv.viz._frames import BEYOND

    anim = animate_conv(op="avg_pool", input_size=(5,), kernel_size=2, ceil_mode=True, cell=16)
    plan = anim.plan
    x = plan.grid_values[:, 0, :5].unsqueeze(0)
    ref = F.avg_pool1d(x, 2, ceil_mode=True)[0]
    torch.testing.assert_close(plan.output[:, 0], ref, atol=1e-10, rtol=0)
    assert len(anim.frames) == 3
    assert plan.steps[-1].sources[-1] == BEYOND
    assert caption(plan, plan.steps[-1], True).endswith(f"= mean({int(x[0, 0, 4])}) = {int(ref[0, 2])}")


def test_mp4_when_an_encoder_is_available(tmp_path):
    import re

    from anyconv.viz.animate import _ffmpeg

    exe = _ffmpeg()
    path = tmp_path / "a.mp4"
    if exe is None:  # MP4 is optional: without an encoder the message says what to install
        with pytest.raises(OSError, match="imageio-ffmpeg"):
            animate_conv(path, input_size=(4,), kernel_size=2, cell=16)
        return
    anim = animate_conv(path, input_size=(4,), kernel_size=2, cell=16)
    r = subprocess.run([exe, "-i", str(path), "-f", "null", "-"], capture_output=True, text=True)
    frames = int(re.findall(r"frame=\s*(\d+)", r.stderr)[-1])
    assert frames == len(anim) + 2  # one frame per output position, the last held for 3


def test_titles_name_every_parameter():
    t = animate_conv(op="conv_transpose", input_size=(3, 3), stride=2, padding=1, output_padding=1, cell=14).plan.title
    for part in ("stride 2", "padding 1", "output_padding 1", "dilation 1", "groups 1", "out 1x6x6"):
        assert part in t, t
    t = animate_conv(input_size=(5,), kernel_size=3, padding=2, padding_mode="circular", cell=14).plan.title
    assert "padding_mode circular" in t and "groups 1" in t, t


def test_each_role_and_group_has_its_own_colour():
    roles = [INPUT_COLOURS, KERNEL_COLOURS, OUTPUT_COLOURS]
    strong = [c[1] for table in roles for c in table[:2]]
    assert len(set(strong)) == len(strong)  # 3 roles x 2 groups, all different
    cell = 30
    anim = animate_conv(input_size=(5, 5), kernel_size=3, in_channels=2, out_channels=2, groups=2, cell=cell)
    f, lay = anim.frames[0], anim.layout
    assert f.getpixel((lay.inputs[1][0] + 3, lay.inputs[1][1] + 3)) == INPUT_COLOURS[1][1]  # window, group 1
    assert f.getpixel((lay.kernels[1][0] + 3, lay.kernels[1][1] + 3)) == KERNEL_COLOURS[1][0]
    assert f.getpixel((lay.outputs[0][0] + 3, lay.outputs[0][1] + 3)) == OUTPUT_COLOURS[0][1]
    assert f.getpixel((lay.outputs[1][0] + 3, lay.outputs[1][1] + 3)) == OUTPUT_COLOURS[1][1]


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_padding_mode_cells_show_the_copied_values(mode):
    anim = animate_conv(input_size=(4, 5), kernel_size=3, padding=1, padding_mode=mode, cell=14)
    plan = anim.plan
    x = plan.grid_values[:, 1:5, 1:6]  # the input itself
    torch.testing.assert_close(plan.grid_values, F.pad(x.unsqueeze(0), [1, 1, 1, 1], mode=mode)[0])
    ref = F.conv2d(plan.grid_values.unsqueeze(0), plan.kernel)[0]
    torch.testing.assert_close(plan.output, ref, atol=1e-10, rtol=0)
    assert f"{mode} padding" in __import__("anyconv.viz._draw", fromlist=["legend"]).legend(plan)
    with pytest.raises(ValueError, match="animate_conv: `padding_mode`"):
        animate_conv(op="conv_transpose", input_size=(3,), padding_mode=mode)


def test_cli_takes_every_parameter_and_three_size_forms(tmp_path):
    from anyconv.cli import main

    for i, form in enumerate(["4x4", "4,4"]):
        out = tmp_path / f"a{i}.gif"
        rc = main(["animate", "--input-size", form, "--kernel-size", "2x2", "--stride", "2", "--dilation", "1,1",
                   "--in-channels", "2", "--out-channels", "4", "--groups", "2", "--padding", "1",
                   "--padding-mode", "replicate", "--cell", "14", "--out", str(out)])
        with Image.open(out) as im:
            assert rc == 0 and im.n_frames == 9
    out = tmp_path / "t.gif"
    assert main(["animate", "--transpose", "--input-size", "3", "--kernel-size", "3", "--stride", "2",
                 "--output-padding", "1", "--cell", "14", "--out", str(out)]) == 0
    with Image.open(out) as im:
        assert im.n_frames == (3 - 1) * 2 + 3 + 1
