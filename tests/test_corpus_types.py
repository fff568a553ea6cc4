"""Corpus files of the wrong types meet one check at the corpus module's door: a shard whose
kana column holds nulls or integers, or one cut short, gives every reader one line naming
the file and what to do, never a traceback from Arrow."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import corpus, rawstore
from pipeline.dataset import count_too_long, read_unit, scan_units
from pipeline.errors import StoreError
from pipeline.records import WorkRef


def _rows(n: int = 4, split: str = "train") -> dict[str, list]:
    return {
        "source": ["text"] * n,
        "work_id": ["w"] * n,
        "episode": [1] * n,
        "line": list(range(n)),
        "utterance": ["あ"] * n,
        "reply": ["い"] * n,
        "utterance_kana": ["ア"] * n,
        "reply_kana": ["イ"] * n,
        "split": [split] * n,
    }


def _nulls(path):
    rows = _rows()
    rows["reply_kana"][2] = None
    corpus.write_shard(path, rows)
    return path


def _integers(path):
    rows = _rows()
    table = pa.table({**rows, "utterance_kana": pa.array([1, 2, 3, 4], pa.int64())})
    pq.write_table(table, path)
    return path


def _truncated(path):
    corpus.write_shard(path, _rows())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


BAD = {"nulls": _nulls, "integers": _integers, "truncated": _truncated}
SAYS = {"nulls": "null", "integers": "integers, not text", "truncated": "cut short"}


@pytest.fixture(params=sorted(BAD))
def bad(request, tmp_path):
    pairs = tmp_path / "corpus" / "pairs"
    pairs.mkdir(parents=True)
    return request.param, BAD[request.param](pairs / corpus.shard_name(0))


def _one_line(exc: pytest.ExceptionInfo, path, kind: str) -> None:
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg and SAYS[kind] in msg
    assert "extract-pairs" in msg  # what to do


def test_train_and_evaluate_read_through_the_door(bad):
    kind, path = bad
    with pytest.raises(StoreError) as exc:
        units = scan_units(path.parent.parent, "train")
        read_unit(units[0], "train")
        count_too_long(units, "train", 10)
    _one_line(exc, path, kind)


def test_the_readers_of_whole_shards_go_through_the_door(bad):
    kind, path = bad
    for read in (
        lambda: corpus.read_columns([path], ["source", "work_id", "utterance_kana", "reply_kana"]),
        lambda: corpus.read_table(path),
    ):
        with pytest.raises(StoreError) as exc:
            read()
        _one_line(exc, path, kind)


def _null_work_id(path):
    rows = _rows()
    rows["work_id"][0] = None
    corpus.write_shard(path, rows)
    return path


@pytest.mark.parametrize("kind", ["truncated", "nulls"])
def test_nocpipe_list_says_one_line(kind, tmp_path, cli):
    """list reads the source and work_id columns only: those are checked."""
    (tmp_path / "corpus" / "pairs").mkdir(parents=True)
    path = {"truncated": _truncated, "nulls": _null_work_id}[kind](
        tmp_path / "corpus" / "pairs" / "train-00000.parquet"
    )
    raw = tmp_path / "raw"
    work = rawstore.work_dir(raw, "text", "w")
    rawstore.write_text(work, "「あ」\n「い」\n")
    rawstore.write_meta(work, {"source": "text", "work_id": "w"})
    r = cli("list", "--raw-dir", raw, "--out-dir", path.parent.parent)
    assert r.code == 1 and r.err.count("\n") == 1 and r.err.startswith("Error: ") and str(path) in r.err
    assert "Traceback" not in r.err and SAYS[kind] in r.err


def test_report_says_one_line(bad, tmp_path, cli):
    kind, path = bad
    r = cli("report", "--data-dir", path.parent.parent, "--out", tmp_path / "r.html")
    assert r.code == 1 and r.err.count("\n") == 1 and str(path) in r.err and SAYS[kind] in r.err


def test_predict_input_parquet_goes_through_the_door(tmp_path):
    from stages.predict import read_input_file

    path = _integers(tmp_path / "in.parquet")
    table = pq.read_table(path)
    pq.write_table(table.set_column(table.schema.get_field_index("utterance"), "utterance", [[1, 2, 3, 4]]), path)
    with pytest.raises(StoreError, match="utterance holds integers, not text"):
        read_input_file(path)


def test_a_per_work_file_of_the_wrong_types_is_one_line(tmp_path):
    ref = WorkRef("text", "w", tmp_path)
    key = b"k" * 16
    corpus.WorkSink(tmp_path).write(
        ref, corpus.work_table([[1], [2], ["あ"], ["い"], ["ア"], ["イ"], [key], [key]], {})
    )
    assert corpus.read_work(tmp_path, ref).num_rows == 1
    pq.write_table(pa.table({c: [None] for c in corpus.WORK_SCHEMA.names}), tmp_path / corpus.work_name(ref))
    with pytest.raises(StoreError, match="null"):
        corpus.read_work(tmp_path, ref)


def test_a_good_shard_of_the_older_schema_reads_with_the_new_split_name(tmp_path):
    path = tmp_path / corpus.shard_name(0)
    corpus.write_shard(path, _rows(split="valid"))
    assert set(corpus.read_columns([path], ["split"]).column("split").to_pylist()) == {"validation"}
