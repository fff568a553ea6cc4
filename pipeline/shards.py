"""Pair shards: the Parquet schema of DESIGN.md, shard names, atomic shard writes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .atomic import write_with
from .config import SplitConfig

SCHEMA = pa.schema([
    ("source", pa.string()),
    ("work_id", pa.string()),
    ("episode", pa.int32()),
    ("line", pa.int32()),
    ("utterance", pa.string()),
    ("reply", pa.string()),
    ("utterance_kana", pa.string()),
    ("reply_kana", pa.string()),
    ("split", pa.string()),
])
COLUMNS = SCHEMA.names
SHARD_GLOB = "pairs-*.parquet"
STATE_FILE = "_state.json"
STATS_FILE = "stats.json"


def shard_name(index: int) -> str:
    return f"pairs-{index:05d}.parquet"


def list_shards(folder: Path) -> list[Path]:
    """Finished shards in name order (temporaries are hidden and never match)."""
    return sorted(Path(folder).glob(SHARD_GLOB))


def split_of(work_id: str, split: SplitConfig = SplitConfig()) -> str:
    """train/valid/test from a stable hash of work_id: a work never straddles splits."""
    h = int.from_bytes(hashlib.sha256(work_id.encode("utf-8")).digest()[:8], "big") / 2**64
    if h < split.train:
        return "train"
    if h < split.train + split.valid:
        return "valid"
    return "test"


def write_shard(path: Path, rows: Iterable[dict] | dict[str, list]) -> int:
    """Write rows (list of dicts or dict of columns) as one zstd Parquet shard, atomically."""
    if isinstance(rows, dict):
        table = pa.Table.from_pydict(rows, schema=SCHEMA)
    else:
        table = pa.Table.from_pylist(list(rows), schema=SCHEMA)
    write_with(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
    return table.num_rows


def read_columns(paths: Iterable[Path], columns: list[str]) -> pa.Table:
    tables = [pq.read_table(p, columns=columns) for p in paths]
    if not tables:
        return pa.table({c: pa.array([], type=SCHEMA.field(c).type) for c in columns})
    return pa.concat_tables(tables)
