"""Peak memory of the chunked algorithms against torch's own convolution on the same call.

Issue 4's memory target: the peak extra memory of a call is at most twice torch's. These are
the suite cases that were furthest above it before the algorithms worked in chunks (each for a
different algorithm), measured as ``anyconv bench`` measures them: the peak of torch's CPU
allocator during one call after a warm-up call (``bench.runner.peak_extra_bytes``). Memory, unlike
time, is deterministic, so this is a test and not a benchmark.
"""

from __future__ import annotations

import pytest

from anyconv.bench import runner as br
from anyconv.bench.suite import select


@pytest.mark.parametrize("key, mode, algorithm", [
    ("vgg.conv3x3_256_28", "forward", "winograd"),  # transformed kernel in chunks of output channels
    ("resnet18.conv3x3_28", "backward", "winograd"),  # and its weight gradient's im2col columns in chunks
    ("grouped.g32_256_28", "forward", "im2col"),  # chunks of whole groups
    ("large_dw.dw31x31_64_56", "forward", "fft"),  # depthwise spectra per chunk of channels
    ("long1d.k1023_32k_c4", "forward", "fft"),  # blocks shortened to the block budget
    ("transposed.t4x4_s2_64_32", "forward", "phases_col2im_t"),  # columns route of a strided transpose
    ("depthwise.dw3x3_s1_144_56", "backward", "native"),  # one padded plane per thread
    ("grouped.g32_128_56", "backward", "native"),
])
def test_peak_memory_at_most_twice_torchs(key, mode, algorithm, monkeypatch):
    # with the C kernel on, auto gives several of these calls to it: the chunked algorithms are
    # measured with it off
    from anyconv.algorithms import _native_abi

    monkeypatch.setattr(_native_abi, "_ENABLED", algorithm == "native")
    case = select([key])[0]
    x, w = br.tensors(case)
    # a convolution's forward call (one core call) names the algorithm whose chunking is guarded; other
    # calls are auto's (as the suite runs them), which must then pick that algorithm for the core call
    named = algorithm if mode == "forward" and case.op == "conv" else "auto"
    ours, theirs = br.step(br.anyconv_call(case, named), x, w, mode), br.step(br.torch_call(case), x, w, mode)
    ours()
    theirs()
    mine, ref = br.peak_extra_bytes(ours), br.peak_extra_bytes(theirs)
    if mine is None or ref is None:
        pytest.fail("torch.profiler reported no allocator events")
    from anyconv.tools.choose import choose_call, core_calls, on_device, public_name

    context: list[tuple[str, bool, bool]] = []
    _, xc, wc, spec = core_calls(case.op, x, w, context=context, **case.kwargs)[0]
    if named == "auto":  # the algorithm whose chunking this guards (a variant: the algorithm it computes by)
        choice = choose_call(on_device(xc, x.device), on_device(wc, w.device), spec, context[0])
        assert algorithm in (choice.name, public_name(choice)), choice.name
    assert mine <= 2 * ref, f"{key} {mode}: {mine / 2**20:.1f} MiB vs torch's {ref / 2**20:.1f} MiB"


def test_peak_memory_test_can_fail(monkeypatch):
    """The same measure sees the whole-call buffers the chunks replaced (Winograd's transformed
    kernel of a 256x256 layer at once: more than twice torch's peak)."""
    from anyconv.algorithms import winograd

    monkeypatch.setattr(winograd, "KERNEL_CHUNK_BYTES", 2**40)
    case = select(["vgg.conv3x3_256_28"])[0]
    x, w = br.tensors(case)
    ours = br.step(br.anyconv_call(case, "winograd"), x, w, "forward")
    theirs = br.step(br.torch_call(case), x, w, "forward")
    ours()
    theirs()
    mine, ref = br.peak_extra_bytes(ours), br.peak_extra_bytes(theirs)
    assert mine is not None and ref is not None and mine > 2 * ref
