"""Building and loading ``native``'s C library so that nothing in its cache can crash or take over a process.

The library (every ``.c`` file of ``native_c/`` compiled twice, for float32 and float64, and linked
into one shared library) is compiled once per (C sources, compiler, flags, CPU features) and kept in a cache
directory; a library is code that runs inside the user's process, so nothing in that directory
is trusted by its name alone:

- **The directory** is ``$ANYCONV_CACHE`` if set, else ``$XDG_CACHE_HOME/anyconv`` or
  ``~/.cache/anyconv``, then ``$XDG_RUNTIME_DIR/anyconv`` and ``$TMPDIR/anyconv-<uid>``: the first
  that is (or can be made, mode 0700) a real directory, not a symbolic link, owned by this user and
  writable by nobody else. If none is, a fresh private directory from :func:`tempfile.mkdtemp`
  serves this process alone (removed at exit): never a predictable path that someone else made.
- **The name** carries a hash of every C file's name and content (header included), the compiler command and the identity of its
  executable, the flags and the CPU's features (:func:`build_key`), so a change of any of them
  builds a new file instead of loading an old one.
- **A sidecar** ``<name>.json`` holds the library's size and SHA-256. Before ``dlopen`` the file
  must be a regular file (not a link) owned by this user, writable by nobody else, and match the
  sidecar: a truncated, emptied, overwritten or planted file is never loaded.
- **A library that fails a check, fails to load or lacks a symbol** is built again, once, under a
  fresh name (``dlopen`` returns the handle it already has for a name it has seen), loaded from
  there and only then renamed into place. If that fails too, :func:`load` raises ``OSError`` with
  the reason, and ``native`` reports it (``explain_algorithm``, ``anyconv doctor``).
- **Writes** go to a temporary file, are fsynced, renamed into place, and the directory fsynced.
- **One compile**: an advisory lock (``fcntl.flock``) per build key, so processes that start
  together compile once; the others wait (at most :data:`LOCK_WAIT` seconds) and load the result.
- ``$CC`` and ``$CFLAGS`` are split like a shell does (``CC="ccache gcc"``, ``CFLAGS="-g"``);
  ``$CFLAGS`` comes after anyconv's own flags, as with make.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import hashlib
import json
import os
import platform
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import _native_flags

NATIVE_C = Path(__file__).with_name("native_c")
# every file of the kernel (the build key covers each one's name and content)
SOURCES = tuple(sorted(p for p in NATIVE_C.iterdir() if p.suffix in (".c", ".h")))
# the object files' variants: float32, and float64 (-DANYCONV_DOUBLE)
VARIANTS = (("f32", ()), ("f64", ("-DANYCONV_DOUBLE",)))
FLAGS = ("-O3", "-fPIC", "-pthread")  # then the ISA and OpenMP flags (_native_flags)
COMPILE_TIMEOUT = 300  # seconds per compiler call (a busy machine)
LOCK_WAIT = 600  # seconds to wait for another process's build before building alongside it
PREFIX = "anyconv_native_"

_P, _I, _L = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64
# the library's ABI: every symbol with its argument and result types (a missing one = a broken library)
SIGNATURES: dict[str, tuple[list[type], type]] = {"copy_strided": ([_P] * 3, _I), "abi_bytes": ([_L], _L)}
for _suf, _ in VARIANTS:
    SIGNATURES.update({f"corr_{_suf}": ([_P] * 4, _I), f"corr_t_{_suf}": ([_P] * 4, _I),
                       f"plan_{_suf}": ([_P] * 2, _I), f"lanes_form_{_suf}": ([], _I),
                       f"gemm_{_suf}": ([_P] * 4, _I),
                       f"fma_flops_{_suf}": ([_L, _L], _L), f"wino_in_{_suf}": ([_P] * 4, _I),
                       f"wino_out_{_suf}": ([_P] * 4, _I), f"gemm_w_{_suf}": ([_P] * 4, _I),
                       f"gemm_x_{_suf}": ([_P] * 4, _I), f"gemm_xt_{_suf}": ([_P] * 4, _I),
                       f"dot_w_{_suf}": ([_P] * 5, _I), f"dot_w_floats_{_suf}": ([_P], _L)})


@dataclass
class BuildInfo:
    """What :func:`load` used and did (``anyconv doctor`` prints it)."""

    directory: Path
    directory_note: str | None  # why a preferred directory was passed over
    compiler: list[str]
    flags: list[str]
    key: str
    path: Path | None = None
    size: int = 0
    sha256: str = ""
    compiled_seconds: float | None = None  # None: loaded a verified build from the cache
    waited_seconds: float = 0.0  # waiting for another process's lock
    rebuilt_because: str | None = None  # why a cached file was not loaded
    events: list[str] = field(default_factory=list)


def compiler() -> list[str]:
    """``$CC`` (default ``cc``) split like a shell: ``CC="ccache gcc"`` is two words."""
    return shlex.split(os.environ.get("CC") or "cc") or ["cc"]


def flags(openmp: bool = True) -> list[str]:
    """anyconv's flags (with the ISA's and OpenMP's, see :mod:`._native_flags`), then ``$CFLAGS`` split like a shell."""
    extra = _native_flags.openmp_flags() if openmp else []
    return [*FLAGS, *_native_flags.isa_flags(_native_flags.isa(cpu_features())), *extra,
            *shlex.split(os.environ.get("CFLAGS", ""))]


def cpu_model() -> str:
    """The CPU's model name (Linux: ``/proc/cpuinfo``), else the processor's or machine's name."""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_features() -> str:
    """The CPU's feature flags (Linux: ``/proc/cpuinfo``), else the processor's name."""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return " ".join(sorted(line.split(":", 1)[1].split()))
    return platform.processor()


def build_key(cmd: list[str], opts: list[str]) -> str:
    """20 hex digits of SHA-256 over the sources, the compiler command and executable, the flags and
    the CPU features: a library is only ever loaded on the build it was made for."""
    h = hashlib.sha256()
    for src in SOURCES:
        h.update(src.name.encode() + b"\0" + src.read_bytes() + b"\0")
    exe = shutil.which(cmd[0]) or cmd[0]
    with contextlib.suppress(OSError):
        st = os.stat(exe)
        exe = f"{os.path.realpath(exe)}:{st.st_size}:{st.st_mtime_ns}"
    for part in (*cmd, "\0", exe, "\0", *opts, "\0", cpu_features(), platform.machine(), sys.platform):
        h.update(part.encode() + b"\1")
    return h.hexdigest()[:20]


def _foreign(st: os.stat_result) -> str | None:
    """Why a file or directory with this status is not this user's alone, or None."""
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return f"is owned by uid {st.st_uid}, not by this user (uid {os.getuid()})"
    if st.st_mode & 0o022:
        return f"is writable by others (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def directory_problem(path: Path) -> str | None:
    """Why ``path`` must not hold the cache (a link, not a directory, someone else's, writable by
    others, not writable), or None."""
    try:
        st = os.lstat(path)
    except OSError as e:
        return f"cannot be read ({e.strerror})"
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory"
    if _foreign(st):
        return _foreign(st)
    if not os.access(path, os.W_OK | os.X_OK):
        return "is not writable"
    return None


def _candidates() -> list[Path]:
    if os.environ.get("ANYCONV_CACHE"):
        return [Path(os.environ["ANYCONV_CACHE"])]
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    out = [Path(home) / "anyconv"]
    if os.environ.get("XDG_RUNTIME_DIR"):
        out.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "anyconv")
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    out.append(Path(tempfile.gettempdir()) / f"anyconv-{uid}")
    return out


def cache_directory() -> tuple[Path, str | None]:
    """The first private candidate directory (created 0700 if missing), and why earlier ones were
    passed over; if none is private, a new :func:`tempfile.mkdtemp` directory for this process."""
    notes: list[str] = []
    for path in _candidates():
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir(mode=0o700)
        why = directory_problem(path)
        if why is None:
            return path, "; ".join(notes) or None
        notes.append(f"{path} {why}")
    fresh = Path(tempfile.mkdtemp(prefix="anyconv-"))
    atexit.register(shutil.rmtree, fresh, True)
    notes.append(f"using a private directory for this process only ({fresh})")
    return fresh, "; ".join(notes)


def _sidecar(lib: Path) -> Path:
    return lib.with_suffix(".json")


def file_problem(lib: Path) -> str | None:
    """Why the library at ``lib`` must not be loaded (missing, a link, someone else's, writable by
    others, no sidecar, or size or SHA-256 not the sidecar's), or None."""
    try:
        fd = os.open(lib, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return "is not built yet"
    except OSError as e:
        return f"cannot be opened ({e.strerror})"
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            return "is not a regular file"
        if _foreign(st):
            return _foreign(st)
        try:
            meta = json.loads(_sidecar(lib).read_text())
            size, digest = int(meta["size"]), str(meta["sha256"])
        except (OSError, ValueError, KeyError, TypeError):
            return "has no valid digest file beside it"
        if st.st_size != size:
            return f"has {st.st_size} bytes where its digest file says {size} (damaged)"
        if hashlib.sha256(f.read()).hexdigest() != digest:
            return "does not match its SHA-256 digest (damaged or replaced)"
    return None


def bind(lib: ctypes.CDLL) -> ctypes.CDLL:
    """Set every symbol's types; ``OSError`` naming the first missing symbol."""
    for name, (args, res) in SIGNATURES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError as e:
            raise OSError(f"the library lacks the symbol {name}") from e
        fn.argtypes, fn.restype = args, res
    return lib


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_fsynced(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _compile(cmd: list[str], opts: list[str], out: Path) -> None:
    """Compile every C file of :data:`SOURCES` once per :data:`VARIANTS` (as many compiler processes at
    once as there are CPUs, at least 2) and link the objects into ``out``."""
    jobs = [([*cmd, *opts, *extra, "-c", str(src), "-o", str(out.with_name(f"{out.name}.{src.stem}.{suf}.o"))],
             out.with_name(f"{out.name}.{src.stem}.{suf}.o"))
            for src in SOURCES if src.suffix == ".c" for suf, extra in VARIANTS]
    objects = [obj for _, obj in jobs]
    width = max(2, os.cpu_count() or 1)
    running: list[subprocess.Popen[str]] = []
    results: list[tuple[int, str]] = []
    try:
        for argv, _ in jobs:
            while len(running) >= width:
                results.append(_finish(running.pop(0)))
            try:
                running.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            except FileNotFoundError as e:
                raise OSError(f"the C compiler {cmd[0]!r} was not found ($CC={os.environ.get('CC', '')!r})") from e
        while running:
            results.append(_finish(running.pop(0)))
        if all(code == 0 for code, _ in results):
            link = subprocess.run([*cmd, *opts, "-shared", *map(str, objects), "-o", str(out)], capture_output=True,
                                  text=True, timeout=COMPILE_TIMEOUT)
            results.append((link.returncode, link.stderr))
    except subprocess.TimeoutExpired as e:
        raise OSError(f"{' '.join(cmd)} took more than {COMPILE_TIMEOUT} s") from e
    finally:
        for p in running:
            if p.poll() is None:
                p.kill()
                p.wait()
        for obj in objects:
            with contextlib.suppress(OSError):
                obj.unlink()
    for code, err in results:
        if code != 0:
            raise OSError(f"{' '.join(cmd)} failed: {err.strip()[-500:]}")


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    """A compiler process's exit status and error output (``TimeoutExpired`` past :data:`COMPILE_TIMEOUT`)."""
    try:
        _, err = proc.communicate(timeout=COMPILE_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    return proc.returncode, err


def _build_and_load(info: BuildInfo, target: Path) -> ctypes.CDLL:
    """Compile into a fresh name, fsync, write the digest, load and bind from the fresh name, then
    rename both into place (only a library that loaded with every symbol is published)."""
    fresh = target.with_name(f"{target.stem}.{os.getpid()}.{threading.get_ident()}.{time.monotonic_ns()}.so")
    staged = fresh.with_name(fresh.name + ".staged")
    start = time.perf_counter()
    try:
        _compile(info.compiler, info.flags, staged)
        data = staged.read_bytes()
        staged.unlink()
        _write_fsynced(fresh, data)  # (a fresh file: 0600, ours, fsynced)
        size, digest = len(data), hashlib.sha256(data).hexdigest()
        meta = {"size": size, "sha256": digest, "key": info.key, "compiler": info.compiler, "flags": info.flags}
        side = _sidecar(fresh)
        _write_fsynced(side, json.dumps(meta).encode())
        why = file_problem(fresh)
        if why is not None:
            raise OSError(f"the library just built {why}")
        lib = bind(ctypes.CDLL(str(fresh)))
        os.replace(side, _sidecar(target))
        os.replace(fresh, target)
        _fsync_dir(target.parent)
    finally:
        for path in (staged, fresh, _sidecar(fresh)):
            with contextlib.suppress(OSError):
                path.unlink()
    info.compiled_seconds = time.perf_counter() - start
    info.path, info.size, info.sha256 = target, size, digest
    return lib


@contextlib.contextmanager
def _locked(path: Path, info: BuildInfo) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (waiting at most :data:`LOCK_WAIT` s; then without it:
    builds go to unique names, so building alongside another process is safe, only slower)."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): unique names keep concurrent builds safe
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    start = time.monotonic()
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - start > LOCK_WAIT:
                    info.events.append(f"waited {LOCK_WAIT} s for {path.name}; building without it")
                    break
                time.sleep(0.05)
        info.waited_seconds = time.monotonic() - start
        yield
    finally:
        os.close(fd)  # (releases the lock)


def load() -> tuple[ctypes.CDLL, BuildInfo]:
    """The verified library (built if needed) and what was done; ``OSError`` with the reason if it
    cannot be had (no compiler, a failed build, a library that does not load even when rebuilt). A
    build with OpenMP that fails is tried once more without it."""
    opts = flags()
    try:
        return _load(opts)
    except OSError as e:
        if _native_flags.OPENMP not in opts:
            raise
        lib, info = _load(flags(openmp=False))
        info.events.append(f"built without OpenMP (threads started per call): {str(e)[:200]}")
        return lib, info


def _load(opts: list[str]) -> tuple[ctypes.CDLL, BuildInfo]:
    directory, note = cache_directory()
    cmd = compiler()
    info = BuildInfo(directory, note, cmd, opts, build_key(cmd, opts))
    target = directory / f"{PREFIX}{info.key}.so"
    with _locked(directory / f"{PREFIX}{info.key}.lock", info):
        why = file_problem(target)
        if why is None:
            try:
                lib = bind(ctypes.CDLL(str(target)))
                meta = json.loads(_sidecar(target).read_text())
                info.path, info.size, info.sha256 = target, int(meta["size"]), str(meta["sha256"])
                return lib, info
            except OSError as e:
                why = f"did not load ({e})"
        if why != "is not built yet":
            info.rebuilt_because = f"{target.name} {why}"
        return _build_and_load(info, target), info
