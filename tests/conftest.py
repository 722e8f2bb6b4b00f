"""Shared test setup: one torch thread (the CI machine has 2 cores and runs 2 workers), and ``auto``
with the shipped cost model (not a profile ``anyconv tune`` stored on this machine)."""

import os

import torch

torch.set_num_threads(1)
os.environ.setdefault("ANYCONV_PROFILE", "default")


def pytest_addoption(parser):  # type: ignore[no-untyped-def]
    """``--fuzz N``: the number of calls tests/test_fuzz.py makes (default: a few hundred)."""
    parser.addoption("--fuzz", type=int, default=None, help="calls of the differential fuzzer (tests/test_fuzz.py)")
