"""Differential fuzzer: seeded random calls of every op, anyconv against torch, classified.

Call ``index`` of ``seed`` is drawn from ``random.Random(f"{seed}-{index}")`` alone, so any call
is reproduced by ``python tests/fuzz.py SEED INDEX``. Each call draws an op and its arguments
(``fuzz_calls.py``), a dtype (float32, float64; bfloat16/float16 compared loosely against a
float64 reference), a layout of the input (contiguous, non-contiguous by a slice or a permute,
channels_last, batch broadcast with stride 0), NaN/Inf injection and, for conv ops, an explicit
algorithm. Then it is one of:

- ``ok``: same shape, dtype, values (tolerances.py), NaN/Inf positions, indices and layout
  (and, for a third of the finite float32/64 calls, the gradients);
- ``both_raise``: torch raises and anyconv raises a ValueError/TypeError;
- ``declined``: an explicit algorithm refuses with its reason (``algorithm=... cannot serve``);
- ``narrowing``: anyconv refuses where torch serves, listed in ``NARROWINGS``;
- ``extension``: anyconv serves where torch raises, listed in ``EXTENSIONS``;
- failures: ``wrong``, ``crash`` (any other exception from anyconv), ``refusal`` (an unlisted
  refusal), ``lenient`` (anyconv serves an unlisted call torch refuses).
"""

from __future__ import annotations

import random
import re
import sys
from collections import Counter
from typing import Any

import torch

import anyconv
import anyconv.functional as AF
import fuzz_calls as calls
from differential import outputs_and_grads
from tolerances import REFERENCE_DTYPE, assert_close

#: anyconv refuses where torch serves: (regex on anyconv's message, why)
NARROWINGS: list[tuple[str, str]] = [
    (r"^(conv|conv_transpose|max_pool|avg_pool|lp_pool): `(stride|padding|dilation|kernel_size|output_padding)` "
     r"must be .*; got \w+=[(\[][^,]*,?[)\]]$", "the generic ops (conv, max_pool, ...) take N entries per "
     "sequence (API.md: a mismatched sequence length is a ValueError); torch's one-element forms are for the "
     "torch-named aliases (conv2d, max_pool2d, ...) and the modules, which broadcast them"),
    (r"`output_ratio` must be a ratio giving output sizes >= 1", "fractional_max_pool: an output_ratio that gives "
     "an output size of 0 is refused (torch returns an empty tensor)"),
]
#: anyconv serves where torch raises: (regex on torch's message, why; from the API contract)
EXTENSIONS: list[tuple[str, str]] = [
    (r"pad(ding)? should be (at most|smaller than or equal to) half", "pooling padding beyond half the kernel (API; "
     "ONNX allows it)"),
    (r"output_size must be \d", "adaptive pooling broadcasts a one-element output_size (API: torch's forms for aliases)"),
    (r"divisor_override", "avg_pool1d takes divisor_override (torch's 1-d op has no such argument)"),
    (r"must either be a single Int", "fractional_max_pool broadcasts one-element sequences "
     "and takes lists (API: torch's argument forms for every alias)"),
    (r"adaptive_max_pool\dd\(\): internal error: output_size", "adaptive_max_pool broadcasts a one-element "
     "output_size (API)"),
    (r"It is expected \w+ equals to 2", "unfold/fold take any N: a one-element kernel_size means N = 1 "
     "(torch's are 2-d only)"),
    (r"input image \(T: .*smaller than kernel size", "avg_pool3d: the padded input must hold the kernel, as in "
     "torch's other pooling ops (torch's 3-d avg pooling compares the unpadded input)"),
    (r"Unsupported memory format", "torch's unbatched max_pool3d refuses a channels_last 4-d input"),
    (r"fractional_max_pool3d_out\(\): pool \w+ \d+ too large", "fractional_max_pool3d accepts output + kernel - 1 "
     "== input, as torch's 2-d op does (torch's 3-d op's check is strict)"),
]
#: failure classes another change is fixing now; counted apart (see the README's status)
KNOWN_OPEN: list[tuple[str, str]] = [  # empty: every class found so far is fixed or documented above
]
FAILING = ("wrong", "crash", "refusal", "lenient")

OPS = ["conv", "conv_transpose", "max_pool", "avg_pool", "lp_pool", "adaptive_avg_pool", "adaptive_max_pool",
       "unfold", "fold", "max_unpool", "fractional_max_pool"]
DTYPES = [torch.float32] * 4 + [torch.float64] * 3 + [torch.bfloat16, torch.float16]
LAYOUTS = ["contiguous", "contiguous", "sliced", "permuted", "channels_last", "expanded"]


def draw(rng: random.Random, op: str) -> calls.Draw:
    n = 2 if op in ("unfold", "fold") else rng.choice([2, 3] if op == "fractional_max_pool" else [1, 2, 3])
    if op == "conv":
        return calls.conv(rng, rng.choice([1, 2, 3, 4]) if rng.random() < 0.1 else n)
    if op == "conv_transpose":
        return calls.conv_transpose(rng, n)
    if op in ("max_pool", "avg_pool", "lp_pool"):
        return calls.pool(rng, n, op.split("_")[0])
    if op.startswith("adaptive"):
        return calls.adaptive(rng, n, op.split("_")[1])
    if op in ("unfold", "fold"):
        return calls.fold_unfold(rng, op)
    return calls.max_unpool(rng, n) if op == "max_unpool" else calls.fractional(rng, n)


def layout(x: torch.Tensor, how: str) -> torch.Tensor:
    """The same values in another memory layout."""
    if how == "sliced":
        wide = torch.zeros((*x.shape[:-1], 2 * x.shape[-1]), dtype=x.dtype)
        wide[..., ::2] = x
        return wide[..., ::2]
    if how == "permuted" and x.dim() >= 2:
        return x.transpose(-1, -2).contiguous().transpose(-1, -2)
    if how == "channels_last" and x.dim() in (4, 5):
        return x.contiguous(memory_format=torch.channels_last if x.dim() == 4 else torch.channels_last_3d)
    if how == "expanded" and x.dim() >= 3 and x.shape[0] > 0:
        return x[:1].expand(x.shape)
    return x


def _fmt(t: torch.Tensor) -> torch.memory_format:
    return {4: torch.channels_last, 5: torch.channels_last_3d}.get(t.dim(), torch.contiguous_format)


def _cl(t: torch.Tensor) -> bool:
    """Channels-last strides (that differ from the contiguous ones)."""
    return t.dim() in (4, 5) and t.is_contiguous(memory_format=_fmt(t)) and not t.is_contiguous()


def difference(out: Any, ref: Any, dtype: torch.dtype, exact_layout: bool, expect_cl: bool) -> str | None:
    """What differs between anyconv's result and torch's (None: nothing)."""
    if isinstance(ref, tuple) != isinstance(out, tuple):
        return "a tuple on one side only"
    if isinstance(ref, tuple):
        if out[1].shape != ref[1].shape or not torch.equal(out[1], ref[1].to(out[1].dtype)):
            return "indices differ"
        out, ref = out[0], ref[0]
    if out.shape != ref.shape:
        return f"shape {tuple(out.shape)} != {tuple(ref.shape)}"
    if out.dtype != dtype:
        return f"dtype {out.dtype} != {dtype}"
    for name, mask in (("NaN", torch.isnan), ("+Inf", torch.isposinf), ("-Inf", torch.isneginf)):
        a, b = mask(out), mask(ref)
        if not torch.equal(a, b):
            return f"{name} positions differ ({int((a != b).sum())} of {a.numel()})"
    finite = torch.isfinite(ref)
    try:
        assert_close(torch.where(finite, out, 0), torch.where(finite, ref.to(out.dtype), 0), dtype, "values")
    except AssertionError as e:
        return str(e)
    torch_cl = (exact_layout and _cl(ref)) or (expect_cl and _cl(ref.contiguous(memory_format=_fmt(ref))))
    if torch_cl and not out.is_contiguous(memory_format=_fmt(out)):
        return "layout: torch's output is channels_last, anyconv's is not"
    return None


def _message(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


def run_one(seed: int, index: int) -> tuple[str, str]:
    """``(class, one-line description)`` of call ``index`` of ``seed``."""
    rng = random.Random(f"{seed}-{index}")
    op = rng.choice([o for o in OPS if hasattr(AF, o)])
    d = draw(rng, op)
    dtype, how = rng.choice(DTYPES), rng.choice(LAYOUTS)
    inject = rng.random() < 0.15
    algo = rng.choice(["auto", *anyconv.algorithms.names()]) if d.conv_like and rng.random() < 0.4 else None
    gen = torch.Generator().manual_seed(rng.randrange(2**31))
    base = [torch.randn(s, generator=gen, dtype=torch.float64) for s in d.shapes]
    if "norm_type" in d.kwargs:
        base[0] = base[0].abs() + 0.1  # torch's lp of negative sums is NaN for fractional powers
    if inject and base[0].numel():
        flat = base[0].view(-1)
        for _ in range(rng.randint(1, 3)):
            flat[rng.randrange(flat.numel())] = rng.choice([float("nan"), float("inf"), -float("inf")])
    text = (f"seed={seed} index={index} {op} shapes={d.shapes} {d.kwargs} dtype={str(dtype)[6:]} layout={how} "
            f"inject={inject} algorithm={algo}")
    ref_dtype = REFERENCE_DTYPE[dtype]
    if op == "fractional_max_pool":  # its window starts are computed in the input's dtype (torch's kernel
        ref_dtype = dtype  # and anyconv's alike): a wider reference dtype pools other windows
    low = [t.to(dtype) for t in base]
    mine = list(d.make(low[0]) if d.make else low)
    mine[0] = layout(mine[0], how)
    theirs = [t.to(ref_dtype) if t.is_floating_point() else t for t in mine]
    cl_conv = d.conv_like and how == "channels_last" and mine[0].dim() in (4, 5)
    # 2-d batched conv-like calls: torch's output is channels_last for a channels_last input, whatever the
    # dtype and backend (so also when the reference runs in another dtype); torch runs on the same layout
    # (_cl: strides really channels_last; a C = 1 tensor made channels_last keeps row-major strides and is
    # row-major to torch)
    expect_cl = cl_conv and _cl(mine[0]) and len(mine) > 1 and mine[1].dim() == 4
    if cl_conv and not expect_cl:  # torch 2.13's CPU conv3d segfaults on some channels_last_3d inputs: it gets
        theirs[0] = theirs[0].contiguous()  # a contiguous copy; values are compared, not the 3-d layout (whose
        # rule depends on torch's backend choice: tests/test_channels_last.py compares it with torch itself)
    grads = not inject and dtype in (torch.float32, torch.float64) and rng.random() < 0.34
    return classify(d, mine, theirs, dtype, expect_cl, algo, text, grads)


def classify(d: calls.Draw, mine: list[torch.Tensor], theirs: list[torch.Tensor], dtype: torch.dtype,
             expect_cl: bool, algo: str | None, text: str, grads: bool = False) -> tuple[str, str]:
    """Run anyconv on ``mine`` and the reference on ``theirs``; ``(class, description)``."""
    ours = d.ours if algo is None else (lambda *t: d.ours(*t, algorithm=algo))
    ref_dtype = theirs[0].dtype if theirs and theirs[0].is_floating_point() else REFERENCE_DTYPE[dtype]
    try:
        ref = d.ref(*theirs)
        ref_err = None
        if d.conv_like and 0 in ref.shape[ref.dim() - len(d.shapes[1]) + 2:]:  # the references give empty
            ref_err = ValueError("an empty spatial output (torch refuses it)")  # outputs where torch raises
    except Exception as e:  # noqa: BLE001 - torch's refusal, any type
        ref, ref_err = None, e
    try:
        out = ours(*mine)
    except (ValueError, TypeError) as e:
        msg = _message(e)
        if ref_err is not None:
            return "both_raise", text
        if algo not in (None, "auto") and "cannot serve this call" in str(e):
            return "declined", text
        if any(re.search(rx, str(e)) for rx, _ in NARROWINGS):
            return "narrowing", text
        return "refusal", f"{text} -> {msg}"
    except Exception as e:  # noqa: BLE001 - everything else is a crash
        return "crash", f"{text} -> {_message(e)}"
    if ref_err is not None:
        if any(re.search(rx, str(ref_err)) for rx, _ in EXTENSIONS):
            return "extension", text
        return "lenient", f"{text} -> torch: {_message(ref_err)}"
    diff = difference(out, ref, dtype, ref_dtype == dtype, expect_cl)
    if diff is None and grads:
        diff = _gradients(ours, d.ref, mine, theirs, dtype, d.make is not None)
    return ("ok", text) if diff is None else ("wrong", f"{text} -> {diff}")


def _gradients(ours: Any, ref: Any, mine: list[torch.Tensor], theirs: list[torch.Tensor], dtype: torch.dtype,
               first_only: bool) -> str | None:
    live = [i for i, t in enumerate(mine) if t.is_floating_point() and (i == 0 or not first_only)]

    def wrap(fn: Any, tensors: list[torch.Tensor]) -> Any:
        def part(*xs: torch.Tensor) -> torch.Tensor:
            full = list(tensors)
            for i, x in zip(live, xs):
                full[i] = x
            out = fn(*full)
            return out[0] if isinstance(out, tuple) else out

        return part

    try:
        _, grads, gy = outputs_and_grads(wrap(ours, mine), [mine[i] for i in live])
    except Exception as e:  # noqa: BLE001
        return f"backward raised {_message(e)}"
    _, ref_grads, _ = outputs_and_grads(wrap(ref, theirs), [theirs[i] for i in live], gy)
    for i, g, rg in zip(live, grads, ref_grads):
        try:
            assert_close(g, rg, dtype, f"grad {i}")
        except AssertionError as e:
            return str(e)
    return None


def run(seed: int, count: int, start: int = 0) -> tuple[Counter[str], list[str]]:
    """Classify calls ``start .. start + count - 1``; the counts and the failing calls' lines."""
    counts: Counter[str] = Counter()
    failures = []
    for index in range(start, start + count):
        cls, text = run_one(seed, index)
        if cls in FAILING and any(re.search(rx, text) for rx, _ in KNOWN_OPEN):
            cls = "known_open"
        counts[cls] += 1
        if cls in FAILING:
            failures.append(f"{cls}: {text}")
    return counts, failures


if __name__ == "__main__":  # python tests/fuzz.py SEED INDEX  or  SEED START COUNT
    torch.set_num_threads(1)
    args = [int(a) for a in sys.argv[1:]]
    if len(args) == 2:
        print(*run_one(*args))
    else:
        counts, failures = run(args[0], args[2], args[1])
        print(dict(counts))
        print("\n".join(failures))
