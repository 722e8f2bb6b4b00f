"""``core.scratch``: per-thread kept scratch buffers (reused, bounded, separate per thread)."""

from __future__ import annotations

import threading

import torch

from anyconv.core import scratch


def test_a_slot_is_reused_and_grown():
    scratch.clear()
    a = scratch.buffer("t.a", 1000, torch.float32)
    b = scratch.buffer("t.a", 10, torch.float64)  # smaller: the same memory, another dtype
    assert a.data_ptr() == b.data_ptr() and b.dtype == torch.float64 and b.numel() == 10
    c = scratch.buffer("t.a", 5000, torch.float32)  # larger: a new buffer kept in its place
    assert c.numel() == 5000 and scratch.kept_bytes() >= 5000 * 4
    d = scratch.buffer("t.b", 100, torch.float32)  # another slot: other memory
    assert d.data_ptr() != c.data_ptr()
    scratch.clear()
    assert scratch.kept_bytes() == 0


def test_never_keeps_more_than_its_bound():
    scratch.clear()
    big = scratch.KEEP_BYTES // 4 + 1  # float32 elements just over the bound
    t = scratch.buffer("t.big", big, torch.float32)
    assert t.numel() == big and scratch.kept_bytes() == 0  # handed out, not kept
    scratch.buffer("t.half", scratch.KEEP_BYTES // 8, torch.float32)
    scratch.buffer("t.other", scratch.KEEP_BYTES // 8 + 64, torch.float32)  # the two would exceed it
    assert scratch.kept_bytes() <= scratch.KEEP_BYTES
    scratch.clear()


def test_threads_keep_their_own_buffers():
    scratch.clear()
    mine = scratch.buffer("t.thread", 256, torch.float32).data_ptr()
    theirs: list[int] = []
    th = threading.Thread(target=lambda: theirs.append(scratch.buffer("t.thread", 256, torch.float32).data_ptr()))
    th.start()
    th.join()
    assert theirs and theirs[0] != mine
    scratch.clear()
