"""nocpipe ingest: local texts (Aozora Bunko .txt/.zip, plain text) into the raw store.

A work lands in data/raw/<source>/<work_id>/ as text.txt (UTF-8, notation kept, so a
better parser can run again) and meta.json, written last: a folder without meta.json
is unfinished and is redone on the next run.
"""

from __future__ import annotations

import errno
import hashlib
import io
import lzma
import os
import stat
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from pipeline import __version__, config, rawstore
from pipeline.errors import (
    ArchiveError,
    EmptyInputError,
    InputError,
    NocpipeError,
    StoreError,
    UsageError,
    describe_os_error,
)
from pipeline.ids import printable, work_id_for
from pipeline.locks import locked
from pipeline.parsers import aozora
from pipeline.progress import progress
from pipeline.records import Counters
from pipeline.textfile import decode_bytes

TEXT_SUFFIXES = {".txt"}
ZIP_SUFFIXES = {".zip"}
SOURCES = ("aozora", "text")
_MB = 1024 * 1024
#: The largest --max-size: a file is read into memory whole.
MAX_SIZE_MB = 4096


@dataclass
class IngestResult:
    counters: Counters = field(default_factory=Counters)
    failures: list[str] = field(default_factory=list)
    works: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class InputFile:
    """A file to read: its path and its path relative to the folder it was found in
    (its name when it was given directly), which its work id is made from."""

    path: Path
    relpath: str


@dataclass(frozen=True)
class SourceText:
    """One text to ingest: where it came from, its name, its relative path and its bytes."""

    origin: str
    stem: str
    data: bytes
    relpath: str = ""
    path: Path | None = None


class Skipped(InputError):
    """Something in a folder that is not a file we can read (FIFO, device, link loop...)."""

    reason = "not_a_file"


class TooLarge(InputError):
    reason = "too_large"


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _stat(path: Path) -> os.stat_result:
    """stat() following links; a link loop or a dangling link becomes a Skipped."""
    try:
        return os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Skipped(f"{path}: symbolic link loop") from None
        if path.is_symlink():
            raise Skipped(f"{path}: dangling symbolic link") from None
        if exc.errno == errno.ENOENT:
            raise InputError(f"{path}: no such file or folder") from None
        raise InputError(f"{path}: {exc.strerror or exc}") from None


def _walk(
    root: Path, folder: Path, out: list[InputFile], skip: Callable[[InputError], None], seen: set[tuple[int, int]]
) -> None:
    """Every .txt/.zip regular file under `folder`, sorted; what cannot be read is skipped
    (one line each), not silently ignored. Linked folders are followed once."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        skip(InputError(f"{folder}: unreadable folder ({exc.strerror or exc})"))
        return
    for entry in entries:
        path = Path(entry.path)
        try:
            st = _stat(path)
        except InputError as exc:
            skip(exc)
            continue
        if stat.S_ISDIR(st.st_mode):
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                _walk(root, path, out, skip, seen)
        elif stat.S_ISREG(st.st_mode):
            if path.suffix.lower() in TEXT_SUFFIXES | ZIP_SUFFIXES:
                out.append(InputFile(path, path.relative_to(root).as_posix()))
        else:
            skip(Skipped(f"{path}: {_kind(st.st_mode)}, not a file"))


def find_inputs(paths: list[Path], skip: Callable[[InputError], None] | None = None) -> list[InputFile]:
    """Files named directly, and .txt/.zip files inside folders (recursively, sorted).
    What is not a regular file is passed to `skip` (by default: raised)."""

    def _raise(exc: InputError) -> None:
        raise exc

    skip = skip or _raise
    out: list[InputFile] = []
    for p in paths:
        p = Path(p)
        try:
            st = _stat(p)
        except InputError as exc:
            skip(exc)
            continue
        if stat.S_ISDIR(st.st_mode):
            _walk(p, p, out, skip, {(st.st_dev, st.st_ino)})
        elif stat.S_ISREG(st.st_mode):
            out.append(InputFile(p, p.name))
        else:
            skip(Skipped(f"{p}: {_kind(st.st_mode)}, not a file"))
    return out


def _too_large(name: object, size: int, max_bytes: int) -> TooLarge:
    return TooLarge(
        f"{name}: too large ({size / _MB:.0f} MB; the limit is {max_bytes // _MB} MB, raise it with --max-size)"
    )


def read_sources(path: Path | InputFile, max_bytes: int = config.MAX_INPUT_MB * _MB) -> Iterator[SourceText]:
    """The texts in one file: itself, or the .txt members of an Aozora zip, one at a time.
    Nothing larger than `max_bytes` is read into memory."""
    item = path if isinstance(path, InputFile) else InputFile(Path(path), Path(path).name)
    path = item.path
    st = _stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise Skipped(f"{path}: {_kind(st.st_mode)}, not a file")
    if st.st_size > max_bytes:
        raise _too_large(path, st.st_size, max_bytes)
    with open(path, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:  # it grew since stat()
        raise _too_large(path, len(data), max_bytes)
    if path.suffix.lower() in ZIP_SUFFIXES or data[:4] == b"PK\x03\x04":
        yield from _zip_sources(item, data, max_bytes)
        return
    yield SourceText(str(path), path.stem, data, item.relpath, path)


def _zip_sources(item: InputFile, data: bytes, max_bytes: int) -> Iterator[SourceText]:
    path = item.path
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = [
                m
                for m in zf.infolist()
                if not m.is_dir() and m.filename.lower().endswith(".txt") and not Path(m.filename).name.startswith(".")
            ]
            if not members:
                raise ArchiveError(f"{path}: the zip holds no .txt file")
            for m in members:
                _check_member(path, m, max_bytes)
            if len(members) == 1:
                yield SourceText(
                    str(path), path.stem, _read_member(zf, members[0], max_bytes, path), item.relpath, path
                )
                return
            for m in members:
                yield SourceText(
                    f"{path}!{m.filename}",
                    f"{path.stem}_{Path(m.filename).stem}",
                    _read_member(zf, m, max_bytes, path),
                    f"{item.relpath}!{m.filename}",
                    path,
                )
    except ZIP_FAULTS as exc:
        # A damaged member fails while it is decompressed, in whichever library reads it.
        raise ArchiveError(f"{path}: not a readable zip file ({type(exc).__name__}: {exc})") from exc


#: What reading a damaged or unusual zip raises: zipfile's own errors, and those of the
#: decompressors beneath it (zlib, bz2's OSError, lzma) and of its header parsing.
ZIP_FAULTS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    OSError,
    struct.error,
    zlib.error,
    lzma.LZMAError,
)
#: Compression methods Python's zipfile reads (stored, deflate, bzip2, LZMA).
READABLE_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate", zipfile.ZIP_BZIP2: "bzip2"}
READABLE_METHODS[zipfile.ZIP_LZMA] = "LZMA"


def _check_member(path: Path, m: zipfile.ZipInfo, max_bytes: int) -> None:
    """A member we cannot read stops the zip before anything of it is stored, with why."""
    name = f"{path}!{m.filename}"
    if m.flag_bits & 0x1:
        raise ArchiveError(
            f"{name}: encrypted (the zip has a password); unpack it with its password and ingest the .txt"
        )
    if m.compress_type not in READABLE_METHODS:
        raise ArchiveError(
            f"{name}: compressed with method {m.compress_type}, which Python's zipfile cannot read "
            f"(it reads {', '.join(READABLE_METHODS.values())}); unpack it and ingest the .txt"
        )
    if m.file_size > max_bytes:
        raise _too_large(name, m.file_size, max_bytes)


def _read_member(zf: zipfile.ZipFile, m: zipfile.ZipInfo, max_bytes: int, path: Path) -> bytes:
    # The declared size can lie (a zip bomb): read at most one byte past the limit.
    with zf.open(m) as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise _too_large(f"{path}!{m.filename}", len(data), max_bytes)
    return data


def _same_origin(stored: object, src: SourceText) -> bool:
    """Whether a stored work's `origin` names the file `src` comes from (or names no
    file at all: a damaged meta.json is rewritten, not a reason for a second id)."""
    if not isinstance(stored, str):
        return True
    if stored in (src.origin, printable(src.origin)):
        return True
    file_part, _, member = stored.partition("!")
    own_member = src.origin.partition("!")[2]
    if member != own_member or src.path is None:
        return False
    try:
        return os.path.samefile(file_part, src.path)
    except OSError:
        # The file it came from is gone (or moved): this one may take its id over.
        return True


def _read_meta(work: Path) -> dict:
    try:
        return rawstore.read_meta(work)
    except StoreError:
        return {}


def assign_work_id(src: SourceText, raw_dir: Path) -> str:
    """The work id of `src` (see pipeline.ids.work_id_for): the first of its candidate ids
    that no work from another, still existing file holds in the store. A safe name is
    its own id; otherwise (or when that is taken) a hash of the relative path is added,
    and of the absolute path when two folders given at once hold the same relative path."""
    relpath = src.relpath or Path(src.origin).name
    member = src.origin.partition("!")[2] if src.origin != str(src.path) else ""
    absolute = str(Path(src.path or src.origin).resolve()) + (f"!{member}" if member else "")
    candidates = dict.fromkeys(
        [
            work_id_for(src.stem, relpath),
            work_id_for(src.stem, relpath, taken=True),
            work_id_for(src.stem, absolute, taken=True),
        ]
    )
    for wid in candidates:
        folders = [rawstore.work_dir(raw_dir, source, wid) for source in SOURCES]
        holders = [_read_meta(w) for w in folders if rawstore.is_finished(w)]
        if all(_same_origin(m.get("origin"), src) for m in holders):
            return wid
    return wid


def _store_error(exc: OSError, raw_dir: Path) -> StoreError:
    if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return StoreError(f"cannot write to the raw store: {describe_os_error(exc, str(raw_dir))}")
    return StoreError(
        f"cannot write to the raw store: {describe_os_error(exc, str(raw_dir))} (--raw-dir must be a writable folder)"
    )


def ingest_one(src: SourceText, raw_dir: Path, counters: Counters) -> str:
    """Store one text; returns 'new', 'updated' or 'unchanged'."""
    status, _ = _ingest_one(src, raw_dir, counters)
    return status


def _ingest_one(src: SourceText, raw_dir: Path, counters: Counters) -> tuple[str, str]:
    decoded = decode_bytes(src.data, src.origin)
    text = decoded.text
    # Only the first 60 and last 200 lines decide the format: a list of every line of a
    # large text would cost twice the text itself.
    lines = text[:200_000].split("\n")[:60] + text[-200_000:].split("\n")[-200:]
    if aozora.looks_like_aozora(lines):
        source = "aozora"
        parsed = aozora.parse(text, counters)
        title, author, has_body = parsed.title, parsed.author, any(ln.strip() for ln in parsed.body)
        del parsed
    else:
        source, title, author, has_body = "text", src.stem, "", bool(text.strip())
    del lines
    if not has_body:
        raise EmptyInputError(f"{src.origin}: the text has no body lines")
    sha = hashlib.sha256()
    for i in range(0, len(text), 1 << 20):  # no second full copy of the text as bytes
        sha.update(text[i : i + (1 << 20)].encode("utf-8", "surrogatepass"))
    digest = sha.hexdigest()
    work_id = assign_work_id(src, raw_dir)
    work_dir = rawstore.work_dir(raw_dir, source, work_id)
    status = "new"
    if rawstore.is_finished(work_dir):
        old = rawstore.read_meta_or_empty(work_dir)
        if old.get("sha256") == digest and rawstore.has_text(work_dir):
            return "unchanged", work_id
        status = "updated"
    try:
        # The other source's folder for this id would be a stale duplicate.
        for other in SOURCES:
            if other != source:
                rawstore.forget(rawstore.work_dir(raw_dir, other, work_id))
        writer = rawstore.WorkWriter(work_dir)
        writer.store_text(text)
        writer.commit(
            {
                "source": source,
                "work_id": work_id,
                "title": printable(title),
                "author": author,
                "url": None,
                "origin": printable(src.origin),
                "encoding": decoded.encoding,
                "sha256": digest,
                "chars": len(text),
                "episodes": 1,
                "fetched_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "nocpipe_version": __version__,
            },
        )
    except OSError as exc:
        raise _store_error(exc, raw_dir) from None
    return status, work_id


@dataclass(frozen=True)
class IngestOptions:
    paths: list[Path]
    raw_dir: Path
    show_progress: bool = True
    max_bytes: int = config.MAX_INPUT_MB * _MB

    def validate(self) -> None:
        if not self.paths:
            raise UsageError("name at least one file or folder to ingest")
        if not _MB <= self.max_bytes <= MAX_SIZE_MB * _MB:
            raise UsageError(f"--max-size must be 1 to {MAX_SIZE_MB} MB, not {self.max_bytes / _MB:g}")


def ingest(
    paths: list[Path], raw_dir: Path, show_progress: bool = True, max_bytes: int = config.MAX_INPUT_MB * _MB
) -> IngestResult:
    """Store the texts of `paths` (files and folders) in the raw store at `raw_dir`."""
    opts = IngestOptions(list(paths), Path(raw_dir), show_progress, max_bytes)
    opts.validate()
    return _ingest(opts.paths, opts.raw_dir, opts.show_progress, opts.max_bytes)


@locked("ingest", lambda a: a["raw_dir"], "raw store", recursive=True)
def _ingest(paths: list[Path], raw_dir: Path, show_progress: bool, max_bytes: int) -> IngestResult:
    result = IngestResult()

    def skip(exc: InputError) -> None:
        result.counters.add(f"failed_{exc.reason}")
        result.failures.append(str(exc))
        print(f"skipped: {printable(str(exc))}", file=sys.stderr)

    files = find_inputs(paths, skip)
    for item in progress(files, desc="ingest", unit="file", enabled=show_progress):
        try:
            for src in read_sources(item, max_bytes):
                status, work_id = _ingest_one(src, raw_dir, result.counters)
                result.counters.add(status)
                result.works.append(work_id)
        except InputError as exc:
            skip(exc)
        except OSError as exc:  # reading the input (store writes raise StoreError)
            skip(InputError(f"{item.path}: {exc.strerror or exc}"))
    if not files and not result.failures:
        raise NocpipeError("no .txt or .zip files found in " + ", ".join(map(str, paths)))
    if not result.works and result.failures:
        n = len(files) or len(result.failures)
        raise NocpipeError(f"none of the {n} input(s) could be ingested (reasons above)")
    return result
