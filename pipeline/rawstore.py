"""The raw store (`data/raw/`): the one module that knows its names and files.

    <raw>/<source>/<work_id>/          source: nocturne, narou, aozora, text
        meta.json                      written last: a folder without it is unfinished
        text.txt                       an ingested text (UTF-8, notation kept)
        episodes/NNNN.html             a scraped episode, as received
        .progress.jsonl                scrape's log of episodes stored while a work is half
                                       done (one JSON line each, with the file's SHA-256)

Folder names come from validated ids only: an ncode (n + 4 ASCII digits + letters) for
the syosetu sources, a file stem made folder-safe (`pipeline.ids`) for the others. A
`file` entry of meta.json is read only when it names a file inside its work's folder:
absolute paths, `..` and symlinks out of the folder are refused.

No stage writes here but through this module: ingest and scrape write, extract-pairs
and list read. A store copied to an object store (s3://...) is read by extract-pairs
through `remote_works`: one listing gives every work and its fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import cast

from . import atomic
from .config import SOURCES
from .errors import StoreError, UsageError, not_a_folder
from .ids import NCODE_RE, work_id_from_stem
from .location import Location, is_url
from .records import WorkRef

META_FILE = "meta.json"
TEXT_FILE = "text.txt"
EPISODE_DIR = "episodes"
PROGRESS_FILE = ".progress.jsonl"
#: Sources whose work ids are ncodes and whose works are folders of episode pages.
SITE_SOURCES = ("nocturne", "narou")


# ---------------------------------------------------------------- names


def valid_work_id(source: str, work_id: str) -> bool:
    """Whether `work_id` is a name this store would have made for `source`."""
    if source in SITE_SOURCES:
        return NCODE_RE.fullmatch(work_id) is not None
    try:
        return work_id_from_stem(work_id) == work_id
    except UsageError:
        return False


def work_dir(raw_dir: Path, source: str, work_id: str) -> Path:
    """The folder of one work; StoreError for a source or id this store never makes."""
    if source not in SOURCES:
        raise StoreError(f"unknown source {source!r}: the raw store holds {', '.join(SOURCES)}")
    if not valid_work_id(source, work_id):
        raise StoreError(f"{work_id!r} is not a valid work id for {source}")
    return Path(raw_dir) / source / work_id


def episode_file(number: int) -> str:
    """The name, relative to the work's folder, of a scraped episode."""
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise StoreError(f"episode number {number!r} is not 1 or more")
    return f"{EPISODE_DIR}/{number:04d}.html"


def episode_path(work: Path, entry: dict) -> Path | None:
    """The file of an episode entry (meta.json or progress log), or None when the entry
    is malformed or names anything outside the work's folder."""
    try:
        number = int(entry["number"])
        name = entry.get("file") or episode_file(number)
    except (KeyError, TypeError, ValueError, StoreError):
        return None
    if not isinstance(name, str) or "\\" in name or "\0" in name:
        return None
    rel = PurePosixPath(name)
    if rel.is_absolute() or not rel.parts or any(p in ("..", ".", "") for p in rel.parts):
        return None
    path = Path(work) / rel
    try:
        if not path.resolve().is_relative_to(Path(work).resolve()):
            return None  # a symlink out of the folder
    except OSError:
        return None
    return path


# ---------------------------------------------------------------- meta.json


def read_meta(work: Path) -> dict:
    """A work's meta.json: {} when there is none; StoreError when it is not a JSON object
    or its episode list is malformed (only this module writes it, so that is a hand edit
    or another program)."""
    path = Path(work) / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path}: unreadable ({exc}); fetch or ingest the work again") from exc
    if not isinstance(meta, dict):
        raise StoreError(f"{path}: not a JSON object; fetch or ingest the work again")
    episodes = meta.get("episodes")
    if isinstance(episodes, list):
        for ep in episodes:
            if not isinstance(ep, dict) or not isinstance(ep.get("number"), int) or ep["number"] < 1:
                raise StoreError(f"{path}: an episode entry without a valid number; fetch the work again")
    return meta


def read_meta_or_empty(work: Path) -> dict:
    """read_meta for writers that can rebuild it: an unreadable file is reported and
    treated as missing."""
    try:
        return read_meta(work)
    except StoreError as exc:
        print(f"warning: {exc}; treating it as missing", file=sys.stderr)
        return {}


def write_meta(work: Path, meta: dict) -> None:
    """Write meta.json atomically (last, so the work becomes visible complete)."""
    work = Path(work)
    source, work_id = meta.get("source"), meta.get("work_id")
    if source is not None and (work.parent.name != source or work.name != work_id):
        raise StoreError(f"meta.json for {source}/{work_id} does not belong in {work}")
    atomic.write_json(work / META_FILE, meta)


def write_text(work: Path, text: str) -> None:
    """An ingested text, atomically (before its meta.json)."""
    atomic.write_text(Path(work) / TEXT_FILE, text)


def read_text(work: Path) -> str:
    """An ingested work's text."""
    return (Path(work) / TEXT_FILE).read_text(encoding="utf-8")


def has_text(work: Path) -> bool:
    return (Path(work) / TEXT_FILE).is_file()


def is_finished(work: Path) -> bool:
    """Whether the work's meta.json is there (a folder without it is unfinished)."""
    return (Path(work) / META_FILE).is_file()


def write_episode(work: Path, number: int, data: bytes) -> str:
    """A scraped episode as received, atomically; returns its `file` entry."""
    name = episode_file(number)
    atomic.write_bytes(Path(work) / name, data)
    return name


class WorkWriter:
    """One run's writes into a work's folder, in the store's order, for ingest and scrape:

        w = WorkWriter(work)       # a killed run's temporaries in the folder go
        w.store(info, data)        # an episode: its progress line first, then its file
        w.move([(info, old), ...]) # renumbered episodes: the bytes of `old`'s files, re-stored
        w.store_text(text)         # an ingested text
        w.drop(number)             # an episode no longer listed: its file goes after the commit
        w.commit(meta)             # meta.json last; then the dropped files and the progress log

    A kill before `commit` leaves the old meta.json (or none) and a progress log whose lines
    match their files (stored_episodes), so the next run takes up what was stored."""

    def __init__(self, work: Path):
        self.work = Path(work)
        self._dropped: list[int] = []
        clean(self.work)

    def store(self, info: dict, data: bytes) -> dict:
        """Store episode `info["number"]` with `data`; returns its meta.json entry (`info`
        with the file's name, size and SHA-256)."""
        entry = {
            **info,
            "file": episode_file(info["number"]),
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        append_progress(self.work, entry)  # first the line, then the file: see stored_episodes
        atomic.write_bytes(self.work / entry["file"], data)
        return entry

    def move(self, moves: list[tuple[dict, dict]]) -> list[dict]:
        """Each (info, old entry): the bytes of the old entry's file stored as `info`. Every
        source is read before anything is written, so moves may swap numbers."""
        data = []
        for _, old in moves:
            path = episode_path(self.work, old)
            if path is None:
                raise StoreError(f"{self.work}: episode entry {old.get('number')!r} names no file in the folder")
            data.append(path.read_bytes())
        return [self.store(info, d) for (info, _), d in zip(moves, data)]

    def store_text(self, text: str) -> None:
        write_text(self.work, text)

    def drop(self, number: int) -> None:
        self._dropped.append(number)

    def update_meta(self, meta: dict) -> None:
        """A new meta.json for the files as they are (nothing stored, nothing dropped)."""
        write_meta(self.work, meta)

    def commit(self, meta: dict | None) -> None:
        """meta.json (None: it stays as it is), then the dropped episodes' files and the
        progress log go."""
        if meta is not None:
            write_meta(self.work, meta)
        for n in self._dropped:
            (self.work / episode_file(n)).unlink(missing_ok=True)
        self._dropped.clear()
        drop_progress(self.work)


def forget(work: Path) -> None:
    """Make a work invisible (its meta.json goes; the files stay until overwritten)."""
    (Path(work) / META_FILE).unlink(missing_ok=True)


def clean(work: Path) -> None:
    """Remove leftovers of interrupted atomic writes in a work's folder."""
    atomic.clean_temporaries(Path(work))
    atomic.clean_temporaries(Path(work) / EPISODE_DIR)


# ---------------------------------------------------------------- listing


def work_dirs(raw_dir: Path, sources: Iterable[str] | None = None, *, finished_only: bool = True) -> list[WorkRef]:
    """Works in the store, sorted by source and id: those with meta.json, or with
    `finished_only=False` also half-done ones (a folder with a progress log or files).
    Folders whose names this store would never make are reported and skipped."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        if raw_dir.exists():
            raise StoreError(not_a_folder(raw_dir, "the raw store"))
        raise StoreError(f"raw store {raw_dir} does not exist; run `nocpipe ingest` or `nocpipe scrape` first")
    wanted = set(sources) if sources is not None else None
    works = []
    for source_dir in sorted(p for p in raw_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if source_dir.name not in SOURCES:
            print(f"warning: {source_dir} is not a source nocpipe knows; skipped", file=sys.stderr)
            continue
        if wanted is not None and source_dir.name not in wanted:
            continue
        for w in sorted(p for p in source_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if not valid_work_id(source_dir.name, w.name):
                print(f"warning: {w} is not named by a valid work id; skipped", file=sys.stderr)
                continue
            if (w / META_FILE).is_file() or (not finished_only and any(w.iterdir())):
                works.append(WorkRef(source_dir.name, w.name, w))
    return works


def list_works(raw_dir: Path, sources: Iterable[str] | None = None) -> list[WorkRef]:
    """Finished works (those with meta.json), sorted."""
    return work_dirs(raw_dir, sources)


def remote_works(store: Location) -> list[tuple[WorkRef, str, int]]:
    """Finished works of a raw store at a URL (an object store), sorted, each with its
    (fingerprint, size) as `identity` gives them, from one listing of the store. A work's
    `path` is its URL; a worker copies the folder before reading it (Location.fetch). The
    fingerprint hashes names, sizes and the store's change markers (ETags), so a work
    re-uploaded with new content gets a new one."""
    by_work: dict[tuple[str, str], list[tuple[str, int, str]]] = {}
    for name, (nbytes, marker) in store.files().items():
        parts = name.split("/")
        if len(parts) < 3 or any(p.startswith(".") for p in parts):
            continue
        by_work.setdefault((parts[0], parts[1]), []).append(("/".join(parts[2:]), nbytes, marker))
    if not by_work and not store.exists():
        raise StoreError(
            f"raw store {store} does not exist; run `nocpipe ingest` into a local store and copy it there first"
        )
    found, warned = [], set()
    for (source, work_id), files in sorted(by_work.items()):
        if source not in SOURCES:
            if source not in warned:
                print(f"warning: {store}/{source} is not a source nocpipe knows; skipped", file=sys.stderr)
                warned.add(source)
            continue
        if not valid_work_id(source, work_id):
            print(f"warning: {store}/{source}/{work_id} is not named by a valid work id; skipped", file=sys.stderr)
            continue
        if not any(rel == META_FILE for rel, _, _ in files):
            continue
        h = hashlib.sha1()
        for rel, nbytes, marker in sorted(files):
            h.update(f"{rel}\0{nbytes}\0{marker}\n".encode())
        # A remote work's path is its URL, only named in messages: Store.opened swaps in a local copy.
        url = cast(Path, f"{store.url.rstrip('/')}/{source}/{work_id}")
        ref = WorkRef(source, work_id, url)
        found.append((ref, h.hexdigest(), sum(n for _, n, _ in files)))
    return found


def read_remote_metas(store: Location, refs: list[WorkRef]) -> dict[str, dict]:
    """The meta.json of remote works, by key, read in one batch; {} (with a warning) for
    one that cannot be read."""
    got = store.read_many([f"{ref.key}/{META_FILE}" for ref in refs])
    metas = {}
    for ref in refs:
        data = got[f"{ref.key}/{META_FILE}"]
        try:
            if isinstance(data, OSError):
                raise data
            meta = json.loads(data)
        except (OSError, ValueError) as exc:
            print(f"warning: {ref.path}/{META_FILE}: unreadable ({exc}); treating it as missing", file=sys.stderr)
            meta = {}
        metas[ref.key] = meta if isinstance(meta, dict) else {}
    return metas


@dataclass(frozen=True)
class Store:
    """The raw store as a reader sees it, a local folder or a URL alike: its finished works
    with their identities, a work's folder to read, and the works' meta.json. Small and
    picklable: a worker process gets it with its task."""

    where: Path | str

    @property
    def _remote(self) -> Location | None:
        return Location(self.where) if is_url(self.where) else None

    def finished_works(self) -> list[tuple[WorkRef, tuple[str, int] | OSError]]:
        """Finished works, sorted, each with its (fingerprint, size), or the OSError that
        kept it from being read (such a work is to be skipped and named)."""
        remote = self._remote
        if remote is not None:
            return [(ref, (fp, n)) for ref, fp, n in remote_works(remote)]
        found: list[tuple[WorkRef, tuple[str, int] | OSError]] = []
        for ref in list_works(Path(self.where)):
            try:
                found.append((ref, identity(ref.path)))
            except OSError as exc:
                found.append((ref, exc))
        return found

    @contextmanager
    def opened(self, ref: WorkRef) -> Iterator[WorkRef]:
        """`ref` with a local folder to read: its own, or a temporary copy of a remote one."""
        remote = self._remote
        if remote is None:
            yield ref
            return
        with remote.fetch(ref.key) as local:
            yield replace(ref, path=local)

    def metas(self, refs: list[WorkRef]) -> dict[str, dict]:
        """The works' meta.json by key ({} with a warning for one that cannot be read)."""
        remote = self._remote
        if remote is not None:
            return read_remote_metas(remote, refs)
        return {ref.key: read_meta_or_empty(ref.path) for ref in refs}


def identity(work: Path) -> tuple[str, int]:
    """(fingerprint, size) of a work in one walk over its files. The fingerprint is a cheap
    identity of the files (names, sizes, mtimes): it changes when the work is re-fetched or
    re-ingested. The size is their bytes: how long the work takes to read, roughly. Dot
    files (temporaries, the progress log) count in neither."""
    h = hashlib.sha1()
    total = 0
    for root, dirs, files in os.walk(work):
        dirs.sort()
        for name in sorted(files):
            if name.startswith("."):
                continue
            st = os.stat(os.path.join(root, name))
            rel = os.path.relpath(os.path.join(root, name), work)
            h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            total += st.st_size
    return h.hexdigest(), total


def fingerprint(work: Path) -> str:
    return identity(work)[0]


def size(work: Path) -> int:
    return identity(work)[1]


# ---------------------------------------------------------------- scrape's progress log


def read_progress(work: Path) -> dict[int, dict]:
    """Episodes the progress log names, by number; a line cut short by a kill is ignored."""
    try:
        text = (Path(work) / PROGRESS_FILE).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    episodes: dict[int, dict] = {}
    for line in text.splitlines():
        try:
            info = json.loads(line)
            episodes[int(info["number"])] = info
        except (ValueError, KeyError, TypeError):
            continue
    return episodes


def append_progress(work: Path, info: dict) -> None:
    """One line, flushed to disk before the episode's file is renamed into place."""
    (Path(work) / EPISODE_DIR).mkdir(parents=True, exist_ok=True)
    with open(Path(work) / PROGRESS_FILE, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(info, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def drop_progress(work: Path) -> None:
    (Path(work) / PROGRESS_FILE).unlink(missing_ok=True)


def has_progress(work: Path) -> bool:
    return (Path(work) / PROGRESS_FILE).is_file()


# ---------------------------------------------------------------- stored episodes


def stored_episodes(work: Path, meta: dict | None = None, *, with_progress: bool = False) -> dict[int, dict]:
    """The episodes on disk, by number, with their entry: those meta.json lists whose file
    is in place, and with `with_progress` the progress log's lines whose file holds the
    bytes the line names (a line is written just before its file, so a kill in between
    leaves a line whose file is missing or holds other bytes: ignored). A meta.json with
    no episode list (older stores) lists every episodes/NNNN.html."""
    work = Path(work)
    meta = read_meta(work) if meta is None else meta
    found: dict[int, dict] = {}
    listed = meta.get("episodes")
    if isinstance(listed, list):
        for ep in listed:
            path = episode_path(work, ep)
            if path is not None and path.is_file():
                found[int(ep["number"])] = ep
    elif not with_progress:
        for path in (work / EPISODE_DIR).glob("*.html"):
            if path.stem.isascii() and path.stem.isdigit() and int(path.stem) > 0:
                found[int(path.stem)] = {"number": int(path.stem), "file": f"{EPISODE_DIR}/{path.name}"}
    if with_progress:
        for n, info in read_progress(work).items():
            path = episode_path(work, info)
            if path is None:
                continue
            try:
                if hashlib.sha256(path.read_bytes()).hexdigest() == info.get("sha256"):
                    found[n] = info
            except OSError:
                continue
    return dict(sorted(found.items()))


def episode_files(work: Path) -> list[tuple[int, Path]]:
    """(number, file) of a finished work's stored episodes, in episode order."""
    work = Path(work)
    # stored_episodes keeps only entries whose episode_path is a file, so none is None here
    return [(n, cast(Path, episode_path(work, e))) for n, e in stored_episodes(work).items()]
