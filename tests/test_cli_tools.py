"""The shape / summary / norm subcommands, each run as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "anyconv", *args], capture_output=True, text=True, timeout=240)


@pytest.mark.parametrize("cmd", ["shape", "summary", "norm"])
def test_help_shows_an_example(cmd):
    r = _run(cmd, "--help")
    assert r.returncode == 0 and f"anyconv {cmd} " in r.stdout and "example" in r.stdout


def test_shape_prints_shape_padding_and_formula_and_chains():
    r = _run("shape", "conv2d", "--input", "1x3x32x32", "--kernel", "5", "--stride", "2", "--padding", "same",
             "--then", "maxpool 2", "--then", "conv 3 out=8 p=1:0,0:1")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "conv2d: [1, 3, 32, 32] -> [1, 3, 16, 16]"
    assert "H 1+2, W 1+2" in lines[1]
    assert "H: floor((32 + 1 + 2 - 1 * (5 - 1) - 1) / 2) + 1 = 16" in r.stdout
    assert lines[-1] == "final shape: [1, 8, 7, 7]"


def test_shape_want_finds_the_padding():
    r = _run("shape", "conv2d", "--input", "1x3x32x32", "--kernel", "5", "--stride", "2", "--want", "16x16")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:2] == ["conv2d: [1, 3, 32, 32] -> [1, 3, 16, 16]", "  padding (before+after): H 2+2, W 2+2"]


def test_shape_json():
    r = _run("shape", "conv_transpose2d", "--input", "1x4x8x8", "--kernel", "4", "--stride", "2", "--padding", "1", "--json")
    assert r.returncode == 0, r.stderr
    (stage,) = json.loads(r.stdout)
    assert stage["output_shape"] == [1, 4, 16, 16] and stage["padding"] == [[1, 1], [1, 1]]


@pytest.mark.parametrize("args", [
    ["shape", "conv2d", "--input", "1x3x32x32", "--kernel", "50"],
    ["shape", "conv2d", "--input", "1xAx32", "--kernel", "3"],
    ["shape", "conv2d", "--input", "1x3x32x32", "--kernel", "3", "--want", "10x10"],
    ["shape", "conv2d", "--input", "1x3x8x8", "--kernel", "3", "--then", "maxpool 2 3"],
    ["summary", "no_such_model_name", "--input", "1x3x8x8"],
    ["norm", "cifar_cnn", "--input", "1x3"],
])
def test_bad_input_is_one_line_no_traceback(args):
    r = _run(*args)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "error" in r.stderr


def test_summary_and_norm_of_a_model_in_a_file(tmp_path):
    path = tmp_path / "net.py"
    path.write_text(textwrap.dedent("""
        import torch
        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = torch.nn.Conv2d(1, 2, 3, padding=1)
                self.pool = torch.nn.MaxPool2d(2)
            def forward(self, x):
                return self.pool(self.conv(x))
    """))
    r = _run("summary", f"{path}:Net", "--input", "1x1x8x8")
    assert r.returncode == 0, r.stderr
    assert "├─Conv2d: 1-1" in r.stdout and "Total params: 20" in r.stdout
    r = _run("norm", f"{path}:Net", "--input", "1x1x8x8")
    assert r.returncode == 0, r.stderr
    assert "conv" in r.stdout and "True" in r.stdout


def test_summary_of_a_zoo_model():
    r = _run("summary", "cifar_cnn", "--input", "1x3x32x32", "--columns", "output_size,num_params")
    if "not available" in r.stderr:  # pragma: no cover - only before the zoo lands
        pytest.fail("anyconv.models is missing")
    assert r.returncode == 0, r.stderr
    assert "Conv2d" in r.stdout and "Total params:" in r.stdout
