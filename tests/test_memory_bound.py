"""The workspace limit is a bound on memory: a call's peak memory above its inputs and outputs
stays within the bound that ``anyconv.core.workspace``'s docstring states, for every algorithm, under a
16 MiB, a 64 MiB and the default (256 MiB) limit.

The bound is the limit plus, where they apply (see ``documented_bound``): one padded copy of the
input for ``padding_mode`` other than ``"zeros"``; a transposed convolution's uncropped result
and, with ``stride > 1`` and a named algorithm, its zero-stuffed input; in a backward pass, one
copy each of the input and of the output gradient (the weight gradient's batch/channel swap), and
the padded copy's gradient. ``ALLOWANCE`` covers what is not the call's buffers: page granularity,
BLAS's packing buffers, Python objects.

Peak memory is the process's resident high-water mark (``tests/memory_probe.py`` says why and
how), so the cases run in a fresh process, one thread. Calls are large enough (inputs of 4-16
MiB, scratch of tens of MiB under the default limit) that a buffer outside the bound shows: a
padded copy of all of the input in ``kn2row`` (its tile budget not counting it) put the 64 MiB
case at 69 MiB; ``test_bound_can_fail`` keeps that visible.
"""

from __future__ import annotations

from typing import Any

from memory_probe import measure

MiB = 2**20
DEFAULT = 256 * MiB
LIMITS = (16 * MiB, 64 * MiB, None)  # None: the default limit
ALLOWANCE = 2 * MiB

CONV3 = {"op": "conv", "x": [8, 64, 64, 64], "w": [64, 64, 3, 3], "kwargs": {"padding": 1}}
REFLECT = {**CONV3, "kwargs": {"padding": 1, "padding_mode": "reflect"}}
DEPTHWISE = {"op": "conv", "x": [8, 128, 64, 64], "w": [128, 1, 3, 3], "kwargs": {"padding": 1, "groups": 128}}
LARGE_KERNEL = {"op": "conv", "x": [8, 16, 64, 64], "w": [16, 16, 15, 15], "kwargs": {"padding": 7}}
FEW_POSITIONS = {"op": "conv", "x": [64, 64, 16, 16], "w": [64, 64, 3, 3], "kwargs": {"padding": 1}}
SMALL = {"op": "conv", "x": [8, 16, 16, 16], "w": [16, 16, 3, 3], "kwargs": {"padding": 1}}
TRANSPOSED = {"op": "conv_transpose", "x": [4, 64, 64, 64], "w": [64, 64, 4, 4], "kwargs": {"stride": 2, "padding": 1}}

# (call, algorithm, backward too): every registered algorithm on a call it serves, and the polyphase
# split (``auto`` on a strided transposed convolution)
CASES: list[tuple[dict[str, Any], str, bool]] = [
    (CONV3, "direct", False),
    (CONV3, "im2col", True),
    (CONV3, "fft", False),
    (CONV3, "winograd", True),
    (CONV3, "kn2row", False),
    (CONV3, "shifted", False),
    (CONV3, "native", False),
    (REFLECT, "im2col", True),
    (DEPTHWISE, "depthwise", False),
    (DEPTHWISE, "native", True),
    (LARGE_KERNEL, "fft", False),
    (FEW_POSITIONS, "positions", False),
    (SMALL, "matrix", False),
    (TRANSPOSED, "auto", True),
    (TRANSPOSED, "im2col", False),
]


def _nbytes(shape: list[int]) -> int:
    n = 4  # float32
    for v in shape:
        n *= v
    return n


def documented_bound(case: dict[str, Any]) -> tuple[int, int]:
    """The bound on a case's peak memory above its inputs and outputs, (forward, backward), from
    ``anyconv.core.workspace``'s docstring, without ``ALLOWANCE``."""
    x, w, kw = case["x"], case["w"], case["kwargs"]
    limit = case["limit"] or DEFAULT
    fwd = limit
    bwd = limit + _nbytes(x)  # the input's copy for the weight gradient
    if case["op"] == "conv":
        pad = kw.get("padding", 0)
        padded = [x[0], x[1], *(v + 2 * pad for v in x[2:])]
        out = [x[0], w[0], *(v + 2 * pad - k + 1 for v, k in zip(x[2:], w[2:]))]  # stride 1 calls
        bwd += _nbytes(out)  # the output gradient's copy for the weight gradient
        if kw.get("padding_mode", "zeros") != "zeros":
            fwd += _nbytes(padded)
            bwd += 2 * _nbytes(padded)  # the padded copy (then its gradient) and a copy of it
    else:
        s = kw.get("stride", 1)
        full = [x[0], w[1], *((v - 1) * s + k for v, k in zip(x[2:], w[2:]))]  # uncropped result
        fwd += _nbytes(full)
        bwd += 2 * _nbytes(full)  # the uncropped gradient and its copy for the weight gradient
        if s > 1 and case["algorithm"] != "auto":
            fwd += _nbytes([x[0], x[1], *((v - 1) * s + 1 for v in x[2:])])  # the zero-stuffed input
    return fwd, bwd


def _cases(backward: bool) -> list[dict[str, Any]]:
    return [{**call, "algorithm": algo, "limit": limit, "backward": backward and bw}
            for call, algo, bw in CASES for limit in LIMITS]


def _check(results: list[dict[str, Any]], allowance: int) -> list[str]:
    over = []
    for r in results:
        if "refused" in r:
            # an algorithm may refuse a call whose smallest tile does not fit, saying why
            assert r["limit"] is not None and ("budget" in r["refused"] or "limit" in r["refused"]), r
            continue
        fwd, bwd = documented_bound(r)
        name = f"{r['op']} {r['x']} {r['kwargs']} {r['algorithm']} limit={(r['limit'] or DEFAULT) // MiB} MiB"
        if r["fwd_mib"] * MiB > fwd + allowance:
            over.append(f"{name}: forward {r['fwd_mib']:.1f} MiB > bound {(fwd + allowance) / MiB:.1f} MiB")
        if "bwd_mib" in r and r["bwd_mib"] * MiB > bwd + allowance:
            over.append(f"{name}: backward {r['bwd_mib']:.1f} MiB > bound {(bwd + allowance) / MiB:.1f} MiB")
    return over


def test_peak_memory_within_documented_bound():
    results = measure(_cases(backward=True))
    assert len(results) == len(CASES) * len(LIMITS)
    assert not _check(results, ALLOWANCE), "\n".join(_check(results, ALLOWANCE))


def test_bound_can_fail():
    """The same measure sees a buffer the bound would miss without its term: a strided transposed
    convolution by a named algorithm makes its zero-stuffed input (4x the input: 31.5 MiB here) before the
    algorithm runs; with that term dropped (the bound of ``auto``, which splits by phases instead)
    the call is over by 30 MiB, with it within."""
    case = {**TRANSPOSED, "x": [8, 64, 64, 64], "algorithm": "im2col", "limit": 16 * MiB, "backward": False}
    r = measure([case])[0]
    without_stuffed = documented_bound({**case, "algorithm": "auto"})[0]
    assert r["fwd_mib"] * MiB > without_stuffed + ALLOWANCE
    assert not _check([r], ALLOWANCE)
