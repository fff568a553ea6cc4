"""Messages that name the right path and say what to do, through the real command line in a
child process: a full disk, a folder that is not writable, a file where a folder belongs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import SAMPLES
from harness import assert_one_error, remove_tree, run_nocpipe, shared_tmp, temporaries


@pytest.fixture(scope="module")
def store():
    root = shared_tmp()
    r = run_nocpipe("ingest", "-q", "--raw-dir", root / "raw", SAMPLES)
    assert r.code == 0, r.err
    r = run_nocpipe(
        "extract-pairs", "-q", "--raw-dir", root / "raw", "--out-dir", root / "corpus", "--workers", "1",
        "--reader", "pykakasi", "--examples", "0",
    )  # fmt: skip
    assert r.code == 0, r.err
    for dirpath, _, files in os.walk(root):
        os.chmod(dirpath, 0o777)
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o666)
    yield root
    remove_tree(root)


def test_a_full_disk_in_extract_pairs_names_the_file(store, tmp_path):
    out = tmp_path / "out"
    args = ["extract-pairs", "-q", "--raw-dir", store / "raw", "--out-dir", out, "--workers", "1", "--examples", "0"]
    line = assert_one_error(run_nocpipe(*args, "--reader", "pykakasi", fsize=12_000), "disk is full", "free some space")
    named = line.removeprefix("Error: ").split(": ")[0]
    assert named.startswith(str(out)) and not Path(named).name.endswith(".tmp"), line
    assert temporaries(out) == []


def test_a_full_device_as_output_is_named(store, tmp_path):
    r = run_nocpipe("report", "--data-dir", store / "corpus", "--out", "/dev/full", "--json", tmp_path / "f.json")
    assert_one_error(r, "/dev/full", "No space left on device", "free some space")


def test_a_folder_that_is_not_writable_is_named_not_the_temporary_file(store):
    ro = store / "read-only"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        r = run_nocpipe("report", "--data-dir", store / "corpus", "--out", ro / "report.html", as_nobody=True)
        line = assert_one_error(r, f"{ro / 'report.html'}: Permission denied", f"the folder {ro} is not writable")
        assert ".tmp" not in line
    finally:
        ro.chmod(0o755)


def test_a_file_where_a_folder_belongs_is_named(store, tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder\n")
    needed = f"{blocker} is a file; a folder is needed here"
    cases = [
        (["extract-pairs", "--raw-dir", blocker, "--out-dir", tmp_path / "o"], "(the raw store)"),
        (["extract-pairs", "--raw-dir", store / "raw", "--out-dir", blocker], "(the corpus folder)"),
        (["extract-pairs", "--raw-dir", store / "raw", "--out-dir", blocker / "sub"], "(the corpus folder)"),
        (["ingest", "-q", "--raw-dir", blocker / "raw", SAMPLES], "(the raw store)"),
        (["list", "--raw-dir", blocker], "(the raw store)"),
        (["report", "--data-dir", store / "corpus", "--out", blocker / "r.html"], "choose another path"),
    ]
    for args, fragment in cases:
        line = assert_one_error(run_nocpipe(*args, "--reader", "pykakasi") if args[0] == "extract-pairs"
                                else run_nocpipe(*args), needed, fragment)  # fmt: skip
        assert "does not exist" not in line and "File exists" not in line and "Not a directory" not in line
    assert blocker.read_text() == "not a folder\n"
