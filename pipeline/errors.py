"""The exception tree. Every error a user can cause is a `NocpipeError`; the CLI
prints its message as one `Error: ...` line and exits with status 1.

    NocpipeError
    ├── UsageError          bad option values or arguments
    ├── InputError          a file or folder we were given cannot be used
    │   ├── EmptyInputError     the file holds no text
    │   ├── BinaryInputError    the file is not text
    │   ├── DecodeError         no encoding we know decodes it
    │   └── ArchiveError        a zip without a text file, or a broken zip
    ├── StoreError          the raw store / shard folder is missing or inconsistent
    ├── BusyError           another run holds the folder's lock (pipeline.locks)
    ├── FetchError          downloading failed (scrape)
    │   ├── NotFound            a 404: the work is gone              (pipeline.http)
    │   ├── Disallowed          robots.txt forbids the URL           (pipeline.http)
    │   ├── RetriesExhausted    still failing after every retry      (pipeline.http)
    │   ├── StopCrawl           the whole run must stop              (pipeline.http)
    │   │   ├── HostBlocked         robots.txt unreachable / 5xx     (pipeline.http)
    │   │   ├── TryLater            503 circuit breaker, long Retry-After (pipeline.http)
    │   │   └── AgeGate             the over-18 gate would not let us in (stages.scrape)
    │   ├── OffSite             a URL or redirect on a host not chosen; not requested (pipeline.http)
    │   └── LayoutChanged       a page parsed to nothing: the site changed (pipeline.syosetu)
    ├── ModelError          a model folder is missing or incompatible (train, predict)
    └── ClusterError        a Dask cluster cannot be used: not installed, or unreachable (pipeline.cluster)

`InputError`s raised for one file are counted and skipped by the stage; they
never stop the other files. An `OSError` that reaches the CLI (a full disk, a
read-only folder) is reported the same way, through `describe_os_error`.
"""

from __future__ import annotations


class NocpipeError(Exception):
    """Base of every error nocpipe reports to the user in one line."""


class UsageError(NocpipeError):
    """An option or argument has a value we cannot use."""


class InputError(NocpipeError):
    """One input file cannot be used; `reason` is the counter it is filed under."""

    reason = "unreadable"

    def __init__(self, message: str, path: object = None):
        super().__init__(message)
        self.path = path


class EmptyInputError(InputError):
    reason = "empty"


class BinaryInputError(InputError):
    reason = "binary"


class DecodeError(InputError):
    reason = "undecodable"


class ArchiveError(InputError):
    reason = "bad_zip"


class StoreError(NocpipeError):
    """The raw store or the shard folder is missing or inconsistent."""


class BusyError(NocpipeError):
    """Another nocpipe run is working in the same folder (its lock is held)."""


class FetchError(NocpipeError):
    """Downloading failed in a way a retry will not fix now."""


class ModelError(NocpipeError):
    """A model folder is missing, incomplete or from another version."""


class ClusterError(NocpipeError):
    """A Dask cluster cannot be used: dask.distributed is missing, or the scheduler is unreachable."""


def file_in_the_way(path: object) -> object | None:
    """`path`, or the nearest folder above it, when that exists and is not a folder: what
    stands where a folder belongs (None when nothing does)."""
    import os
    import stat
    from pathlib import Path

    p = Path(str(path))
    for q in (p, *p.parents):
        try:
            st = os.stat(q)
        except OSError:
            continue
        return None if stat.S_ISDIR(st.st_mode) else q
    return None


def not_a_folder(path: object, what: str = "") -> str:
    """The message for a file where a folder belongs: names the file itself."""
    thing = f" ({what})" if what else ""
    return f"{path} is a file; a folder is needed here{thing}: move the file away or choose another path"


def describe_os_error(exc: OSError, what: str = "") -> str:
    """One line for an operating-system error (full disk, no permission, a file where a
    folder belongs...) that names the file and says what to do; the CLI's last word for any
    OSError a stage did not turn into a NocpipeError itself. `what` names the path when the
    error carries none (a library's write error)."""
    import errno
    import os
    from pathlib import Path

    where = exc.filename if exc.filename is not None else what
    reason = exc.strerror or (os.strerror(exc.errno) if exc.errno else str(exc))
    text = f"{where}: {reason}" if where else reason
    if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return f"{text}: the disk is full; free some space and run the same command again (finished work is kept)"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        # A file that is there and readable was not the trouble: the folder it is written in was.
        if where and (not os.path.exists(where) or os.access(where, os.R_OK)):
            folder = next((q for q in Path(str(where)).parents if q.exists()), None)
            if folder is not None and not os.access(folder, os.W_OK):
                return f"{text}: the folder {folder} is not writable for this user; choose another place"
        if exc.errno == errno.EROFS:
            return f"{text}: that file system is read-only; choose another place"
        return f"{text}: check the permissions of that file or folder"
    if exc.errno in (errno.ENOTDIR, errno.EEXIST) and where:
        blocker = file_in_the_way(where)
        if blocker is not None:
            return not_a_folder(blocker)
    if exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        if exc.errno == errno.EISDIR:
            return f"{where} is a folder; a file is needed here: name a file" if where else text
        return f"{text}: a file stands where a folder belongs (or the other way round)"
    if exc.errno == errno.ENAMETOOLONG:
        return f"{text}: choose a shorter name"
    return text
