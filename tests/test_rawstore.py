"""pipeline.rawstore: names, meta.json, listing, fingerprints, stored episodes, the progress log."""

import hashlib
import json
import os

import pytest

from pipeline import rawstore
from pipeline.errors import StoreError, UsageError
from pipeline.ids import ncode_of


def _work(raw, source="nocturne", wid="n0001aa", episodes=(1, 2), meta=True):
    work = rawstore.work_dir(raw, source, wid)
    for n in episodes:
        rawstore.write_episode(work, n, f"<p>{n}</p>".encode())
    if meta:
        rawstore.write_meta(
            work,
            {
                "source": source,
                "work_id": wid,
                "title": "t",
                "episodes": [{"number": n, "file": rawstore.episode_file(n)} for n in episodes],
            },
        )
    return work


@pytest.mark.parametrize(
    "source,wid",
    [
        ("nocturne", "../etc"),
        ("nocturne", "n1234"),
        ("narou", "N1234AB"),
        ("nocturne", "n١٢٣٤ab"),
        ("nocturne", "n０００１aa"),
        ("text", "a/b"),
        ("text", ".."),
        ("text", ""),
        ("web", "n0001aa"),
    ],
)
def test_work_dir_refuses_names_the_store_never_makes(tmp_path, source, wid):
    with pytest.raises(StoreError):
        rawstore.work_dir(tmp_path, source, wid)


@pytest.mark.parametrize("text", ["n١٢٣٤ab", "n０００１aa", "https://novel18.syosetu.com/n０００１aa/", "ｎ0001aa"])
def test_ncodes_are_ascii_only(text):
    with pytest.raises(UsageError):
        ncode_of(text)


def test_meta_round_trip_and_a_hand_edit_is_a_store_error(tmp_path):
    work = _work(tmp_path)
    assert rawstore.read_meta(work)["title"] == "t"
    assert rawstore.read_meta(tmp_path / "nocturne" / "n0009zz") == {}
    (work / rawstore.META_FILE).write_text("[1, 2]")
    with pytest.raises(StoreError, match="not a JSON object"):
        rawstore.read_meta(work)
    (work / rawstore.META_FILE).write_text('{"episodes": [{"number": "x"}]}')
    with pytest.raises(StoreError, match="episode entry"):
        rawstore.read_meta(work)
    (work / rawstore.META_FILE).write_text("{")
    assert rawstore.read_meta_or_empty(work) == {}


def test_meta_must_belong_to_its_folder(tmp_path):
    work = rawstore.work_dir(tmp_path, "nocturne", "n0001aa")
    with pytest.raises(StoreError, match="does not belong"):
        rawstore.write_meta(work, {"source": "nocturne", "work_id": "n0002bb"})


def test_file_entries_never_leave_the_work_folder(tmp_path):
    work = _work(tmp_path)
    secret = tmp_path / "secret.html"
    secret.write_text("<p>secret</p>")
    os.symlink(secret, work / "episodes" / "0009.html")
    meta = rawstore.read_meta(work)
    meta["episodes"] += [
        {"number": 3, "file": "../../../secret.html"},
        {"number": 4, "file": str(secret)},
        {"number": 5, "file": "episodes/../../../secret.html"},
        {"number": 9, "file": "episodes/0009.html"},
    ]
    rawstore.write_meta(work, meta)
    assert list(rawstore.stored_episodes(work)) == [1, 2]
    assert [n for n, _ in rawstore.episode_files(work)] == [1, 2]


def test_list_works_lists_finished_works_with_valid_names_only(tmp_path, capsys):
    _work(tmp_path, "nocturne", "n0002bb")
    _work(tmp_path, "nocturne", "n0001aa")
    _work(tmp_path, "text", "story", episodes=())
    _work(tmp_path, "narou", "n0003cc", meta=False)  # half done
    (tmp_path / "nocturne" / "Not-An-Ncode").mkdir()
    (tmp_path / "elsewhere").mkdir()
    assert [w.key for w in rawstore.list_works(tmp_path)] == ["nocturne/n0001aa", "nocturne/n0002bb", "text/story"]
    assert [w.key for w in rawstore.list_works(tmp_path, ["text"])] == ["text/story"]
    assert "narou/n0003cc" in [w.key for w in rawstore.work_dirs(tmp_path, finished_only=False)]
    err = capsys.readouterr().err
    assert "Not-An-Ncode" in err and "elsewhere" in err
    with pytest.raises(StoreError, match="does not exist"):
        rawstore.list_works(tmp_path / "missing")


def test_fingerprint_changes_with_the_files_and_ignores_dot_files(tmp_path):
    work = _work(tmp_path)
    fp = rawstore.fingerprint(work)
    rawstore.append_progress(work, {"number": 3})
    assert rawstore.fingerprint(work) == fp
    rawstore.write_episode(work, 3, b"<p>three, longer</p>")
    assert rawstore.fingerprint(work) != fp


def test_progress_lines_count_only_when_their_file_holds_the_named_bytes(tmp_path):
    work = rawstore.work_dir(tmp_path, "nocturne", "n0001aa")
    data = {n: f"<p>{n}</p>".encode() for n in (1, 2, 3)}
    for n in (1, 2, 3):
        rawstore.append_progress(
            work, {"number": n, "file": rawstore.episode_file(n), "sha256": hashlib.sha256(data[n]).hexdigest()}
        )
    rawstore.write_episode(work, 1, data[1])
    rawstore.write_episode(work, 3, b"an older version")  # killed before the new one was renamed
    with open(work / rawstore.PROGRESS_FILE, "a") as fh:
        fh.write('{"number": 4, "fi')  # a line cut short by a kill
    assert sorted(rawstore.read_progress(work)) == [1, 2, 3]
    assert list(rawstore.stored_episodes(work, {}, with_progress=True)) == [1]
    rawstore.drop_progress(work)
    assert rawstore.read_progress(work) == {} and not rawstore.has_progress(work)


def test_a_meta_without_an_episode_list_lists_every_stored_page(tmp_path):
    work = _work(tmp_path, episodes=(1, 10), meta=False)
    (work / rawstore.META_FILE).write_text(json.dumps({}))
    assert list(rawstore.stored_episodes(work)) == [1, 10]


# ---------------------------------------------------------------- the work writer


def _entry(n: int) -> dict:
    return {"number": n, "subtitle": f"s{n}", "key": [f"s{n}"]}


def test_the_writer_logs_an_episode_before_its_file_and_commits_meta_last(tmp_path):
    work = rawstore.work_dir(tmp_path, "nocturne", "n0001aa")
    w = rawstore.WorkWriter(work)
    entry = w.store(_entry(1), b"<p>1</p>")
    assert entry["file"] == rawstore.episode_file(1) and entry["sha256"] == hashlib.sha256(b"<p>1</p>").hexdigest()
    # A kill here: no meta.json, but the progress log names the stored episode.
    assert not rawstore.is_finished(work) and rawstore.has_progress(work)
    assert rawstore.stored_episodes(work, {}, with_progress=True) == {1: entry}
    w.commit({"source": "nocturne", "work_id": "n0001aa", "episodes": [entry]})
    assert rawstore.is_finished(work) and not rawstore.has_progress(work)
    assert rawstore.stored_episodes(work) == {1: entry}


def test_the_writer_swaps_renumbered_episodes_and_drops_after_the_commit(tmp_path):
    work = rawstore.work_dir(tmp_path, "nocturne", "n0001aa")
    w = rawstore.WorkWriter(work)
    one, two, three = (w.store(_entry(n), f"<p>{n}</p>".encode()) for n in (1, 2, 3))
    w.commit({"source": "nocturne", "work_id": "n0001aa", "episodes": [one, two, three]})
    w = rawstore.WorkWriter(work)
    moved = w.move([({**_entry(1), "subtitle": "s2"}, two), ({**_entry(2), "subtitle": "s1"}, one)])
    assert [m["sha256"] for m in moved] == [two["sha256"], one["sha256"]]
    w.drop(3)
    assert (work / rawstore.episode_file(3)).is_file()  # still there until the commit
    w.commit({"source": "nocturne", "work_id": "n0001aa", "episodes": moved})
    assert (work / rawstore.episode_file(1)).read_bytes() == b"<p>2</p>"
    assert (work / rawstore.episode_file(2)).read_bytes() == b"<p>1</p>"
    assert not (work / rawstore.episode_file(3)).exists() and not rawstore.has_progress(work)


def test_the_writer_clears_a_killed_runs_temporaries(tmp_path):
    work = rawstore.work_dir(tmp_path, "text", "w")
    (work / rawstore.EPISODE_DIR).mkdir(parents=True)
    (work / ".text.txt.abc.tmp").write_text("half")
    rawstore.WorkWriter(work).store_text("本文")
    assert rawstore.read_text(work) == "本文" and not list(work.glob(".*.tmp"))


@pytest.mark.parametrize("stage", ["ingest", "scrape"])
def test_stages_leave_the_write_order_to_the_store(stage):
    """Ingest and scrape write through WorkWriter: no progress line, episode file, meta.json or
    deletion of their own."""
    import ast
    from pathlib import Path

    source = (Path(__file__).parent.parent / "stages" / f"{stage}.py").read_text(encoding="utf-8")
    called = {n.func.attr for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call) and hasattr(n.func, "attr")}
    used = {n.attr for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Attribute)}
    assert not called & {"append_progress", "write_episode", "write_meta", "write_text", "drop_progress", "unlink"}
    assert not used & {"META_FILE", "TEXT_FILE", "PROGRESS_FILE", "episode_file"}
