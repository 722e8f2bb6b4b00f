"""Checkpoints: one ``torch.save`` dict of plain data and tensors, read back with ``weights_only=True``.

A checkpoint holds everything a run needs to continue exactly where it stopped: model,
optimizer and scheduler state, the epoch and the position inside it (batches already
done), the RNG states, the running sums of the current epoch and the metrics history, plus
the resolved config and a description of the data (so ``anyconv eval``/``predict`` can
rebuild the model).

Safety:

- Writes go to ``<name>.tmp<pid>`` first, which is flushed and ``fsync``-ed, then renamed into
  place, and the folder is ``fsync``-ed after the rename: a run killed (or a machine losing
  power) while saving leaves the previous checkpoint intact.
- Temporary files left by a kill during a save are removed at the next save and at resume
  (:func:`remove_stale_temps`: those whose pid is not a live process).
- Reading never unpickles anything but tensors and plain data (``weights_only=True``); a
  file that needs more raises :class:`UnsafePickleError`. A damaged file (empty, truncated,
  not a ``torch.save`` archive) raises a one-line ``ValueError`` naming the file, what is
  wrong, and which other intact checkpoint in the same folder can be used instead.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import zipfile
from typing import Any

import torch

FORMAT = "anyconv-checkpoint"
VERSION = 1
REQUIRED = ("format", "version", "config", "model")
# the marker torch puts in the message of a weights_only refusal
_REFUSED = "Weights only load failed"


class UnsafePickleError(ValueError):
    """A torch file whose pickle needs more than tensors and plain data (``weights_only`` refused it).

    Attributes:
        path: the file.
        detail: torch's one-line reason, e.g. ``Unsupported global: GLOBAL io.open ...``.
    """

    def __init__(self, what: str, path: str, detail: str) -> None:
        super().__init__(
            f"{what} {path!r} holds more than tensors and plain data ({detail}); "
            "unpickling it could run code, so it was not loaded"
        )
        self.path, self.detail = path, detail


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


def _pid_alive(pid: int) -> bool:
    if pid <= 0 or pid == os.getpid() or os.name != "posix":
        return False  # our own pid's file is from a failed earlier save; elsewhere: no side-effect-free check
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True  # a live process of another user
    except (OSError, OverflowError):
        return False
    return True


def remove_stale_temps(path: str | os.PathLike[str]) -> list[str]:
    """Remove the ``<path>.tmp<pid>`` siblings of ``path`` whose pid is not a live process.

    A kill during :func:`save_checkpoint` leaves such a file behind (it may be incomplete).
    Files of a live process (a save in progress) are kept; so are files of any other name.

    Returns:
        The removed paths.
    """
    path = os.fspath(path)
    folder, name = os.path.split(path)
    try:
        names = os.listdir(folder or ".")
    except OSError:
        return []
    pattern = re.compile(re.escape(name) + r"\.tmp(\d+)")
    removed = []
    for entry in names:
        m = pattern.fullmatch(entry)
        if m and not _pid_alive(int(m.group(1))):
            stale = os.path.join(folder, entry)
            with contextlib.suppress(FileNotFoundError):
                os.remove(stale)
                removed.append(stale)
    return removed


def _fsync_dir(folder: str) -> None:
    """Make a rename inside ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the rename itself is still atomic
    finally:
        os.close(fd)


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> None:
    """Atomically and durably write ``payload`` (plus format and version) to ``path``.

    Order: remove stale temporary files (:func:`remove_stale_temps`), write
    ``<path>.tmp<pid>``, flush and ``fsync`` it, rename it onto ``path``, ``fsync`` the folder.
    A failure (or Ctrl-C) while writing removes the temporary file and leaves ``path`` as it was.
    """
    path = os.fspath(path)
    remove_stale_temps(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            torch.save({"format": FORMAT, "version": VERSION, **payload}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _fsync_dir(os.path.dirname(path) or ".")


def damage(path: str | os.PathLike[str]) -> str | None:
    """What is wrong with the ``torch.save`` file ``path``, or None if it looks intact.

    Checks the size, the zip signature, the zip directory and every member's CRC-32 (which
    ``torch.load`` does not check: a flipped byte in a tensor would load silently). A file in
    the legacy (pre-1.6, bare pickle) format cannot be verified and passes.
    """
    path = os.fspath(path)
    size = os.path.getsize(path)
    if size == 0:
        return "is empty (0 bytes)"
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:1] == b"\x80":  # legacy torch.save: a pickle stream (protocol marker), nothing to verify
        return None
    if head != b"PK\x03\x04":
        return f"is not a torch.save archive ({size} bytes starting with {head.hex()}; expected 504b0304)"
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        return (f"is truncated or damaged: {size} bytes that start like a torch.save archive but whose "
                f"contents are cut or unreadable ({e})")
    if bad is not None:
        return f"is damaged: its member {bad!r} fails its CRC check ({size} bytes)"
    return None


def read_torch_file(path: str | os.PathLike[str], what: str = "file", map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` after :func:`damage`, with one-line errors naming ``what`` and the file.

    Raises:
        OSError: the file cannot be opened.
        UnsafePickleError: the file holds more than tensors and plain data (nothing is unpickled
            beyond them).
        ValueError: the file is empty, truncated, damaged or not a ``torch.save`` file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        open(path, "rb").close()  # the OSError of the platform: does not exist, is a folder, ...
    why = damage(path)
    if why is not None:
        raise ValueError(f"{what} {path!r} {why}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if _REFUSED not in str(e) or "Unsupported operand" in str(e):  # the latter: garbage, not a refusal
            raise ValueError(f"{what} {path!r} cannot be unpickled ({_first_line(e)})") from e
        lines = [line.strip() for line in str(e).splitlines()]
        detail = next((line for line in lines if "Unsupported" in line), "a global outside the allowlist")
        detail = detail.removeprefix("WeightsUnpickler error: ").split(" was not an allowed")[0]
        raise UnsafePickleError(what, path, detail[:200]) from None
    except Exception as e:  # a damaged file fails anywhere in torch.load: RuntimeError, OSError (EINVAL), ...
        raise ValueError(f"{what} {path!r} cannot be read by torch.load ({_first_line(e)})") from e


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0][:160]}" if lines else type(e).__name__


def earlier_checkpoints(path: str | os.PathLike[str]) -> list[str]:
    """The other intact ``*.pt`` files in ``path``'s folder (newest first), to use instead of ``path``."""
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    found = []
    for entry in os.listdir(folder):
        p = os.path.join(folder, entry)
        if entry.endswith(".pt") and p != path and os.path.isfile(p) and damage(p) is None:
            found.append(p)
    return sorted(found, key=os.path.getmtime, reverse=True)


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``torch.load(..., weights_only=True)``).

    ``path`` may be a run folder, whose ``last.pt`` is read.

    Raises:
        OSError: the file does not exist.
        UnsafePickleError: the file holds more than tensors and plain data (never unpickled).
        ValueError: the file is damaged (naming the file, what is wrong and the intact
            checkpoints of the same folder to use instead, or that there are none), or is not
            an anyconv checkpoint.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "last.pt")
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    try:
        ckpt = read_torch_file(path, "checkpoint", map_location)
    except UnsafePickleError:
        raise
    except ValueError as e:
        folder = os.path.dirname(os.path.abspath(path))
        others = earlier_checkpoints(path)
        hint = (f"use the earlier checkpoint {others[0]!r} instead" if others
                else f"there is no earlier checkpoint in {folder!r} to use instead")
        raise ValueError(f"{e}; {hint}") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"checkpoint {path!r} is not an anyconv checkpoint (no format={FORMAT!r} entry)")
    missing = [k for k in REQUIRED if k not in ckpt]
    if missing:
        raise ValueError(f"checkpoint {path!r} lacks the entries {missing}")
    if ckpt["version"] > VERSION:
        raise ValueError(f"checkpoint {path!r} has version {ckpt['version']}; this anyconv reads <= {VERSION}")
    return ckpt
