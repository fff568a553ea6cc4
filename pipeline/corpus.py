"""The corpus folder (extract-pairs' --out-dir, train's --data-dir): the one module that
names and opens its files. Its layout, the Parquet schema of the pair shards and of the
per-work files, their key-value metadata, the state and the figures, and how to find them.

    <root>/pairs/train-00000.parquet ...      Parquet only: one file set per split, named
    <root>/pairs/validation-00000.parquet       so that Hugging Face's loader maps them to
    <root>/pairs/test-00000.parquet             train / validation / test
    <root>/README.md                          the dataset card (YAML header: configs per split)
    <root>/stats.json                         counts in, kept, dropped by reason, reader
    <root>/_state.json                        what the last run was made from (resume)
    <root>/.works/<source>/<work_id>.parquet  one work's pairs before corpus-wide dedup (cache)
    <root>/.lock                              held while extract-pairs writes here

Readers accept the root, any folder of Parquet files, or one Parquet file, as long as the
columns they need are there (`find_shards`, `require_columns`).

A writer opens the folder with `writing(where)`, local or at a URL alike: it works on a
local folder (the folder itself under its lock, or a copy of one at a URL, uploaded when
the block ends, the state last) and hands workers a `WorkSink` that puts per-work files
where the driver finds them.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from . import __version__, atomic, neardup
from .atomic import write_with
from .config import SplitConfig
from .errors import StoreError
from .location import Location, is_url
from .locks import folder_lock
from .mirror import Mirror
from .reporter import Reporter, as_reporter

if TYPE_CHECKING:
    from .records import WorkRef

#: 3: the `split` column says `validation` (2 said `valid`; readers take either).
SCHEMA_VERSION = 3
SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("work_id", pa.string()),
        ("episode", pa.int32()),
        ("line", pa.int32()),
        ("utterance", pa.string()),
        ("reply", pa.string()),
        ("utterance_kana", pa.string()),
        ("reply_kana", pa.string()),
        ("split", pa.string()),
    ]
)
COLUMNS = SCHEMA.names
PAIRS_DIR = "pairs"
STATE_FILE = "_state.json"
STATS_FILE = "stats.json"
CARD_FILE = "README.md"
WORKS_DIR = ".works"
#: Held while extract-pairs writes (pipeline.locks names and opens it).
LOCK_FILE = ".lock"
#: The `split` column's values, Hugging Face's names: also the shards' file prefixes.
SPLITS = ("train", "validation", "test")
SPLIT_FILES = {s: s for s in SPLITS}
#: Older names of a split, still read: schema version 2 wrote `valid` in the column.
SPLIT_ALIASES = {"valid": "validation"}
#: Key-value metadata keys every shard carries (values are strings).
META_PREFIX = "nocpipe."


def pairs_dir(root: Path) -> Path:
    return Path(root) / PAIRS_DIR


def canonical_split(name: str) -> str:
    """A split's name as this version writes it (`valid` is `validation`); StoreError for none."""
    split = SPLIT_ALIASES.get(name, name)
    if split not in SPLITS:
        raise StoreError(f"{name!r} is not a split: use {', '.join(SPLITS)} (or valid, the older name)")
    return split


def split_values(name: str) -> list[str]:
    """Every value of the `split` column that means split `name`: its name and its older ones,
    so a corpus written before reads as it did."""
    split = canonical_split(name)
    return [split] + [old for old, new in SPLIT_ALIASES.items() if new == split]


def shard_name(index: int, split: str = "train") -> str:
    """`train-00000.parquet`, `validation-00003.parquet`, ... (split as in the `split` column)."""
    return f"{SPLIT_FILES[canonical_split(split)]}-{index:05d}.parquet"


def split_glob(split: str | None = None) -> str:
    """The shards of one split (None: every shard) as a glob relative to the root, for the
    card's `data_files` and the loaders' examples: `pairs/validation-*.parquet`."""
    return f"{PAIRS_DIR}/{SPLIT_FILES[canonical_split(split)]}-*.parquet" if split else f"{PAIRS_DIR}/*.parquet"


def pairs_where(where: Path | str) -> str:
    """Where the shards of the corpus folder at `where` (a path or a URL) are, for messages."""
    return f"{str(where).rstrip('/')}/{PAIRS_DIR}"


def _parquet_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith(".") and p.is_file())


def list_shards(path: Path) -> list[Path]:
    """Shards in name order under `path`: a corpus root (its pairs/), a folder of Parquet,
    or one Parquet file. Temporaries are hidden and never match. [] when there are none."""
    path = Path(path)
    if path.is_file():
        return [path]
    if pairs_dir(path).is_dir():
        return _parquet_in(pairs_dir(path))
    if path.is_dir():
        return _parquet_in(path)
    return []


def find_shards(path: Path, columns: Iterable[str] = ("utterance_kana", "reply_kana", "split")) -> list[Path]:
    """list_shards(), or a StoreError saying what is missing: no such path, no Parquet, or
    files without the needed columns (named)."""
    path = Path(path)
    if not path.exists():
        raise StoreError(
            f"no pair shards at {path}: it does not exist; run `nocpipe extract-pairs` first, "
            "or give a corpus folder, a folder of Parquet files or one Parquet file"
        )
    shards = list_shards(path)
    if not shards:
        raise StoreError(
            f"no pair shards (Parquet files) in {path} or {pairs_dir(path)}: run `nocpipe extract-pairs` first"
        )
    for p in shards:
        require_columns(p, columns)
    return shards


def require_columns(path: Path, columns: Iterable[str], schema: pa.Schema | None = None) -> None:
    """The door's first half, from the footer alone: `path` is a whole Parquet file whose
    `columns` are there with the types of `schema` (the pair shards' by default)."""
    _check_schema(path, _footer(path).schema_arrow, list(columns), schema or SCHEMA)


def _footer(path: Path | str) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise StoreError(
            f"cannot read {path} as Parquet ({exc}): it is cut short or not Parquet; "
            "run `nocpipe extract-pairs` again, or remove the file"
        ) from None


def _kind(t: pa.DataType) -> str:
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "text"
    if pa.types.is_integer(t):
        return "integers"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "bytes"
    if pa.types.is_dictionary(t):
        return _kind(t.value_type)
    return str(t)


def _check_schema(path: Path | str, found: pa.Schema, columns: list[str], schema: pa.Schema) -> None:
    missing = [c for c in columns if c not in found.names]
    if missing:
        raise StoreError(
            f"{path} lacks the column(s) {', '.join(missing)} of a pair corpus (expected: {', '.join(schema.names)})"
        )
    wrong = [
        f"{c} holds {_kind(found.field(c).type)}, not {_kind(schema.field(c).type)}"
        for c in columns
        if c in schema.names and _kind(found.field(c).type) != _kind(schema.field(c).type)
    ]
    if wrong:
        raise StoreError(
            f"{path}: {'; '.join(wrong)}: not a corpus file nocpipe wrote; "
            "run `nocpipe extract-pairs` again, or remove the file"
        )


def check_nulls(table: pa.Table, path: Path | str) -> pa.Table:
    """The door's second half, on what was read: no column of the corpus holds nulls."""
    nulls = [f"{c} ({table.column(c).null_count:,})" for c in table.column_names if table.column(c).null_count]
    if nulls:
        raise StoreError(
            f"{path}: empty (null) values in {', '.join(nulls)}: pair files have none; "
            "run `nocpipe extract-pairs` again, or remove those rows"
        )
    return table


def open_checked(path: Path | str, columns: list[str], schema: pa.Schema | None = None) -> pq.ParquetFile:
    """A Parquet file of the corpus, opened through the door: whole, with `columns` there and
    of the right types; read its row groups with read_row_group_checked."""
    pf = _footer(path)
    _check_schema(path, pf.schema_arrow, columns, schema or SCHEMA)
    return pf


def read_row_group_checked(pf: pq.ParquetFile, path: Path | str, index: int, columns: list[str]) -> pa.Table:
    try:
        table = pf.read_row_group(index, columns=columns)
    except (OSError, pa.ArrowException) as exc:
        raise StoreError(f"cannot read {path} ({exc}): run `nocpipe extract-pairs` again, or remove the file") from None
    return check_nulls(table, path)


def read_checked(path: Path, columns: list[str] | None = None, schema: pa.Schema | None = None) -> pa.Table:
    """The door every reader of a corpus file goes through: `columns` (None: all of
    `schema`'s) of one Parquet file, whole, of the right types and without nulls, or one
    StoreError line naming the file and what to do."""
    schema = schema or SCHEMA
    columns = list(schema.names if columns is None else columns)
    pf = open_checked(path, columns, schema)
    try:
        table = pf.read(columns=columns)
    except (OSError, pa.ArrowException) as exc:
        raise StoreError(f"cannot read {path} ({exc}): run `nocpipe extract-pairs` again, or remove the file") from None
    return check_nulls(table, path)


def split_of(work_id: str, split: SplitConfig = SplitConfig()) -> str:
    """train/validation/test from a stable hash of work_id: a work never straddles splits."""
    h = int.from_bytes(hashlib.sha256(work_id.encode("utf-8")).digest()[:8], "big") / 2**64
    if h < split.train:
        return "train"
    if h < split.train + split.validation:
        return "validation"
    return "test"


# ---------------------------------------------------------------- metadata


def shard_metadata(reader: str, reader_version: str, max_len: int, **extra: object) -> dict[str, str]:
    """The key-value metadata of a shard (Parquet stores strings)."""
    meta = {
        "schema_version": SCHEMA_VERSION,
        "nocpipe_version": __version__,
        "reader": reader,
        "reader_version": reader_version,
        "max_len": max_len,
        **extra,
    }
    return {META_PREFIX + k: str(v) for k, v in meta.items()}


def read_metadata(path: Path) -> dict[str, str]:
    """nocpipe's key-value metadata of one Parquet file, prefix removed ({} when it has none)."""
    try:
        raw = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowException):
        return {}
    out = {}
    for k, v in raw.items():
        key = k.decode("utf-8", "replace")
        if key.startswith(META_PREFIX):
            out[key[len(META_PREFIX) :]] = v.decode("utf-8", "replace")
    return out


def corpus_metadata(path: Path) -> dict[str, str]:
    """What the corpus at `path` says about itself: the first shard's metadata, else the
    root's stats.json (reader, reader_version, max_len). {} when neither is there."""
    for shard in list_shards(path):
        meta = read_metadata(shard)
        if meta.get("reader"):
            return meta
    path = Path(path)
    # A filtered copy beside or inside the corpus (pairs/, the root) still has its stats.json.
    for folder in (path, path.parent) if path.is_dir() else (path.parent, path.parent.parent):
        stats = folder / STATS_FILE
        if stats.is_file():
            try:
                s = json.loads(stats.read_text(encoding="utf-8"))
            except ValueError:
                continue
            if s.get("reader"):
                return {k: str(s[k]) for k in ("reader", "reader_version", "max_len") if k in s}
    return {}


# ---------------------------------------------------------------- writing


def to_table(rows: Iterable[dict] | dict[str, list], metadata: dict[str, str] | None = None) -> pa.Table:
    if isinstance(rows, dict):
        table = pa.Table.from_pydict(rows, schema=SCHEMA)
    else:
        table = pa.Table.from_pylist(list(rows), schema=SCHEMA)
    return table.replace_schema_metadata(metadata) if metadata else table


def read_table(path: Path) -> pa.Table:
    """One pair shard, whole, through the door. pq.read_table would do, but it goes through
    pyarrow.dataset, whose import (with pyarrow.compute's) costs a process 0.15 s."""
    return read_checked(path)


def write_table(path: Path, table: pa.Table) -> int:
    """One zstd Parquet file, atomically."""
    write_with(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
    return table.num_rows


def write_shard(path: Path, rows: Iterable[dict] | dict[str, list], metadata: dict[str, str] | None = None) -> int:
    """Write rows (list of dicts or dict of columns) as one zstd Parquet shard, atomically."""
    return write_table(path, to_table(rows, metadata))


def read_columns(paths: Iterable[Path], columns: list[str]) -> pa.Table:
    """`columns` of every shard, through the door, as one table whose `split` (when read)
    says this version's names (a shard of schema 2 says `valid`)."""
    tables = [read_checked(p, columns) for p in paths]
    if not tables:
        return pa.table({c: pa.array([], type=SCHEMA.field(c).type) for c in columns})
    table = pa.concat_tables(tables, promote_options="default")
    if "split" in columns:
        import pyarrow.compute as pc

        col = table.column("split")
        for old, new in SPLIT_ALIASES.items():
            col = pc.if_else(pc.equal(col, old), new, col)
        table = table.set_column(table.column_names.index("split"), "split", col)
    return table


def read_columns_with(paths: Iterable[Path], columns: list[str], optional: list[str]) -> pa.Table:
    """read_columns, plus those of `optional` each shard has (a filtered copy may lack them)."""
    parts = [read_columns([p], columns + [c for c in optional if c in _footer(Path(p)).schema_arrow.names])
             for p in paths]  # fmt: skip
    return pa.concat_tables(parts, promote_options="default") if parts else read_columns([], columns)


def write_split_shard(root: Path, index: int, split: str, table: pa.Table, meta: dict[str, str]) -> tuple[str, bool]:
    """Shard number `index` of `split` with `table`'s rows, unless the shard there already
    holds exactly them (its mtime stays too). Returns its name relative to the root and
    whether it was written."""
    name = shard_name(index, split)
    path = pairs_dir(root) / name
    content = table_digest(table, meta)
    written = read_metadata(path).get("content") != content
    if written:
        write_table(path, table.replace_schema_metadata({**meta, META_PREFIX + "content": content}))
    return f"{PAIRS_DIR}/{name}", written


def remove_shards_except(root: Path, keep: Iterable[str]) -> int:
    """Remove the shards not named in `keep` (names relative to the root): those of an
    earlier, larger corpus, or of an older layout."""
    keep_paths = {Path(root) / n for n in keep}
    n = 0
    for p in list_shards(pairs_dir(root)):
        if p not in keep_paths:
            p.unlink(missing_ok=True)
            n += 1
    return n


def shards_intact(root: Path, names: Iterable[str]) -> bool:
    """Whether every shard named (relative to the root) is still whole (its footer reads)."""
    for name in names:
        try:
            pq.read_metadata(Path(root) / name)
        except (OSError, pa.ArrowException):
            return False
    return True


def table_digest(table: pa.Table, meta: dict[str, str]) -> str:
    """What a shard holds: a hash of its metadata and of the table in Arrow's stream format."""
    h = hashlib.blake2b(json.dumps(meta, sort_keys=True).encode(), digest_size=16)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema.remove_metadata()) as writer:
        writer.write_table(table)
    h.update(memoryview(sink.getvalue()))
    return h.hexdigest()


# ---------------------------------------------------------------- per-work files (phase 1)

#: A per-work file's columns (source, work_id and split are added in phase 2), and each
#: pair's exact and near-duplicate keys: computed by the workers, so that phase 2 in the
#: driver is a set lookup per pair and Arrow column operations, never Python per row.
WORK_COLUMNS = ["episode", "line", "utterance", "reply", "utterance_kana", "reply_kana"]
KEY_COLUMNS = ["exact_key", "near_key"]
WORK_SCHEMA = pa.schema(
    [SCHEMA.field(c) for c in WORK_COLUMNS] + [pa.field(c, pa.binary(neardup.KEY_BYTES)) for c in KEY_COLUMNS]
)
WORK_META_KEY = b"nocpipe.work"


def work_name(ref: WorkRef) -> str:
    """A work's phase-1 file, relative to the corpus folder."""
    return f"{WORKS_DIR}/{ref.source}/{ref.work_id}.parquet"


def work_table(columns: Sequence[Sequence[Any]], info: dict) -> pa.Table:
    """A per-work file's table: WORK_SCHEMA's columns in order, `info` in its metadata."""
    return pa.Table.from_arrays(
        [pa.array(list(c), type=f.type) for c, f in zip(columns, WORK_SCHEMA)],
        schema=WORK_SCHEMA.with_metadata({WORK_META_KEY: json.dumps(info)}),
    )


def read_work_info(root: Path, ref: WorkRef) -> dict | None:
    """A per-work file's header: fingerprint, options digest, counters, signature (None: no file)."""
    try:
        meta = pq.read_schema(Path(root) / work_name(ref)).metadata or {}
        return json.loads(meta[WORK_META_KEY])
    except (OSError, pa.ArrowException, KeyError, ValueError):
        return None


def read_work(root: Path, ref: WorkRef) -> pa.Table:
    """A work's per-work file, whole, through the door."""
    return read_checked(Path(root) / work_name(ref), schema=WORK_SCHEMA)


def work_tables(root: Path, columns: list[str]) -> Iterator[tuple[str, pa.Table]]:
    """(source/work_id, the columns asked for) of every per-work file, in name order."""
    for p in sorted((Path(root) / WORKS_DIR).glob("*/*.parquet")):
        yield f"{p.parent.name}/{p.stem}", read_checked(p, columns, WORK_SCHEMA)


def remove_stale_works(root: Path, works: Iterable[WorkRef]) -> int:
    """Per-work files of works no longer in the raw store; returns how many went."""
    keep = {Path(root) / work_name(w) for w in works}
    n = 0
    for p in (Path(root) / WORKS_DIR).glob("*/*.parquet"):
        if p not in keep:
            p.unlink(missing_ok=True)
            n += 1
    return n


@dataclass(frozen=True)
class WorkSink:
    """Where a worker puts a per-work file: the local corpus folder, or the corpus folder
    at a URL (one upload: whole or absent). Small and picklable, for worker processes."""

    target: Path | Location

    def write(self, ref: WorkRef, table: pa.Table) -> None:
        if isinstance(self.target, Location):
            with tempfile.TemporaryDirectory(prefix="nocpipe-work-") as tmp:
                write_table(Path(tmp) / "work.parquet", table)
                self.target.commit_file(Path(tmp) / "work.parquet", work_name(ref))
        else:
            write_table(Path(self.target) / work_name(ref), table)


# ---------------------------------------------------------------- state and figures


def load_state(root: Path, log: Reporter | Callable[[str], None] | None = None) -> dict:
    """_state.json, checked: {} (everything is rebuilt) when it is missing or damaged."""
    path = Path(root) / STATE_FILE
    if not path.exists():
        return {}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        state = None
    if not (
        isinstance(state, dict)
        and isinstance(state.get("phase1", {}), dict)
        and isinstance(state.get("inputs", ""), str)
        and isinstance(state.get("shards", []), list)
        and all(isinstance(n, str) for n in state.get("shards", []))
    ):
        # Only ever written atomically, so this is a hand edit: rebuild rather than guess.
        as_reporter(log).warn(f"{path} is damaged; rebuilding the shards (delete it to silence this)")
        return {}
    return state


def write_state(root: Path, state: dict) -> None:
    """_state.json, last of a run: it commits the run (a crash before it leaves the old one)."""
    atomic.write_json(Path(root) / STATE_FILE, state)


def read_stats(root: Path) -> dict | None:
    """The corpus folder's stats.json (None: none, or not a JSON object)."""
    try:
        stats = json.loads((Path(root) / STATS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return stats if isinstance(stats, dict) else None


def stats_near(path: Path) -> dict:
    """stats.json of the corpus `path` belongs to: the root, its pairs/ folder, or a shard in
    either ({} for a loose Parquet file elsewhere)."""
    path = Path(path)
    for folder in (path, path.parent) if path.is_dir() else (path.parent, path.parent.parent):
        if (folder / STATS_FILE).is_file():
            return read_stats(folder) or {}
    return {}


def corpus_stats(path: Path) -> dict:
    """stats.json of the corpus `path` belongs to ({} when there is none)."""
    return stats_near(path)


def work_titles(path: Path) -> dict[str, str]:
    """ "source/work_id" -> the work's title, as extract-pairs recorded them ({} when it did not)."""
    titles = stats_near(path).get("work_titles")
    return {str(k): str(v) for k, v in titles.items()} if isinstance(titles, dict) else {}


def work_authors(path: Path) -> dict[str, str]:
    """ "source/work_id" -> the work's author, as extract-pairs recorded them ({} when it did not)."""
    authors = stats_near(path).get("work_authors")
    return {str(k): str(v) for k, v in authors.items()} if isinstance(authors, dict) else {}


def write_stats(root: Path, stats: dict) -> None:
    atomic.write_json(Path(root) / STATS_FILE, stats)


def write_card_text(root: Path, text: str) -> None:
    """The dataset card (pipeline.card renders it)."""
    atomic.write_text(Path(root) / CARD_FILE, text)


# ---------------------------------------------------------------- the folder a run writes


class CorpusWriter:
    """The corpus folder a run writes, as a local folder (`root`), whether it is one or a
    copy of one at a URL; `sink` is for the workers, `gather` brings their files in."""

    def __init__(self, root: Path, sink: WorkSink, mirror: Mirror | None = None):
        self.root = Path(root)
        self.sink = sink
        self._mirror = mirror
        #: At a URL, once the block ends: files copied in, uploaded and removed.
        self.transfers: dict[str, int] | None = None

    def gather(self, works: Iterable[WorkRef]) -> None:
        """Bring in the per-work files the workers wrote (a no-op on a local folder)."""
        if self._mirror is not None:
            self._mirror.pull_files([work_name(w) for w in works])


@contextmanager
def writing(where: Path | str, command: str = "extract-pairs") -> Iterator[CorpusWriter]:
    """Open the corpus folder at `where` (a path or a URL) for one run. A local folder is
    locked and cleared of a killed run's temporaries; one at a URL is copied to a temporary
    folder and what the run changed goes back when the block ends, the state last (an object
    store has no locks: one run per corpus there is the user's rule)."""
    if not is_url(where):
        root = Path(where)
        with folder_lock(root, command, "corpus folder"):
            atomic.clean_temporaries(root, recursive=True)
            yield CorpusWriter(root, WorkSink(root))
        return
    with tempfile.TemporaryDirectory(prefix="nocpipe-corpus-") as tmp:
        mirror = Mirror(Location(where), Path(tmp))
        mirror.pull(remove_temporaries=True)
        writer = CorpusWriter(Path(tmp), WorkSink(mirror.remote), mirror)
        yield writer
        pushed = mirror.push(last=STATE_FILE)
        writer.transfers = {
            "copied_in": mirror.pulled,
            "uploaded": len(pushed.uploaded),
            "removed": len(pushed.removed),
        }
