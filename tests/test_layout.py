"""The corpus as others open it: pandas, pyarrow, DuckDB and Hugging Face `datasets` (through
the dataset card), with the right rows per split; train's view of a filtered copy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.shards import split_of
from stages.extract_pairs import ExtractOptions, extract_pairs
from stages.ingest import ingest

KANA = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲン"


def _works_covering_every_split() -> list[str]:
    names, seen = [], set()
    for i in range(200):
        name = f"work{i:03d}"
        s = split_of(name)
        if s not in seen or len(names) < 6:
            names.append(name)
            seen.add(s)
        if seen == {"train", "validation", "test"} and len(names) >= 6:
            return names
    raise AssertionError("no work ids for every split")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("layout")
    src = tmp / "src"
    src.mkdir()
    for n, name in enumerate(_works_covering_every_split()):
        lines = [f"「{KANA[(n * 7 + k) % len(KANA)]}{KANA[(n + k * 3) % len(KANA)]}{k}」" for k in range(6 + n)]
        (src / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    ingest([src], tmp / "raw", show_progress=False)
    out = tmp / "corpus"
    extract_pairs(ExtractOptions(raw_dir=tmp / "raw", out_dir=out, workers=1, reader="pykakasi", show_progress=False))
    return out


def _want(corpus: Path) -> dict[str, int]:
    want = json.loads((corpus / "stats.json").read_text())["pairs_by_split"]
    assert set(want) == {"train", "validation", "test"} and all(want.values())
    return want


def test_pandas_pyarrow_duckdb_open_the_shards(corpus):
    import duckdb
    import pandas as pd
    import pyarrow.dataset as ds

    want = _want(corpus)
    df = pd.read_parquet(corpus / "pairs")
    assert df.groupby("split").size().to_dict() == want
    assert pq.read_table(corpus / "pairs").num_rows == sum(want.values())
    assert ds.dataset(corpus / "pairs").count_rows() == sum(want.values())
    got = dict(duckdb.sql(f"SELECT split, count(*) FROM '{corpus}/pairs/*.parquet' GROUP BY split").fetchall())
    assert got == want


def test_datasets_loads_the_card_with_three_splits(corpus, tmp_path):
    want = _want(corpus)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    code = (
        "import datasets, json, sys; d = datasets.load_dataset(sys.argv[1]); "
        "print(json.dumps({k: v.num_rows for k, v in d.items()}))"
    )
    r = subprocess.run([sys.executable, "-c", code, str(corpus)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got == want  # the split column, stats.json and the card say the same three names


def test_the_card_gives_datasets_the_features_licence_link_and_rows_per_split(corpus, tmp_path):
    """dataset_info in the card: the columns and their types, and num_examples per split, as
    `datasets` reports them before reading a row; license_link beside license_name."""
    want = _want(corpus)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    code = (
        "import datasets, json, sys; b = datasets.load_dataset_builder(sys.argv[1]); "
        "print(json.dumps({'features': {k: str(v.dtype) for k, v in b.info.features.items()}, "
        "'splits': {k: v.num_examples for k, v in (b.info.splits or {}).items()}}))"
    )
    r = subprocess.run([sys.executable, "-c", code, str(corpus)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    from pipeline.corpus import SCHEMA

    assert got["features"] == {f.name: str(f.type) for f in SCHEMA}
    assert got["splits"] == want
    header = (corpus / "README.md").read_text().split("---")[1]
    assert 'license_link: "README.md#sources-and-works"' in header and "license_name: per-source" in header
    assert "## Sources and works" in (corpus / "README.md").read_text()


def test_train_reads_the_reader_and_a_filtered_copy(corpus, tmp_path):
    import duckdb

    from pipeline.dataset import scan_units
    from pipeline.shards import corpus_metadata

    assert corpus_metadata(corpus)["reader"] == "pykakasi"
    assert corpus_metadata(corpus / "pairs")["max_len"] == "50"
    filtered = tmp_path / "filtered.parquet"
    duckdb.sql(f"COPY (SELECT * FROM '{corpus}/pairs/*.parquet' WHERE length(reply_kana) < 8) TO '{filtered}'")
    n = duckdb.sql(f"SELECT count(*) FROM '{filtered}' WHERE split = 'train'").fetchall()[0][0]
    assert sum(u.take for u in scan_units(filtered, "train")) == n > 0
    assert corpus_metadata(filtered) == {}  # DuckDB drops the metadata; nothing beside it says
    from pipeline.kana import DEFAULT_READER
    from stages.train import _reader_of

    logs: list[str] = []
    assert _reader_of(filtered, logs.append) == (DEFAULT_READER, "")  # said, not silent
    assert len(logs) == 1 and "which reader" in logs[0] and DEFAULT_READER in logs[0]
    assert _reader_of(corpus, logs.append)[0] == "pykakasi" and len(logs) == 1
