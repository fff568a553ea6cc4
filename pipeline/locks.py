"""One run at a time per folder: an advisory lock file, `<folder>/.lock`.

The lock is an flock() on that file, so the kernel releases it when its process ends in any
way (kill -9 included): a lock left by a dead process is simply taken by the next run. The
file also says who holds it (pid, command, since when), for the message the second run prints.

    with folder_lock(out_dir, "extract-pairs"):
        ...   # a second run on out_dir raises BusyError at once

    @locked("ingest", lambda args: args["raw_dir"])       # a stage function, lock and cleanup
    def ingest(paths, raw_dir, ...): ...

Holding the lock, a stage may remove temporaries left by a killed run: nobody else writes there.
"""

from __future__ import annotations

import fcntl
import functools
import inspect
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .atomic import clean_temporaries
from .errors import BusyError, StoreError, describe_os_error, file_in_the_way, not_a_folder

LOCK_FILE = ".lock"


def _describe(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096).decode("utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another nocpipe run"
    since = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(info.get("since", 0)))
    return f"nocpipe {info.get('command', '?')} (pid {info.get('pid', '?')}, since {since})"


def lock_path(folder: Path, beside: bool = False) -> Path:
    """`<folder>/.lock`, or with `beside` `<parent>/.<name>.lock` (for a folder whose absence
    means something, like a model folder: locking must not create it)."""
    folder = Path(folder)
    return folder.parent / f".{folder.name}.lock" if beside else folder / LOCK_FILE


@contextmanager
def folder_lock(folder: Path, command: str, what: str = "folder", beside: bool = False) -> Iterator[Path]:
    """Hold `folder`'s lock for the block; BusyError (one line: who, pid, since) when taken.
    `what` names the folder in errors ("raw store", "model folder")."""
    folder = Path(folder)
    path = lock_path(folder, beside)
    made = not path.parent.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:
        raise StoreError(f"the {what} {folder} is not writable for this user") from None
    except OSError as exc:
        if file_in_the_way(folder) is not None:
            raise StoreError(not_a_folder(file_in_the_way(folder), f"the {what}")) from None
        raise StoreError(f"cannot use the {what} {folder}: {describe_os_error(exc)}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BusyError(
                f"{_describe(fd)} is already working in {folder}; wait for it to finish or stop it"
            ) from None
        info = {"pid": os.getpid(), "command": command, "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)
        try:
            yield path
        finally:
            # Emptied, not removed: removing would let a third run lock a new file while a
            # second still waits on this one.
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the flock
        if made and not beside and [p.name for p in folder.iterdir()] == [LOCK_FILE]:
            # A run that stopped before writing anything leaves no folder behind.
            path.unlink(missing_ok=True)
            try:
                folder.rmdir()
            except OSError:
                pass


def locked(
    command: str,
    folder_of: Callable[[dict], Path],
    what: str = "folder",
    beside: bool = False,
    temporaries: tuple[str, ...] = (".*.tmp",),
    recursive: bool = False,
) -> Callable:
    """Decorate a stage: hold the lock of the folder `folder_of(arguments)` while it runs, and
    first remove temporaries (`temporaries` patterns) that a killed run left there."""

    def decorate(fn: Callable) -> Callable:
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def run(*args, **kwargs):
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            folder = Path(folder_of(bound.arguments))
            with folder_lock(folder, command, what, beside):
                clean_temporaries(folder, recursive=recursive, patterns=temporaries)
                return fn(*args, **kwargs)

        return run

    return decorate
