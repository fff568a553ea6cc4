"""Where a folder lives: a local path, or a URL that fsspec understands (file://, s3://, gs://, ...).

A raw store or an output read and written by Dask workers on other machines must be
a place every worker sees: a shared file system (a plain path mounted at the same
place everywhere, or a file:// URL) or an object store. `Location` gives the few
operations a stage needs on either, with the same guarantees:

    commit(name, data)       the file appears whole under its final name or not at all:
                             on a file system, a temporary name beside it and a rename
                             (fsspec `mv`, a rename on local and most network file systems);
                             on an object store, which has no rename, one PUT of the whole
                             object under its final name (a PUT is atomic there)
    fetch(name)              a local folder holding that subtree (the folder itself when
                             it is local; a temporary copy otherwise)

Names are deterministic (a function of the work, never of the worker or the clock), so a
task run twice writes the same object twice, never two objects, and a reader never has to
choose between copies. A run is committed by writing its state file last: a reader that
trusts only what the state names never sees a partial run. Advisory locks do not exist on
an object store; there the state's own generation (read, check, write) is the only guard,
so one driver per output is a rule the user keeps, not one the store enforces.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ClusterError, UsageError

#: Protocols whose `mv` is a rename within one file system (temporary name + rename works).
RENAMING = {"file", "local", "sftp", "ssh", "hdfs", "webhdfs", "smb"}


def is_url(text: str | os.PathLike) -> bool:
    return "://" in str(text)


class Location:
    """A folder on a local path or at an fsspec URL; names inside it are '/'-separated."""

    def __init__(self, where: str | os.PathLike):
        self.url = str(where)
        if not is_url(where):
            self.fs = None
            self.root = str(Path(where))
            self.protocol = "path"
            return
        try:
            import fsspec
        except ImportError:
            raise ClusterError(f"{self.url} is a URL, which needs fsspec: pip install 'nocpipe[dask]'") from None
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url)
        except (ImportError, ValueError) as exc:
            raise UsageError(f"cannot open {self.url}: {exc}") from None
        protocol = self.fs.protocol
        self.protocol = protocol if isinstance(protocol, str) else protocol[0]
        self.root = self.root.rstrip("/")

    # ---- paths

    @property
    def local_path(self) -> Path | None:
        """The folder as a local path, where there is one (a plain path or a file:// URL)."""
        if self.fs is None:
            return Path(self.root)
        return Path(self.root) if self.protocol in ("file", "local") else None

    @property
    def renames(self) -> bool:
        return self.fs is None or self.protocol in RENAMING

    def path(self, name: str = "") -> str:
        if not name:
            return self.root
        return os.path.join(self.root, name) if self.fs is None else f"{self.root}/{name.strip('/')}"

    def child(self, name: str) -> "Location":
        if self.fs is None:
            return Location(self.path(name))
        loc = Location.__new__(Location)
        loc.fs, loc.protocol, loc.root = self.fs, self.protocol, self.path(name)
        loc.url = f"{self.url.rstrip('/')}/{name.strip('/')}"
        return loc

    def __str__(self) -> str:
        return self.url

    def __reduce__(self):  # rebuilt from its URL in a worker process
        return (Location, (self.url,))

    # ---- reading

    def exists(self, name: str = "") -> bool:
        return os.path.exists(self.path(name)) if self.fs is None else self.fs.exists(self.path(name))

    def isdir(self, name: str = "") -> bool:
        return os.path.isdir(self.path(name)) if self.fs is None else self.fs.isdir(self.path(name))

    def listdir(self, name: str = "") -> list[str]:
        """Names (not paths) inside a folder, sorted; [] when it does not exist."""
        p = self.path(name)
        if self.fs is None:
            return sorted(os.listdir(p)) if os.path.isdir(p) else []
        if not self.fs.isdir(p):
            return []
        return sorted(e.rstrip("/").rsplit("/", 1)[-1] for e in self.fs.ls(p, detail=False))

    def read_bytes(self, name: str) -> bytes:
        if self.fs is None:
            return Path(self.path(name)).read_bytes()
        return self.fs.cat_file(self.path(name))

    def stat(self, name: str) -> tuple[int, str]:
        """(size, a change marker: mtime where there is one, else the ETag/checksum)."""
        p = self.path(name)
        if self.fs is None:
            st = os.stat(p)
            return st.st_size, str(st.st_mtime_ns)
        info = self.fs.info(p)
        marker = info.get("mtime") or info.get("LastModified") or info.get("ETag") or info.get("created") or ""
        return int(info.get("size") or 0), str(marker)

    @contextmanager
    def fetch(self, name: str = "") -> Iterator[Path]:
        """A local folder with the contents of `name` (a temporary copy when it is remote)."""
        local = self.local_path
        if local is not None:
            yield local / name if name else local
            return
        tmp = Path(tempfile.mkdtemp(prefix="nocpipe-fetch-"))
        try:
            dest = tmp / (name.rstrip("/").rsplit("/", 1)[-1] or "root")
            self.fs.get(self.path(name).rstrip("/") + "/", str(dest) + "/", recursive=True)
            yield dest
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # ---- writing

    def makedirs(self, name: str = "") -> None:
        if self.fs is None:
            os.makedirs(self.path(name), exist_ok=True)
        else:
            self.fs.makedirs(self.path(name), exist_ok=True)

    def commit_file(self, local_file: Path, name: str) -> None:
        """Move a finished local file to `name`, appearing whole or not at all."""
        final = self.path(name)
        parent = final.rsplit("/", 1)[0] if self.fs is not None else os.path.dirname(final)
        if self.fs is None:
            os.makedirs(parent, exist_ok=True)
            tmp = os.path.join(parent, f".{os.path.basename(final)}.{uuid.uuid4().hex[:12]}.tmp")
            shutil.copyfile(local_file, tmp)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, final)
            return
        self.fs.makedirs(parent, exist_ok=True)
        if self.renames:
            tmp = f"{parent}/.{final.rsplit('/', 1)[-1]}.{uuid.uuid4().hex[:12]}.tmp"
            self.fs.put_file(str(local_file), tmp)
            self.fs.mv(tmp, final)
        else:
            self.fs.put_file(str(local_file), final)  # one PUT: atomic on an object store

    def commit(self, name: str, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(prefix="nocpipe-commit-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            self.commit_file(Path(tmp), name)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def remove(self, name: str) -> None:
        p = self.path(name)
        if self.fs is None:
            if os.path.isdir(p):
                shutil.rmtree(p)
            elif os.path.exists(p):
                os.unlink(p)
        elif self.fs.exists(p):
            self.fs.rm(p, recursive=True)

    def clean_temporaries(self, name: str = "") -> int:
        """Remove `.NAME.XXXX.tmp` leftovers of commits cut short (a killed worker) in one folder."""
        n = 0
        for entry in self.listdir(name):
            if entry.startswith(".") and entry.endswith(".tmp"):
                self.remove(f"{name}/{entry}" if name else entry)
                n += 1
        return n


def local_folder(where: str | os.PathLike, option: str = "the folder") -> Path:
    """A command-line folder as a local path: plain paths, and URLs of a file system every
    machine mounts (file://). Other URLs (object stores) are refused with one line: the
    stages read and write their folders through local paths."""
    if not is_url(where):
        return Path(where)
    loc = Location(where)
    if loc.local_path is None:
        raise UsageError(f"{option} {where}: only local paths and file:// URLs are supported; mount the "
                         f"{loc.protocol} store on every machine (s3fs, gcsfuse) and give its path")
    return loc.local_path
