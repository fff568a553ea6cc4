"""nocpipe ingest: files, folders, zips, encodings, bad inputs, re-ingest."""

import json
import zipfile

import pytest
from conftest import aozora_text, write_aozora

BODY = "「こんにちは」\n「やあ、元気《げんき》かい」\n地の文。"


def meta(data_dir, source, work_id):
    return json.loads((data_dir / "raw" / source / work_id / "meta.json").read_text(encoding="utf-8"))


def test_aozora_file_lands_in_the_raw_store_with_title_and_author(tmp_path, data_dir, cli):
    write_aozora(tmp_path / "in" / "1234_ruby_1.txt", BODY)
    r = cli("ingest", tmp_path / "in")
    assert r.code == 0, r.err
    assert "1 new" in r.out
    m = meta(data_dir, "aozora", "1234_ruby_1")
    assert (m["title"], m["author"], m["source"], m["encoding"]) == ("試験の話", "作者太郎", "aozora", "cp932")
    text = (data_dir / "raw" / "aozora" / "1234_ruby_1" / "text.txt").read_text(encoding="utf-8")
    assert "元気《げんき》" in text and "\r" not in text


def test_plain_text_every_line_is_body(tmp_path, data_dir, cli):
    p = tmp_path / "talk.txt"
    p.write_text("「一」\n「二」\n", encoding="utf-8-sig")
    assert cli("ingest", p).code == 0
    m = meta(data_dir, "text", "talk")
    assert (m["source"], m["title"], m["encoding"]) == ("text", "talk", "utf-8-sig")


def test_zip_with_one_text(tmp_path, data_dir, cli):
    z = tmp_path / "999_ruby_9.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("hashire.txt", aozora_text(BODY).replace("\n", "\r\n").encode("cp932"))
        zf.writestr("image.png", b"\x89PNG")
    assert cli("ingest", z).code == 0
    assert meta(data_dir, "aozora", "999_ruby_9")["title"] == "試験の話"


def test_reingest_changes_nothing(tmp_path, data_dir, cli):
    p = write_aozora(tmp_path / "a.txt", BODY)
    cli("ingest", p)
    meta_path = data_dir / "raw" / "aozora" / "a" / "meta.json"
    before = (meta_path.read_bytes(), meta_path.stat().st_mtime_ns)
    r = cli("ingest", p)
    assert "1 unchanged" in r.out
    assert (meta_path.read_bytes(), meta_path.stat().st_mtime_ns) == before


def test_changed_file_is_updated(tmp_path, data_dir, cli):
    p = write_aozora(tmp_path / "a.txt", BODY)
    cli("ingest", p)
    write_aozora(p, BODY + "\n「追加」")
    assert "1 updated" in cli("ingest", p).out


def test_bad_files_are_counted_and_skipped_without_stopping_others(tmp_path, data_dir, cli):
    d = tmp_path / "in"
    d.mkdir()
    (d / "empty.txt").write_bytes(b"")
    (d / "binary.txt").write_bytes(b"\x00\x01\x02PNG" * 100)
    (d / "garbled.txt").write_bytes(bytes([0x81, 0x20, 0xFF, 0xFE, 0x80, 0xA0]) * 50)
    with zipfile.ZipFile(d / "notext.zip", "w") as zf:
        zf.writestr("readme.png", b"x")
    (d / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")
    write_aozora(d / "good.txt", BODY)
    r = cli("ingest", d)
    assert r.code == 0
    assert "1 new" in r.out
    for reason in ("empty", "binary", "undecodable", "bad_zip"):
        assert reason in r.out
    assert r.err.count("skipped:") == 5
    assert (data_dir / "raw" / "aozora" / "good" / "meta.json").exists()


def test_nothing_ingestible_is_an_error(tmp_path, data_dir, cli):
    (tmp_path / "empty.txt").write_bytes(b"")
    r = cli("ingest", tmp_path / "empty.txt")
    assert r.code == 1
    assert r.err.strip().splitlines()[-1].startswith("Error: ")


def test_missing_path_is_reported(tmp_path, data_dir, cli):
    r = cli("ingest", tmp_path / "nope.txt")
    assert r.code == 1
    assert "no such file" in r.err


def test_raw_dir_option(tmp_path, cli):
    p = write_aozora(tmp_path / "a.txt", BODY)
    assert cli("ingest", "--raw-dir", tmp_path / "store", p).code == 0
    assert (tmp_path / "store" / "aozora" / "a" / "meta.json").exists()


# ---------------------------------------------------------------- work ids


def _work_ids(data_dir):
    return sorted(f"{p.parent.parent.name}/{p.parent.name}" for p in (data_dir / "raw").glob("*/*/meta.json"))


def test_files_whose_names_clash_never_share_a_work_id_and_keep_it_on_reruns(tmp_path, data_dir, cli):
    d = tmp_path / "in"
    for i, rel in enumerate(["a b.txt", "a_b.txt", "d1/story.txt", "d2/story.txt", ".hidden.txt", "hidden.txt"]):
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_text(f"「{i}番目の話です」\n「そうですか」\n", encoding="utf-8")
    r = cli("ingest", d)
    assert r.code == 0, r.err
    assert "6 new, 0 updated, 0 unchanged" in r.out
    ids = _work_ids(data_dir)
    assert len(ids) == 6
    # Safe names keep their plain id (existing stores do not move); the others get a hash.
    assert {"text/a_b", "text/story", "text/hidden"} <= set(ids)
    origins = {meta(data_dir, *i.split("/"))["origin"] for i in ids}
    assert len(origins) == 6
    for _ in range(2):
        r = cli("ingest", d)
        assert "0 new, 0 updated, 6 unchanged" in r.out, r.out
        assert _work_ids(data_dir) == ids


def test_work_ids_do_not_depend_on_the_order_folders_are_given(tmp_path, data_dir, cli):
    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "a b.txt").write_text(f"「{sub}の話」\n「うん」\n", encoding="utf-8")
    assert "2 new" in cli("ingest", tmp_path / "x", tmp_path / "y").out
    ids = _work_ids(data_dir)
    assert len(ids) == 2
    assert "2 unchanged" in cli("ingest", tmp_path / "y", tmp_path / "x").out
    assert _work_ids(data_dir) == ids


def test_a_safe_name_keeps_todays_id(tmp_path, data_dir, cli):
    p = tmp_path / "走れメロス_1567.txt"
    p.write_text("「メロスは激怒した」\n「そうか」\n", encoding="utf-8")
    assert cli("ingest", p).code == 0
    assert _work_ids(data_dir) == ["text/走れメロス_1567"]


def test_ids_module_hashes_only_unsafe_or_taken_names():
    from pipeline.ids import is_safe, work_id_for

    assert work_id_for("story", "d1/story.txt") == "story"
    taken = work_id_for("story", "d2/story.txt", taken=True)
    assert taken.startswith("story-") and taken != work_id_for("story", "d1/story.txt", taken=True)
    assert work_id_for("a b", "a b.txt") != work_id_for("a_b", "a_b.txt")
    assert work_id_for("…", "….txt").startswith("work-")
    assert len(work_id_for("あ" * 300, "x.txt")) <= 100
    assert is_safe("abc-1.2") and not is_safe(".hidden") and not is_safe("a b")


# ---------------------------------------------------------------- what is not a file


def test_fifos_devices_loops_and_unreadable_folders_are_skipped_with_a_line(tmp_path, data_dir, cli):
    import os

    from harness import remove_tree, run_nocpipe, shared_tmp

    root = shared_tmp()
    try:
        d = root / "in"
        d.mkdir()
        write_aozora(d / "good.txt", BODY)
        os.mkfifo(d / "pipe.txt")
        (d / "loop.txt").symlink_to("loop.txt")
        (d / "zero.txt").symlink_to("/dev/zero")
        (d / "dangling.txt").symlink_to(d / "gone.txt")
        (d / "locked").mkdir()
        (d / "locked" / "inside.txt").write_text("「中」\n", encoding="utf-8")
        (d / "locked").chmod(0)
        r = run_nocpipe("ingest", "-q", "--raw-dir", root / "raw", d, as_nobody=True, timeout=120)
        assert r.code == 0, r.err
        skipped = [ln for ln in r.err.splitlines() if ln.startswith("skipped:")]
        assert len(skipped) == 5, r.err
        for name, why in (
            ("pipe.txt", "FIFO"),
            ("loop.txt", "loop"),
            ("zero.txt", "device"),
            ("dangling.txt", "dangling"),
            ("locked", "unreadable folder"),
        ):
            assert any(name in ln and why in ln for ln in skipped), (name, r.err)
        assert "1 new" in r.out and "5 skipped" in r.out
        assert "Traceback" not in r.err
    finally:
        remove_tree(root)


def test_a_fifo_or_device_named_directly_does_not_hang(tmp_path, data_dir):
    import os

    from harness import assert_one_error, run_nocpipe

    os.mkfifo(tmp_path / "p.txt")
    for target in (tmp_path / "p.txt", "/dev/zero"):
        r = run_nocpipe("ingest", "-q", target, env={"NOCPIPE_DATA": str(data_dir)}, timeout=60)
        assert_one_error(r, "could be ingested")
        assert "skipped:" in r.err and "not a file" in r.err


def test_a_file_over_the_size_limit_is_skipped(tmp_path, data_dir, cli):
    write_aozora(tmp_path / "in" / "small.txt", BODY)
    (tmp_path / "in" / "big.txt").write_text("「長い」\n" * 200_000, encoding="utf-8")
    r = cli("ingest", "--max-size", "1", tmp_path / "in")
    assert r.code == 0
    assert "1 new" in r.out and "too_large 1" in r.out
    assert "big.txt: too large" in r.err and "--max-size" in r.err


def test_a_zip_member_over_the_size_limit_is_skipped(tmp_path, data_dir, cli):
    z = tmp_path / "bomb.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.txt", "あ" * 1_000_000)
    write_aozora(tmp_path / "ok.txt", BODY)
    r = cli("ingest", "--max-size", "1", z, tmp_path / "ok.txt")
    assert r.code == 0
    assert "too large" in r.err and "1 new" in r.out


# ---------------------------------------------------------------- a store we cannot write


def test_a_read_only_raw_store_is_one_error_line(tmp_path):
    from harness import assert_one_error, remove_tree, run_nocpipe, shared_tmp

    root = shared_tmp()
    try:
        src = write_aozora(root / "a.txt", BODY)
        (root / "raw").mkdir()
        (root / "raw").chmod(0o555)
        r = run_nocpipe("ingest", "-q", "--raw-dir", root / "raw", src, as_nobody=True)
        assert_one_error(r, "raw store", "writable")
        assert "unreadable" not in r.err
    finally:
        remove_tree(root)


def test_ingest_on_a_full_disk_is_one_line_and_a_rerun_finishes_like_a_clean_run(tmp_path):
    from harness import assert_one_error, run_nocpipe, temporaries, tree_files

    d = tmp_path / "in"
    for i in range(3):
        write_aozora(d / f"w{i}.txt", BODY + "\n" + "「台詞です」\n" * (200 * (i + 1)))
    full, clean = tmp_path / "full", tmp_path / "clean"
    r = run_nocpipe("ingest", "-q", "--raw-dir", full, d, fsize=8_000)
    assert_one_error(r, "disk is full")
    assert "unreadable" not in r.err
    assert temporaries(full) == []
    # Every work folder is complete or has no meta.json (and is redone).
    for meta_path in full.glob("*/*/meta.json"):
        assert (meta_path.parent / "text.txt").exists()
    assert run_nocpipe("ingest", "-q", "--raw-dir", full, d).code == 0
    assert run_nocpipe("ingest", "-q", "--raw-dir", clean, d).code == 0

    def strip_times(files):
        import re

        return {k: re.sub(rb'"fetched_at": "[^"]*"', b"", v) for k, v in files.items()}

    assert strip_times(tree_files(full)) == strip_times(tree_files(clean))


HOSTILE_NAMES = [
    b"\xff\xfe.txt",
    b"a\nb.txt",
    b"-rf.txt",
    b"x" * 251 + b".txt",
    "あ".encode() * 83 + b".txt",
    b" .txt",
    b"..txt",
    b"a\tb.txt",
    "\u202e.txt".encode(),
    b"a%2Fb.txt",
    "ga\u3099.txt".encode(),
    "が.txt".encode(),
]


def test_hostile_file_names_get_distinct_ids_that_every_stage_can_use(tmp_path, data_dir, cli):
    import os

    d = tmp_path / "in"
    d.mkdir()
    for i, name in enumerate(HOSTILE_NAMES):
        with open(os.path.join(os.fsencode(d), name), "wb") as fh:
            fh.write(f"「{i}番目の話だ」\n「そうか」\n".encode())
    r = cli("ingest", d)
    assert r.code == 0, r.err
    assert f"{len(HOSTILE_NAMES)} new" in r.out
    ids = _work_ids(data_dir)
    assert len(ids) == len(HOSTILE_NAMES)
    assert all(len(i.encode()) <= 5 + 200 for i in ids)
    assert f"{len(HOSTILE_NAMES)} unchanged" in cli("ingest", d).out
    for i in ids:  # one line each, valid JSON, the name kept readable
        m = meta(data_dir, *i.split("/"))
        assert "\n" not in m["origin"] and "\n" not in m["title"]
    r = cli("extract-pairs", "-q", "--workers", "1", "--examples", "0")
    assert r.code == 0, r.err
    assert f"totals: {len(HOSTILE_NAMES)} works" in r.out


def test_a_skipped_line_stays_one_line_whatever_the_name(tmp_path, data_dir, cli):
    (tmp_path / "bad\nname.txt").write_bytes(b"")
    write_aozora(tmp_path / "good.txt", BODY)
    r = cli("ingest", tmp_path)
    assert r.code == 0
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("skipped:") and "bad\\nname.txt" in lines[0]


def test_a_damaged_meta_json_is_rewritten_under_the_same_id(tmp_path, data_dir, cli):
    p = write_aozora(tmp_path / "a.txt", BODY)
    cli("ingest", p)
    for damage in ("[]", "{bad", '{"origin": null}'):
        (data_dir / "raw" / "aozora" / "a" / "meta.json").write_text(damage, encoding="utf-8")
        r = cli("ingest", p)
        assert r.code == 0 and "1 updated" in r.out, (damage, r.out, r.err)
        assert _work_ids(data_dir) == ["aozora/a"]
        assert meta(data_dir, "aozora", "a")["title"] == "試験の話"


# ---------------------------------------------------------------- zips we cannot read


def _zip_with(path, text="「あ」\n「い」\n", method=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=method) as zf:
        zf.writestr("a.txt", text.encode("utf-8") * 50)
    return path


def _patch_headers(path, offset_in_header: int, value: bytes):
    """Write `value` at the same offset of the local header and of the central directory
    entry (general purpose flags at 6 / 8, compression method at 8 / 10)."""
    data = bytearray(path.read_bytes())
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    data[local + offset_in_header : local + offset_in_header + len(value)] = value
    data[central + offset_in_header + 2 : central + offset_in_header + 2 + len(value)] = value
    path.write_bytes(bytes(data))
    return path


def _encrypted(path):
    return _patch_headers(_zip_with(path), 6, (1).to_bytes(2, "little"))


def _unknown_method(path):
    return _patch_headers(_zip_with(path), 8, (99).to_bytes(2, "little"))  # 99: AES, as WinZip writes it


def _damaged_stream(path):
    _zip_with(path, text="「ああいいうう」\n" * 40, method=zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    start = data.find(b"PK\x03\x04") + 30 + len("a.txt")
    data[start : start + 12] = b"\xff" * 12  # the deflate stream's first bytes: an invalid block
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    "make,says",
    [
        (_encrypted, "encrypted"),
        (_unknown_method, "method 99"),
        (_damaged_stream, "not a readable zip file"),
    ],
)
def test_a_zip_we_cannot_read_is_skipped_and_the_batch_goes_on(tmp_path, data_dir, cli, make, says):
    z = make(tmp_path / "e.zip")
    write_aozora(tmp_path / "one.txt", BODY)
    r = cli("ingest", z, tmp_path / "one.txt")
    assert r.code == 0, r.err
    assert "1 new" in r.out and "bad_zip 1" in r.out
    skipped = [ln for ln in r.err.splitlines() if ln.startswith("skipped:")]
    assert len(skipped) == 1 and "e.zip" in skipped[0] and says in skipped[0]
    assert "Traceback" not in r.err
