"""nocpipe predict: replies from arguments, stdin (piped and interactive), --input/--output,
--jsonl, --show-source, scores printed in the order shown, sampling, truncation, and every error
(the fast ones before Keras is imported); plus one real `nocpipe train` + `predict` subprocess."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

keras = pytest.importorskip("keras")

from test_dataset import write_pairs  # noqa: E402

from pipeline.kana import is_kana_text, to_katakana  # noqa: E402
from stages.predict import Predictor, strip_quotes  # noqa: E402
from stages.train import TrainOptions, train  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("predict")
    pairs = write_pairs(root / "pairs", n_train=200, n_valid=20, shards=2)
    d = root / "model"
    train(
        TrainOptions(
            data_dir=pairs,
            model_dir=d,
            epochs=1,
            arch="transformer",
            units=8,
            max_len=16,
            vocab_size=64,
            batch_size=16,
            steps_per_epoch=3,
            verbose=0,
        ),
        log=lambda s: None,
    )
    return d


@pytest.fixture(scope="module")
def predictor(model_dir) -> Predictor:
    return Predictor(model_dir)


def replies_of(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.strip()]


def assert_reply_line(line: str) -> None:
    assert line.startswith("「") and line.endswith("」"), line
    body = line[1:-1]
    assert body and is_kana_text(body), line


def test_strip_quotes():
    assert strip_quotes("「おはよう」") == "おはよう"
    assert strip_quotes("　「あ」 ") == "あ"
    assert strip_quotes("「あ」「い」") == "あ」「い"  # only one outer pair
    assert strip_quotes("  ") == ""


def test_greedy_replies_are_katakana_and_repeatable(predictor):
    texts = ["こんな忘れ物、ある?", "「お母さん？」", "ウフフ"]
    first = predictor.reply(texts)
    again = predictor.reply(texts)
    assert [r.replies for r in first] == [r.replies for r in again]
    for r, t in zip(first, texts):
        assert r.kana == to_katakana(strip_quotes(t), "pykakasi")
        assert len(r.replies) == 1 and r.replies[0] and is_kana_text(r.replies[0])
        assert set(r.replies[0]) <= set(predictor.vocab.tokens[2:])
        assert not r.truncated


def test_sampling_with_a_seed_and_several_candidates(predictor):
    a = predictor.reply(["あいうえお"], temperature=1.5, num=4, seed=11)[0]
    b = predictor.reply(["あいうえお"], temperature=1.5, num=4, seed=11)[0]
    assert a.replies == b.replies
    assert len(a.replies) == 4 and len(set(a.replies)) == 4  # never silently fewer
    assert a.scores == sorted(a.scores, reverse=True)
    assert all(r and is_kana_text(r) for r in a.replies)
    # --num without --temperature searches a beam: distinct candidates, the greedy reply among them.
    beam = predictor.reply(["あいうえお"], num=3)[0]
    assert len(set(beam.replies)) == 3


def test_long_input_is_cut_to_the_model_length(predictor):
    r = predictor.reply(["アイウエオ" * 5])[0]
    assert r.truncated and r.kana == ("アイウエオ" * 5)[:16]


def test_cli_replies_to_arguments(cli, model_dir):
    res = cli("predict", "--model-dir", model_dir, "こんにちは", "「おはよう」")
    assert res.code == 0, res.err
    lines = replies_of(res.out)
    assert len(lines) == 2
    for line in lines:
        assert_reply_line(line)
    res = cli("predict", "--model-dir", model_dir, "-k", "こんにちは")
    assert res.out.startswith("「コンニチハ」 -> 「")
    res = cli("predict", "--model-dir", model_dir, "-n", "3", "--seed", "2", "--show-kana", "あ")
    assert res.code == 0 and res.out.splitlines()[0] == "「ア」"
    assert sum(line.lstrip().startswith(("1.", "2.", "3.")) for line in res.out.splitlines()) == 3
    res = cli("predict", "--model-dir", model_dir, "-n", "60", "--beam", "2", "あ")
    assert res.code == 1 and "--num must be from 1 to 50" in res.err


def printed_scores(out: str) -> list[list[float]]:
    groups: list[list[float]] = []
    for line in out.splitlines():
        if line.startswith("["):
            groups.append([])
        elif line.lstrip()[:2].rstrip(".").isdigit():
            groups[-1].append(float(line.rsplit(None, 1)[1]))
    return groups


def test_num_prints_each_inputs_best_with_the_scores_they_are_ranked_by(cli, model_dir):
    res = cli("predict", "--model-dir", model_dir, "-n", "4", "--beam", "6", "こんにちは", "さようなら")
    assert res.code == 0, res.err
    lines = res.out.splitlines()
    assert lines[0] == "[1] こんにちは" and lines[5] == "[2] さようなら"  # each group names its input
    groups = printed_scores(res.out)
    assert [len(g) for g in groups] == [4, 4]
    for g in groups:
        assert g == sorted(g, reverse=True)
    res = cli("predict", "--model-dir", model_dir, "-n", "3", "-k", "こんにちは", "さようなら")
    assert res.out.splitlines()[0] == "[1] こんにちは  「コンニチハ」"


def test_cli_one_reply_per_stdin_line(cli, model_dir, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("あのね\n\n「うん」\nそうだね\n"))
    res = cli("predict", "--model-dir", model_dir)
    assert res.code == 0, res.err
    lines = replies_of(res.out)
    assert len(lines) == 3
    for line in lines:
        assert_reply_line(line)
    assert "skipped 1 blank line" in res.err


def test_cli_interactive_prompt(cli, model_dir, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Terminal("こんにちは\n\nさようなら\n"))
    res = cli("predict", "--model-dir", model_dir)
    assert res.code == 0, res.err
    assert "Ctrl-D" in res.err
    replies = [line.split("> ")[-1] for line in res.out.splitlines() if "「" in line]
    assert len(replies) == 2
    for line in replies:
        assert_reply_line(line)


def test_cli_input_and_output_files(cli, model_dir, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("こんにちは\n\n「元気？」\nアアアアアアアアアアアアアアアアアアアア\n", encoding="utf-8")
    res = cli("predict", "--model-dir", model_dir, "--input", src, "--output", tmp_path / "out.csv")
    assert res.code == 0, res.err
    assert "3 replies to 3 texts" in res.out
    assert "cut to" in res.err  # the 20-character line is longer than the model's 16
    rows = list(csv.DictReader(open(tmp_path / "out.csv", encoding="utf-8")))
    assert [r["utterance"] for r in rows] == ["こんにちは", "「元気？」", "ア" * 20]
    assert rows[1]["utterance_kana"] == "ゲンキ？"
    assert all(is_kana_text(r["reply"]) and r["reply"] for r in rows)
    assert [r["truncated"] for r in rows] == ["false", "false", "true"]

    shard = next((model_dir.parent / "pairs").glob("*.parquet"))  # a pair shard has `utterance`
    res = cli("predict", "--model-dir", model_dir, "-i", shard, "-o", tmp_path / "out.parquet", "-n", "2")
    assert res.code == 0, res.err
    table = pq.read_table(tmp_path / "out.parquet")
    assert set(table.column_names) >= {"utterance", "utterance_kana", "candidate", "reply", "score"}
    assert table.num_rows >= pq.read_metadata(shard).num_rows
    res = cli("predict", "--model-dir", model_dir, "-i", src)  # no --output: printed
    assert len(replies_of(res.out)) == 3


def test_cli_errors(cli, model_dir, tmp_path, monkeypatch):
    def err(*args):
        res = cli("predict", *args)
        assert res.code == 1 and res.err.startswith("Error: ") and "Traceback" not in res.err, res
        return res.err

    assert "empty input" in err("--model-dir", model_dir, "")
    assert "empty input" in err("--model-dir", model_dir, "「」")
    assert "nothing to read" in err("--model-dir", model_dir, "♪♪")
    assert "no model folder" in err("--model-dir", tmp_path / "nothing", "あ")
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"format": 0, "nocpipe": "0.0.1", "model": {}}), encoding="utf-8")
    assert "format 0" in err("--model-dir", other, "あ")
    half = tmp_path / "half"
    half.mkdir()
    for name in ("config.json", "vocab.json"):
        (half / name).write_bytes((model_dir / name).read_bytes())
    assert "no model.keras" in err("--model-dir", half, "あ")
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "vocab.json"):
        (broken / name).write_bytes((model_dir / name).read_bytes())
    (broken / "model.keras").write_bytes(b"not a zip")
    assert "is damaged (not a Keras archive)" in err("--model-dir", broken, "あ")
    cfg = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    for change, words in ((dict(max_len=60), "60 steps"), (dict(units=32), "does not fit its config")):
        edited = tmp_path / f"edited{len(words)}"
        edited.mkdir()
        for name in ("vocab.json", "model.keras"):
            (edited / name).write_bytes((model_dir / name).read_bytes())
        (edited / "config.json").write_text(json.dumps({**cfg, "model": {**cfg["model"], **change}}), encoding="utf-8")
        assert words in err("--model-dir", edited, "あ")
    assert "no such input file" in err("--model-dir", model_dir, "--input", tmp_path / "missing.txt")
    (tmp_path / "blank.txt").write_text("\n  \n", encoding="utf-8")
    assert "holds no text" in err("--model-dir", model_dir, "--input", tmp_path / "blank.txt")
    pq.write_table(
        pq.read_table(next((model_dir.parent / "pairs").glob("*.parquet")), columns=["reply"]),
        tmp_path / "noutt.parquet",
    )
    assert "no `utterance` column" in err("--model-dir", model_dir, "--input", tmp_path / "noutt.parquet")
    assert "not TEXT and --input" in err("--model-dir", model_dir, "--input", tmp_path / "blank.txt", "あ")
    assert "not TEXT and --jsonl" in err("--model-dir", model_dir, "--jsonl", "-", "あ")
    assert "--beam must be from 0 (off) to 64" in err("--model-dir", model_dir, "--beam", "100000", "あ")
    assert "--num" in err("--model-dir", model_dir, "--num", "0", "あ")
    assert "--temperature" in err("--model-dir", model_dir, "--temperature", "-1", "あ")
    assert "--top-p" in err("--model-dir", model_dir, "--top-p", "0", "あ")
    assert "choose one" in err("--model-dir", model_dir, "--beam", "3", "--temperature", "1", "あ")
    assert "no such input file" in err("--model-dir", model_dir, "--jsonl", tmp_path / "missing.jsonl")
    assert ".csv or .parquet" in err("--model-dir", model_dir, "-o", tmp_path / "out.xlsx", "あ")
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n\n"))
    assert "stdin held no text" in err("--model-dir", model_dir)


FAST = """
import sys
from pipeline.cli import main
code = main(sys.argv[1:])
print("keras imported" if "keras" in sys.modules else "no keras")
sys.exit(code)
"""


def test_fast_errors_come_before_keras_is_imported(model_dir, tmp_path):
    """A missing input file, a bad option, a missing model folder: answered without Keras."""
    cases = (
        (["--model-dir", model_dir, "--input", tmp_path / "missing.txt"], "no such input file"),
        (["--model-dir", model_dir, "--beam", "100000", "あ"], "--beam must be from 0 (off) to 64"),
        (["--model-dir", model_dir, "--num", "0", "あ"], "--num"),
        (["--model-dir", tmp_path / "nothing", "あ"], "no model folder"),
        (["--model-dir", model_dir, "-o", tmp_path / "x.xlsx", "あ"], ".csv or .parquet"),
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for args, words in cases:
        r = subprocess.run(
            [sys.executable, "-c", FAST, "predict", *map(str, args)], capture_output=True, text=True, env=env, cwd=REPO
        )
        assert r.returncode == 1 and r.stdout.strip() == "no keras", (args, r.stdout, r.stderr)
        assert r.stderr.startswith("Error: ") and words in r.stderr and r.stderr.count("\n") == 1, r.stderr


def jsonl_out(res) -> list[dict]:
    return [json.loads(line) for line in res.out.splitlines()]


def test_jsonl_answers_each_line_in_order_and_ranks_candidates(cli, model_dir, tmp_path, monkeypatch):
    from pipeline.inference import Chatbot

    lines = [
        {"text": "こんにちは"},
        {"text": "「元気？」", "candidates": ["ウン", "「はい」", "イイエ、ゲンキデス"]},
        {"text": "♪♪"},
        {"text": "あ", "candidates": ["ウン", "♪"]},
    ]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n\n"))
    res = cli("predict", "--model-dir", model_dir, "--jsonl", "-", "--num", "2")
    assert res.code == 0, res.err
    out = jsonl_out(res)
    assert [o["text"] for o in out] == [x["text"] for x in lines]
    assert out[0]["kana"] == "コンニチハ" and "ranked" not in out[0]
    assert len(out[0]["replies"]) == 2 and set(out[0]["replies"][0]) == {"reply", "surface", "score", "source"}
    assert out[0]["replies"][0]["score"] >= out[0]["replies"][1]["score"]
    ranked = out[1]["ranked"]
    assert sorted(r["candidate"] for r in ranked) == sorted(lines[1]["candidates"])  # as given, unchanged
    assert [r["score"] for r in ranked] == sorted((r["score"] for r in ranked), reverse=True)
    bot = Chatbot.load(model_dir)
    want = dict(zip(lines[1]["candidates"], bot.rank("ゲンキ？", ["ウン", "ハイ", "イイエ、ゲンキデス"])))
    for r in ranked:
        assert r["score"] == pytest.approx(want[r["candidate"]], abs=1e-9)  # unrounded, bot.rank's own
    assert set(out[2]) == {"text", "error"} and "katakana" in out[2]["error"]
    assert set(out[3]) == {"text", "error"} and "candidate 2" in out[3]["error"]
    # A file gives the same answers (several lines in one model call change none of them).
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines), encoding="utf-8")
    res = cli("predict", "--model-dir", model_dir, "--jsonl", src, "--num", "2")
    assert jsonl_out(res) == out


def test_jsonl_stops_at_a_bad_line_after_the_lines_before_it(cli, model_dir, tmp_path, monkeypatch):
    good = json.dumps({"text": "こんにちは"}, ensure_ascii=False)
    for bad, words in (
        ("{not json", "line 3 is not JSON"),
        ('{"utterance": "あ"}', 'line 3 needs an object with a "text" string'),
        ('{"text": "あ", "candidates": "ウン"}', "must be a list of strings"),
        (json.dumps({"text": "あ", "candidates": ["ア"] * 1001}), "at most 1000"),
        ('{"text": "あ", "extra": 1}', "unknown keys"),
    ):
        monkeypatch.setattr(sys, "stdin", io.StringIO(f"{good}\n\n{bad}\n{good}\n"))
        res = cli("predict", "--model-dir", model_dir, "--jsonl", "-")
        assert res.code == 1 and res.err.startswith("Error: --jsonl") and words in res.err, res.err
        assert len(jsonl_out(res)) == 1  # the line before it was answered, nothing after
    src = tmp_path / "bad.jsonl"
    src.write_text(f"{good}\n{{not json\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    res = cli("predict", "--model-dir", model_dir, "--jsonl", src, "-o", out)
    assert res.code == 1 and "line 2" in res.err
    assert not out.exists() and list(tmp_path.glob(".out.jsonl*")) == []  # only a complete file appears
    src.write_text(f"{good}\n{good}\n", encoding="utf-8")
    res = cli("predict", "--model-dir", model_dir, "--jsonl", src, "-o", out)
    assert res.code == 0 and len(out.read_text(encoding="utf-8").splitlines()) == 2


def test_show_source_says_a_generative_model_has_none(cli, model_dir):
    res = cli("predict", "--model-dir", model_dir, "--show-source", "こんにちは", "さようなら")
    assert res.code == 0, res.err
    assert res.err.count("generative model") == 1 and len(replies_of(res.out)) == 2


def test_source_lines_name_the_original_line_and_work():
    from pipeline.decoding import Candidate, Decoding
    from stages.predict import PredictOptions, Reply, describe_source, format_reply

    full = Candidate("ソウカ", -1.0, "「そうか」", {"title": "吾輩は猫である", "author": "夏目漱石"})
    untitled = Candidate("ウン", -2.0, "うん", {"title": "走れメロス"})
    assert describe_source(full) == "「そうか」 — 夏目漱石『吾輩は猫である』"
    assert describe_source(untitled) == "「うん」 — 『走れメロス』"
    opts = PredictOptions(Path("m"), decoding=Decoding(num=2), show_source=True)
    lines = format_reply(Reply("元気？", "ゲンキ？", [full, untitled], number=1), opts)
    assert lines == [
        "[1] 元気？",
        "  1. 「ソウカ」  -1.000",
        "     「そうか」 — 夏目漱石『吾輩は猫である』",
        "  2. 「ウン」  -2.000",
        "     「うん」 — 『走れメロス』",
    ]


def test_help_has_examples(cli):
    for cmd in ("train", "predict"):
        res = cli(cmd, "--help")
        assert res.code == 0 and "Example:" in res.out
    train_help = cli("train", "--help").out
    for opt in (
        "--data-dir",
        "--model-dir",
        "--arch",
        "--epochs",
        "--batch-size",
        "--units",
        "--resume",
        "--max-pairs",
        "--steps-per-epoch",
        "--seed",
        "--optimizer",
        "--learning-rate",
        "--rotate-optimizers",
        "--max-len",
        "--vocab-size",
    ):
        assert opt in train_help, opt
    predict_help = cli("predict", "--help").out
    for opt in ("--model-dir", "--input", "--output", "--temperature", "--top-p", "--beam", "--num", "--jsonl"):
        assert opt in predict_help, opt
    for bound in ("at most 64", "1 to 50", "at most 1000", "ranked"):
        assert bound in " ".join(predict_help.split()), bound


def test_cli_bad_train_options(cli, tmp_path):
    res = cli("train", "--data-dir", tmp_path, "--model-dir", tmp_path / "m", "--arch", "gpt")
    assert res.code == 1 and "Error: unknown architecture" in res.err
    res = cli("train", "--name", "../up")
    assert res.code == 1 and "--name" in res.err


@pytest.mark.slow
def test_real_commands_train_resume_and_predict(tmp_path):
    """The installed entry point end to end: train 1 epoch, --resume to 2, predict from stdin."""
    pairs = write_pairs(tmp_path / "pairs", n_train=120, n_valid=20, shards=2)
    env = {**os.environ, "NOCPIPE_DATA": str(tmp_path / "data"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    exe = [sys.executable, "-m", "pipeline.cli"]
    common = ["--data-dir", str(pairs), "--name", "tiny"]
    r = subprocess.run(
        exe
        + [
            "train",
            *common,
            "--arch",
            "transformer",
            "--units",
            "8",
            "--max-len",
            "16",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--steps-per-epoch",
            "2",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "epoch 1/1:" in r.stdout and "pairs/s" in r.stdout
    r = subprocess.run(
        exe + ["train", *common, "--epochs", "2", "--resume"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "resuming at epoch 2" in r.stdout and "epoch 2/2:" in r.stdout
    mdir = tmp_path / "data" / "models" / "tiny"
    assert [row["epoch"] for row in csv.DictReader(open(mdir / "history.csv", encoding="utf-8"))] == ["1", "2"]
    r = subprocess.run(
        exe + ["predict", "--name", "tiny"],
        input="こんにちは\nお母さん？\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    lines = replies_of(r.stdout)
    assert len(lines) == 2
    for line in lines:
        assert_reply_line(line)
    assert "I0000" not in r.stderr and "oneDNN" not in r.stderr  # TensorFlow's start-up chatter is hidden


@pytest.mark.slow
def test_bundled_sample_end_to_end(cli, data_dir):
    """ingest + extract-pairs on data/samples/aozora, train 2 epochs, predict real Japanese."""
    from conftest import SAMPLES

    assert cli("ingest", "-q", SAMPLES).code == 0
    assert cli("extract-pairs", "-q", "--examples", "0").code == 0
    res = cli(
        "train",
        "--arch",
        "transformer",
        "--name",
        "s",
        "--units",
        "32",
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--quiet",
    )
    assert res.code == 0, res.err
    assert "epoch 2/2:" in res.out
    assert (data_dir / "models" / "s" / "curves.png").exists()
    res = cli("predict", "--name", "s", "メロスは激怒した。", "「走れ！」", "--show-kana")
    assert res.code == 0, res.err
    lines = replies_of(res.out)
    assert lines[0].startswith("「メロスハゲキドシタ。」 -> 「") and len(lines) == 2
    for line in lines:
        assert_reply_line(line.split(" -> ")[1])
