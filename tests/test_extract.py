"""extract-pairs end to end: shards, stats, drops, splits, resume, reruns, workers."""

import json

import pyarrow.parquet as pq
import pytest
from conftest import write_aozora

import stages.extract_pairs as ep
from pipeline import rawstore
from pipeline.config import SplitConfig
from pipeline.shards import SCHEMA, list_shards
from pipeline.shards import SPLITS as SPLIT_NAMES
from stages.extract_pairs import ExtractOptions, extract_pairs
from stages.ingest import ingest

WORKS = {
    "w1": "「こんにちは」\n「やあ、元気《げんき》かい」\n「元気だよ。3回目だね」\n地の文。\n「独り言」",
    "w2": "「こんにちは」\n「やあ、元気《げんき》かい」\n\n「😀だ」\n「絵文字の返事」",
    "w3": "「とても長い台詞はここにあります、まだまだ続きます、終わりません」\n「短い」\n「」\n「空の次」",
    "w4": "「あ」「い」\n「う」\n「え」\n「お」",
}


@pytest.fixture
def store(tmp_path):
    src = tmp_path / "src"
    for name, body in WORKS.items():
        write_aozora(src / f"{name}.txt", body, encoding="utf-8")
    raw = tmp_path / "raw"
    ingest([src], raw, show_progress=False)
    return raw


def run(store, out, **kw):
    kw.setdefault("workers", 1)
    kw.setdefault("show_progress", False)
    return extract_pairs(ExtractOptions(raw_dir=store, out_dir=out, **kw))


def rows(out):
    return sorted(pq.read_table(list_shards(out)).to_pylist(), key=lambda r: (r["work_id"], r["line"]))


def test_pairs_schema_and_stats(store, tmp_path):
    out = tmp_path / "pairs"
    res = run(store, out, max_len=20)
    table = pq.read_table(list_shards(out))
    assert table.schema.equals(SCHEMA, check_metadata=False)
    assert pq.ParquetFile(list_shards(out)[0]).metadata.row_group(0).column(0).compression == "ZSTD"
    got = [
        (r["work_id"], r["line"], r["utterance"], r["reply"], r["utterance_kana"], r["reply_kana"]) for r in rows(out)
    ]
    assert got[0] == ("w1", 0, "こんにちは", "やあ、元気かい", "コンニチハ", "ヤア、ゲンキカイ")
    assert got[1] == (
        "w1",
        1,
        "やあ、元気かい",
        "元気だよ。3回目だね",
        "ヤア、ゲンキカイ",
        "ゲンキダヨ。サンカイメダネ",
    )
    assert ("w4", 1, "う", "え", "ウ", "エ") in got and ("w4", 2, "え", "お", "エ", "オ") in got
    assert all(r[0] != "w2" or r[2] != "こんにちは" for r in got)  # duplicate of w1's pair
    stats = json.loads((out / "stats.json").read_text())
    assert stats["dropped"] == {
        "dropped_bad_chars": 2,  # 😀 as reply, then as utterance
        "dropped_duplicate": 1,  # w2 repeats w1's first pair
        "dropped_empty": 2,  # 「」 on either side
        "dropped_too_long": 1,
    }
    assert stats["pairs_kept"] == len(got) == res.totals["pairs_kept"]
    assert stats["works"] == 4 and stats["reader"] == "unidic" and stats["max_len"] == 20
    assert sum(stats["pairs_by_split"].values()) == len(got)


def test_max_len_zero_keeps_long_sides(store, tmp_path):
    run(store, tmp_path / "p", max_len=0)
    assert any(r["utterance"].startswith("とても長い") for r in rows(tmp_path / "p"))


def test_split_is_stable_per_work(store, tmp_path):
    run(store, tmp_path / "p", split=SplitConfig(0.5, 0.25, 0.25))
    by_work = {}
    for r in rows(tmp_path / "p"):
        by_work.setdefault(r["work_id"], set()).add(r["split"])
    assert all(len(s) == 1 for s in by_work.values())
    from pipeline.shards import split_of

    assert {w: s.pop() for w, s in by_work.items()} == {w: split_of(w, SplitConfig(0.5, 0.25, 0.25)) for w in by_work}


def test_rerun_with_nothing_new_does_no_work(store, tmp_path, monkeypatch):
    out = tmp_path / "p"
    run(store, out)
    before = {p.name: p.stat().st_mtime_ns for p in list_shards(out)}

    def boom(*a, **k):
        raise AssertionError("a rerun with nothing new must not process works")

    monkeypatch.setattr(ep, "process_work", boom)
    monkeypatch.setattr(ep, "get_reader", boom)
    res = run(store, out)
    assert (res.processed, res.skipped) == (0, 4)
    assert {p.name: p.stat().st_mtime_ns for p in list_shards(out)} == before


def test_interrupted_run_resumes_and_matches_a_clean_run(store, tmp_path, monkeypatch):
    clean = tmp_path / "clean"
    run(store, clean)
    out = tmp_path / "p"
    real = ep.process_work

    started = []

    def flaky(ref, reader, max_len):
        started.append(ref.work_id)
        if len(started) == 3:
            raise KeyboardInterrupt
        return real(ref, reader, max_len)

    monkeypatch.setattr(ep, "process_work", flaky)
    with pytest.raises(KeyboardInterrupt):
        run(store, out, shard_target=1)
    assert not list(out.rglob(".*.tmp"))  # nothing half-written left visible
    done = sorted(p.stem for p in (out / ".works" / "aozora").glob("*.parquet"))
    assert done == sorted(started[:2])  # works finished before the crash are kept
    assert not list_shards(out)  # no corpus from half the works
    monkeypatch.setattr(ep, "process_work", real)
    res = run(store, out, shard_target=1)
    assert res.processed == 2 and res.skipped == 2
    assert rows(out) == rows(clean)
    resumed, fresh = (json.loads((d / "stats.json").read_text()) for d in (out, clean))
    resumed.pop("shards"), fresh.pop("shards")  # shard boundaries differ (shard_target=1)
    assert resumed == fresh


def test_two_workers_give_the_same_pairs(store, tmp_path):
    run(store, tmp_path / "one", workers=1)
    run(store, tmp_path / "two", workers=2)
    assert rows(tmp_path / "one") == rows(tmp_path / "two")


def test_changed_options_rebuild_everything(store, tmp_path, capsys):
    out = tmp_path / "p"
    run(store, out, max_len=50)
    res = run(store, out, max_len=10)
    assert res.processed == 4
    assert "options changed" in capsys.readouterr().err
    assert all(len(r["utterance_kana"]) <= 10 for r in rows(out))


def test_changed_work_is_extracted_again(store, tmp_path):
    out = tmp_path / "p"
    run(store, out, shard_target=1)
    text = store / "aozora" / "w4" / "text.txt"
    text.write_text(text.read_text(encoding="utf-8").replace("「お」", "「お」\n「か」"), encoding="utf-8")
    res = run(store, out, shard_target=1)
    assert res.processed == 1 and res.skipped == 3
    assert ("w4", 3, "お", "か") in [(r["work_id"], r["line"], r["utterance"], r["reply"]) for r in rows(out)]


def test_unidic_reader(store, tmp_path):
    run(store, tmp_path / "p", reader="unidic")
    stats = json.loads((tmp_path / "p" / "stats.json").read_text())
    assert stats["reader"] == "unidic" and "unidic-lite" in stats["reader_version"]


def test_cli_summary_and_errors(store, tmp_path, cli):
    r = cli("extract-pairs", "--raw-dir", store, "--out-dir", tmp_path / "p", "--workers", "1", "-q")
    assert r.code == 0, r.err
    assert "4 works" in r.out and "kept" in r.out and "dropped:" in r.out
    r = cli("extract-pairs", "--raw-dir", tmp_path / "missing", "--out-dir", tmp_path / "p")
    assert r.code == 1 and r.err.startswith("Error: ") and len(r.err.strip().splitlines()) == 1
    r = cli("extract-pairs", "--raw-dir", store, "--max-len", "-1")
    assert r.code == 1 and "Error:" in r.err
    r = cli("extract-pairs", "--raw-dir", store, "--split", "80,20")
    assert r.code == 1 and "--split" in r.err


def test_empty_raw_store_is_an_error(tmp_path, cli):
    (tmp_path / "raw").mkdir()
    r = cli("extract-pairs", "--raw-dir", tmp_path / "raw", "--out-dir", tmp_path / "p")
    assert r.code == 1 and "holds no works" in r.err


def _plain(folder, texts):
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in texts.items():
        (folder / f"{name}.txt").write_text(body, encoding="utf-8")


def _snapshot(out):
    stats = json.loads((out / "stats.json").read_text())
    stats.pop("shards")
    return sorted(tuple(r.values()) for r in pq.read_table(list_shards(out)).to_pylist()), stats


def test_incremental_run_equals_a_clean_run_after_changes(tmp_path):
    """The first occurrence of a pair moves when the work holding it changes: the copy in an
    untouched work must come back, and the stats must say so."""
    src = tmp_path / "src"
    _plain(
        src,
        {
            "a": "「おはよう」\n「やあ」\n",
            "b": "「いい天気」\n「そうね」\n",
            "c": "「おはよう」\n「やあ」\n「元気？」\n",
        },
    )
    raw = tmp_path / "raw"
    ingest([src], raw, show_progress=False)
    out = tmp_path / "inc"
    run(raw, out, shard_target=2)
    steps = [
        {"a": "「こんばんは」\n「どうも」\n"},  # a loses the pair c repeats
        {"d": "「いい天気」\n「そうね」\n「散歩しよう」\n"},  # a work added
        {"b": None},  # a work removed
        {"c": "「おはよう」\n「やあ。」\n「元気？」\n"},  # near-duplicate of a's old pair
    ]
    for n, change in enumerate(steps):
        for name, body in change.items():
            if body is None:
                (src / f"{name}.txt").unlink()
                import shutil

                shutil.rmtree(raw / "text" / name)
            else:
                (src / f"{name}.txt").write_text(body, encoding="utf-8")
        ingest([src], raw, show_progress=False)
        run(raw, out, shard_target=2)
        clean = tmp_path / f"clean{n}"
        run(raw, clean, shard_target=2)
        assert _snapshot(out) == _snapshot(clean), f"after change {n}: {change}"
    pairs, stats = _snapshot(out)
    assert [p[4:6] for p in pairs if p[1] == "c"] == [("おはよう", "やあ。"), ("やあ。", "元気？")]


def test_near_duplicate_pairs_are_dropped_first_kept(tmp_path):
    src = tmp_path / "src"
    _plain(src, {"a": "「おはよう、ございます」\n「はーい」\n", "b": "「おはようございます！」\n「はい」\n"})
    raw = tmp_path / "raw"
    ingest([src], raw, show_progress=False)
    run(raw, tmp_path / "p")
    got = rows(tmp_path / "p")
    assert [(r["work_id"], r["utterance"]) for r in got] == [("a", "おはよう、ございます")]
    assert json.loads((tmp_path / "p" / "stats.json").read_text())["dropped"]["dropped_near_duplicate"] == 1


def test_layout_metadata_and_card(store, tmp_path):
    out = tmp_path / "corpus"
    run(store, out, max_len=20)
    names = sorted(p.name for p in (out / "pairs").iterdir())
    assert names and all(n.endswith(".parquet") and n.split("-")[0] in ("train", "validation", "test") for n in names)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "README.md",
        "_state.json",
        "pairs",
        "stats.json",
    ]
    from pipeline.shards import read_metadata

    meta = read_metadata(out / "pairs" / names[0])
    assert meta["reader"] == "unidic" and meta["max_len"] == "20" and meta["schema_version"]
    assert meta["nocpipe_version"] and meta["reader_version"]
    for name in names:
        split = pq.read_table(out / "pairs" / name).column("split").to_pylist()
        assert set(split) == {name.split("-")[0]}  # the file prefix is the split column's value
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "configs:" in card and "- ja" in card and "unidic" in card


def test_files_follow_the_umask(store, tmp_path):
    import os

    old = os.umask(0o022)
    try:
        out = tmp_path / "p"
        run(store, out)
        files = [p for p in out.rglob("*") if p.is_file() and p.name != ".lock"]
        assert files and all(p.stat().st_mode & 0o777 == 0o644 for p in files), {
            p.name: oct(p.stat().st_mode & 0o777) for p in files
        }
        card = out / "README.md"
        card.chmod(0o664)
        (store / "aozora" / "w1" / "meta.json").touch()
        os.utime(store / "aozora" / "w1" / "meta.json", (1, 1))
        run(store, out)
        assert card.stat().st_mode & 0o777 == 0o664  # a replaced file keeps its mode
    finally:
        os.umask(old)


def test_second_run_on_the_same_folder_stops(store, tmp_path, cli):
    from pipeline.locks import folder_lock

    out = tmp_path / "p"
    with folder_lock(out, "extract-pairs"):
        r = cli("extract-pairs", "--raw-dir", store, "--out-dir", out, "-q", "--workers", "1")
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1
    assert "pid" in r.err and "since" in r.err and "extract-pairs" in r.err
    assert not (out / "pairs").exists()


def test_the_longest_works_are_read_first(store, tmp_path, monkeypatch):
    real = ep.process_work
    order = []

    def recording(ref, reader, max_len):
        order.append(ref.work_id)
        return real(ref, reader, max_len)

    monkeypatch.setattr(ep, "process_work", recording)
    run(store, tmp_path / "p", workers=1)
    sizes = {w.work_id: rawstore.size(w.path) for w in ep.list_works(store)}
    assert len(set(sizes.values())) > 1 and order == sorted(sizes, key=sizes.get, reverse=True)


def test_rows_by_position_equal_a_filter():
    import random

    import pyarrow as pa

    table = pa.table({"n": list(range(40)), "s": [f"r{i}" for i in range(40)]})
    rng = random.Random(7)
    for _ in range(50):
        index = sorted(rng.sample(range(40), rng.randint(1, 40)))
        mask = pa.array([i in set(index) for i in range(40)])
        assert ep._rows(table, index).equals(table.filter(mask))


def test_a_corpus_of_the_older_schema_is_rewritten_with_the_new_split_name(store, tmp_path):
    """Shards that say `valid` (schema 2) are rewritten by an incremental rerun, whose inputs
    are otherwise unchanged."""
    from pipeline import corpus

    out = tmp_path / "p"
    run(store, out, split=SplitConfig(0.0, 1.0, 0.0))
    for shard in list_shards(out):  # as schema 2 wrote them
        table = pq.read_table(shard)
        meta = {**table.schema.metadata, b"nocpipe.schema_version": b"2", b"nocpipe.content": b"of schema 2"}
        old = table.set_column(table.schema.get_field_index("split"), "split", [["valid"] * table.num_rows])
        pq.write_table(old.replace_schema_metadata(meta), shard)
    state = json.loads((out / "_state.json").read_text())
    (out / "_state.json").write_text(json.dumps({**state, "inputs": "made by schema 2"}))
    res = run(store, out, split=SplitConfig(0.0, 1.0, 0.0))
    assert res.shards_written == len(list_shards(out)) > 0
    for shard in list_shards(out):
        assert set(pq.read_table(shard).column("split").to_pylist()) == {"validation"}
        assert corpus.read_metadata(shard)["schema_version"] == str(corpus.SCHEMA_VERSION)
    assert set(corpus.read_stats(out)["pairs_by_split"]) == {"validation"}


@pytest.mark.parametrize("shares", ["nan,1,1", "1e308,1e308,1", "inf,1,1", "-1,1,1", "0,0,0", "1,1", "a,b,c"])
def test_split_shares_must_be_finite_non_negative_and_sum_to_something(store, tmp_path, cli, shares):
    r = cli("extract-pairs", "--raw-dir", store, "--out-dir", tmp_path / "p", "--split", shares, "-q")
    assert r.code == 1 and r.err.count("\n") == 1 and r.err.startswith("Error: --split takes three finite shares")
    assert not (tmp_path / "p").exists()  # refused before any work


def test_split_shares_are_scaled_to_one():
    assert SplitConfig.parse("8,1,1").as_list() == [0.8, 0.1, 0.1]
    assert SplitConfig.parse("1e300,0,1e300").as_list() == [0.5, 0.0, 0.5]


def test_what_the_defaults_leave_out_is_said_as_shares(store, tmp_path, cli):
    """The share of candidate pairs each reason dropped, and the share of kept pairs in each
    split beside the shares of works asked for: in stats.json, the summary and the card."""
    out = tmp_path / "p"
    r = cli("extract-pairs", "--raw-dir", store, "--out-dir", out, "-q", "--workers", "1", "--max-len", "5")
    assert r.code == 0, r.err
    stats = json.loads((out / "stats.json").read_text())
    cands, drops = stats["candidate_pairs"], stats["dropped"]
    assert stats["dropped_share_by_reason"] == {
        k.removeprefix("dropped_"): round(v / cands, 6) for k, v in drops.items()
    }
    assert stats["dropped_share_by_reason"]["too_long"] > 0
    assert stats["dropped_share"] == round(sum(drops.values()) / cands, 6)
    kept = stats["pairs_kept"]
    assert stats["split_share"] == {s: round(stats["pairs_by_split"].get(s, 0) / kept, 6) for s in SPLIT_NAMES}
    assert abs(sum(stats["split_share"].values()) - 1) < 1e-5
    assert stats["split_nominal"] == {"train": 0.8, "validation": 0.1, "test": 0.1}
    too_long = f"too_long {drops['dropped_too_long']} ({stats['dropped_share_by_reason']['too_long']:.1%})"
    assert too_long in r.out and f"of {cands} candidate pairs (too_long: over --max-len 5)" in r.out
    assert (
        "split of the kept pairs: train " in r.out and "(asked: train 80%, validation 10%, test 10% of works" in r.out
    )
    card = (out / "README.md").read_text()
    assert f"| too long (over 5) | {drops['dropped_too_long']:,} | " in card
    assert "| share of pairs | share of works asked |" in card
