"""nocpipe list: the raw store as a table or JSON lines, agreeing with the store."""

import json

from pipeline import rawstore
from pipeline.shards import COLUMNS, pairs_dir, shard_name, write_shard
from stages.list import list_store, render_table


def _scraped(raw, wid, episodes, **meta):
    work = rawstore.work_dir(raw, "nocturne", wid)
    entries = []
    for n in episodes:
        entries.append({"number": n, "file": rawstore.write_episode(work, n, b"<p>x</p>")})
    rawstore.write_meta(
        work,
        {
            "source": "nocturne",
            "work_id": wid,
            "title": f"題名{wid[-2:]}",
            "author": "著者",
            "fetched_at": "2026-01-02T03:04:05+00:00",
            "episodes": entries,
            **meta,
        },
    )
    return work


def _store(tmp_path):
    raw = tmp_path / "raw"
    _scraped(raw, "n0001aa", [1, 2, 3])
    _scraped(raw, "n0002bb", [1, 3], missing_episodes=[2])
    _scraped(raw, "n0003cc", [1], gone=True)
    half = rawstore.work_dir(raw, "nocturne", "n0004dd")
    rawstore.append_progress(half, {"number": 1})
    text = rawstore.work_dir(raw, "text", "story")
    rawstore.write_text(text, "「あ」\n「い」\n")
    rawstore.write_meta(
        text,
        {
            "source": "text",
            "work_id": "story",
            "title": "story",
            "author": "",
            "fetched_at": "2026-01-01T00:00:00+00:00",
            "episodes": 1,
        },
    )
    return raw


def test_rows_agree_with_the_store(tmp_path):
    rows = list_store(_store(tmp_path))
    assert [(r["source"], r["work_id"], r["episodes"], r["status"]) for r in rows] == [
        ("nocturne", "n0001aa", 3, "current"),
        ("nocturne", "n0002bb", 2, "1 failed episode"),
        ("nocturne", "n0003cc", 1, "gone"),
        ("nocturne", "n0004dd", 0, "incomplete"),
        ("text", "story", 1, "current"),
    ]
    assert rows[0]["title"] == "題名aa" and rows[0]["fetched_at"].startswith("2026-01-02")
    assert all(r["pairs"] is None for r in rows)
    assert [r["work_id"] for r in list_store(tmp_path / "raw", site="text")] == ["story"]


def test_pairs_come_from_the_corpus_when_there_is_one(tmp_path):
    raw = _store(tmp_path)
    out = tmp_path / "processed"
    rows = [("nocturne", "n0001aa"), ("nocturne", "n0001aa"), ("text", "story")]
    cols = {c: [] for c in COLUMNS}
    for source, wid in rows:
        for c, v in zip(COLUMNS, (source, wid, 1, 0, "あ", "い", "ア", "イ", "train")):
            cols[c].append(v)
    write_shard(pairs_dir(out) / shard_name(0), cols)
    got = {r["work_id"]: r["pairs"] for r in list_store(raw, out_dir=out)}
    assert got == {"n0001aa": 2, "n0002bb": 0, "n0003cc": 0, "n0004dd": 0, "story": 1}
    table = render_table(list_store(raw, out_dir=out))
    assert (
        "pairs" in table.splitlines()[0]
        and table.splitlines()[-1] == "5 works: 2 current, 1 failed, 1 gone, 1 incomplete; 3 pairs"
    )


def test_the_command_prints_a_table_or_json_lines(cli, tmp_path):
    raw = _store(tmp_path)
    r = cli("list", "--raw-dir", raw, "--out-dir", tmp_path / "none")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].split() == ["source", "work", "id", "title", "author", "episodes", "last", "fetched", "status"]
    assert any("n0002bb" in ln and "1 failed episode" in ln for ln in lines)
    r = cli("list", "--raw-dir", raw, "--site", "nocturne", "--json")
    rows = [json.loads(ln) for ln in r.out.splitlines()]
    assert [x["work_id"] for x in rows] == ["n0001aa", "n0002bb", "n0003cc", "n0004dd"]
    r = cli("list", "--raw-dir", tmp_path / "missing")
    assert r.code == 1 and r.err.strip().startswith("Error: raw store") and len(r.err.strip().splitlines()) == 1
