"""The `anyconv animate`, `anyconv plot` and `anyconv playground` commands."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import torch

from anyconv.cli import main

Image = pytest.importorskip("PIL.Image", reason="Pillow (extra 'viz') is needed")
pytest.importorskip("matplotlib", reason="matplotlib (extra 'viz') is needed")


@pytest.mark.parametrize("command", ["animate", "plot", "playground"])
def test_help_has_an_example(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "example" in out and f"anyconv {command}" in out


def test_animate_writes_one_frame_per_output(tmp_path, capsys):
    out = tmp_path / "conv.gif"
    rc = main(["animate", "--input-size", "5,5", "--kernel-size", "3", "--stride", "2", "--padding", "same",
               "--cell", "16", "--out", str(out)])
    assert rc == 0
    with Image.open(out) as im:
        assert im.n_frames == 9
    assert "9 frames" in capsys.readouterr().out


def test_animate_pairs_and_transpose(tmp_path):
    out = tmp_path / "d.gif"
    assert main(["animate", "--input-size", "9", "--kernel-size", "3", "--dilation", "2", "--padding", "[(2, 1)]",
                 "--cell", "14", "--out", str(out)]) == 0
    with Image.open(out) as im:
        assert im.n_frames == (9 + 3 - 5) + 1
    out = tmp_path / "t.gif"
    assert main(["animate", "--op", "conv_transpose", "--input-size", "2,2", "--stride", "2", "--padding", "1",
                 "--output-padding", "1", "--cell", "14", "--out", str(out)]) == 0
    with Image.open(out) as im:
        assert im.n_frames == 4 * 4  # (2 - 1) * 2 - 2 + 2 + 1 + 1 = 4 per dim


@pytest.mark.parametrize(
    "args, needle",
    [(["animate", "--stride", "0"], "`--stride` must be positive sizes"),
     (["animate", "--padding", "full"], "conv: `padding` must be"),
     (["animate", "--op", "nope"], "--op"),
     (["animate", "--out", "x.bmp", "--input-size", "2,2", "--kernel-size", "1"], "`path suffix`"),
     (["plot", "filter", "--preset", "gauss"], "plot_filter: `preset`"),
     (["plot", "kernels"], "`--model`")],
)
def test_bad_input_is_one_line_and_exit_2(args, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(args)
    except SystemExit as e:  # argparse's own errors (a flag's type) exit from parse_args
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and "Traceback" not in err


def test_plot_signal_and_filter(tmp_path):
    for what, extra in (("signal", ["--signal", "1,2,3,4,5", "--kernel", "1,-1"]),
                        ("filter", ["--preset", "sobel", "--preset", "blur", "--size", "32"])):
        out = tmp_path / f"{what}.png"
        assert main(["plot", what, "--out", str(out), *extra]) == 0
        with Image.open(out) as im:
            assert im.format == "PNG" and min(im.size) > 200


def test_plot_kernels_and_features_of_a_saved_module(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 3))
    path = tmp_path / "model.pt"
    torch.save(model, path)
    for what in ("kernels", "features"):
        out = tmp_path / f"{what}.png"
        assert main(["plot", what, "--weights", str(path), "--trust-pickle", "--input-size", "16,16",
                     "--out", str(out)]) == 0
        with Image.open(out) as im:
            assert im.format == "PNG"


def test_plot_kernels_of_a_zoo_model(tmp_path):
    models = pytest.importorskip("anyconv.models")
    if "lenet5" not in models.list_models():
        pytest.skip("lenet5 not in the model zoo yet")
    out = tmp_path / "k.png"
    assert main(["plot", "kernels", "--model", "lenet5", "--out", str(out)]) == 0
    assert out.stat().st_size > 1000


def test_playground_out_writes_the_page(tmp_path):
    from anyconv.viz.playground import playground_html

    out = tmp_path / "p.html"
    assert main(["playground", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == playground_html()


def test_playground_serves_on_localhost_only(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "anyconv", "playground", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line, line + proc.stderr.read()
        url = line.split()[3]
        with urllib.request.urlopen(url, timeout=10) as r:
            body = r.read().decode("utf-8")
        assert "window.anyconvShape" in body
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(url + "secret.txt", timeout=10)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
