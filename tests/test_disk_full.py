"""Every stage on a full disk: one `Error:` line, nothing half-written, and the same
command, once there is space again, finishes exactly as a run that never failed.

A full disk is simulated without root: the child's RLIMIT_FSIZE makes every write
past N bytes fail (EFBIG), as writes on a full disk fail (ENOSPC). The limit is per
file, so each test picks limits below the size of the files the stage writes.
(Ingest's own case is in test_ingest.py.)"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from conftest import SAMPLES
from harness import assert_one_error, run_nocpipe, temporaries, tree_files

from pipeline.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _ok(*args: object) -> None:
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()) as err:
        code = main([str(a) for a in args])
    assert code == 0, out.getvalue() + err.getvalue()


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("disk-full")
    _ok("ingest", "-q", "--raw-dir", root / "raw", SAMPLES)
    return root


def _corpus_files(out: Path) -> dict[str, bytes]:
    return {k: v for k, v in tree_files(out).items() if not k.startswith(".")}  # not the lock or work cache


def test_extract_pairs_on_a_full_disk(store, tmp_path):
    limit = 12_000  # three of the four works' files fit; the fourth does not
    args = [
        "extract-pairs",
        "-q",
        "--raw-dir",
        store / "raw",
        "--workers",
        "1",
        "--shard-size",
        "20",
        "--examples",
        "0",
    ]
    clean = tmp_path / "clean"
    assert run_nocpipe(*args, "--out-dir", clean).code == 0
    out = tmp_path / "out"
    result = run_nocpipe(*args, "--out-dir", out, fsize=limit)
    line = assert_one_error(result, "disk is full")
    assert f"Error: {out}/" in line and ".tmp:" not in line  # the file, not a temporary name, nor none
    assert temporaries(out) == []
    assert not (out / "stats.json").exists()  # stats are written last: no corpus that looks finished
    again = run_nocpipe(*args, "--out-dir", out)
    assert again.code == 0, again.err
    assert _corpus_files(out) == _corpus_files(clean)


TRAIN = [
    "--arch",
    "transformer",
    "--epochs",
    "1",
    "--units",
    "8",
    "--max-len",
    "16",
    "--vocab-size",
    "64",
    "--batch-size",
    "16",
    "--steps-per-epoch",
    "2",
    "-q",
]


@pytest.fixture(scope="module")
def model(store) -> Path:
    corpus, model = store / "corpus", store / "model"
    _ok("extract-pairs", "-q", "--raw-dir", store / "raw", "--out-dir", corpus, "--workers", "1", "--examples", "0")
    # In a child, as the run under test: its files then have the sizes that run's will have.
    trained = run_nocpipe("train", "--data-dir", corpus, "--model-dir", model, *TRAIN)
    assert trained.code == 0, trained.err
    return model


def _losses(model_dir: Path) -> list[tuple[str, ...]]:
    rows = csv.DictReader((model_dir / "history.csv").open(encoding="utf-8"))
    return [tuple(r[k] for k in r if "loss" in k or "acc" in k or "bpc" in k) for r in rows]


@pytest.mark.slow
def test_train_on_a_full_disk_and_the_same_command_again(model, store, tmp_path):
    # The limit lets the smaller of model.keras and checkpoint.npz land and stops the larger.
    sizes = sorted((model / n).stat().st_size for n in ("model.keras", "checkpoint.npz"))
    folder = tmp_path / "m"
    args = ["train", "--data-dir", store / "corpus", "--model-dir", folder, *TRAIN]
    result = run_nocpipe(*args, fsize=sizes[1] - 1)
    line = assert_one_error(result, "disk is full", allowed=("skipped:", "warning:", "note:", "epoch "))
    assert f"Error: {folder}/" in line and ".tmp:" not in line
    assert temporaries(folder) == []
    again = run_nocpipe(*args)  # the same command, once there is space
    assert again.code == 0, again.err
    assert _losses(folder) == _losses(model)


def test_predict_output_on_a_full_disk(model, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("".join(f"こんにちは、{i}番目の人\n" for i in range(40)), encoding="utf-8")
    out = tmp_path / "replies.csv"
    out.write_text("the previous replies\n", encoding="utf-8")
    result = run_nocpipe("predict", "--model-dir", model, "-i", src, "-o", out, fsize=200)
    line = assert_one_error(result, "disk is full", allowed=("skipped:", "warning:"))
    assert line.startswith(f"Error: {out}: ")  # the file the user named
    assert out.read_text(encoding="utf-8") == "the previous replies\n"  # the old file, whole
    full = run_nocpipe("predict", "--model-dir", model, "-i", src, "-o", "/dev/full")
    assert_one_error(full, "/dev/full: No space left on device", allowed=("skipped:", "warning:"))
    assert temporaries(tmp_path) == []
    assert run_nocpipe("predict", "--model-dir", model, "-i", src, "-o", out).code == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 40 and all(re.fullmatch(r"[\u30A0-\u30FF、。！？…・「」『』～]*", r["reply"]) for r in rows)
