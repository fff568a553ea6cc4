"""nocpipe ingest: files, folders, zips, encodings, bad inputs, re-ingest."""

import json
import zipfile

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
    (d / "garbled.txt").write_bytes(bytes([0x81, 0x20, 0xff, 0xfe, 0x80, 0xa0]) * 50)
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
