"""nocpipe ingest: local texts (Aozora Bunko .txt/.zip, plain text) into the raw store.

A work lands in data/raw/<source>/<work_id>/ as text.txt (UTF-8, notation kept, so a
better parser can run again) and meta.json, written last: a folder without meta.json
is unfinished and is redone on the next run.
"""

from __future__ import annotations

import hashlib
import io
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from pipeline import __version__, rawstore
from pipeline.errors import ArchiveError, EmptyInputError, InputError, NocpipeError
from pipeline.ids import work_id_from_stem
from pipeline.parsers import aozora
from pipeline.progress import progress
from pipeline.records import Counters
from pipeline.textfile import decode_bytes

TEXT_SUFFIXES = {".txt"}
ZIP_SUFFIXES = {".zip"}


@dataclass
class IngestResult:
    counters: Counters = field(default_factory=Counters)
    failures: list[str] = field(default_factory=list)
    works: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SourceText:
    """One text to ingest: where it came from, its id and its bytes."""

    origin: str
    stem: str
    data: bytes


def find_inputs(paths: list[Path]) -> Iterator[Path]:
    """Files named directly, and .txt/.zip files inside folders (recursively, sorted)."""
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix.lower() in TEXT_SUFFIXES | ZIP_SUFFIXES:
                    yield f
        else:
            yield p


def read_sources(path: Path) -> list[SourceText]:
    """The texts in one file: itself, or the .txt members of an Aozora zip."""
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    data = path.read_bytes()
    if path.suffix.lower() in ZIP_SUFFIXES or data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                members = [m for m in zf.infolist()
                           if not m.is_dir() and m.filename.lower().endswith(".txt")
                           and not Path(m.filename).name.startswith(".")]
                if not members:
                    raise ArchiveError(f"{path}: the zip holds no .txt file")
                if len(members) == 1:
                    return [SourceText(str(path), path.stem, zf.read(members[0]))]
                return [SourceText(f"{path}!{m.filename}", f"{path.stem}_{Path(m.filename).stem}", zf.read(m))
                        for m in members]
        except zipfile.BadZipFile as exc:
            raise ArchiveError(f"{path}: not a readable zip file ({exc})") from exc
    return [SourceText(str(path), path.stem, data)]


def ingest_one(src: SourceText, raw_dir: Path, counters: Counters) -> str:
    """Store one text; returns 'new', 'updated' or 'unchanged'."""
    decoded = decode_bytes(src.data, src.origin)
    lines = decoded.text.split("\n")
    work_id = work_id_from_stem(src.stem)
    if aozora.looks_like_aozora(lines):
        source = "aozora"
        parsed = aozora.parse(decoded.text, counters)
        title, author, body = parsed.title, parsed.author, parsed.body
    else:
        source, title, author, body = "text", src.stem, "", lines
    if not any(ln.strip() for ln in body):
        raise EmptyInputError(f"{src.origin}: the text has no body lines")
    digest = hashlib.sha256(decoded.text.encode("utf-8")).hexdigest()
    work_dir = rawstore.work_dir(raw_dir, source, work_id)
    status = "new"
    if (work_dir / rawstore.META_FILE).exists():
        old = rawstore.read_meta_or_empty(work_dir)
        if old.get("sha256") == digest and (work_dir / rawstore.TEXT_FILE).exists():
            return "unchanged"
        status = "updated"
    # The other source's folder for this id would be a stale duplicate.
    for other in ("aozora", "text"):
        if other != source:
            rawstore.forget(rawstore.work_dir(raw_dir, other, work_id))
    rawstore.write_text(work_dir, decoded.text)
    rawstore.write_meta(work_dir, {
        "source": source,
        "work_id": work_id,
        "title": title,
        "author": author,
        "url": None,
        "origin": src.origin,
        "encoding": decoded.encoding,
        "sha256": digest,
        "chars": len(decoded.text),
        "episodes": 1,
        "fetched_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "nocpipe_version": __version__,
    })
    return status


def ingest(paths: list[Path], raw_dir: Path, show_progress: bool = True) -> IngestResult:
    result = IngestResult()
    files = list(find_inputs(paths))
    for path in progress(files, desc="ingest", unit="file", enabled=show_progress):
        try:
            for src in read_sources(path):
                status = ingest_one(src, raw_dir, result.counters)
                result.counters.add(status)
                result.works.append(src.stem)
        except InputError as exc:
            result.counters.add(f"failed_{exc.reason}")
            result.failures.append(str(exc))
            print(f"skipped: {exc}", file=sys.stderr)
        except OSError as exc:
            result.counters.add("failed_unreadable")
            result.failures.append(f"{path}: {exc.strerror or exc}")
            print(f"skipped: {path}: {exc.strerror or exc}", file=sys.stderr)
    if files and not result.works and result.failures:
        raise NocpipeError(f"none of the {len(files)} file(s) could be ingested (reasons above)")
    if not files:
        raise NocpipeError("no .txt or .zip files found in " + ", ".join(map(str, paths)))
    return result
