"""The differential fuzzer (``fuzz.py``) as a test: every call ok or an allowed class.

CI makes ``CI_CALLS`` calls of seed ``SEED`` (a few seconds); ``pytest tests/test_fuzz.py
--fuzz 20000`` makes more, and ``ANYCONV_FUZZ_SEED`` picks another seed. A failure lists one line
per failing call (seed, index, op, arguments, dtype, layout and what differed);
``python tests/fuzz.py SEED INDEX`` replays one.
"""

from __future__ import annotations

import os

import pytest

import fuzz

SEED = int(os.environ.get("ANYCONV_FUZZ_SEED", "20240611"))
CI_CALLS = 400


def test_fuzz_against_torch(request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> None:
    count = request.config.getoption("--fuzz") or CI_CALLS
    counts, failures = fuzz.run(SEED, count)
    with capsys.disabled():
        print(f"\nfuzz seed={SEED} calls={count}: {dict(sorted(counts.items()))}")
    assert counts["ok"] > count // 3, f"too few calls reach a comparison: {dict(counts)}"
    assert not failures, f"{len(failures)} failing calls of {count}:\n" + "\n".join(failures[:200])


@pytest.mark.parametrize("cls", ["wrong", "crash", "refusal", "lenient"])
def test_fuzz_classifies_a_broken_op_as_failing(cls: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The classifier can fail: a conv that is off, raises, refuses or accepts too much is caught."""
    import torch

    import anyconv.functional as AF

    x, w = torch.randn(1, 2, 5), torch.randn(3, 2, 3)
    broken = {
        "wrong": lambda *a, **k: torch.nn.functional.conv1d(*a, **k) * 1.01,
        "crash": lambda *a, **k: (_ for _ in ()).throw(IndexError("deep inside")),
        "refusal": lambda *a, **k: (_ for _ in ()).throw(ValueError("conv1d: `stride` no")),
        "lenient": lambda *a, **k: torch.zeros(1, 3, 3),
    }[cls]
    monkeypatch.setattr(AF, "conv1d", broken)
    d = fuzz.calls.Draw(lambda x, w: AF.conv1d(x, w, stride=1 if cls != "lenient" else 0),
                        lambda x, w: torch.nn.functional.conv1d(x, w, stride=1 if cls != "lenient" else 0),
                        [(1, 2, 5), (3, 2, 3)], {})
    assert fuzz.classify(d, [x, w], [x, w], torch.float32, False, None, "test")[0] == cls
