"""Checkpoints survive kills and damage: fsync before rename, stale temporary files removed,
and a damaged ``last.pt`` gives one line naming the file, what is wrong and what to use instead."""

from __future__ import annotations

import os
import random
import shutil
import stat
import subprocess
import sys

import pytest
import torch

import anyconv.train.checkpoint as C
from anyconv.cli import main
from anyconv.train import TrainConfig, load_checkpoint, save_checkpoint, train

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _quiet(*args, **kwargs):
    return None


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "run"
    train(TrainConfig(epochs=1, num_samples=60, batch_size=20, progress=False, out=str(out)), print_fn=_quiet)
    assert (out / "last.pt").is_file()
    return out


def _copy(good_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    return run


def _truncate(fraction):
    def damage(path):
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * fraction)])
    return damage


def _flip_in_a_tensor(path):
    """Flip bytes inside the largest tensor: torch.load would read the wrong weights silently."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        info = max(z.infolist(), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    with open(path, "rb") as f:  # the member's data follow its local header (30 bytes + name + extra)
        f.seek(info.header_offset + 26)
        skip = 30 + int.from_bytes(f.read(2), "little") + int.from_bytes(f.read(2), "little")
    start = info.header_offset + skip + info.file_size // 2
    data[start : start + 8] = bytes(b ^ 0xFF for b in data[start : start + 8])
    path.write_bytes(bytes(data))


DAMAGES = {
    **{f"truncated-{f}": (_truncate(f), "truncated") for f in (0.001, 0.1, 0.5, 0.9, 0.999)},
    "empty": (lambda p: p.write_bytes(b""), "empty"),
    # (seeded: unseeded bytes that happen to open like a legacy pickle, 0x80 first, get another message)
    "random-bytes": (lambda p: p.write_bytes(random.Random(3).randbytes(3000)), "not a torch.save archive"),
    "zeroed-middle": (lambda p: p.write_bytes(p.read_bytes()[:2000] + bytes(5000) + p.read_bytes()[7000:]),
                      "damaged"),
    "flipped-tensor-bytes": (lambda p: _flip_in_a_tensor(p), "fails its CRC check"),
}


@pytest.mark.parametrize("name", sorted(DAMAGES))
def test_damaged_last_pt_is_one_line_naming_the_file(good_run, tmp_path, capsys, name):
    run = _copy(good_run, tmp_path)
    ruin, words = DAMAGES[name]
    ruin(run / "last.pt")
    for argv in (["train", "--resume", str(run), "--no-progress"], ["eval", str(run)],
                 ["train", "--resume", str(run / "last.pt"), "--no-progress"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert "last.pt" in err and words in err and "no earlier checkpoint" in err, err
    with pytest.raises(ValueError, match=words):
        load_checkpoint(run)


def test_damaged_last_pt_names_an_earlier_checkpoint(good_run, tmp_path, capsys):
    run = _copy(good_run, tmp_path)
    shutil.copy(run / "last.pt", run / "epoch1.pt")
    (run / "broken.pt").write_bytes(b"PK\x03\x04 not really")  # damaged too: never proposed
    _truncate(0.5)(run / "last.pt")
    assert main(["train", "--resume", str(run), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "last.pt" in err and "truncated" in err, err
    assert "epoch1.pt" in err and "broken.pt" not in err, err
    assert main(["eval", str(run / "epoch1.pt")]) == 0  # and the proposed one works


def test_damaged_checkpoint_in_a_fresh_process_has_no_traceback(good_run, tmp_path):
    run = _copy(good_run, tmp_path)
    _truncate(0.6)(run / "last.pt")  # [Errno 22] Invalid argument from torch's zip reader before
    p = subprocess.run([sys.executable, "-m", "anyconv", "train", "--resume", str(run)], env=ENV,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "last.pt" in p.stderr and "Errno" not in p.stderr, p.stderr


def _plant_stale(folder, live_pid):
    names = [f"last.pt.tmp{n}" for n in (os.getpid(), 999_999_999, 4_000_000_001)]
    for name in names:
        (folder / name).write_bytes(b"PK\x03\x04 half a checkpoint")
    (folder / f"last.pt.tmp{live_pid}").write_bytes(b"in progress")  # a live process: kept
    (folder / "notes.tmp1").write_text("not ours")  # another name: kept
    return names


@pytest.fixture
def live_pid():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def test_stale_temporary_files_are_removed_at_save(good_run, tmp_path, live_pid):
    run = _copy(good_run, tmp_path)
    stale = _plant_stale(run, live_pid)
    save_checkpoint(run / "last.pt", {"config": {}, "model": {"w": torch.ones(2)}})
    left = set(os.listdir(run))
    assert not left & set(stale), left
    assert {f"last.pt.tmp{live_pid}", "notes.tmp1", "last.pt"} <= left
    assert torch.equal(load_checkpoint(run)["model"]["w"], torch.ones(2))


def test_stale_temporary_files_are_removed_at_resume(good_run, tmp_path, live_pid):
    run = _copy(good_run, tmp_path)
    stale = _plant_stale(run, live_pid)
    train(TrainConfig(), resume=str(run), print_fn=_quiet)  # the run is complete: no save happens
    left = set(os.listdir(run))
    assert not left & set(stale), left
    assert {f"last.pt.tmp{live_pid}", "notes.tmp1"} <= left


def test_save_fsyncs_the_file_then_renames_then_fsyncs_the_folder(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src, dst):
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    save_checkpoint(tmp_path / "last.pt", {"config": {}, "model": {"w": torch.arange(3)}})
    assert events == ["fsync file", "rename", "fsync folder"]
    assert os.listdir(tmp_path) == ["last.pt"]


def test_a_failed_save_keeps_the_previous_checkpoint_and_no_temporary_file(tmp_path, monkeypatch):
    save_checkpoint(tmp_path / "last.pt", {"config": {}, "model": {"w": torch.zeros(2)}})

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(C.torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "last.pt", {"config": {}, "model": {"w": torch.ones(2)}})
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["last.pt"]
    assert torch.equal(load_checkpoint(tmp_path / "last.pt")["model"]["w"], torch.zeros(2))
