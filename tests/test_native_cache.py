"""``native``'s build cache cannot crash a process or run code in it (``algorithms/_native_build.py``).

Every way to damage or plant the cache gets a test that runs a fresh Python process on a prepared
cache directory and checks: the process ends normally, its convolution equals torch's, a damaged
file is rebuilt (or native falls back with the reason), and a planted library's constructor never
runs (it would create a marker file). So that damage cases need no real compile each, those
processes "compile" by copying a library this test session built once; the compile itself, the
lock and ``CC`` with arguments are tested with the real compiler.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from anyconv.algorithms import _native_build as nb
from anyconv.algorithms import native

ROOT = os.getuid() == 0 if hasattr(os, "getuid") else False
OTHER_UID = 65534  # nobody

# one process: optionally "compile" by copying GOOD (with a delay), run a native conv, report as JSON
PROBE = """
    import json, os, shutil, sys, time
    import torch, torch.nn.functional as F
    from anyconv.algorithms import _native_build as nb, native
    import anyconv.functional as AF
    good = os.environ.get("PROBE_GOOD")
    readonly = os.environ.get("PROBE_READONLY")
    if readonly:
        access = os.access
        os.access = lambda p, mode, **kw: False if str(p) == readonly and mode & os.W_OK else access(p, mode, **kw)
    if good:
        compiles = []
        def fake(cmd, opts, out):
            compiles.append(str(out))
            time.sleep(float(os.environ.get("PROBE_DELAY", "0")))
            shutil.copyfile(good, out)
        nb._compile = fake
    x, w = torch.randn(2, 32, 9, 9, dtype=torch.float64), torch.randn(32, 1, 3, 3, dtype=torch.float64)
    why = native.unavailable()
    if why is None:
        y = AF.conv(x, w, padding=1, groups=32, algorithm="native")
        assert torch.allclose(y, F.conv2d(x, w, padding=1, groups=32), atol=1e-12)
    info = native.build_info()
    print(json.dumps({"why": why, "dir": str(info.directory) if info else None,
                      "note": info.directory_note if info else None,
                      "rebuilt": info.rebuilt_because if info else None,
                      "compiled": info.compiled_seconds if info else None}))
"""

# a library whose constructor leaves a marker: it must never be loaded from a planted file
PLANT_C = r"""
#include <stdio.h>
__attribute__((constructor)) static void planted(void) {
    FILE *f = fopen(MARKER, "w"); if (f) { fputs("ran", f); fclose(f); }
}
int corr_f32(void *a, void *b, void *c, void *d) { return 0; }
"""


def _env(cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CC", "CFLAGS")}
    env.update(ANYCONV_CACHE=str(cache), ANYCONV_NATIVE="1", OMP_NUM_THREADS="1", **extra)
    return env


def _probe(env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(PROBE)], capture_output=True, text=True,
                          env=env, timeout=600, cwd="/")
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def good() -> Path:
    """A genuine library (the one this process uses), copied where every user may read it."""
    info = native.build_info()
    if info is None or info.path is None:
        pytest.skip(f"no C compiler here: {native.unavailable()}")
    folder = Path(tempfile.mkdtemp(prefix="anyconv-good-"))
    folder.chmod(0o755)
    path = folder / "good.so"
    shutil.copyfile(info.path, path)
    path.chmod(0o644)
    yield path
    shutil.rmtree(folder, ignore_errors=True)


def _key() -> str:
    env_cc, env_flags = os.environ.pop("CC", None), os.environ.pop("CFLAGS", None)
    try:
        return nb.build_key(nb.compiler(), nb.flags())
    finally:
        if env_cc is not None:
            os.environ["CC"] = env_cc
        if env_flags is not None:
            os.environ["CFLAGS"] = env_flags


def _place(cache: Path, data: bytes, sidecar_of: bytes | None) -> Path:
    """Put ``data`` where the probe will look for its library, with a sidecar describing
    ``sidecar_of`` (None: no sidecar)."""
    cache.mkdir(mode=0o700, exist_ok=True)
    lib = cache / f"{nb.PREFIX}{_key()}.so"
    lib.write_bytes(data)
    lib.chmod(0o600)
    if sidecar_of is not None:
        import hashlib

        meta = {"size": len(sidecar_of), "sha256": hashlib.sha256(sidecar_of).hexdigest()}
        lib.with_suffix(".json").write_text(json.dumps(meta))
    return lib


def _planted(tmp: Path) -> tuple[bytes, Path]:
    """A shared library with a constructor that writes a marker file."""
    marker = tmp / "marker"
    src = tmp / "plant.c"
    src.write_text(PLANT_C)
    out = tmp / "plant.so"
    subprocess.run(["cc", "-shared", "-fPIC", f'-DMARKER="{marker}"', str(src), "-o", str(out)], check=True)
    return out.read_bytes(), marker


@pytest.mark.parametrize("cut", [0, 1, 64, 4096, "half", -1])
def test_a_truncated_library_is_rebuilt_not_loaded(tmp_path: Path, good: Path, cut: object):
    data = good.read_bytes()
    n = {"half": len(data) // 2, -1: len(data) - 1}.get(cut, cut)  # type: ignore[call-overload]
    _place(tmp_path / "c", data[:n], data)  # the sidecar of the whole file: the cut is damage
    out = _probe(_env(tmp_path / "c", PROBE_GOOD=str(good)))
    assert out["why"] is None and "damaged" in str(out["rebuilt"]), out
    assert (tmp_path / "c" / f"{nb.PREFIX}{_key()}.so").read_bytes() == data


def test_random_bytes_are_rebuilt_with_or_without_a_matching_digest(tmp_path: Path, good: Path):
    junk = random.Random(3).randbytes(50_000)
    _place(tmp_path / "a", junk, good.read_bytes())  # digest mismatch
    out = _probe(_env(tmp_path / "a", PROBE_GOOD=str(good)))
    assert out["why"] is None and ("SHA-256" in str(out["rebuilt"]) or "bytes" in str(out["rebuilt"])), out
    _place(tmp_path / "b", junk, junk)  # a consistent digest: dlopen refuses it, then rebuilt
    out = _probe(_env(tmp_path / "b", PROBE_GOOD=str(good)))
    assert out["why"] is None and "did not load" in str(out["rebuilt"]), out


def test_a_library_missing_a_symbol_is_rebuilt_under_a_fresh_name(tmp_path: Path, good: Path):
    src = tmp_path / "old.c"
    src.write_text("int corr_f32(void *a, void *b, void *c, void *d) { return 0; }\n")  # an 'older build'
    subprocess.run(["cc", "-shared", "-fPIC", str(src), "-o", str(tmp_path / "old.so")], check=True)
    old = (tmp_path / "old.so").read_bytes()
    _place(tmp_path / "c", old, old)
    out = _probe(_env(tmp_path / "c", PROBE_GOOD=str(good)))
    assert out["why"] is None and "lacks the symbol" in str(out["rebuilt"]), out


def test_a_planted_library_without_our_digest_never_runs(tmp_path: Path, good: Path):
    data, marker = _planted(tmp_path)
    _place(tmp_path / "c", data, None)
    out = _probe(_env(tmp_path / "c", PROBE_GOOD=str(good)))
    assert not marker.exists() and out["why"] is None and "digest" in str(out["rebuilt"]), out


def test_a_library_writable_by_others_is_never_loaded(tmp_path: Path, good: Path):
    data, marker = _planted(tmp_path)
    lib = _place(tmp_path / "c", data, data)
    lib.chmod(0o666)
    out = _probe(_env(tmp_path / "c", PROBE_GOOD=str(good)))
    assert not marker.exists() and "writable by others" in str(out["rebuilt"]), out


@pytest.mark.skipif(not ROOT, reason="needs root to make files owned by another user")
def test_a_library_owned_by_another_user_is_never_loaded(tmp_path: Path, good: Path):
    data, marker = _planted(tmp_path)
    lib = _place(tmp_path / "c", data, data)
    os.chown(lib, OTHER_UID, OTHER_UID)
    out = _probe(_env(tmp_path / "c", PROBE_GOOD=str(good)))
    assert not marker.exists() and "owned by uid" in str(out["rebuilt"]), out


@pytest.mark.parametrize("how", ["other_uid", "world_writable", "symlink"])
def test_a_planted_cache_directory_is_passed_over(tmp_path: Path, good: Path, how: str):
    if how == "other_uid" and not ROOT:
        pytest.skip("needs root to make a directory owned by another user")
    data, marker = _planted(tmp_path)
    cache = tmp_path / "shared"
    _place(cache, data, data)  # a 'valid' planted library, digest and all
    if how == "other_uid":
        for p in (cache, *cache.iterdir()):
            os.chown(p, OTHER_UID, OTHER_UID)
    elif how == "world_writable":
        cache.chmod(0o777)
    else:
        real = cache.rename(tmp_path / "real")
        cache.symlink_to(real)
    out = _probe(_env(cache, PROBE_GOOD=str(good)))
    assert not marker.exists() and out["why"] is None, out
    assert str(cache) in str(out["note"]) and out["dir"] != str(cache) and Path(str(out["dir"])).name.startswith(
        "anyconv-"), out
    assert not Path(str(out["dir"])).exists()  # the per-process directory is removed at exit


@pytest.mark.skipif(not ROOT, reason="needs root to make a directory owned by another user")
def test_a_predictable_tmp_directory_made_by_another_user_is_not_used(tmp_path: Path, good: Path):
    # HOME not usable (service accounts, containers): the next candidate is $TMPDIR/anyconv-<uid>, which
    # another user (nobody) made first, mode 0777, with a valid-looking library and digest inside
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    data, marker = _planted(tmp_path)
    planted = tmpdir / f"anyconv-{os.getuid()}"
    _place(planted, data, data)
    planted.chmod(0o777)
    for p in (planted, *planted.iterdir()):
        os.chown(p, OTHER_UID, OTHER_UID)
    (tmp_path / "home").write_text("a file, so ~/.cache cannot be made")
    env = _env(Path("unused"), PROBE_GOOD=str(good), HOME=str(tmp_path / "home"), TMPDIR=str(tmpdir))
    for name in ("ANYCONV_CACHE", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR"):
        env.pop(name, None)
    out = _probe(env)
    assert not marker.exists() and out["why"] is None and out["dir"] != str(planted), out
    assert f"{planted} is owned by uid {OTHER_UID}" in str(out["note"]), out


def test_a_read_only_cache_directory_falls_back_to_a_private_one(tmp_path: Path, good: Path):
    cache = tmp_path / "ro"
    cache.mkdir(mode=0o500)
    # (root writes through any mode: the probe's os.access answers as for an ordinary user)
    out = _probe(_env(cache, PROBE_GOOD=str(good), PROBE_READONLY=str(cache)))
    assert out["why"] is None and f"{cache} is not writable" in str(out["note"]), out
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize("processes", [2, 4])
def test_processes_starting_together_compile_once(tmp_path: Path, good: Path, processes: int):
    env = _env(tmp_path / "c", PROBE_GOOD=str(good), PROBE_DELAY="2")  # a 2 s 'compile'
    cmd = [sys.executable, "-c", textwrap.dedent(PROBE)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/")
             for _ in range(processes)]
    outs = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=600)
        assert p.returncode == 0, stderr[-2000:]
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    assert all(o["why"] is None for o in outs), outs
    assert sum(o["compiled"] is not None for o in outs) == 1, outs
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == sorted(
        f"{nb.PREFIX}{_key()}{suffix}" for suffix in (".json", ".lock", ".so"))


def test_cc_with_arguments_and_cflags_builds_for_real(tmp_path: Path):
    if native.build_info() is None:
        pytest.skip(f"no C compiler here: {native.unavailable()}")
    out = _probe(_env(tmp_path / "c", CC="cc -DANYCONV_UNUSED_MACRO=1", CFLAGS="-O1 -g0"))
    assert out["why"] is None and out["compiled"] is not None, out
    meta = json.loads(next((tmp_path / "c").glob("*.json")).read_text())
    assert meta["compiler"] == ["cc", "-DANYCONV_UNUSED_MACRO=1"] and meta["flags"][-2:] == ["-O1", "-g0"]
    again = _probe(_env(tmp_path / "c", CC="cc -DANYCONV_UNUSED_MACRO=1", CFLAGS="-O1 -g0"))
    assert again["compiled"] is None and again["rebuilt"] is None  # the verified build is loaded


def test_the_build_key_covers_every_c_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # a change to any one file of the kernel (a .c file or the shared header) names a new library, so a
    # library built from older sources is never loaded for newer ones
    names = {p.name for p in nb.SOURCES}
    assert {"native.h", "plan.c", "corr.c", "rows.c", "dots.c", "lanes.c", "transposed.c", "copy.c"} <= names
    assert set(names) == {p.name for p in nb.NATIVE_C.iterdir() if p.suffix in (".c", ".h")}
    copies = []
    for src in nb.SOURCES:
        dst = tmp_path / src.name
        dst.write_bytes(src.read_bytes())
        copies.append(dst)
    monkeypatch.setattr(nb, "SOURCES", tuple(copies))
    cmd, opts = ["cc"], list(nb.FLAGS)
    base = nb.build_key(cmd, opts)
    assert nb.build_key(cmd, opts) == base  # (a pure function of the files)
    keys = {base}
    for path in copies:
        original = path.read_bytes()
        path.write_bytes(original + b"/* edited */\n")
        keys.add(nb.build_key(cmd, opts))
        path.write_bytes(original)
        assert nb.build_key(cmd, opts) == base
    assert len(keys) == len(copies) + 1  # every file's edit gave its own key


def test_a_missing_compiler_is_a_reason_not_a_crash(tmp_path: Path):
    out = _probe(_env(tmp_path / "c", CC="/nonexistent/cc -O2"))
    assert "the C compiler '/nonexistent/cc' was not found" in str(out["why"]), out


def test_writes_are_fsynced_and_published_only_after_loading(tmp_path: Path, good: Path, monkeypatch):
    monkeypatch.setenv("ANYCONV_CACHE", str(tmp_path / "c"))
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.delenv("CFLAGS", raising=False)
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    monkeypatch.setattr(nb, "_compile", lambda cmd, opts, out: shutil.copyfile(good, out))
    lib, info = nb.load()
    assert info.compiled_seconds is not None and len(synced) >= 3  # the library, its digest, the directory
    assert nb.file_problem(info.path) is None and info.path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "c").stat().st_mode & 0o777 == 0o700
    assert [p.name for p in (tmp_path / "c").iterdir() if ".so." in p.name or p.suffix == ".o"] == []


def test_doctor_reports_the_cache_the_build_and_the_reason(tmp_path: Path):
    from anyconv.commands.doctor import report

    text = "\n".join(report())
    info = native.build_info()
    assert "native cache: " in text and "auto chooses among: direct" in text
    if info is not None:
        assert f"build: {info.path} ({info.size} bytes" in text and "verified before loading" in text
    done = subprocess.run([sys.executable, "-m", "anyconv", "doctor"], capture_output=True, text=True, timeout=300,
                          env=_env(tmp_path / "c", CC="/nonexistent/cc"))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "native: unavailable: the C kernel could not be built or loaded (the C compiler '/nonexistent/cc'" in (
        done.stdout)
    assert ", native" not in done.stdout.splitlines()[-1]
