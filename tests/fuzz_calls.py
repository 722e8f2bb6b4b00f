"""Random calls for the differential fuzzer (``fuzz.py``): one generator per op.

``draw(rng, op)`` returns ``(ours, ref, tensors, kwargs, text)``: ``ours``/``ref`` are called as
``fn(*tensors)``; ``ref`` is torch's functional op with the same arguments where torch has the
form, else an independent reference of ``references.py``. Parameter values take every form
torch accepts (an int, a tuple, a list, a one-element sequence); padding strings, pairs,
padding_mode and flip (anyconv-only for some values) go to ``references.ref_conv``.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

import anyconv.functional as AF
from references import ref_conv, ref_conv_transpose

Fn = Callable[..., Any]


@dataclass
class Draw:
    """A drawn call: ``ours(*tensors)`` vs ``ref(*tensors)``; ``make`` builds the tensors from
    the first shape's values (max_unpool: torch's max_pool values and indices)."""

    ours: Fn
    ref: Fn
    shapes: list[tuple[int, ...]]
    kwargs: dict[str, Any]
    conv_like: bool = False
    make: Callable[[torch.Tensor], tuple[torch.Tensor, ...]] | None = None


def _call(fn: Fn, args: tuple[Any, ...], kw: dict[str, Any]) -> Fn:
    """``fn(*tensors, *args, **kw)``."""

    def call(*tensors: torch.Tensor) -> Any:
        return fn(*tensors, *args, **kw)

    return call


def form(rng: random.Random, values: list[int]) -> Any:
    """``values`` (one per dim) as an int, a tuple, a list or a one-element sequence."""
    same = len(set(values)) == 1
    choice = rng.randrange(5 if same else 2)
    return [tuple(values), list(values), values[0], (values[0],), [values[0]]][choice]


def expand(kw: dict[str, Any], n: int) -> dict[str, Any]:
    """One-element sequences repeated to N (the references take an int or N values)."""
    return {k: (v[0] if isinstance(v, (list, tuple)) and len(v) == 1 and n > 1 else v) for k, v in kw.items()}


def _spatial(rng: random.Random, eff: list[int], extra: int = 4) -> list[int]:
    """Sizes that fit the effective kernels, now and then one element too small."""
    if rng.random() < 0.05:
        return [max(1, e - 1) for e in eff]
    return [e + rng.randrange(extra) for e in eff]


def _batch_shape(rng: random.Random, channels: int, spatial: list[int]) -> tuple[int, ...]:
    r = rng.random()
    if r < 0.2:
        return (channels, *spatial)  # unbatched
    return (0 if r < 0.27 else rng.randint(1, 2), channels, *spatial)


def conv(rng: random.Random, n: int) -> Draw:
    groups = rng.choice([1, 1, 1, 2, 3])
    c_in, c_out = groups * rng.randint(1, 2), groups * rng.randint(1, 2)
    k = [rng.randint(1, 3) for _ in range(n)]
    s = [rng.randint(1, 3) for _ in range(n)]
    d = [rng.randint(1, 2) for _ in range(n)]
    eff = [(kk - 1) * dd + 1 for kk, dd in zip(k, d)]
    kw: dict[str, Any] = {"stride": form(rng, s), "dilation": form(rng, d), "groups": groups}
    torch_form = True
    r = rng.random()
    if r < 0.45:
        kw["padding"] = form(rng, [rng.randint(0, 2) for _ in range(n)])
    elif r < 0.6:
        kw["padding"] = rng.choice(["valid", "same"])
        torch_form = kw["padding"] == "valid" or all(v == 1 for v in s)
        if kw["padding"] == "same" and torch_form:
            kw["stride"] = 1
    elif r < 0.8:
        kw["padding"] = rng.choice(["same", "same_lower", "causal"])
        torch_form = False
    else:
        kw["padding"] = tuple((rng.randint(0, 2), rng.randint(0, 2)) for _ in range(n))
        torch_form = False
    if rng.random() < 0.2:
        kw["padding_mode"] = rng.choice(["reflect", "replicate", "circular"])
        torch_form = False
    if rng.random() < 0.1:
        kw["flip"] = True
        torch_form = False
    x = _batch_shape(rng, c_in, _spatial(rng, eff))
    shapes = [x, (c_out, c_in // groups, *k)] + ([(c_out,)] if rng.random() < 0.5 else [])
    if torch_form and n <= 3:
        ref: Fn = functools.partial(getattr(F, f"conv{n}d"), **kw)
    else:
        ref = functools.partial(ref_conv, **expand(kw, n))
    ours = getattr(AF, f"conv{n}d") if n <= 3 and rng.random() < 0.5 else AF.conv
    return Draw(functools.partial(ours, **kw), ref, shapes, kw, True)


def conv_transpose(rng: random.Random, n: int) -> Draw:
    groups = rng.choice([1, 1, 2])
    c_in, per_group = groups * rng.randint(1, 2), rng.randint(1, 2)
    k = [rng.randint(1, 3) for _ in range(n)]
    s = [rng.randint(1, 3) for _ in range(n)]
    d = [rng.randint(1, 2) for _ in range(n)]
    p = [rng.randint(0, 1) for _ in range(n)]
    kw: dict[str, Any] = {"stride": form(rng, s), "dilation": form(rng, d), "groups": groups}
    spatial = [rng.randint(1, 4) for _ in range(n)]
    torch_form = True
    r = rng.random()
    if r < 0.6:
        kw["padding"] = form(rng, p)
        op = [rng.randint(0, max(ss, dd) - 1) for ss, dd in zip(s, d)]
        if rng.random() < 0.4:
            kw["output_padding"] = form(rng, op)
        elif rng.random() < 0.3:  # torch's module form: output_size picks output_padding
            full = [(i - 1) * ss - 2 * pp + (kk - 1) * dd + 1 for i, ss, pp, kk, dd in zip(spatial, s, p, k, d)]
            kw["output_size"] = [f + o for f, o in zip(full, op)]
            torch_form = False
    else:
        kw["padding"] = rng.choice(["valid", "same", tuple((rng.randint(0, 1), rng.randint(0, 2)) for _ in range(n))])
        torch_form = False
    x = _batch_shape(rng, c_in, spatial)
    shapes = [x, (c_in, per_group, *k)] + ([(per_group * groups,)] if rng.random() < 0.5 else [])
    if torch_form and n <= 3:
        ref: Fn = functools.partial(getattr(F, f"conv_transpose{n}d"), **kw)
    else:
        ref = functools.partial(ref_conv_transpose, **expand(kw, n))
    ours = getattr(AF, f"conv_transpose{n}d") if n <= 3 and rng.random() < 0.5 else AF.conv_transpose
    return Draw(functools.partial(ours, **kw), ref, shapes, kw, True)


def pool(rng: random.Random, n: int, kind: str) -> Draw:
    k = [rng.randint(1, 3) for _ in range(n)]
    d = [rng.randint(1, 2) for _ in range(n)] if kind == "max" else [1] * n
    eff = [(kk - 1) * dd + 1 for kk, dd in zip(k, d)]
    # torch's lp_pool unpacks its kernel: no one-element sequence there
    kw: dict[str, Any] = {"kernel_size": form(rng, k) if kind != "lp" else rng.choice([tuple(k), list(k)])}
    r = rng.random()
    if r < 0.6:
        kw["stride"] = form(rng, [rng.randint(1, 3) for _ in range(n)])
    elif r < 0.75:
        kw["stride"] = rng.choice([None, (), []])
    if kind != "lp":
        big = rng.random() < 0.05  # beyond half the kernel: torch refuses
        kw["padding"] = form(rng, [rng.randint(0, kk // 2) + (1 if big else 0) for kk in k])
    if kind == "max":
        kw["dilation"] = form(rng, d)
        kw["return_indices"] = rng.random() < 0.4
    kw["ceil_mode"] = rng.random() < 0.4
    if kind == "avg":
        kw["count_include_pad"] = rng.random() < 0.5
        if n > 1 and rng.random() < 0.3:
            kw["divisor_override"] = rng.choice([1, 2, 3, -2])
    args: tuple[Any, ...] = ()
    if kind == "lp":
        args = (rng.choice([1, 2, 3, 1.5, 2.0]),)
        if n == 1:
            kw["kernel_size"] = k[0]  # torch's lp_pool1d multiplies by an int kernel
    x = _batch_shape(rng, rng.randint(1, 3), _spatial(rng, eff))
    ours_kw = dict(kw)
    if rng.random() < 0.5:  # the generic op takes N from a sequence kernel
        ours_kw["kernel_size"] = tuple(k)
        fn = getattr(AF, f"{kind}_pool")
    else:
        fn = getattr(AF, f"{kind}_pool{n}d")
    return Draw(_call(fn, args, ours_kw), _call(getattr(F, f"{kind}_pool{n}d"), args, kw), [x],
                {**kw, **({"norm_type": args[0]} if args else {}), "op": fn.__name__})


def adaptive(rng: random.Random, n: int, kind: str) -> Draw:
    spatial = [rng.randint(1, 7) for _ in range(n)]
    sizes: list[Any] = [rng.randint(1, s + 2) for s in spatial]
    if n > 1 and rng.random() < 0.2:
        sizes[rng.randrange(n)] = None
    kw: dict[str, Any] = {"output_size": form(rng, sizes) if None not in sizes else tuple(sizes)}
    if kind == "max":
        kw["return_indices"] = rng.random() < 0.4
    x = _batch_shape(rng, rng.randint(1, 3), spatial)
    ref = functools.partial(getattr(F, f"adaptive_{kind}_pool{n}d"), **kw)
    generic = rng.random() < 0.5 and not (isinstance(kw["output_size"], int) and len(x) == n + 1)
    ours = getattr(AF, f"adaptive_{kind}_pool" if generic else f"adaptive_{kind}_pool{n}d")
    return Draw(functools.partial(ours, **kw), ref, [x], kw)


def fold_unfold(rng: random.Random, which: str) -> Draw:
    k = [rng.randint(1, 3) for _ in range(2)]
    d = [rng.randint(1, 2) for _ in range(2)]
    p = [rng.randint(0, 2) for _ in range(2)]
    s = [rng.randint(1, 3) for _ in range(2)]
    kw: dict[str, Any] = {"kernel_size": form(rng, k), "dilation": form(rng, d), "padding": form(rng, p),
                          "stride": form(rng, s)}
    eff = [(kk - 1) * dd + 1 for kk, dd in zip(k, d)]
    spatial = _spatial(rng, [max(1, e - 2 * pp) for e, pp in zip(eff, p)])
    c = rng.randint(1, 3)
    if which == "unfold":
        x = _batch_shape(rng, c, spatial)
        return Draw(functools.partial(AF.unfold, **kw), functools.partial(F.unfold, **kw), [x], kw)
    blocks = 1
    for i, e, pp, ss in zip(spatial, eff, p, s):
        blocks *= max((i + 2 * pp - e) // ss + 1, 0)
    blocks += 1 if rng.random() < 0.05 else 0  # a wrong block count now and then
    kw["output_size"] = form(rng, spatial)
    x = _batch_shape(rng, c * k[0] * k[1], [blocks])
    return Draw(functools.partial(AF.fold, **kw), functools.partial(F.fold, **kw), [x], kw)


def max_unpool(rng: random.Random, n: int) -> Draw:
    k = [rng.randint(1, 3) for _ in range(n)]
    full = rng.choice([tuple, list])  # torch's max_unpool takes no one-element sequence
    kw: dict[str, Any] = {"kernel_size": full(k), "padding": full([rng.randint(0, kk // 2) for kk in k])}
    spatial = [kk + rng.randrange(5) for kk in k]
    kw["output_size"] = rng.choice([tuple(spatial), list(spatial)])  # torch takes no other form here
    x = _batch_shape(rng, rng.randint(1, 3), spatial)
    if len(x) == n + 1 and n == 3:
        x = (1, *x)  # torch's max_unpool3d misreads unbatched indices
    pool_kw = {"kernel_size": kw["kernel_size"], "padding": kw["padding"], "return_indices": True}

    def make(t: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(getattr(F, f"max_pool{n}d")(t, **pool_kw))

    ours = getattr(AF, f"max_unpool{n}d") if rng.random() < 0.5 else AF.max_unpool
    return Draw(functools.partial(ours, **kw), functools.partial(getattr(F, f"max_unpool{n}d"), **kw), [x], kw,
                make=make)


def fractional(rng: random.Random, n: int) -> Draw:
    k = [rng.randint(1, 3) for _ in range(n)]
    spatial = [kk + rng.randrange(4) for kk in k]
    kw: dict[str, Any] = {"kernel_size": form(rng, k), "return_indices": rng.random() < 0.4}
    if rng.random() < 0.6:
        kw["output_size"] = form(rng, [rng.randint(1, i - kk + 1) for i, kk in zip(spatial, k)])
    else:
        kw["output_ratio"] = tuple(rng.choice([0.5, 0.7, 0.9]) for _ in range(n))
    x = _batch_shape(rng, rng.randint(1, 3), spatial)
    seed = rng.randrange(2**31)

    def make(t: torch.Tensor) -> tuple[torch.Tensor, ...]:
        b = t.shape[0] if t.dim() == n + 2 else 1
        gen = torch.Generator().manual_seed(seed)
        return t, torch.rand((b, t.shape[-n - 1], n), generator=gen, dtype=torch.float64).to(t.dtype)

    def call(fn: Fn) -> Fn:
        return lambda t, r: fn(t, **kw, _random_samples=r)

    ref = call(getattr(F, f"fractional_max_pool{n}d"))
    if rng.random() < 0.5:
        return Draw(call(getattr(AF, f"fractional_max_pool{n}d")), ref, [x], kw, make=make)
    kw = {**kw, "kernel_size": tuple(k)}  # the generic op takes N from a sequence kernel
    return Draw(call(AF.fractional_max_pool), ref, [x], kw, make=make)
