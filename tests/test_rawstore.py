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
