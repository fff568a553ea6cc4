"""Atomic writes: a temporary name in the same folder, fsync, then rename, so a
reader (or a rerun after kill -9) never sees a half-written file. Symbolic links are
written through and devices or FIFOs written into, never replaced (atomic_path)."""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def current_umask() -> int:
    """The process umask (Linux reads it without changing it; elsewhere set and restore)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode(path: Path) -> int:
    """The mode a file written at `path` gets: the mode of the file it replaces, else what
    open() would give a new file under the umask (0644 under umask 022), as other tools do.
    mkstemp's own 0600 would make a shared corpus or model unreadable to a teammate."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return 0o666 & ~current_umask()


def _existing(path: Path) -> os.stat_result | None:
    from .errors import UsageError

    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UsageError(f"cannot write {path}: a loop of symbolic links") from None
        raise


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed onto `path`.

    As `sort -o` and `cp` do: a symbolic link is written through (its target is replaced
    atomically, the link stays), and anything that is not a regular file (/dev/null, a
    FIFO, a terminal) is yielded itself, to be written straight into, never replaced by
    a file. A folder is a UsageError."""
    from .errors import UsageError

    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    st = _existing(path)
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{path} is a folder; name a file to write")
    if st is not None and not stat.S_ISREG(st.st_mode):
        with naming(path, None):
            yield path
        return
    with naming(path, None):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        with naming(path, tmp_path):
            yield tmp_path
            with open(tmp_path, "rb+") as fh:
                os.fsync(fh.fileno())
            os.chmod(tmp_path, file_mode(path))
            os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextmanager
def naming(path: Path, tmp: Path | None = None) -> Iterator[None]:
    """For writers that make their own temporary file (Keras wants its own suffix): an OSError of writing `path` names `path`: not the temporary file, which the user never
    chose and which is gone by the time they read the message, and not nothing (a library's
    write error carries no file name). Errors about other files pass as they are."""
    try:
        yield
    except OSError as exc:
        name = None if exc.filename is None else os.path.abspath(exc.filename)
        folder = os.path.abspath(path.parent)
        # Before the temporary file exists (tmp None), any name made in the folder is one.
        ours = name in (None, os.path.abspath(path), folder, os.path.abspath(tmp) if tmp else None) or (
            tmp is None and os.path.dirname(name) == folder
        )
        if exc.errno is None or not ours:
            raise
        raise OSError(exc.errno, os.strerror(exc.errno), str(path)) from exc


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: object) -> None:
    write_text(path, json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=False) + "\n")


def write_with(path: Path, writer: Callable[[Path], None]) -> None:
    """Let `writer` fill a temporary file, then rename it onto `path`."""
    with atomic_path(path) as tmp:
        writer(tmp)


def clean_temporaries(folder: Path, recursive: bool = False, patterns: tuple[str, ...] = (".*.tmp",)) -> int:
    """Remove leftovers of interrupted atomic writes (.NAME.XXXX.tmp) in `folder` (and its
    subfolders when `recursive`). Call it holding the folder's lock (pipeline.locks), so that
    no other run's temporaries are taken for leftovers."""
    n = 0
    folder = Path(folder)
    if folder.is_dir():
        for pattern in patterns:
            for p in folder.rglob(pattern) if recursive else folder.glob(pattern):
                if p.is_file():
                    p.unlink(missing_ok=True)
                    n += 1
    return n


def write_output(path: Path, writer: Callable[[Path], None]) -> None:
    """Write a file the user named (predict -o, report --out, evaluate --json): through a
    symbolic link, straight into a device or FIFO, atomically onto a regular file or a
    new name (see atomic_path, which every write here goes through)."""
    write_with(path, writer)


def check_output(path: Path | None) -> None:
    """Fail at once, before any long work, when a file the user named cannot be written
    the way atomic_path would: a folder, or a loop of symbolic links."""
    from .errors import UsageError

    if path is None:
        return
    path = Path(path)
    st = _existing(Path(os.path.realpath(path)) if path.is_symlink() else path)
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{path} is a folder; name a file to write")
