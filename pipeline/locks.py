"""One run at a time per folder: an advisory lock file, `<folder>/.lock`.

The lock is an flock() on that file, so the kernel releases it when its process ends in any
way (kill -9 included): a lock left by a dead process is simply taken by the next run. The
file also says who holds it (pid, command, since when), for the message the second run prints.

    with folder_lock(out_dir, "extract-pairs"):
        ...   # a second run on out_dir raises BusyError at once
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import BusyError

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


@contextmanager
def folder_lock(folder: Path, command: str) -> Iterator[Path]:
    """Hold `folder`'s lock for the block; BusyError (one line: who, pid, since) when taken."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BusyError(f"{_describe(fd)} is already working in {folder}; "
                            "wait for it to finish or stop it") from None
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
