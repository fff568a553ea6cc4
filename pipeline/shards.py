"""The corpus folder (extract-pairs' --out-dir, train's --data-dir): its layout, the
Parquet schema of the pair shards, their key-value metadata, and how to find them.

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
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from . import __version__
from .atomic import write_with
from .config import SplitConfig
from .errors import StoreError

SCHEMA_VERSION = 2
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
LOCK_FILE = ".lock"
#: The `split` column's values, and the file prefix Hugging Face maps to each split.
SPLITS = ("train", "valid", "test")
SPLIT_FILES = {"train": "train", "valid": "validation", "test": "test"}
#: Key-value metadata keys every shard carries (values are strings).
META_PREFIX = "nocpipe."


def pairs_dir(root: Path) -> Path:
    return Path(root) / PAIRS_DIR


def shard_name(index: int, split: str = "train") -> str:
    """`train-00000.parquet`, `validation-00003.parquet`, ... (split as in the `split` column)."""
    return f"{SPLIT_FILES[split]}-{index:05d}.parquet"


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


def require_columns(path: Path, columns: Iterable[str]) -> None:
    try:
        names = set(pq.read_schema(path).names)
    except (OSError, pa.ArrowException) as exc:
        raise StoreError(f"cannot read {path} as Parquet: {exc}") from None
    missing = [c for c in columns if c not in names]
    if missing:
        raise StoreError(
            f"{path} lacks the column(s) {', '.join(missing)} of a pair corpus (expected: {', '.join(COLUMNS)})"
        )


def split_of(work_id: str, split: SplitConfig = SplitConfig()) -> str:
    """train/valid/test from a stable hash of work_id: a work never straddles splits."""
    h = int.from_bytes(hashlib.sha256(work_id.encode("utf-8")).digest()[:8], "big") / 2**64
    if h < split.train:
        return "train"
    if h < split.train + split.valid:
        return "valid"
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


def corpus_stats(path: Path) -> dict:
    """stats.json of the corpus `path` belongs to: the corpus folder, its pairs/ folder or a
    shard in it ({} for a loose Parquet file elsewhere, or a stats.json that is not JSON)."""
    path = Path(path)
    for folder in (path, path.parent) if path.is_dir() else (path.parent, path.parent.parent):
        f = folder / STATS_FILE
        if f.is_file():
            try:
                stats = json.loads(f.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return {}
            return stats if isinstance(stats, dict) else {}
    return {}


def work_titles(path: Path) -> dict[str, str]:
    """ "source/work_id" -> the work's title, as extract-pairs recorded them ({} when it did not)."""
    titles = corpus_stats(path).get("work_titles")
    return {str(k): str(v) for k, v in titles.items()} if isinstance(titles, dict) else {}


# ---------------------------------------------------------------- writing


def to_table(rows: Iterable[dict] | dict[str, list], metadata: dict[str, str] | None = None) -> pa.Table:
    if isinstance(rows, dict):
        table = pa.Table.from_pydict(rows, schema=SCHEMA)
    else:
        table = pa.Table.from_pylist(list(rows), schema=SCHEMA)
    return table.replace_schema_metadata(metadata) if metadata else table


def read_table(path: Path) -> pa.Table:
    """One Parquet file, whole. pq.read_table would do, but it goes through pyarrow.dataset,
    whose import (with pyarrow.compute's) costs a process 0.15 s."""
    return pq.ParquetFile(path).read()


def write_table(path: Path, table: pa.Table) -> int:
    """One zstd Parquet file, atomically."""
    write_with(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
    return table.num_rows


def write_shard(path: Path, rows: Iterable[dict] | dict[str, list], metadata: dict[str, str] | None = None) -> int:
    """Write rows (list of dicts or dict of columns) as one zstd Parquet shard, atomically."""
    return write_table(path, to_table(rows, metadata))


def read_columns(paths: Iterable[Path], columns: list[str]) -> pa.Table:
    tables = [pq.read_table(p, columns=columns) for p in paths]
    if not tables:
        return pa.table({c: pa.array([], type=SCHEMA.field(c).type) for c in columns})
    return pa.concat_tables(tables)
