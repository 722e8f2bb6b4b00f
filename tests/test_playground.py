"""The playground page's arithmetic agrees with anyconv's, checked in headless Chromium.

A table of cases is generated here; the expected answers come from anyconv's front door
(``conv_spec`` / ``conv_transpose_spec``) and, for the operator matrix, from the ops applied
to basis vectors. The page's ``window.anyconvShape`` / ``window.anyconvMatrix`` answer the
same cases inside Chromium (``--dump-dom`` of a copy of the page that evaluates them).
Outside CI the test is skipped when no Chromium is installed; in CI (``CI=true``) it fails.
"""

from __future__ import annotations

import html
import itertools
import json
import os
import re
import shutil
import subprocess

import pytest
import torch

import anyconv.functional as AF
from anyconv._spec import conv_spec, conv_transpose_spec
from anyconv.viz.playground import playground_html

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _browser() -> str:
    for name in (os.environ.get("ANYCONV_CHROMIUM", ""), *BROWSERS):
        if name and shutil.which(name):
            return str(shutil.which(name))
    if os.environ.get("CI") == "true":
        pytest.fail("Chromium is needed for the playground test in CI (.ci/run installs it)")
    pytest.skip("no Chromium installed (the test runs in CI)")


def _cases() -> list[dict]:
    cases = []
    pads1 = [0, 2, "valid", "same", "same_lower", "causal", [(2, 0)], [(0, 3)], -1, "full", [1, 1], [(1, 2, 3)]]
    for i, k, s, d, p in itertools.product([1, 5, 8], [1, 3], [1, 2, 3], [1, 2], pads1):
        cases.append(dict(input=[i], kernel=[k], stride=s, dilation=d, padding=p, transposed=False))
    pads2 = [1, [0, 2], [(0, 1), (2, 1)], "same", "same_lower", "causal", "valid", [(1, 0)]]
    for (h, w), s, d, p in itertools.product([(5, 6), (3, 7)], [1, 2, (3, 1), 0], [1, (1, 2)], pads2):
        cases.append(dict(input=[h, w], kernel=[3, 2], stride=s, dilation=d, padding=p, transposed=False))
    tpads = [0, 1, 3, "valid", "same", "same_lower", [(0, 2)], [(4, 4)]]
    for i, k, s, d, p, op in itertools.product([1, 4], [1, 3], [1, 2, 3], [1, 2], tpads, [0, 1, 2]):
        cases.append(dict(input=[i], kernel=[k], stride=s, dilation=d, padding=p, output_padding=op,
                          transposed=True))
    for s, p, op in itertools.product([2, (1, 3)], [1, "same", [(0, 1), (1, 0)]], [0, (1, 0)]):
        cases.append(dict(input=[3, 4], kernel=[2, 3], stride=s, dilation=1, padding=p, output_padding=op,
                          transposed=True))
    for bad in (dict(dilation=0), dict(dilation=[1, 0]), dict(input=[0]), dict(input=[4, 0]), dict(kernel=[7]),
                dict(stride=[1, 2, 3]), dict(padding=[(1, -1)])):
        base = dict(input=[5], kernel=[3], stride=1, dilation=1, padding=0, transposed=False)
        if any(isinstance(v, list) and len(v) == 2 and k != "padding" for k, v in bad.items()):
            base.update(input=[5, 5], kernel=[3, 3])
        cases.append({**base, **bad})
        cases.append({**base, **bad, "transposed": True, "output_padding": 0})
    return cases


def _expected(case: dict) -> dict:
    """What anyconv's front door says about a case: output size and pads, or the bad parameter."""
    x = torch.empty(1, 1, *case["input"])
    w = torch.empty(1, 1, *case["kernel"])
    pad = case["padding"]
    pad = [tuple(p) if isinstance(p, list) else p for p in pad] if isinstance(pad, list) else pad
    try:
        if case["transposed"]:
            spec = conv_transpose_spec("conv_transpose", x, w, None, case["stride"], pad,
                                       case["output_padding"], 1, case["dilation"], None, "auto")
            return {"ok": True, "out": list(spec.out_spatial), "pads": [list(c) for c in spec.crop]}
        spec = conv_spec("conv", x, w, None, case["stride"], pad, case["dilation"], 1, "zeros", False, "auto")
        return {"ok": True, "out": list(spec.out_spatial), "pads": [list(c) for c in spec.core.padding]}
    except ValueError as e:
        return {"ok": False, "param": re.search(r"`(\w+)`", str(e)).group(1)}


MATRIX_CASES = [
    dict(input=[6], kernel=[3], stride=2, dilation=1, padding="same", transposed=False),
    dict(input=[7], kernel=[2], stride=1, dilation=3, padding=[(1, 2)], transposed=False),
    dict(input=[4, 5], kernel=[2, 3], stride=[2, 1], dilation=1, padding=[(0, 1), (1, 1)], transposed=False),
    dict(input=[3], kernel=[3], stride=2, dilation=1, padding=1, output_padding=1, transposed=True),
    dict(input=[2, 3], kernel=[2, 2], stride=2, dilation=1, padding="same", output_padding=0, transposed=True),
    dict(input=[3], kernel=[1], stride=3, dilation=1, padding="same", output_padding=0, transposed=True),
]


def _matrix(case: dict) -> list[list[int]]:
    """M[o][i] = kernel tap + 1 (0 where none), from the op applied to every basis vector."""
    n = len(case["input"])
    nin = int(torch.tensor(case["input"]).prod())
    x = torch.eye(nin, dtype=torch.float64).reshape(nin, 1, *case["input"])
    w = torch.arange(1.0, 1 + int(torch.tensor(case["kernel"]).prod()), dtype=torch.float64)
    w = w.reshape(1, 1, *case["kernel"])
    pad = case["padding"]
    pad = [tuple(p) for p in pad] if isinstance(pad, list) else pad
    if case["transposed"]:
        y = AF.conv_transpose(x, w, stride=case["stride"], padding=pad, output_padding=case["output_padding"],
                              dilation=case["dilation"])
    else:
        y = AF.conv(x, w, stride=case["stride"], padding=pad, dilation=case["dilation"])
    assert y.dim() == n + 2
    return y.reshape(nin, -1).T.round().long().tolist()


def _run_page(cases: list[dict], matrices: list[dict], tmp_path) -> dict:
    browser = _browser()
    probe = (
        "<script>(function(){var r={}; try { r.shapes = CASES.map(function(c){return window.anyconvShape(c);});"
        " r.matrices = MATRICES.map(function(c){return window.anyconvMatrix(c);}); }"
        " catch (e) { r.exception = String(e); } r.errors = window.__errors;"
        " var pre = document.createElement('pre'); pre.id = 'anyconv-results';"
        " pre.textContent = JSON.stringify(r); document.body.appendChild(pre);})();</script>"
    )
    page = playground_html()
    catcher = "<script>window.__errors=[];window.onerror=function(m){window.__errors.push(String(m));};</script>"
    data = f"<script>var CASES={json.dumps(cases)};var MATRICES={json.dumps(matrices)};</script>"
    page = page.replace("<head>", "<head>" + catcher, 1).replace("</body>", data + probe + "</body>", 1)
    path = tmp_path / "probe.html"
    path.write_text(page, encoding="utf-8")
    cmd = [browser, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", path.as_uri()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    m = re.search(r'<pre id="anyconv-results">(.*?)</pre>', r.stdout, re.S)
    assert m, f"no results from the browser (rc={r.returncode}): {r.stderr[-2000:]}"
    return json.loads(html.unescape(m.group(1)))


def test_page_arithmetic_agrees_with_python(tmp_path):
    cases = _cases()
    got = _run_page(cases, MATRIX_CASES, tmp_path)
    assert "exception" not in got, got.get("exception")
    assert got["errors"] == [], got["errors"]
    assert len(got["shapes"]) == len(cases) > 300
    bad = []
    n_ok = n_err = 0
    for case, res in zip(cases, got["shapes"]):
        exp = _expected(case)
        if exp["ok"]:
            n_ok += 1
            ok = res.get("ok") and res["out"] == exp["out"] and res["pads"] == exp["pads"]
        else:
            n_err += 1
            ok = not res.get("ok") and res.get("param") == exp["param"]
        if not ok:
            bad.append((case, exp, res))
    assert not bad, f"{len(bad)} disagreements, first: {bad[:3]}"
    assert n_ok > 150 and n_err > 50  # both valid calls and errors are exercised
    for case, res in zip(MATRIX_CASES, got["matrices"]):
        assert res["ok"]
        assert [[q + 1 for q in row] for row in res["matrix"]] == _matrix(case), case
