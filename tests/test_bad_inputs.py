"""Every command with bad arguments: exactly one `Error:` line on stderr, exit status 1,
no traceback. One table; each row builds its arguments inside a small world (a
sample raw store, its corpus, a tiny model, a few odd files) made once per module."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import SAMPLES
from harness import assert_one_error, run_nocpipe

from pipeline.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@dataclass(frozen=True)
class World:
    root: Path
    raw: Path
    corpus: Path
    model: Path
    file: Path  # a regular file where a folder is expected
    folder: Path  # an empty folder where a file is expected


def _quiet_main(args: list[object]) -> int:
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()) as err:
        code = main([str(a) for a in args])
    assert code == 0, out.getvalue() + err.getvalue()
    return code


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("bad-inputs")
    raw, corpus, model = root / "raw", root / "corpus", root / "model"
    _quiet_main(["ingest", "-q", "--raw-dir", raw, SAMPLES])
    _quiet_main(["extract-pairs", "-q", "--raw-dir", raw, "--out-dir", corpus, "--workers", "1", "--examples", "0"])
    _quiet_main(
        [
            "train",
            "-q",
            "--arch",
            "transformer",
            "--data-dir",
            corpus,
            "--model-dir",
            model,
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
        ]
    )
    (root / "file.txt").write_text("just a file\n", encoding="utf-8")
    (root / "folder").mkdir()
    return World(root, raw, corpus, model, root / "file.txt", root / "folder")


Case = tuple[str, Callable[[World], list[object]], str]
LOCAL = ["--base-url", "http://127.0.0.1:9", "--api-url", "http://127.0.0.1:9/api"]

# (id, arguments, a fragment the Error line must hold)
CASES: list[Case] = [
    # ingest
    ("ingest-missing", lambda w: ["ingest", w.root / "nope.txt"], "could be ingested"),
    ("ingest-empty-file", lambda w: ["ingest", "--raw-dir", w.root / "r1", w.root / "empty.txt"], "could be ingested"),
    ("ingest-raw-dir-is-a-file", lambda w: ["ingest", "--raw-dir", w.file, SAMPLES], "raw store"),
    ("ingest-max-size-0", lambda w: ["ingest", "--max-size", "0", SAMPLES], "--max-size"),
    ("ingest-no-paths", lambda w: ["ingest"], "Missing argument"),
    ("ingest-empty-folder", lambda w: ["ingest", w.folder], "no .txt or .zip"),
    # extract-pairs
    ("extract-raw-dir-missing", lambda w: ["extract-pairs", "--raw-dir", w.root / "nope"], "nope"),
    ("extract-raw-dir-is-a-file", lambda w: ["extract-pairs", "--raw-dir", w.file], "file.txt"),
    (
        "extract-out-dir-is-a-file",
        lambda w: ["extract-pairs", "--raw-dir", w.raw, "--out-dir", w.file, "--workers", "1"],
        "file.txt",
    ),
    ("extract-bad-split", lambda w: ["extract-pairs", "--raw-dir", w.raw, "--split", "1,2"], "--split"),
    ("extract-bad-reader", lambda w: ["extract-pairs", "--raw-dir", w.raw, "--reader", "mecab"], "reader"),
    ("extract-negative-max-len", lambda w: ["extract-pairs", "--raw-dir", w.raw, "--max-len", "-1"], "--max-len"),
    ("extract-negative-workers", lambda w: ["extract-pairs", "--raw-dir", w.raw, "--workers", "-3"], "--workers"),
    ("extract-not-a-number", lambda w: ["extract-pairs", "--max-len", "ten"], "--max-len"),
    (
        "extract-unknown-url-scheme",
        lambda w: ["extract-pairs", "--raw-dir", w.raw, "--out-dir", "nosuch://b/c"],
        "cannot open nosuch://b/c",
    ),
    (
        "extract-empty-object-store",
        lambda w: ["extract-pairs", "--raw-dir", f"memory://{os.getpid()}-none/raw", "--out-dir", w.root / "o-mem"],
        "does not exist",
    ),
    # train
    (
        "train-data-dir-missing",
        lambda w: ["train", "--data-dir", w.root / "nope", "--model-dir", w.root / "m1"],
        "nope",
    ),
    (
        "train-zero-units",
        lambda w: ["train", "--data-dir", w.corpus, "--model-dir", w.root / "m2", "--units", "0"],
        "units",
    ),
    (
        "train-negative-epochs",
        lambda w: ["train", "--data-dir", w.corpus, "--model-dir", w.root / "m3", "--epochs", "-1"],
        "--epochs",
    ),
    (
        "train-unknown-arch",
        lambda w: ["train", "--data-dir", w.corpus, "--model-dir", w.root / "m4", "--arch", "zzz"],
        "zzz",
    ),
    (
        "train-nan-learning-rate",
        lambda w: ["train", "--data-dir", w.corpus, "--model-dir", w.root / "m5", "--learning-rate", "nan"],
        "nan",
    ),
    (
        "train-tiny-vocab",
        lambda w: ["train", "--data-dir", w.corpus, "--model-dir", w.root / "m6", "--vocab-size", "1"],
        "vocab",
    ),
    ("train-name-with-slash", lambda w: ["train", "--data-dir", w.corpus, "--name", "../x"], "--name"),
    ("train-over-a-model", lambda w: ["train", "--data-dir", w.corpus, "--model-dir", w.model], "model"),
    # predict
    ("predict-no-model", lambda w: ["predict", "--model-dir", w.root / "nope", "あ"], "model"),
    ("predict-model-dir-is-a-file", lambda w: ["predict", "--model-dir", w.file, "あ"], "model"),
    ("predict-empty-model-dir", lambda w: ["predict", "--model-dir", w.folder, "あ"], "config.json"),
    ("predict-input-missing", lambda w: ["predict", "--model-dir", w.model, "-i", w.root / "nope.txt"], "nope.txt"),
    (
        "predict-output-suffix",
        lambda w: ["predict", "--model-dir", w.model, "-o", w.root / "x.xlsx", "あ"],
        ".csv or .parquet",
    ),
    ("predict-output-is-a-folder", lambda w: ["predict", "--model-dir", w.model, "-o", w.folder, "あ"], "folder"),
    ("predict-num-zero", lambda w: ["predict", "--model-dir", w.model, "--num", "0", "あ"], "--num"),
    (
        "predict-negative-temperature",
        lambda w: ["predict", "--model-dir", w.model, "--temperature", "-1", "あ"],
        "--temperature",
    ),
    ("predict-nan-mmi", lambda w: ["predict", "--model-dir", w.model, "--mmi", "nan", "あ"], "--mmi"),
    (
        "predict-inf-temperature",
        lambda w: ["predict", "--model-dir", w.model, "--temperature", "inf", "あ"],
        "--temperature",
    ),
    ("predict-top-p-above-1", lambda w: ["predict", "--model-dir", w.model, "--top-p", "2", "あ"], "--top-p"),
    ("predict-negative-beam", lambda w: ["predict", "--model-dir", w.model, "--beam", "-1", "あ"], "--beam"),
    (
        "evaluate-nan-mmi",
        lambda w: ["evaluate", "--model-dir", w.model, "--data-dir", w.corpus, "--mmi", "nan"],
        "--mmi",
    ),
    (
        "evaluate-inf-length-penalty",
        lambda w: ["evaluate", "--model-dir", w.model, "--data-dir", w.corpus, "--length-penalty", "inf"],
        "--length-penalty",
    ),
    (
        "train-bad-max-time",
        lambda w: ["train", "--data-dir", w.corpus, "--model-dir", w.root / "m7", "--max-time", "-5s"],
        "--max-time",
    ),
    (
        "train-negative-early-stop",
        lambda w: ["train", "--data-dir", w.corpus, "--model-dir", w.root / "m8", "--early-stop", "-1"],
        "--early-stop",
    ),
    (
        "train-itf-too-large",
        lambda w: ["train", "--data-dir", w.corpus, "--model-dir", w.root / "m9", "--itf", "5"],
        "--itf",
    ),
    (
        "train-itf-on-the-seed-network",
        lambda w: ["train", "--data-dir", w.corpus, "--model-dir", w.root / "m10", "--arch", "seed", "--itf", "0.5"],
        "autoregressive",
    ),
    (
        "train-lr-decay-without-a-budget",
        lambda w: ["train", "--data-dir", w.corpus, "--model-dir", w.root / "m11", "--lr-decay"],
        "--max-time",
    ),
    ("predict-name-with-slash", lambda w: ["predict", "--name", "a/b", "あ"], "--name"),
    ("predict-input-is-a-folder", lambda w: ["predict", "--model-dir", w.model, "-i", w.folder], "is a folder"),
    ("predict-long-name", lambda w: ["predict", "--name", "x" * 300, "あ"], "255"),
    ("train-long-name", lambda w: ["train", "--data-dir", w.corpus, "--name", "x" * 300], "255"),
    ("train-long-japanese-name", lambda w: ["train", "--data-dir", w.corpus, "--name", "名" * 90], "270 bytes"),
    # scrape and list: every case stops before any request (and could reach only a closed local port)
    ("scrape-nothing-chosen", lambda w: ["scrape", *LOCAL], "choose the works"),
    ("scrape-nan-delay", lambda w: ["scrape", *LOCAL, "--delay", "nan", "n1234ab"], "--delay"),
    ("scrape-inf-delay", lambda w: ["scrape", *LOCAL, "--delay", "inf", "n1234ab"], "--delay"),
    ("scrape-nan-timeout", lambda w: ["scrape", *LOCAL, "--timeout", "nan", "n1234ab"], "--timeout"),
    ("scrape-nan-backoff", lambda w: ["scrape", *LOCAL, "--backoff", "nan", "n1234ab"], "--backoff"),
    (
        "scrape-bad-base-url",
        lambda w: ["scrape", "--api-url", "http://127.0.0.1:9/api", "--base-url", "ht!tp://x", "n1234ab"],
        "--base-url",
    ),
    ("scrape-unknown-site", lambda w: ["scrape", *LOCAL, "--site", "zz", "n1234ab"], "zz"),
    ("scrape-arabic-digits", lambda w: ["scrape", *LOCAL, "n\u0661\u0662\u0663\u0664ab"], "ncode"),
    ("scrape-fullwidth-digits", lambda w: ["scrape", *LOCAL, "n\uff10\uff10\uff10\uff11aa"], "ncode"),
    ("scrape-negative-limit", lambda w: ["scrape", *LOCAL, "--limit", "-1", "--all"], "--limit"),
    ("list-unknown-site", lambda w: ["list", "--raw-dir", w.raw, "--site", "zz"], "zz"),
    ("list-raw-dir-missing", lambda w: ["list", "--raw-dir", w.root / "nope"], "nope"),
    # kana and the command line itself
    ("kana-bad-reader", lambda w: ["kana", "--reader", "zz", "あ"], "reader"),
    ("kana-context-missing", lambda w: ["kana", "--context", w.root / "nope.txt", "あ"], "--context"),
    ("kana-context-folder", lambda w: ["kana", "--context", w.folder, "あ"], "--context"),
    ("kana-context-device", lambda w: ["kana", "--context", "/dev/zero", "あ"], "not a regular file"),
    ("kana-context-fifo", lambda w: ["kana", "--context", _fifo(w), "あ"], "not a regular file"),
    ("kana-context-binary", lambda w: ["kana", "--context", _binary(w), "あ"], "binary"),
    # report and evaluate
    ("report-data-dir-missing", lambda w: ["report", "--data-dir", w.root / "nope"], "nope"),
    ("report-data-dir-is-a-file", lambda w: ["report", "--data-dir", w.file], "file.txt"),
    ("report-out-is-a-folder", lambda w: ["report", "--data-dir", w.corpus, "--out", w.folder], "folder"),
    ("evaluate-no-model", lambda w: ["evaluate", "--model-dir", w.root / "nope"], "model"),
    (
        "evaluate-bad-split",
        lambda w: ["evaluate", "--model-dir", w.model, "--data-dir", w.corpus, "--split", "x"],
        "--split",
    ),
    (
        "evaluate-json-is-a-folder",
        lambda w: [
            "evaluate",
            "--model-dir",
            w.model,
            "--data-dir",
            w.corpus,
            "--split",
            "valid",
            "--max-pairs",
            "4",
            "--json",
            w.folder,
        ],
        "folder",
    ),
    ("serve-no-model", lambda w: ["serve", "--model-dir", w.root / "nope"], "model"),
    ("serve-bad-port", lambda w: ["serve", "--model-dir", w.model, "--port", "99999"], "--port"),
    ("unknown-command", lambda w: ["nosuch"], "No such command"),
    ("unknown-option", lambda w: ["ingest", "--bogus", SAMPLES], "--bogus"),
]


def _fifo(w: World) -> Path:
    path = w.root / "context.fifo"
    if not path.exists():
        os.mkfifo(path)
    return path


def _binary(w: World) -> Path:
    path = w.root / "binary.txt"
    path.write_bytes(b"\x00\x01PNG" * 100)
    return path


@pytest.mark.parametrize("name,args,fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_arguments_end_in_one_error_line(world, cli, name, args, fragment):
    (world.root / "empty.txt").write_bytes(b"")
    before = sorted(p for p in world.root.rglob("*") if p.name.endswith(".tmp"))
    result = cli(*args(world))
    assert_one_error(result, fragment)
    assert sorted(p for p in world.root.rglob("*") if p.name.endswith(".tmp")) == before


def test_a_real_child_process_prints_one_line_too(world):
    # In a child, library logs (TensorFlow's C++ notices, warnings) would reach stderr too.
    result = run_nocpipe("predict", "--model-dir", world.folder, "あ", env={"NOCPIPE_DATA": str(world.root)})
    assert_one_error(result, "config.json")
    assert os.listdir(world.folder) == []


def test_predict_output_is_written_through_a_link_and_into_a_device(world, cli):
    target = world.root / "replies.csv"
    target.write_text("old\n", encoding="utf-8")
    link = world.root / "link.csv"
    link.symlink_to(target)
    result = cli("predict", "--model-dir", world.model, "-o", link, "あ")
    assert result.code == 0, result.err
    assert link.is_symlink() and "utterance" in target.read_text(encoding="utf-8").splitlines()[0]
    from harness import FifoReader  # a device stand-in: no test risks the real /dev/null

    reader = FifoReader(world.root / "pipe.csv")
    result = cli("predict", "--model-dir", world.model, "-o", world.root / "pipe.csv", "あ")
    assert result.code == 0, result.err
    assert b"utterance" in reader.result() and not (world.root / "pipe.csv").is_file()


def test_report_and_evaluate_write_through_links_and_into_fifos(world, cli):
    from harness import FifoReader

    target = world.root / "real-report.html"
    target.write_text("old", encoding="utf-8")
    (world.root / "report-link.html").symlink_to(target)
    result = cli("report", "--data-dir", world.corpus, "--out", world.root / "report-link.html")
    assert result.code == 0, result.err
    assert (world.root / "report-link.html").is_symlink() and "<html" in target.read_text(encoding="utf-8")
    reader = FifoReader(world.root / "report-pipe.html")
    result = cli("report", "--data-dir", world.corpus, "--out", world.root / "report-pipe.html")
    assert result.code == 0, result.err
    assert b"<html" in reader.result() and not (world.root / "report-pipe.md").exists()
    reader = FifoReader(world.root / "figures.json")
    result = cli(
        "evaluate",
        "--model-dir",
        world.model,
        "--data-dir",
        world.corpus,
        "--split",
        "valid",
        "--max-pairs",
        "8",
        "--examples",
        "0",
        "--json",
        world.root / "figures.json",
    )
    assert result.code == 0, result.err
    assert b"bits_per_char" in reader.result()


# ---------------------------------------------------------------- damaged files: extract-pairs


def _pairs_and_stats(corpus: Path) -> dict[str, bytes]:
    from harness import tree_files

    files = tree_files(corpus / "pairs")
    files["stats.json"] = (corpus / "stats.json").read_bytes()
    return files


@pytest.fixture
def damaged(world, tmp_path):
    """A copy of the world's raw store and corpus to damage, and the clean corpus's files."""
    import shutil

    shutil.copytree(world.raw, tmp_path / "raw")
    shutil.copytree(world.corpus, tmp_path / "corpus")
    return tmp_path / "raw", tmp_path / "corpus", _pairs_and_stats(world.corpus)


def _extract(cli, raw, corpus, *more):
    return cli("extract-pairs", "-q", "--raw-dir", raw, "--out-dir", corpus, "--workers", "1", *more)


@pytest.mark.parametrize("examples", ["0", "1"])
def test_a_truncated_shard_is_rebuilt(damaged, cli, examples):
    raw, corpus, clean = damaged
    shard = sorted((corpus / "pairs").glob("*.parquet"))[0]
    shard.write_bytes(shard.read_bytes()[:100])
    result = _extract(cli, raw, corpus, "--examples", examples)
    assert result.code == 0 and "Traceback" not in result.err, result.err
    assert _pairs_and_stats(corpus) == clean


@pytest.mark.parametrize(
    "damage",
    [
        "[]",
        "null",
        "{not json",
        '{"shards": null}',
        '{"shards": [1, 2]}',
        '{"phase1": "x"}',
        '{"inputs": 3}',
        '{"works": null}',
        "{}",
    ],
)
def test_a_damaged_state_file_is_rebuilt(damaged, cli, damage):
    raw, corpus, clean = damaged
    (corpus / "_state.json").write_text(damage, encoding="utf-8")
    result = _extract(cli, raw, corpus, "--examples", "0")
    assert result.code == 0 and "Traceback" not in result.err, result.err
    assert _pairs_and_stats(corpus) == clean
    assert "nothing new" in _extract(cli, raw, corpus, "--examples", "0").out


@pytest.mark.parametrize("damage", [b"", b"[1", b"[]", b"\xff\xfe"])
def test_a_damaged_stats_file_is_rebuilt(damaged, cli, damage):
    raw, corpus, clean = damaged
    (corpus / "stats.json").write_bytes(damage)
    result = _extract(cli, raw, corpus)
    assert result.code == 0 and "Traceback" not in result.err, result.err
    assert _pairs_and_stats(corpus) == clean


@pytest.mark.parametrize("damage", ["cut", "missing"])
def test_a_damaged_work_is_skipped_named_and_counted_and_never_stops_the_others(damaged, cli, damage):
    raw, corpus, clean = damaged
    work = sorted((raw / "aozora").iterdir())[0]
    text = work / "text.txt"
    original = text.read_bytes()
    if damage == "cut":
        cut = original.index("。".encode()) + 1  # a three-byte character cut after its first byte
        text.write_bytes(original[:cut])
    else:
        text.unlink()
    for _ in range(2):  # named again on every run until it is fixed
        result = _extract(cli, raw, corpus, "--examples", "0")
        assert result.code == 0 and "Traceback" not in result.err, result.err
        skipped = [ln for ln in result.err.splitlines() if ln.startswith("skipped:")]
        assert len(skipped) == 1 and work.name in skipped[0], result.err
        assert "works skipped: 1" in result.out
        stats = json.loads((corpus / "stats.json").read_text(encoding="utf-8"))
        assert stats["works"] == len(list((raw / "aozora").iterdir())) - 1
    text.write_bytes(original)
    result = _extract(cli, raw, corpus, "--examples", "0")
    assert result.code == 0 and "skipped" not in result.err
    assert _pairs_and_stats(corpus) == clean


def test_every_work_damaged_is_one_error_line(damaged, cli):
    raw, corpus, _ = damaged
    for text in raw.glob("*/*/text.txt"):
        text.write_bytes(b"\xe3")
    assert_one_error(_extract(cli, raw, corpus), "could be read")


# ---------------------------------------------------------------- damaged files: the model folder


@pytest.fixture
def model_copy(world, tmp_path) -> Path:
    import shutil

    return Path(shutil.copytree(world.model, tmp_path / "model"))


def _edit_json(path: Path, edit) -> None:
    obj = json.loads(path.read_text(encoding="utf-8"))
    edit(obj)
    path.write_text(json.dumps(obj), encoding="utf-8")


MODEL_DAMAGE = [
    ("config.json", "units", "abc", "units"),
    ("config.json", "units", None, "units"),
    ("config.json", "reverse_input", "false", "reverse_input"),
    ("config.json", "units", 0, "units"),
    ("config.json", "max_len", 1.5, "max_len"),
    ("vocab.json", "counts", [1], "counts"),
    ("vocab.json", "reverse_input", "false", "reverse_input"),
    ("vocab.json", "tokens", None, "tokens"),
    ("vocab.json", "max_len", "16", "max_len"),
]


@pytest.mark.parametrize("name,key,value,fragment", MODEL_DAMAGE, ids=[f"{n}-{k}-{v}" for n, k, v, _ in MODEL_DAMAGE])
def test_a_damaged_model_file_is_named_with_what_to_do(world, cli, model_copy, name, key, value, fragment):
    path = model_copy / name
    _edit_json(path, lambda o: (o["model"] if name == "config.json" else o).__setitem__(key, value))
    for args in (
        ["predict", "--model-dir", model_copy, "あ"],
        ["train", "--data-dir", world.corpus, "--model-dir", model_copy, "--resume", "--epochs", "2", "-q"],
    ):
        line = assert_one_error(cli(*args), name, fragment, "damaged")
        assert "--force" in line


@pytest.mark.parametrize("damage", ["truncated", "empty", "not-a-zip"])
def test_a_damaged_checkpoint_is_named_with_what_to_do(world, cli, model_copy, damage):
    ckpt = model_copy / "checkpoint.npz"
    data = ckpt.read_bytes()
    ckpt.write_bytes({"truncated": data[: len(data) // 2], "empty": b"", "not-a-zip": b"x" * 100}[damage])
    result = cli("train", "--data-dir", world.corpus, "--model-dir", model_copy, "--resume", "--epochs", "2", "-q")
    assert_one_error(result, "checkpoint.npz", "damaged", "--force")
    assert ckpt.exists()  # the user decides what to do with it


def test_predict_num_takes_up_to_its_bound_and_refuses_more(world, cli):
    import re

    result = cli("predict", "--model-dir", world.model, "--num", "50", "あ")
    assert result.code == 0, result.err
    candidates = [ln for ln in result.out.splitlines() if re.match(r"\s*\d+\. 「", ln)]
    assert len(set(candidates)) == len(candidates)
    if len(candidates) < 50:
        assert "note:" in result.err and ("capped" in result.err or "only" in result.err), result.err
    assert_one_error(cli("predict", "--model-dir", world.model, "--num", "60000", "あ"), "--num", "50")


def test_a_checkpoint_of_another_model_size_is_named(world, cli, model_copy, tmp_path):
    other = tmp_path / "other"
    result = cli(
        "train",
        "--data-dir",
        world.corpus,
        "--model-dir",
        other,
        "--epochs",
        "1",
        "--units",
        "12",
        "--max-len",
        "16",
        "--vocab-size",
        "64",
        "--batch-size",
        "16",
        "--steps-per-epoch",
        "2",
        "--arch",
        "transformer",
        "-q",
    )
    assert result.code == 0, result.err
    (model_copy / "checkpoint.npz").write_bytes((other / "checkpoint.npz").read_bytes())
    result = cli("train", "--data-dir", world.corpus, "--model-dir", model_copy, "--resume", "--epochs", "2", "-q")
    assert_one_error(result, "checkpoint.npz", "another size", "--force")


def test_a_checkpoint_with_a_damaged_state_is_named(world, cli, model_copy):
    import io

    import numpy as np

    ckpt = model_copy / "checkpoint.npz"
    with np.load(ckpt) as data:
        arrays = {k: data[k] for k in data.files}
    state = json.loads(bytes(arrays["state"]).decode())
    state["epoch"] = "1"
    arrays["state"] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    ckpt.write_bytes(buf.getvalue())
    result = cli("train", "--data-dir", world.corpus, "--model-dir", model_copy, "--resume", "--epochs", "2", "-q")
    assert_one_error(result, "checkpoint.npz", "epoch", "damaged")
