"""Checkpoints: one ``torch.save`` dict of plain data and tensors, read back with ``weights_only=True``.

A checkpoint holds everything a run needs to continue exactly where it stopped: model,
optimizer and scheduler state, the epoch and the position inside it (batches already
done), the RNG states, the running sums of the current epoch and the metrics history, plus
the resolved config and a description of the data (so ``anyconv eval``/``predict`` can
rebuild the model). Writes go to a temporary file first and are renamed into place, so a
run killed while saving leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import zipfile
from typing import Any

import torch

FORMAT = "anyconv-checkpoint"
VERSION = 1
REQUIRED = ("format", "version", "config", "model")


def rng_state() -> dict[str, Any]:
    """The torch RNG states (CPU and every CUDA device) as tensors."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> None:
    """Atomically write ``payload`` (plus format and version) to ``path``."""
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    torch.save({"format": FORMAT, "version": VERSION, **payload}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``torch.load(..., weights_only=True)``).

    ``path`` may be a run folder, whose ``last.pt`` is read.

    Raises:
        OSError: the file does not exist.
        ValueError: the file is not an anyconv checkpoint or is corrupt (naming the file and why).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "last.pt")
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # a foreign or damaged file can fail anywhere inside torch.load
        if isinstance(e, OSError) and not isinstance(e, zipfile.BadZipFile):
            raise
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        why = next((line for line in lines if line.startswith(("Unsupported", "Trying to load"))), None)
        why = why or (lines[0] if lines and not lines[0].startswith("Weights only") else type(e).__name__)
        raise ValueError(
            f"checkpoint {path!r} cannot be read: corrupt, not a torch.save file, or holding more than "
            f"tensors and plain data ({why[:200]})"
        ) from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"checkpoint {path!r} is not an anyconv checkpoint (no format={FORMAT!r} entry)")
    missing = [k for k in REQUIRED if k not in ckpt]
    if missing:
        raise ValueError(f"checkpoint {path!r} lacks the entries {missing}")
    if ckpt["version"] > VERSION:
        raise ValueError(f"checkpoint {path!r} has version {ckpt['version']}; this anyconv reads <= {VERSION}")
    return ckpt
