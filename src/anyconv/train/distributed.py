"""Data-parallel training with PyTorch's distributed engine: gloo on CPU, NCCL on CUDA.

Two ways in: ``torchrun --nproc-per-node N -m anyconv train ...`` (torchrun sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``PORT``), or ``anyconv train --nproc N``, which
spawns N processes with ``torch.multiprocessing`` on a free local port. Each rank sees
``batch_size / N`` examples of every global batch (a ``DistributedSampler`` shard); gradients
are averaged by ``DistributedDataParallel``; BN models use ``SyncBatchNorm``; rank 0 alone
writes logs and checkpoints.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler


@dataclass(frozen=True)
class Context:
    """Where this process sits: its rank, the world size and its device."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(device: str) -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA when available) as a torch.device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"train: `device` must be cpu, cuda, cuda:N or auto; got device={device!r}") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"train: `device` must be a device this machine has; got device={device!r} (no CUDA)")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"train: `device` must be cpu, cuda, cuda:N or auto; got device={device!r}")
    return dev


def setup(device: str) -> Context:
    """Join the process group when launched by torchrun/spawn (``WORLD_SIZE > 1``), else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    dev = resolve_device(device)
    if world <= 1:
        return Context(0, 1, dev)
    rank = int(os.environ["RANK"])
    if dev.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", rank))
        dev = torch.device("cuda", local % torch.cuda.device_count())
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo", rank=rank, world_size=world)
    return Context(rank, world, dev)


def teardown() -> None:
    """Leave the process group (if any)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: list[float], ctx: Context) -> list[float]:
    """Sum a few numbers over the ranks (identity in a single process)."""
    if ctx.world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return t.tolist()


class GlooSyncBatchNorm(torch.nn.modules.batchnorm._BatchNorm):
    r"""Batch norm over the global batch on CPU (torch's ``SyncBatchNorm`` serves CUDA only).

    In training, every rank all-reduces its per-channel ``[sum x, sum x^2, count]`` with the
    differentiable ``torch.distributed.nn.all_reduce``, so the statistics, the running
    averages and the gradients are those of one process seeing the whole global batch:
    ``mean = S1 / n``, ``var = S2 / n - mean^2``, running var updated with ``var * n / (n - 1)``.
    Existing ``BatchNorm*d`` layers become this class in place (same parameters and buffers).
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"batch norm: input must have a channel dim; got shape {tuple(input.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not dist.is_initialized():
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        c, dims = x.shape[1], [0, *range(2, x.dim())]
        count = x.new_full((1,), x.numel() // c)
        stats = all_reduce(torch.cat([x.sum(dims), (x * x).sum(dims), count]))  # (2C + 1,) summed over ranks
        n = stats[-1]
        mean = stats[:c] / n
        var = stats[c : 2 * c] / n - mean * mean
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)  # type: ignore[union-attr,operator]
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)  # type: ignore[arg-type]
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * n / (n - 1), alpha=m)
        shape = [1, c] + [1] * (x.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def wrap_model(model: torch.nn.Module, ctx: Context) -> torch.nn.Module:
    """Synchronised batch norm + ``DistributedDataParallel`` when there are several ranks.

    BN layers become ``torch.nn.SyncBatchNorm`` on CUDA and :class:`GlooSyncBatchNorm` on CPU.
    """
    if ctx.world == 1:
        return model
    if ctx.device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    else:
        for m in model.modules():
            if type(m) in (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d):
                m.__class__ = GlooSyncBatchNorm
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


class ResumableSampler(DistributedSampler):  # type: ignore[type-arg]
    """``DistributedSampler`` (seeded shuffle per epoch, shard ``rank::world``) that can skip ahead.

    With ``world == 1`` the order is the whole epoch's permutation, and the union of the ranks'
    k-th local batches is the k-th global batch, so N ranks see the same global batches as one.
    """

    def __init__(self, n: int, ctx: Context, seed: int) -> None:
        super().__init__(range(n), num_replicas=ctx.world, rank=ctx.rank, shuffle=True, seed=seed)  # type: ignore[arg-type]
        self.start = 0

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.start :])
