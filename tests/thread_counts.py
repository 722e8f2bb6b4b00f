"""Run a computation at several torch thread counts (the native kernels' bit-determinism tests)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

import anyconv.functional as AF


def at_thread_counts(run: Callable[[], torch.Tensor], counts: Sequence[int] = (1, 2, 3)) -> list[torch.Tensor]:
    """``run()`` at each of ``counts`` torch threads, in order (the thread count restored after)."""
    before, results = torch.get_num_threads(), []
    try:
        for threads in counts:
            torch.set_num_threads(threads)
            results.append(run())
    finally:
        torch.set_num_threads(before)
    return results


def weight_grads(x: torch.Tensor, w: torch.Tensor, gy: torch.Tensor, **conv: object) -> list[torch.Tensor]:
    """anyconv's conv2d weight gradient for ``gy`` at 1, 2 and 3 threads."""
    def run() -> torch.Tensor:
        wa = w.clone().requires_grad_(True)
        return torch.autograd.grad(AF.conv2d(x, wa, **conv), wa, gy)[0]  # type: ignore[arg-type]

    return at_thread_counts(run)
