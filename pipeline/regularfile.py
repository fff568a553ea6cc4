"""Reading a file that may not be one: only a regular file of bounded size is read.

A FIFO blocks its reader until someone opens it for writing (for ever, in a server that
reads it on each request), /dev/zero never ends and /dev/tty waits for a key. So the file
is opened with O_NONBLOCK (a FIFO then opens at once instead of waiting for a writer), the
descriptor that was opened is checked with fstat (not the name, which may change in
between), anything that is not a regular file is refused, and at most `limit` bytes are read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class NotReadable(OSError):
    """The path is not a regular file, or it is larger than the caller's limit."""


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of `path`; NotReadable (an OSError) for a FIFO, device, socket or folder, or a
    file over `limit` bytes; other OSErrors as open() raises them."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotReadable(f"{path} is not a regular file")
        if st.st_size > limit:
            raise NotReadable(f"{path} is larger than {limit:,} bytes")
        os.set_blocking(fd, True)  # a regular file: O_NONBLOCK has done its part
        fh = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with fh:
        data = fh.read(limit + 1)  # the size may have grown since fstat
    if len(data) > limit:
        raise NotReadable(f"{path} is larger than {limit:,} bytes")
    return data
