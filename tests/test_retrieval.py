"""The retrieval chatbot: n-gram features, select@1's draws, training through the CLI, the reply
index, answering with real lines and their sources, ranking, and a model.keras plain Keras loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from pipeline.retrieval.features import NgramSpace, document_frequencies, idf_weights
from pipeline.selection import DISTRACTORS, draw, select_at_1
from pipeline.vocab import Vocab

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples" / "aozora"


def _vocab(texts, max_len=8):
    return Vocab.build(Vocab.count(texts, Counter()), 16, max_len=max_len, reverse_input=False)


def test_ngram_ids_are_exact_for_bigrams_and_mark_both_ends():
    vocab = _vocab(["アイウ", "イウエ"])
    space = NgramSpace.for_vocab(vocab, trigram_buckets=64)
    ids = space.encode(vocab, ["アイ", ""])
    a = space.alphabet
    assert ids.shape == (2, space.width) and ids.dtype == np.int32
    chars = vocab.encode_batch(["アイ"])[0]
    # unigrams, then ^ア, アイ, イ$ as exact bigram ids, then hashed trigrams ^アイ and アイ$
    assert list(ids[0, :2]) == list(chars[:2]) and not ids[0, 2 : space.max_len].any()
    bigrams = ids[0, space.max_len : 2 * space.max_len + 1]
    assert list(bigrams[:3]) == [a + (a - 2) * a + chars[0], a + chars[0] * a + chars[1], a + chars[1] * a + a - 1]
    trigrams = ids[0, 2 * space.max_len + 1 :]
    assert (trigrams[:2] >= a + a * a).all() and (trigrams[:2] < space.size).all() and not trigrams[2:].any()
    # an empty text still has ^$: one bigram, nothing else
    assert np.count_nonzero(ids[1]) == 1


def test_idf_is_zero_for_padding_and_falls_with_frequency():
    vocab = _vocab(["アイ", "アウ", "アエ"])
    space = NgramSpace.for_vocab(vocab, 64)
    ids = space.encode(vocab, ["アイ", "アウ", "アエ"])
    df = document_frequencies(space, ids)
    w = idf_weights(df, 3)
    a_id = vocab.encode_batch(["ア"])[0, 0]
    i_id = vocab.encode_batch(["イ"])[0, 0]
    assert df[a_id] == 3 and df[i_id] == 1 and df[0] == 0
    assert w[0] == 0 and w[a_id] < w[i_id]


def test_draws_are_fixed_distinct_and_hide_the_truth():
    replies = [f"R{i % 40}" for i in range(200)]
    a, b = draw(replies, 50), draw(replies, 50)
    assert a == b and len(a) == 50
    positions = Counter(d.truth for d in a)
    assert len(positions) > 3  # shuffled, not always first
    for d in a:
        shown = [replies[c] for c in d.candidates]
        assert len(shown) == DISTRACTORS + 1 and d.candidates[d.truth] == d.pair
        assert len(set(shown)) == len(shown)  # none equal to the truth in katakana, nor to each other


def test_select_at_1_counts_ties_as_misses():
    replies = [f"R{i}" for i in range(30)]
    utts = [f"U{i}" for i in range(30)]
    draws = draw(replies, 20)
    assert select_at_1(draws, utts, replies, lambda u, c: np.zeros(len(c))) == 0.0
    oracle = select_at_1(draws, utts, replies, lambda u, c: np.array([float(x[1:] == u[1:]) for x in c]))
    assert oracle == 1.0


# ---------------------------------------------------------------- trained through the CLI


@pytest.fixture(scope="module")
def retrieval_model(tmp_path_factory):
    from pipeline.cli import main

    root = tmp_path_factory.mktemp("retrieval")
    for args in (
        ["ingest", str(SAMPLES), "--raw-dir", str(root / "raw"), "-q"],
        ["extract-pairs", "--raw-dir", str(root / "raw"), "--out-dir", str(root / "pairs"), "--workers", "1", "-q"],
    ):
        assert main(args) == 0
    os.environ["NOCPIPE_DATA"] = str(root)  # the raw store beside the corpus gives the titles
    try:
        code = main(
            ["train", "--arch", "retrieval", "--data-dir", str(root / "pairs"), "--model-dir", str(root / "r"),
             "--units", "16", "--epochs", "2", "--batch-size", "32", "-q"]
        )  # fmt: skip
    finally:
        os.environ.pop("NOCPIPE_DATA", None)
    assert code == 0
    return root


def test_training_writes_a_model_folder_with_a_reply_index(retrieval_model):
    import pyarrow.parquet as pq

    from pipeline.modeldir import ModelDir

    folder = ModelDir(retrieval_model / "r")
    cfg = folder.read_config()["model"]
    assert cfg["arch"] == "retrieval" and cfg["units"] == 16
    table, vectors = folder.read_reply_index()
    assert vectors.dtype == np.float16 and isinstance(vectors, np.memmap)
    assert vectors.shape == (table.num_rows, 2 * (16 + cfg["style_units"]))  # reply and utterance vectors
    kana = table.column("reply_kana").to_pylist()
    assert len(set(kana)) == len(kana) > 50
    titles = set(table.column("title").to_pylist())
    assert "走れメロス" in titles or "風の又三郎" in titles  # from the raw store's metadata
    corpus = pq.read_table(retrieval_model / "pairs" / "pairs").to_pydict()
    train_replies = {r for r, s in zip(corpus["reply_kana"], corpus["split"]) if s == "train"}
    assert set(kana) <= train_replies  # the index holds train replies only
    history = folder.read_history()
    assert [int(r["epoch"]) for r in history] == [1, 2]


def test_replies_are_real_lines_with_their_source(retrieval_model):
    from pipeline.decoding import Decoding
    from pipeline.retrieval.bot import RetrievalBot

    bot = RetrievalBot.load(retrieval_model / "r")
    inputs = [bot.to_kana(t) for t in ("お母さん？", "どこへ行くの", "ありがとう")]
    lists = bot.reply(inputs, Decoding(num=3))
    assert [len(c) for c in lists] == [3, 3, 3]
    for cands in lists:
        assert [c.score for c in cands] == sorted((c.score for c in cands), reverse=True)
        for c in cands:
            assert c.surface and c.source["title"] and c.source["work_id"] and isinstance(c.source["line"], int)
    # one input's replies do not depend on the other inputs of the call
    alone = bot.reply(inputs[1:2], Decoding(num=3))[0]
    assert [c.text for c in alone] == [c.text for c in lists[1]]


def test_rank_prefers_the_true_reply_more_often_than_chance(retrieval_model):
    from pipeline.retrieval.bot import RetrievalBot
    from pipeline.retrieval.pairs import read_pairs

    bot = RetrievalBot.load(retrieval_model / "r")
    pairs = read_pairs(retrieval_model / "pairs", "train")
    draws = draw(pairs.replies, 200)
    assert select_at_1(draws, pairs.utterances, pairs.replies, bot.rank) > 0.2  # chance is 0.1


def test_generative_options_are_refused_for_a_retrieval_model(retrieval_model):
    from pipeline.decoding import Decoding
    from pipeline.errors import UsageError

    with pytest.raises(UsageError, match="--beam does not apply to a retrieval model"):
        Decoding(beam=4).validate_for("retrieval")
    with pytest.raises(UsageError, match="--temperature, --top-p do not apply"):
        Decoding(temperature=0.5, top_p=0.9).validate_for("retrieval")


def test_resume_after_the_last_epoch_is_already_done_and_keeps_the_index(retrieval_model, cli):
    before = (retrieval_model / "r" / "replies.parquet").stat().st_mtime_ns
    r = cli("train", "--data-dir", str(retrieval_model / "pairs"), "--model-dir", str(retrieval_model / "r"),
            "--epochs", "2", "--resume", "-q")  # fmt: skip
    assert r.code == 0, r.out
    assert (retrieval_model / "r" / "replies.parquet").stat().st_mtime_ns == before


def test_itf_is_refused_for_retrieval(retrieval_model, cli):
    r = cli("train", "--arch", "retrieval", "--itf", "0.5", "--data-dir", str(retrieval_model / "pairs"),
            "--model-dir", str(retrieval_model / "other"), "-q")  # fmt: skip
    assert r.code == 1 and "--itf shapes a generative network's training" in r.err


def test_model_keras_loads_with_plain_keras(retrieval_model, tmp_path):
    """No nocpipe importable: the encoder is Keras's own layers, and gives nocpipe's vectors."""
    from pipeline.retrieval.bot import RetrievalBot

    bot = RetrievalBot.load(retrieval_model / "r")
    texts = ["オカアサン？", "ドコヘイクノ"]
    ids = bot.space.encode(bot.vocab, texts)
    np.save(tmp_path / "ids.npy", ids)
    want = bot.encode(texts, 1)
    code = (
        "import sys, json, numpy as np\n"
        "sys.modules['pipeline'] = None\n"
        "import keras\n"
        f"m = keras.saving.load_model({str(retrieval_model / 'r' / 'model.keras')!r})\n"
        f"ids = np.load({str(tmp_path / 'ids.npy')!r})\n"
        "u, r = m.predict_on_batch([ids, ids])\n"
        "print(json.dumps(np.asarray(r).tolist()))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    got = np.array(json.loads(out.stdout.strip().splitlines()[-1]))
    assert np.allclose(got, want, atol=1e-5)


def test_evaluate_reports_select_at_1_beside_tfidf(retrieval_model, tmp_path, cli):
    out = tmp_path / "e.json"
    r = cli("evaluate", "--model-dir", str(retrieval_model / "r"), "--data-dir", str(retrieval_model / "pairs"),
            "--split", "train", "--max-pairs", "200", "--json", str(out), "-q")  # fmt: skip
    assert r.code == 0, r.out
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert figures["bits_per_char"] is None and figures["char_accuracy"] is None
    assert 0 <= figures["tfidf_select_at_1"] <= 1 and figures["select_at_1"] > 0.1
    assert "select@1" in r.out + r.err


@pytest.mark.parametrize("encoding", ["cp932", "utf-16"])
def test_predict_refuses_stdin_that_is_not_utf8_in_one_line(retrieval_model, encoding):
    from harness import REPO, ChildResult, assert_one_error

    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "predict", "--model-dir", str(retrieval_model / "r")],
        input="「お母さん？」\n".encode(encoding), capture_output=True, env=env, timeout=300,
    )  # fmt: skip
    result = ChildResult(proc.returncode, proc.stdout.decode(), proc.stderr.decode())
    assert_one_error(result, "stdin is not UTF-8 text", "iconv")


def test_predict_show_source_names_the_work(retrieval_model, cli):
    r = cli("predict", "--model-dir", str(retrieval_model / "r"), "--show-source", "--num", "2", "お母さん？")
    assert r.code == 0, r.err
    sources = [ln for ln in r.out.splitlines() if " — " in ln and "『" in ln]
    assert len(sources) == 2, r.out


def test_serve_describes_a_retrieval_model_and_its_sources(retrieval_model):
    from pipeline.decoding import Decoding
    from pipeline.retrieval.bot import RetrievalBot
    from stages.serve import model_info, reply_json

    bot = RetrievalBot.load(retrieval_model / "r")
    info = model_info(bot)
    assert info["arch"] == "retrieval" and info["units"] == 16
    out = reply_json(bot.reply([bot.to_kana("お母さん？")], Decoding())[0][0])
    assert out["reply"] and out["surface"] and out["source"]["title"] and isinstance(out["score"], float)
