"""The speed benchmark suite: named cases in groups, shipped with the package for ``anyconv bench``.

Each :class:`Case` is one convolution call (``conv`` or ``conv_transpose``) with float32
tensors of the given shapes; sizes are kept small (batch 1-2) so that the whole suite runs
in a few minutes on two cores. ``QUICK`` names a subset that covers every group.

Groups and what they stand for (see issue 4):

- ``weak``-spot groups where torch is slow: ``large_dw`` (13x13, 31x31 depthwise), ``long1d``
  (k = 1023 / 4095 over 16k-64k samples), ``depthwise`` (3x3 and 4-tap conv1d), ``grouped``
  (ResNeXt g=32), ``first`` (3-channel first layers), ``conv3d``, ``transposed``, ``pointwise`` (1x1);
- ``dense`` groups where oneDNN is near peak: ``resnet18``, ``vgg``, ``dilated``, ``conv1d``.

Examples:
    >>> from anyconv.bench.suite import CASES, select
    >>> len(select(["long1d"])) >= 2
    True
    >>> select(["resnet18.conv3x3_56"])[0].flops() > 0
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.shapes import prod

WEAK_GROUPS = ("large_dw", "long1d", "depthwise", "grouped", "first", "conv3d", "transposed", "pointwise")
DENSE_GROUPS = ("resnet18", "vgg", "dilated", "conv1d")


@dataclass(frozen=True)
class Case:
    """One benchmark call: ``op(x, w, **kwargs)`` with ``x`` of ``input`` and ``w`` of ``weight``."""

    group: str
    name: str
    input: tuple[int, ...]
    weight: tuple[int, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    op: str = "conv"

    @property
    def key(self) -> str:
        return f"{self.group}.{self.name}"

    def flops(self) -> int:
        """Multiply-adds times 2 of the forward call (transposed: over the input positions)."""
        k = prod(self.weight[2:])
        if self.op == "conv_transpose":
            c_out_per_group = self.weight[1]
            return 2 * self.input[0] * self.input[1] * prod(self.input[2:]) * c_out_per_group * k
        out = _conv_out(self)
        return 2 * self.input[0] * self.weight[0] * prod(out) * self.weight[1] * k


def _conv_out(case: Case) -> tuple[int, ...]:
    from ..core.args import padding_arg
    from ..core.spec import resolve_padding

    n = len(case.weight) - 2
    s = case.kwargs.get("stride", 1)
    d = case.kwargs.get("dilation", 1)
    s = (s,) * n if isinstance(s, int) else tuple(s)
    d = (d,) * n if isinstance(d, int) else tuple(d)
    pad = padding_arg("bench", case.kwargs.get("padding", 0), n)
    pairs = resolve_padding("bench", pad, case.input[2:], case.weight[2:], s, d)
    from ..core.shapes import conv_output_size

    return tuple(
        conv_output_size(i, k, ss, dd, pb, pa)
        for i, k, ss, dd, (pb, pa) in zip(case.input[2:], case.weight[2:], s, d, pairs)
    )


def _c(group: str, name: str, x: Sequence[int], w: Sequence[int], op: str = "conv", **kw: Any) -> Case:
    return Case(group, name, tuple(x), tuple(w), kw, op)


CASES: tuple[Case, ...] = (
    # ResNet-18 layers (224x224 input)
    _c("resnet18", "stem7x7_s2", (1, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3),
    _c("resnet18", "conv3x3_56", (2, 64, 56, 56), (64, 64, 3, 3), padding=1),
    _c("resnet18", "conv3x3_28", (2, 128, 28, 28), (128, 128, 3, 3), padding=1),
    _c("resnet18", "conv3x3_14", (2, 256, 14, 14), (256, 256, 3, 3), padding=1),
    _c("resnet18", "conv3x3_7", (2, 512, 7, 7), (512, 512, 3, 3), padding=1),
    _c("resnet18", "conv3x3_s2", (2, 64, 56, 56), (128, 64, 3, 3), stride=2, padding=1),
    _c("resnet18", "conv1x1_s2", (2, 64, 56, 56), (128, 64, 1, 1), stride=2),
    _c("vgg", "conv3x3_128_56", (1, 128, 56, 56), (128, 128, 3, 3), padding=1),
    _c("vgg", "conv3x3_256_28", (1, 256, 28, 28), (256, 256, 3, 3), padding=1),
    _c("dilated", "d2_64_56", (1, 64, 56, 56), (64, 64, 3, 3), padding=2, dilation=2),
    _c("dilated", "d4_64_56", (1, 64, 56, 56), (64, 64, 3, 3), padding=4, dilation=4),
    _c("conv1d", "k3", (2, 128, 1024), (128, 128, 3), padding=1),
    _c("conv1d", "k5", (2, 128, 1024), (128, 128, 5), padding=2),
    _c("conv1d", "k7", (2, 128, 1024), (128, 128, 7), padding=3),
    # torch's weak spots
    _c("depthwise", "dw3x3_s1_144_56", (2, 144, 56, 56), (144, 1, 3, 3), padding=1, groups=144),
    _c("depthwise", "dw3x3_s2_144_56", (2, 144, 56, 56), (144, 1, 3, 3), stride=2, padding=1, groups=144),
    _c("depthwise", "dw4_conv1d_512", (2, 512, 2048), (512, 1, 4), padding="causal", groups=512),
    _c("pointwise", "pw_144_24_56", (2, 144, 56, 56), (24, 144, 1, 1)),
    _c("pointwise", "pw_64_256_56", (2, 64, 56, 56), (256, 64, 1, 1)),
    _c("grouped", "g32_128_56", (1, 128, 56, 56), (128, 4, 3, 3), padding=1, groups=32),
    _c("grouped", "g32_256_28", (1, 256, 28, 28), (256, 8, 3, 3), padding=1, groups=32),
    _c("first", "rgb3x3_s1_224", (1, 3, 224, 224), (64, 3, 3, 3), padding=1),
    _c("first", "rgb3x3_s2_224", (1, 3, 224, 224), (32, 3, 3, 3), stride=2, padding=1),
    _c("conv3d", "c3x3x3_32_16", (1, 32, 16, 16, 16), (32, 32, 3, 3, 3), padding=1),
    _c("conv3d", "c3x3x3_16_32", (1, 16, 32, 32, 32), (16, 16, 3, 3, 3), padding=1),
    _c("transposed", "t4x4_s2_64_32", (2, 64, 32, 32), (64, 32, 4, 4), "conv_transpose", stride=2, padding=1),
    _c("transposed", "t3d_2x2x2_s2", (1, 32, 16, 16, 16), (32, 16, 2, 2, 2), "conv_transpose", stride=2),
    _c("transposed", "t3d_3x3x3_s1", (1, 16, 16, 16, 16), (16, 16, 3, 3, 3), "conv_transpose", padding=1),
    _c("large_dw", "dw13x13_128_56", (1, 128, 56, 56), (128, 1, 13, 13), padding=6, groups=128),
    _c("large_dw", "dw31x31_64_56", (1, 64, 56, 56), (64, 1, 31, 31), padding=15, groups=64),
    _c("long1d", "k1023_16k", (1, 1, 16384), (1, 1, 1023), padding=511),
    _c("long1d", "k4095_64k", (1, 1, 65536), (1, 1, 4095), padding=2047),
    _c("long1d", "k1023_32k_c4", (1, 4, 32768), (4, 4, 1023), padding=511),
)

QUICK = (
    "resnet18.conv3x3_28", "vgg.conv3x3_256_28", "dilated.d2_64_56", "conv1d.k3", "depthwise.dw3x3_s1_144_56", "depthwise.dw4_conv1d_512",
    "pointwise.pw_64_256_56", "grouped.g32_128_56", "first.rgb3x3_s2_224", "conv3d.c3x3x3_32_16",
    "transposed.t4x4_s2_64_32", "large_dw.dw31x31_64_56", "long1d.k1023_16k",
)


def groups() -> tuple[str, ...]:
    """Group names in suite order."""
    return tuple(dict.fromkeys(c.group for c in CASES))


def select(names: Sequence[str] = (), quick: bool = False) -> list[Case]:
    """Cases named by group or ``group.case`` (all when ``names`` is empty); ``quick``: the subset.

    Raises:
        ValueError: for a name that is neither a group nor a case.
    """
    chosen = [c for c in CASES if c.key in QUICK] if quick else list(CASES)
    if not names:
        return chosen
    known = {c.key for c in CASES} | set(groups())
    for name in names:
        if name not in known:
            raise ValueError(
                f"bench: `case` must be a group ({', '.join(groups())}) or group.case; got case={name!r}"
            )
    return [c for c in chosen if c.group in names or c.key in names]
