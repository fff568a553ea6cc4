"""The pairs a retrieval model learns from and answers with, read from the corpus folder.

Train and validation sides in katakana for the encoder; for the reply index also the original
lines and where each pair came from (source, work, episode, line), and the work's title and author
from the raw store's metadata, so the model folder answers "where is this line from" on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import rawstore
from ..config import SOURCES
from ..errors import StoreError
from ..shards import find_shards, read_columns

SPLIT_WORDS = {"train": ("train",), "validation": ("validation", "valid"), "test": ("test",)}
INDEX_COLUMNS = ["source", "work_id", "episode", "line", "utterance", "reply", "utterance_kana", "reply_kana"]


@dataclass
class Pairs:
    utterances: list[str]  # katakana
    replies: list[str]  # katakana
    columns: dict[str, list]  # INDEX_COLUMNS (when asked for)

    def __len__(self) -> int:
        return len(self.utterances)


def read_pairs(data_dir: Path, split: str, limit: int = 0, with_sources: bool = False) -> Pairs:
    """The `split` pairs of the corpus in shard order (the first `limit` when limit > 0)."""
    wanted = INDEX_COLUMNS if with_sources else ["utterance_kana", "reply_kana"]
    shards = find_shards(Path(data_dir), columns=[*wanted, "split"])
    table = read_columns(shards, [*wanted, "split"])
    words = set(SPLIT_WORDS.get(split, (split,)))
    keep = [i for i, s in enumerate(table.column("split").to_pylist()) if s in words]
    if limit:
        keep = keep[:limit]
    cols = {name: table.column(name).to_pylist() for name in wanted}
    picked = {name: [values[i] for i in keep] for name, values in cols.items()}
    for name in ("utterance_kana", "reply_kana"):
        if any(not isinstance(v, str) for v in picked[name]):
            raise StoreError(f"{data_dir}: the {name} column holds values that are not text; run extract-pairs again")
    return Pairs(picked["utterance_kana"], picked["reply_kana"], picked if with_sources else {})


def work_titles(raw_dir: Path, keys: set[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, str]]:
    """(source, work_id) -> (title, author) from the raw store; empty strings where it has none."""
    out = {}
    for source, work_id in keys:
        meta: dict = {}
        try:
            if source in SOURCES and rawstore.valid_work_id(source, work_id):
                meta = rawstore.read_meta(rawstore.work_dir(Path(raw_dir), source, work_id))
        except StoreError:  # no raw store beside this corpus, or no metadata for the work: no title
            meta = {}
        out[(source, work_id)] = (str(meta.get("title") or ""), str(meta.get("author") or ""))
    return out
