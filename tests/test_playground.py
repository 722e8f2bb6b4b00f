"""The playground page's arithmetic agrees with anyconv's, checked in headless Chromium.

A table of cases is generated here; the expected answers come from anyconv's front door
(``conv_spec`` / ``conv_transpose_spec``) and, for the operator matrix, from the ops applied
to basis vectors. The page's ``window.anyconvShape`` / ``window.anyconvMatrix`` answer the
same cases inside Chromium (``--dump-dom`` of a copy of the page that evaluates them).
Outside CI the test is skipped when no Chromium is installed; in CI (``CI=true``) it fails.

The whole layer the page shows (``window.anyconvForward``: conv or conv_transpose with groups,
dilation, padding modes, bias, an activation and pooling) is checked against
``anyconv.functional`` on generated data; the page's URL state is restored from a shared
link; and the layout is checked at 360, 1280 and 2560 px wide (no horizontal scrolling, the
stages visible), with screenshots (``ANYCONV_DOCS_IMAGES=docs/images`` keeps them).
"""

from __future__ import annotations

import html
import itertools
import json
import os
import random
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
import torch

import anyconv.functional as AF
from anyconv.core.spec import conv_spec, conv_transpose_spec
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


ACTIVATIONS = {"none": lambda t: t, "relu": torch.relu, "leaky_relu": torch.nn.functional.leaky_relu,
               "sigmoid": torch.sigmoid, "tanh": torch.tanh}


def _layer_cases() -> list[dict]:
    """Generated layer cases: data as nested lists (float64 integers and halves) and parameters."""
    rng = random.Random(1)
    cases = []
    for t in range(90):
        n = 1 + t % 2
        transposed = t % 3 == 2
        groups = rng.choice([1, 1, 2])
        cin, cout = groups * rng.choice([1, 2]), groups * rng.choice([1, 2])
        size = [rng.randint(3, 7) for _ in range(n)]
        kernel = [rng.randint(1, 3) for _ in range(n)]
        stride = rng.choice([1, 2, [1, 2][:n] if n == 2 else 3])
        dilation = rng.choice([1, 1, 2])
        if transposed:
            padding = rng.choice([0, 1, "valid", "same", [[0, 1]] * n])
            s_max = stride if isinstance(stride, int) else min(stride)
            extra = dict(output_padding=rng.randrange(max(s_max, dilation)) if s_max > 1 or dilation > 1 else 0,
                         padding_mode="zeros")
        else:
            padding = rng.choice([0, 1, "valid", "same", "same_lower", "causal", [[1, 2]] * n])
            extra = dict(padding_mode=rng.choice(["zeros", "reflect", "replicate", "circular"]), flip=t % 5 == 0)
        wshape = [cin, cout // groups, *kernel] if transposed else [cout, cin // groups, *kernel]
        x = (torch.randint(-4, 5, (cin, *size), generator=torch.Generator().manual_seed(t)) / 2).tolist()
        w = (torch.randint(-2, 3, wshape, generator=torch.Generator().manual_seed(100 + t)) / 2).tolist()
        pool = None
        if t % 4:
            pool = dict(type=rng.choice(["max", "avg"]), kernel_size=rng.choice([1, 2]), stride=rng.choice([None, 1, 2]),
                        padding=rng.choice([0, 0, 1]))
        cases.append(dict(x=x, weight=w, bias=[rng.choice([0, 0.5, -1]) for _ in range(cout)], groups=groups,
                          stride=stride, padding=padding, dilation=dilation, transposed=transposed,
                          activation=rng.choice(list(ACTIVATIONS)), pool=pool, **extra))
    # errors the page must refuse, naming the parameter as anyconv does
    base = dict(x=[[1.0] * 5] * 2, weight=[[[1.0, 2.0]]] * 2, bias=None, stride=1, padding=0, dilation=1, transposed=False)
    cases.append({**base, "groups": 3})
    cases.append({**base, "groups": 2, "padding_mode": "mirror"})
    cases.append({**base, "groups": 2, "padding": -1})
    cases.append({**base, "groups": 2, "pool": dict(type="max", kernel_size=1, stride=1, padding=1)})
    cases.append({**base, "groups": 2, "pool": dict(type="avg", kernel_size=2, stride=1, padding=[[0, 3]])})
    return cases


def _layer_expected(case: dict) -> dict:
    x = torch.tensor(case["x"], dtype=torch.float64)
    w = torch.tensor(case["weight"], dtype=torch.float64)
    b = None if case["bias"] is None else torch.tensor(case["bias"], dtype=torch.float64)
    pad = case["padding"]
    pad = [tuple(p) for p in pad] if isinstance(pad, list) else pad
    try:
        if case["transposed"]:
            y = AF.conv_transpose(x, w, b, case["stride"], pad, case["output_padding"], case["groups"], case["dilation"])
        else:
            y = AF.conv(x, w, b, case["stride"], pad, case["dilation"], case["groups"],
                        padding_mode=case.get("padding_mode", "zeros"), flip=case.get("flip", False))
        a = ACTIVATIONS[case.get("activation", "none")](y)
        q = case.get("pool")
        p = None
        if q:
            qpad = [tuple(v) for v in q["padding"]] if isinstance(q["padding"], list) else q["padding"]
            fn = AF.max_pool if q["type"] == "max" else AF.avg_pool
            p = fn(a.unsqueeze(0), q["kernel_size"] if x.dim() == 3 else [q["kernel_size"]], q["stride"], qpad)[0]
    except ValueError as e:
        return {"ok": False, "param": re.search(r"`(\w+)`", str(e)).group(1)}
    return {"ok": True, "conv": y, "act": a, "pool": p}


def _probe(page: str, script: str, tmp_path, name: str, hash_: str = "", size: tuple[int, int] = (1280, 1000)) -> dict:
    """Load ``page`` (with ``script`` appended to its body) and return what the script put in RESULT."""
    browser = _browser()
    catcher = "<script>window.__errors=[];window.onerror=function(m){window.__errors.push(String(m));};</script>"
    out = ("<script>(function(){var r={}; try {" + script + "} catch (e) { r.exception = String(e); }"
           " r.errors = window.__errors; var pre = document.createElement('pre'); pre.id = 'anyconv-results';"
           " pre.textContent = JSON.stringify(r); document.body.appendChild(pre);})();</script>")
    page = page.replace("<head>", "<head>" + catcher, 1).replace("</body>", out + "</body>", 1)
    path = tmp_path / f"{name}.html"
    path.write_text(page, encoding="utf-8")
    cmd = [browser, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={size[0]},{size[1]}",
           "--dump-dom", path.as_uri() + hash_]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    m = re.search(r'<pre id="anyconv-results">(.*?)</pre>', r.stdout, re.S)
    assert m, f"no results from the browser (rc={r.returncode}): {r.stderr[-2000:]}"
    got = json.loads(html.unescape(m.group(1)))
    assert "exception" not in got, got["exception"]
    return got


def test_page_layer_agrees_with_anyconv(tmp_path):
    cases = _layer_cases()
    script = (f"var CASES={json.dumps(cases)}; r.layers = CASES.map(function(c){{var m = window.anyconvForward(c);"
              " return m.ok ? {ok: true, conv: m.y.conv, act: m.y.act, pool: m.y.pool} : {ok: false, param: m.param};});")
    got = _probe(playground_html(), script, tmp_path, "layer")
    assert got["errors"] == [], got["errors"]
    n_ok = n_pool = 0
    for case, res in zip(cases, got["layers"], strict=True):
        exp = _layer_expected(case)
        assert res["ok"] == exp["ok"], (case, exp, res)
        if not exp["ok"]:
            assert res["param"] == exp["param"], (case, exp, res)
            continue
        n_ok += 1
        for key in ("conv", "act", "pool"):
            if exp[key] is None:
                assert res[key] is None, (key, case)
                continue
            n_pool += key == "pool"
            ours = torch.tensor(res[key], dtype=torch.float64)
            torch.testing.assert_close(ours, exp[key], atol=1e-9, rtol=1e-9, msg=lambda m, c=case, k=key: f"{k}: {m}\n{c}")
    assert n_ok > 60 and n_pool > 40
    # every feature was exercised
    assert {c.get("padding_mode") for c in cases} >= {"zeros", "reflect", "replicate", "circular"}
    assert any(c["transposed"] and c["groups"] > 1 for c in cases) and any(c.get("flip") for c in cases)


STATE = {"source": "picture", "dims": "2", "input": "6,7", "cin": "3", "cout": "3", "groups": "3", "kernel": "2,3",
         "weights": "random", "seed": "4", "stride": "2,1", "padding": "(0,1),(1,1)", "padding_mode": "reflect",
         "dilation": "1,2", "bias": "1,-2,0.5", "activation": "tanh", "pool": "avg", "pool_kernel": "2",
         "pool_stride": "1", "pool_padding": "1"}


def test_url_keeps_the_state(tmp_path):
    from urllib.parse import parse_qs, urlencode

    hash_ = "#" + urlencode({**STATE, "o": 2, "t": 3})
    got = _probe(playground_html(), "r.state = window.anyconvState(); r.hash = location.hash; r.error ="
                 " document.getElementById('error').textContent; r.calc = document.getElementById('calc').textContent;",
                 tmp_path, "state", hash_)
    assert got["errors"] == [] and got["error"] == "", got
    assert {k: got["state"][k] for k in STATE} == STATE
    assert (got["state"]["o"], got["state"]["t"]) == (2, 3)
    # the page keeps the configuration in its own URL (what "copy link" shares) and shows step 3 of y[2]
    shared = {k: v[0] for k, v in parse_qs(got["hash"][1:]).items()}
    assert {k: v for k, v in shared.items() if k in STATE} == {k: v for k, v in STATE.items() if k in shared}
    assert set(shared) == set(STATE) - {"dims", "pool_kernel"} | {"o", "t"}  # defaults are left out
    assert got["calc"].startswith("y[2][0, 3] = "), got["calc"]


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


LAYOUT = ("<!DOCTYPE html><html><head></head><body style='margin:0;background:#fff;overflow:hidden'>"
          "<iframe id='f' title='playground' style='width:{w}px;height:{h}px;border:0;display:block' srcdoc=\"{doc}\"></iframe>"
          "<script>window.addEventListener('load', function () {{ var w = document.getElementById('f').contentWindow,"
          " d = w.document, r = {{iw: w.innerWidth, sw: d.documentElement.scrollWidth, errors: w.__errors, boxes: {{}}}};"
          " ['controls', 'stage-input', 'stage-kernel', 'stage-conv', 'stage-act', 'stage-pool', 'cv-input-0', 'cv-conv-0', 'calc']"
          ".forEach(function (id) {{ var b = d.getElementById(id).getBoundingClientRect();"
          " r.boxes[id] = [b.left, b.top, b.right, b.bottom]; }});"
          " r.numbers = w.getComputedStyle(d.body).fontSize; var pre = document.createElement('pre'); pre.id = 'res';"
          " pre.textContent = JSON.stringify(r); document.body.appendChild(pre); }});</script></body></html>")


@pytest.mark.parametrize("width", [360, 1280, 2560])
def test_layout_from_phone_to_4k(width, tmp_path):
    """Chromium's headless window is at least 500 px wide, so the page runs in an iframe of ``width``."""
    browser = _browser()
    catcher = "<script>window.__errors=[];window.onerror=function(m){window.__errors.push(String(m));};</script>"
    page = playground_html().replace("<head>", "<head>" + catcher, 1)
    height = {360: 2600, 1280: 1300, 2560: 1400}[width]
    path = tmp_path / "layout.html"
    path.write_text(LAYOUT.format(w=width, h=height, doc=html.escape(page, quote=True)), encoding="utf-8")
    base = [browser, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={max(width, 500)},{height}"]
    r = subprocess.run([*base, "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120)
    m = re.search(r'<pre id="res">(.*?)</pre>', r.stdout, re.S)
    assert m, f"no results from the browser (rc={r.returncode}): {r.stderr[-2000:]}"
    got = json.loads(html.unescape(m.group(1)))
    assert got["errors"] == [] and got["iw"] == width, got
    assert got["sw"] <= got["iw"], f"horizontal scrolling at {width} px: content {got['sw']} px wide"
    for key, (left, top, right, bottom) in got["boxes"].items():
        assert right - left > 0 and bottom - top > 0, f"{key} not shown at {width} px"
        assert left >= 0 and right <= width + 0.5, f"{key} cut off at {width} px: {left}..{right}"
    boxes = got["boxes"]
    if width >= 1280:  # side by side: the controls left of the stages
        assert boxes["controls"][2] <= boxes["stage-input"][0]
    else:  # one column: the controls above the stages
        assert boxes["controls"][3] <= boxes["stage-input"][1]
    if width >= 2560:  # room for every stage in one row
        assert boxes["stage-input"][1] == boxes["stage-pool"][1]
    shot = tmp_path / f"playground-{width}.png"
    subprocess.run([*base, f"--screenshot={shot}", path.as_uri()], capture_output=True, timeout=120)
    assert _png_size(shot) == (max(width, 500), height)
    keep = os.environ.get("ANYCONV_DOCS_IMAGES")
    if keep:  # crop the window to the page's width and keep it for the docs
        from PIL import Image

        with Image.open(shot) as im:
            im.crop((0, 0, width, height)).save(Path(keep) / f"playground-{width}.png", optimize=True)
