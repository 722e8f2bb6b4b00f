"""The ``anyconv`` command's core: --version, --help, ``anyconv demo`` and its examples, bad input."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

import anyconv
from anyconv.commands import _demo_examples as demo_examples

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "anyconv", *args], capture_output=True, text=True, env=ENV, timeout=120
    )


def test_version():
    r = _run("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"anyconv {anyconv.__version__}"


def test_help_lists_demo_with_an_example():
    r = _run("--help")
    assert r.returncode == 0
    assert "demo" in r.stdout and "Example: anyconv demo" in r.stdout
    r = _run("demo", "--help")
    assert r.returncode == 0
    assert "anyconv demo --dtype float32" in r.stdout


def test_demo_runs_every_example_side_by_side():
    r = _run("demo", "--examples-only")  # the training section is tested in test_train_demo.py
    assert r.returncode == 0, r.stderr
    out = r.stdout
    # the learning material's printed results (transcribed here from shared/seeds)
    assert out.count("anyconv: [[[19, 25], [37, 43]]]") == 1 and out.count("torch:   [[[19, 25], [37, 43]]]") == 1
    assert "anyconv: [[[56, 72], [104, 120]]]" in out
    assert "anyconv: [[5, 10, 15, 20, 25, 30, 35, 40, 25]]" in out
    assert "anyconv: [[2, 10, 20, 30, 40, 18]]" in out
    assert "anyconv: [[[41.1, 45.6, 50.1], [63.6, 68.1, 72.6]]]" in out
    assert out.count("tutorial's output: ok") >= 15 and "DIFFERS" not in out
    assert f"over {len(demo_examples.EXAMPLES)} examples" in out
    assert out.rstrip().splitlines()[-1].startswith("OK: largest difference")
    assert r.stderr == ""


BAD_INPUT = [
    (("demo", "--tolerance", "-1"), "anyconv demo: error: `--tolerance` must be a non-negative number"),
    (("demo", "--dtype", "float16"), "anyconv demo: error: argument --dtype: invalid choice"),
    (("demo", "--tolerance", "small"), "anyconv demo: error: argument --tolerance: invalid float value"),
    (("no-such-command",), "anyconv: error: argument COMMAND: invalid choice"),
]


def _message_lines(stderr: str) -> list[str]:
    """stderr lines other than argparse's usage block."""
    return [ln for ln in stderr.strip().splitlines() if not ln.startswith(("usage:", " "))]


def test_bad_input_in_a_process_exits_2_with_one_message_and_no_traceback():
    r = _run("demo", "--tolerance", "nan")
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    assert r.stderr.strip() == "anyconv demo: error: `--tolerance` must be a non-negative number; got --tolerance=nan"


@pytest.mark.parametrize("args, message", BAD_INPUT)
def test_bad_input_exits_nonzero_with_one_message(args, message, capsys):
    from anyconv.cli import main

    try:
        status = main(list(args))
    except SystemExit as e:  # argparse's own errors
        status = e.code
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert _message_lines(err) == [_message_lines(err)[0]] and _message_lines(err)[0].startswith(message)


def test_examples_reproduce_the_tutorials_and_torch():
    results = [demo_examples.compute(ex) for ex in demo_examples.EXAMPLES]
    assert all(r.matches_tutorial is not False for r in results)
    assert sum(r.matches_tutorial is True for r in results) >= 15
    assert max(r.max_diff for r in results) < 1e-10
    edge = next(r for r in results if r.example.title == "vertical edge detection")
    assert edge.ours[0, 0].tolist() == [[0.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0]] * 6


def test_run_examples_returns_the_largest_difference():
    lines: list[str] = []
    worst = demo_examples.run_examples(print_fn=lines.append)
    assert 0 <= worst < 1e-10
    assert any("[ 1] 2-D cross-correlation" in ln for ln in lines)
    assert demo_examples.run_examples(print_fn=lambda *a: None, dtype=torch.float32) < 1e-3


def test_a_wrong_tutorial_value_is_reported():
    ex = demo_examples.Example("wrong", "test", input=[[[1.0, 2.0, 3.0]]], weight=[[[1.0, 1.0]]], expected=[[[3.0, 6.0]]])
    r = demo_examples.compute(ex)
    assert r.matches_tutorial is False and r.ours.tolist() == [[[3.0, 5.0]]] and r.max_diff == 0.0
