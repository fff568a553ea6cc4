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

import functools
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ClusterError, NocpipeError, StoreError, UsageError

#: Protocols whose `mv` is a rename within one file system (temporary name + rename works).
RENAMING = {"file", "local", "sftp", "ssh", "hdfs", "webhdfs", "smb"}


def is_url(text: str | os.PathLike) -> bool:
    return "://" in str(text)


@contextmanager
def _translated(url: str) -> Iterator[None]:
    """A storage client's own exceptions (no endpoint, no credentials: botocore's, gcsfs's)
    as one StoreError line; OSError (a missing object, a refused write) passes as it is."""
    try:
        yield
    except (OSError, NocpipeError):
        raise
    except Exception as exc:
        raise StoreError(
            f"{url}: {exc} ({type(exc).__name__}); check the URL, the store's endpoint and the credentials"
        ) from None


def _storage_errors(method):
    """_translated around a method, for a folder at a URL (a local one raises as it is)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if self.fs is None:
            return method(self, *args, **kwargs)
        with _translated(self.url):
            return method(self, *args, **kwargs)

    return wrapper


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
            hint = " (pip install 'nocpipe[s3]')" if isinstance(exc, ImportError) and "s3fs" in str(exc) else ""
            raise UsageError(f"cannot open {self.url}: {exc}{hint}") from None
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

    def __str__(self) -> str:
        return self.url

    def __reduce__(self):  # rebuilt from its URL in a worker process
        return (Location, (self.url,))

    # ---- reading

    @_storage_errors
    def exists(self, name: str = "") -> bool:
        return os.path.exists(self.path(name)) if self.fs is None else self.fs.exists(self.path(name))

    @_storage_errors
    def listdir(self, name: str = "") -> list[str]:
        """Names (not paths) inside a folder, sorted; [] when it does not exist."""
        p = self.path(name)
        if self.fs is None:
            return sorted(os.listdir(p)) if os.path.isdir(p) else []
        if not self.fs.isdir(p):
            return []
        return sorted(e.rstrip("/").rsplit("/", 1)[-1] for e in self.fs.ls(p, detail=False))

    @_storage_errors
    def read_bytes(self, name: str) -> bytes:
        if self.fs is None:
            return Path(self.path(name)).read_bytes()
        return self.fs.cat_file(self.path(name))

    @_storage_errors
    def read_many(self, names: list[str]) -> dict[str, bytes | OSError]:
        """Several small files at once (concurrent requests on a remote store): each name's
        bytes, or the OSError that reading it raised."""
        if self.fs is None:
            out: dict[str, bytes | OSError] = {}
            for name in names:
                try:
                    out[name] = self.read_bytes(name)
                except OSError as exc:
                    out[name] = exc
            return out
        if not names:
            return {}
        got = self.fs.cat([self.path(n) for n in names], on_error="return")
        out = {}
        for n in names:
            v = got.get(self.path(n), FileNotFoundError(self.path(n)))
            out[n] = v if isinstance(v, (bytes, OSError)) else OSError(f"{self.path(n)}: {v}")
        return out

    @_storage_errors
    def stat(self, name: str) -> tuple[int, str]:
        """(size, a change marker: mtime where there is one, else the ETag/checksum)."""
        p = self.path(name)
        if self.fs is None:
            st = os.stat(p)
            return st.st_size, str(st.st_mtime_ns)
        info = self.fs.info(p)
        return int(info.get("size") or 0), _marker(info)

    @_storage_errors
    def files(self, name: str = "") -> dict[str, tuple[int, str]]:
        """Every file under the folder (or its subfolder `name`), by '/'-separated name relative
        to it: (size, change marker). One listing, fresh (never a cached one: other processes
        write here too); {} when there is nothing."""
        top = self.path(name).rstrip("/")
        found: dict[str, tuple[int, str]] = {}
        if self.fs is None:
            for root, dirs, names in os.walk(top):
                dirs.sort()
                for n in names:
                    full = os.path.join(root, n)
                    st = os.stat(full)
                    found[os.path.relpath(full, top).replace(os.sep, "/")] = (st.st_size, str(st.st_mtime_ns))
            return found
        self.fs.invalidate_cache()
        if not self.fs.exists(top):
            return found
        for path, info in self.fs.find(top, detail=True).items():
            if info.get("type", "file") != "file":
                continue
            rel = path.rstrip("/")[len(top) :].lstrip("/")
            if rel:
                found[rel] = (int(info.get("size") or 0), _marker(info))
        return found

    @_storage_errors
    def get_files(self, names: list[str], dest: Path) -> None:
        """Copy files (names relative to the folder) under a local folder, keeping their
        names; on a remote store in one batch, which fsspec runs concurrently. The copies
        appear straight under their names: `dest` is a scratch folder, not a committed one."""
        dest = Path(dest)
        for name in names:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
        if self.fs is None:
            for name in names:
                shutil.copyfile(self.path(name), dest / name)
        elif names:
            self.fs.get([self.path(n) for n in names], [str(dest / n) for n in names])

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
            assert self.fs is not None  # local_path is None only for a remote folder
            with _translated(self.url):
                self.fs.get(self.path(name).rstrip("/") + "/", str(dest) + "/", recursive=True)
            yield dest
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # ---- writing

    @_storage_errors
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
        if self.renames:
            self.fs.makedirs(parent, exist_ok=True)
            tmp = f"{parent}/.{final.rsplit('/', 1)[-1]}.{uuid.uuid4().hex[:12]}.tmp"
            self.fs.put_file(str(local_file), tmp)
            self.fs.mv(tmp, final)
        else:  # an object store has no folders to make: one PUT, atomic there
            self.fs.put_file(str(local_file), final)

    def commit(self, name: str, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(prefix="nocpipe-commit-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            self.commit_file(Path(tmp), name)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    @_storage_errors
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


def _marker(info: dict) -> str:
    """What changes when a file is rewritten: its content hash where the store keeps one
    (an object's ETag), else its modification time."""
    marker = (
        info.get("ETag")
        or info.get("etag")
        or info.get("md5")
        or info.get("mtime")
        or info.get("LastModified")
        or info.get("created")
        or ""
    )
    return str(marker).strip('"')


def folder_or_url(where: str | os.PathLike) -> Path | str:
    """A command-line folder for a stage that reads and writes through `Location`: a local
    path (plain, or a file:// URL), or the URL of another file system, checked here so that
    a missing driver (s3fs, gcsfs) or a malformed URL is one line before any work."""
    if not is_url(where):
        return Path(where)
    loc = Location(where)
    return loc.local_path if loc.local_path is not None else loc.url
