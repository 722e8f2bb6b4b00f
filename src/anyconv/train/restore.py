"""Rebuild a trained model from its checkpoint (what ``anyconv eval`` and ``anyconv predict`` use)."""

from __future__ import annotations

import os
from typing import Any

import torch

from .checkpoint import load_checkpoint
from .config import TrainConfig


def model_from_checkpoint(
    path: str | os.PathLike[str], device: str = "cpu", algorithm: str | None = None
) -> tuple[torch.nn.Module, dict[str, Any], TrainConfig]:
    """The checkpoint's model (weights loaded, eval mode), the checkpoint and its config.

    ``algorithm`` replaces the run's anyconv algorithm (the weights do not depend on it).

    Raises:
        OSError, ValueError: missing, corrupt or foreign checkpoint (naming the file).
    """
    from ..models import create_model, with_torch_layers
    from .distributed import resolve_device

    ckpt = load_checkpoint(path, map_location="cpu")
    cfg = TrainConfig.from_dict(ckpt["config"])
    if algorithm is not None:
        cfg = cfg.replace(algorithm=algorithm)
    info = ckpt.get("data", {})
    shape = info.get("sample_shape") or [1]
    model = create_model(cfg.model, in_channels=int(shape[0]), num_classes=int(info.get("num_classes", 10)),
                         algorithm=cfg.algorithm)
    if cfg.layers == "torch":
        model = with_torch_layers(model)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise ValueError(f"checkpoint {os.fspath(path)!r} does not fit model {cfg.model!r}: {first}") from e
    return model.to(resolve_device(device)).eval(), ckpt, cfg


def check_samples(x: torch.Tensor, ckpt: dict[str, Any], source: str) -> torch.Tensor:
    """``x`` as a batch ``(N, *sample_shape)`` of the checkpoint's data, or a ValueError naming ``source``."""
    shape = tuple(ckpt.get("data", {}).get("sample_shape") or ())
    if shape and tuple(x.shape) == shape:
        x = x.unsqueeze(0)
    if shape and len(shape) == 2 and shape[0] == 1 and x.dim() == 2 and tuple(x.shape[1:]) == shape[1:]:
        x = x.unsqueeze(1)  # (N, L) signals -> (N, 1, L)
    if shape and tuple(x.shape[1:]) != shape:
        raise ValueError(f"{source}: samples of shape {tuple(x.shape[1:])} do not fit the model, which takes {shape}")
    return x.float()
