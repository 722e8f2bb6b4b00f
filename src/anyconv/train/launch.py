"""Starting ``N`` training processes on this machine (``anyconv train --nproc N``).

Apart from :mod:`.distributed` (the process group, sampler and batch norm that :mod:`.loop` uses),
because it calls :func:`.loop.train` in each new process: keeping it here keeps the imports one-way
(launch -> loop -> distributed).
"""

from __future__ import annotations

import os
import socket
from typing import Any

import torch


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, config: dict[str, Any], resume: str | None) -> None:
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(max(1, torch.get_num_threads() // world))
    from .config import TrainConfig
    from .loop import train

    train(TrainConfig.from_dict(config), resume=resume, print_fn=print if rank == 0 else (lambda *a, **k: None))


def spawn(config: dict[str, Any], nproc: int, resume: str | None = None) -> None:
    """Run ``train`` in ``nproc`` new processes (``torch.multiprocessing``, spawn start method)."""
    import torch.multiprocessing as mp

    mp.start_processes(_worker, args=(nproc, free_port(), config, resume), nprocs=nproc, start_method="spawn")
