"""Cost-model profiles: the coefficients ``auto`` predicts times with, shipped or fitted on this machine.

A profile is a JSON document (the shipped default is ``coefficients.json`` beside this file)::

    {"format": 1,
     "fitted_on": {"cpu": str, "isa": str, "threads": int, "torch": str, "anyconv": str, "date": str,
                   "calls": int, ...},
     "coefficients": {"<algorithm>": {"<feature>": float (ms per unit), ...}, ...}}

``anyconv tune`` fits one on the user's machine and stores it in the user's cache directory (the
native build's private directory, see :mod:`anyconv.algorithms._native_build`: owned by the user,
writable by nobody else), one file per **key**: CPU model, ISA (``avx512``, ``avx2``, ...), torch's
thread count, anyconv's and torch's versions. ``auto`` uses the profile whose key matches the current
machine and thread count, else the shipped default. A stored file is never trusted blindly: it must be
a regular file (not a link) owned by this user and writable by nobody else, at most ``MAX_BYTES``,
valid JSON of the format above with finite non-negative coefficients, and fitted for this key; a file
that fails any check is ignored, and the reason is kept (``Profile.note``, shown by
``explain_algorithm``).

``$ANYCONV_PROFILE``: ``default`` uses the shipped default only (tests, reproducible runs); any other
value is the path of a profile file to use instead of the cache's (checked the same way).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import itertools
import json
import math
import os
import platform
import stat
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import torch

from . import _native_build

FORMAT = 1
SHIPPED = Path(__file__).with_name("coefficients.json")
MAX_BYTES = 1 << 20
ENV = "ANYCONV_PROFILE"
KEY_FIELDS = ("cpu", "isa", "threads", "torch", "anyconv")
Table = Mapping[str, Mapping[str, float]]
_SERIAL = itertools.count(1)


@dataclass(frozen=True)
class Profile:
    """Coefficients (``coefficients[algorithm][feature]``, ms per unit), what they were fitted on,
    where they came from (``"shipped default"`` or a path) and why a machine profile was not used."""

    coefficients: Table
    fitted_on: Mapping[str, Any]
    source: str
    note: str = ""
    serial: int = field(default_factory=lambda: next(_SERIAL), compare=False)  # identifies it in auto's cache keys

    def describe(self) -> str:
        """One line: which profile, fitted on what (and why a stored one was passed over)."""
        f = self.fitted_on
        where = "shipped default" if self.source == "shipped default" else f"machine profile {self.source}"
        key = ", ".join(f"{k} {f.get(k, '?')}" for k in KEY_FIELDS)
        return f"{where} (key: {key})" + (f"; {self.note}" if self.note else "")


def isa() -> str:
    """The widest x86 vector ISA the CPU reports (``avx512``, ``avx2``, ``avx``, ``sse4_2``), else the machine name."""
    flags = set(_native_build.cpu_features().split())
    for name, flag in (("avx512", "avx512f"), ("avx2", "avx2"), ("avx", "avx"), ("sse4_2", "sse4_2")):
        if flag in flags:
            return name
    return platform.machine() or "unknown"


def machine_key(threads: int | None = None) -> dict[str, Any]:
    """This machine's profile key at ``threads`` (default: torch's current thread count)."""
    from .. import __version__

    return {"cpu": _native_build.cpu_model(), "isa": isa(),
            "threads": int(threads if threads is not None else torch.get_num_threads()),
            "torch": torch.__version__, "anyconv": __version__}


def path_for(key: Mapping[str, Any], directory: Path | None = None) -> Path:
    """The file that holds the profile of ``key`` in ``directory`` (default: the private cache directory)."""
    digest = hashlib.sha256(json.dumps([str(key[k]) for k in KEY_FIELDS]).encode()).hexdigest()[:16]
    return (directory or _native_build.cache_directory()[0]) / f"profile-{digest}.json"


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0


def parse(text: str, source: str, key: Mapping[str, Any] | None = None) -> Profile:
    """The profile in ``text``; ``ValueError`` with the reason if it is not one (or not fitted for ``key``)."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise ValueError(f"is not valid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"is not a profile of format {FORMAT}")
    fitted, table = doc.get("fitted_on"), doc.get("coefficients")
    if not isinstance(fitted, dict) or not isinstance(table, dict) or not table:
        raise ValueError("lacks `fitted_on` or `coefficients`")
    for name, coef in table.items():
        if not isinstance(coef, dict) or not coef or not all(isinstance(k, str) and _number(v) for k, v in coef.items()):
            raise ValueError(f"has invalid coefficients for {name!r} (expected finite numbers >= 0 by feature name)")
    if key is not None:
        for k in KEY_FIELDS:
            if fitted.get(k) != key[k]:
                raise ValueError(f"was fitted for another key: {k} {fitted.get(k)!r}, here {key[k]!r}")
    frozen = {name: dict(coef) for name, coef in table.items()}
    return Profile(frozen, dict(fitted), source)


def read(path: Path, key: Mapping[str, Any] | None) -> Profile:
    """The profile stored at ``path`` after the file checks above; ``ValueError`` with the reason otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise ValueError("does not exist") from None
    except OSError as e:
        raise ValueError(f"cannot be opened ({e.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("is not a regular file")
        foreign = _native_build._foreign(st)
        if foreign:
            raise ValueError(foreign)
        if st.st_size > MAX_BYTES:
            raise ValueError(f"has {st.st_size} bytes, more than a profile's {MAX_BYTES}")
        data = f.read(MAX_BYTES + 1)
    return parse(data.decode("utf-8", errors="replace"), str(path), key)


@cache
def shipped() -> Profile:
    """The shipped default (``coefficients.json``)."""
    return parse(SHIPPED.read_text(encoding="utf-8"), "shipped default")


_ACTIVE: dict[int, Profile] = {}
_OVERRIDE: list[Profile] = []
_LOCK = threading.Lock()


def _resolve(threads: int) -> Profile:
    choice = os.environ.get(ENV, "")
    if choice == "default":
        return shipped()
    try:
        key = machine_key(threads)
        path = Path(choice) if choice else path_for(key)
        return read(path, key)
    except (OSError, ValueError) as e:
        if not choice and str(e) == "does not exist":
            return shipped()  # no profile yet: nothing to explain
        where = choice or "the machine profile"
        base = shipped()
        return Profile(base.coefficients, base.fitted_on, base.source, f"{where} ignored: {e}")


def active(threads: int | None = None) -> Profile:
    """The profile ``auto`` uses at ``threads`` (default: torch's current): an override set by :func:`use`,
    else the matching machine profile, else the shipped default (looked up once per thread count)."""
    if _OVERRIDE:
        return _OVERRIDE[-1]
    t = torch.get_num_threads() if threads is None else threads
    hit = _ACTIVE.get(t)
    if hit is None:
        with _LOCK:
            hit = _ACTIVE.setdefault(t, _resolve(t))
    return hit


def use(profile: Profile | None) -> Profile | None:
    """Make ``profile`` the one :func:`active` returns (``None``: back to the lookup); returns the previous override."""
    with _LOCK:
        old = _OVERRIDE.pop() if _OVERRIDE else None
        if profile is not None:
            _OVERRIDE.append(profile)
    return old


def reset() -> None:
    """Look the machine profiles up again (after ``anyconv tune`` stored one, or ``$ANYCONV_PROFILE`` changed)."""
    with _LOCK:
        _ACTIVE.clear()


def store(table: Table, fitted_on: Mapping[str, Any], path: Path | None = None) -> Path:
    """Write a profile of ``table`` for ``fitted_on``'s key (checked by :func:`parse` first) to ``path``
    (default: the cache file of its key), atomically; :func:`reset` so that ``auto`` picks it up."""
    doc = {"format": FORMAT,
           "fitted_on": {"date": datetime.date.today().isoformat(), **fitted_on},
           "coefficients": {n: dict(c) for n, c in table.items()}}
    text = json.dumps(doc, indent=1) + "\n"
    parse(text, "new profile", {k: fitted_on[k] for k in KEY_FIELDS})
    target = path or path_for(fitted_on)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # a leftover of a crashed run of this process id
    _native_build._write_fsynced(tmp, text.encode())
    os.replace(tmp, target)
    _native_build._fsync_dir(target.parent)
    reset()
    return target
