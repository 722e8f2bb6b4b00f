"""Helpers shared by the anyconv.nn module tests: paired construction, gradient comparison, pads."""

from __future__ import annotations

import math

import torch

from anyconv import nn as anynn

TIGHT = {"atol": 1e-10, "rtol": 1e-10}
TORCH_CONV = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}
ANY_CONV = {1: anynn.Conv1d, 2: anynn.Conv2d, 3: anynn.Conv3d}
TORCH_CONVT = {1: torch.nn.ConvTranspose1d, 2: torch.nn.ConvTranspose2d, 3: torch.nn.ConvTranspose3d}
ANY_CONVT = {1: anynn.ConvTranspose1d, 2: anynn.ConvTranspose2d, 3: anynn.ConvTranspose3d}
def pair(seed: int, cls_a: type, cls_b: type, *args, **kwargs) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The same module from two classes, each built right after torch.manual_seed(seed)."""
    torch.manual_seed(seed)
    a = cls_a(*args, **kwargs)
    torch.manual_seed(seed)
    b = cls_b(*args, **kwargs)
    return a, b


def same_pads(i: int, k: int, s: int, d: int, lower: bool) -> tuple[int, int]:
    # API.md: total = max((ceil(i / s) - 1) * s + (k - 1) * d + 1 - i, 0); odd extra at the end
    total = max((math.ceil(i / s) - 1) * s + (k - 1) * d + 1 - i, 0)
    return (total - total // 2, total // 2) if lower else (total // 2, total - total // 2)


def explicit_pairs(padding, n, spatial, kernel, stride, dilation):
    kernel, stride, dilation = ((v,) * n if isinstance(v, int) else tuple(v) for v in (kernel, stride, dilation))
    if padding == "causal":
        return [((k - 1) * d, 0) for k, d in zip(kernel, dilation)]
    if padding in ("same", "same_lower"):
        return [same_pads(i, k, s, d, padding == "same_lower") for i, k, s, d in zip(spatial, kernel, stride, dilation)]
    return [p if isinstance(p, tuple) else (p, p) for p in padding]


def grads(m: torch.nn.Module, x: torch.Tensor, g: torch.Tensor, **fw) -> list[torch.Tensor]:
    x = x.detach().clone().requires_grad_(True)
    m.zero_grad()
    y = m(x, **fw)
    (y * g).sum().backward()
    out = [y.detach(), x.grad, m.weight.grad]
    return out + ([m.bias.grad] if m.bias is not None else [])


def check_same(a: torch.nn.Module, b: torch.nn.Module, x: torch.Tensor, **fw) -> None:
    g = torch.randn(b(x, **fw).shape, dtype=x.dtype)
    for u, v in zip(grads(a, x, g, **fw), grads(b, x, g, **fw)):
        torch.testing.assert_close(u, v, **TIGHT)
