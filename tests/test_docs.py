"""The documentation site builds strictly, and every code block on its pages runs.

The tutorial and how-to pages' code runs while the site is built (markdown-exec ``exec="on"``
blocks), so ``mkdocs build --strict`` fails on a block that raises, a broken link, or an API
reference page whose object is gone. The build takes about 30-60 s on one core (training
examples are tiny). Needs the ``docs`` extra, which ``bash dev.sh`` installs.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mkdocs", reason="the `docs` extra installs MkDocs")
pytest.importorskip("markdown_exec", reason="the `docs` extra installs markdown-exec")

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted([*DOCS.glob("tutorials/*.md"), *DOCS.glob("how-to/*.md")])
FENCE = re.compile(r"^```python(.*)$", re.M)

# Outputs of the learning material's worked examples (shared/seeds), as the site must print them.
EXPECTED = {
    "tutorials/01-cross-correlation": ["[[19., 25.],", "[37., 43.]]", "[ 0.,  1.,  0.,  0.,  0., -1.,  0.]"],
    "tutorials/02-padding-stride": ["[[[10., 15., 20., 25., 30., 35., 40.]]]",
                                    "[[[ 5., 10., 15., 20., 25., 30., 35., 40., 25.]]]",
                                    "[[[ 2., 10., 20., 30., 40., 18.]]]", "(1, 1, 4, 4)"],
    "tutorials/03-channels": ["[[[[ 56.,  72.],", "[104., 120.]]]]", "[[41.1000, 45.6000, 50.1000],"],
    "tutorials/04-pooling": ["[[[[14., 16., 17.],", "tensor([[1, 1, 2, 4]])"],
    # the material printed 1.9466, ... from unrounded weights; 0.3447 * 1 + 0.5001 * 2 + 0.2005 * 3 = 1.9464
    "tutorials/07-matrix": ["1.9464, 2.9917, 4.0370"],
}


def test_every_python_block_on_the_pages_runs_at_build_time() -> None:
    assert len(PAGES) >= 12
    for page in PAGES:
        for options in FENCE.findall(page.read_text()):
            assert 'exec="on"' in options, f"{page.relative_to(ROOT)}: a python block that does not run"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    log = done.stdout + done.stderr
    assert done.returncode == 0, "mkdocs build --strict failed:\n" + log[-6000:]
    return out


def page_text(site: Path, page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", (site / page / "index.html").read_text()))


def test_site_builds_with_outputs_and_pictures(site: Path) -> None:
    for md in sorted(DOCS.glob("tutorials/0*.md")):
        page = (site / "tutorials" / md.stem / "index.html").read_text()
        assert "data:image/" in page, f"tutorial {md.stem} has no picture"
    for ref in ("functional", "nn", "tools", "models", "summary", "algorithms", "train", "viz"):
        assert 'class="doc doc-heading"' in (site / "reference" / ref / "index.html").read_text(), ref
    reference = (site / "reference" / "functional" / "index.html").read_text()
    for name in ("conv", "conv_transpose", "max_pool2d", "unfold"):
        assert f'id="anyconv.functional.{name}"' in reference or f"anyconv.functional.{name}.{name}" in reference


@pytest.mark.parametrize("page", sorted(EXPECTED))
def test_worked_examples_print_the_learning_materials_values(site: Path, page: str) -> None:
    text = page_text(site, page)
    for want in EXPECTED[page]:
        assert want in text, f"{page}: {want!r} not in the built page"
