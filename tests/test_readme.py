"""Every code block of README.md runs as written.

- each ```` ```python ```` block is run on its own, in a fresh namespace (they are
  self-contained: each imports what it uses);
- each ```` ```pycon ```` block is a doctest: its printed output must match;
- each ``anyconv ...`` line of a ```` ```bash ```` block is run as a command in a temporary
  folder and must exit 0, except in blocks whose first line starts with
  ``# not run by tests/test_readme.py`` (training, benchmarks, the playground server).

The blocks are found with mktestdocs' ``grab_code_blocks`` (the ``test`` extra).
"""

from __future__ import annotations

import doctest
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

mktestdocs = pytest.importorskip("mktestdocs", reason="the `test` extra installs mktestdocs")

README = Path(__file__).resolve().parents[1] / "README.md"
NOT_RUN = "# not run by tests/test_readme.py"


def blocks(lang: str) -> list[str]:
    return list(mktestdocs.grab_code_blocks(README.read_text(), lang=lang))


def commands() -> list[str]:
    """The ``anyconv`` command lines of the bash blocks that are not marked as not run."""
    out = []
    for block in blocks("bash"):
        if block.lstrip().startswith(NOT_RUN):
            continue
        out += [line.strip() for line in block.splitlines() if line.strip().startswith("anyconv ")]
    return out


def test_readme_has_blocks() -> None:
    assert len(blocks("python")) >= 5 and len(blocks("pycon")) >= 2 and len(commands()) >= 5


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_python_block_runs(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a block that writes files writes them here
    code = blocks("python")[index]
    exec(compile(code, f"README.md python block {index}", "exec"), {"__name__": "__readme__"})


@pytest.mark.parametrize("index", range(len(blocks("pycon"))))
def test_pycon_block_output_matches(index: int) -> None:
    text = blocks("pycon")[index]
    test = doctest.DocTestParser().get_doctest(text, {}, f"README.md pycon block {index}", str(README), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test, out=lambda s: sys.stdout.write(s))
    assert runner.failures == 0 and test.examples, f"pycon block {index} differs (see the output above)"


@pytest.mark.parametrize("line", commands(), ids=lambda line: " ".join(shlex.split(line, comments=True)[:2]))
def test_bash_command_runs(line: str, tmp_path: Path) -> None:
    argv = shlex.split(line, comments=True)
    exe = Path(sys.executable).with_name("anyconv")
    cmd = [str(exe), *argv[1:]] if exe.exists() else [sys.executable, "-m", "anyconv", *argv[1:]]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{line!r} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    assert done.stdout.strip() or any(tmp_path.iterdir()), f"{line!r} printed nothing and wrote nothing"
