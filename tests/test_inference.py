"""The inference API: loading, log-probabilities that agree with the decoder's scores for every
architecture, greedy / sampling / beam decoding, distinct N-best lists, the repetition guard,
reranking; and one tiny model trained and answered on the JAX backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from test_dataset import write_pairs  # noqa: E402

from pipeline.errors import ModelError, UsageError  # noqa: E402
from pipeline.inference import Candidate, Chatbot  # noqa: E402
from pipeline.kana import is_kana_text  # noqa: E402
from stages.train import TrainOptions, train  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
REPO = Path(__file__).resolve().parents[1]
ARCHS = ("seed", "attention", "transformer")
UTTS = ["アイウ", "カキクケ", "サ"]


@pytest.fixture(scope="module")
def bots(tmp_path_factory) -> dict[str, Chatbot]:
    root = tmp_path_factory.mktemp("inference")
    pairs = write_pairs(root / "pairs", n_train=160, n_valid=16, shards=1)
    out = {}
    for arch in ARCHS:
        d = root / arch
        train(
            TrainOptions(
                data_dir=pairs,
                model_dir=d,
                epochs=1,
                arch=arch,
                units=16,
                max_len=16,
                vocab_size=64,
                batch_size=16,
                steps_per_epoch=4,
                verbose=0,
            ),
            log=lambda s: None,
        )
        out[arch] = Chatbot.load(d)
    return out


@pytest.mark.parametrize("arch", ARCHS)
def test_scores_are_the_log_probs_of_the_reply_and_its_end(bots, arch):
    bot = bots[arch]
    assert bot.arch == arch and bot.max_len == 16 and bot.name == arch
    assert bot.config["model"]["arch"] == arch
    lists = bot.reply(UTTS, num=3)
    for utt, cands in zip(UTTS, lists):
        assert len(cands) == 3 and len({c.text for c in cands}) == 3
        lps = bot.log_probs([utt] * 3, [c.text for c in cands])
        for c, lp in zip(cands, lps):
            assert lp.shape == (len(c.text) + 1,)
            assert float(lp.sum()) == pytest.approx(c.score, abs=1e-4)
            assert is_kana_text(c.text) and len(c.text) <= bot.max_len - 1
    # Replies are cut to max_len - 1 characters; unknown characters are scored as the unknown token.
    long, odd = bot.log_probs(["ア", "ア"], ["イ" * 40, "x"])
    assert long.shape == (16,) and odd.shape == (2,)
    assert np.all(long <= 0) and np.all(np.isfinite(odd))
    assert bot.log_probs([], []) == []


@pytest.mark.parametrize("arch", ARCHS)
def test_decoding_modes(bots, arch):
    bot = bots[arch]
    greedy = bot.reply(UTTS)
    assert bot.reply(UTTS) == greedy and all(len(c) == 1 for c in greedy)
    # A vanishing nucleus keeps only the most probable character: sampling becomes greedy.
    nucleus = bot.reply(UTTS, temperature=1.0, top_p=1e-9, seed=3)
    assert [c[0].text for c in nucleus] == [c[0].text for c in greedy]
    a = bot.reply(UTTS, num=5, temperature=1.3, seed=7)
    assert a == bot.reply(UTTS, num=5, temperature=1.3, seed=7)
    for cands in a:
        assert len({c.text for c in cands}) == 5
        assert [c.score for c in cands] == sorted((c.score for c in cands), reverse=True)
    assert bot.reply(UTTS, beam=1, length_penalty=0.0) == greedy  # a beam of one is greedy search
    for cands in bot.reply(UTTS, beam=4):
        assert len(cands) == 1 and is_kana_text(cands[0].text)


def test_repetition_guard(bots):
    bot = bots["transformer"]
    tokens = np.array([[2, 3, 4, 5, 2, 3, 4, 0], [2, 2, 2, 2, 2, 2, 2, 0]])
    lp = bot._masked(np.zeros((2, 64)), tokens, 7, 4)
    assert lp[0, 5] == -np.inf and np.isfinite(lp[0, 6])  # ア イ ウ then エ again would repeat a 4-gram
    assert lp[1, 2] == -np.inf and np.isfinite(lp[1, 0])
    assert np.isfinite(bot._masked(np.zeros((2, 64)), tokens, 7, 0)[0, 5])  # 0 turns it off
    assert bot._masked(np.zeros((1, 64)), tokens[:1], 0, 4)[0, 0] == -np.inf  # no empty reply
    last = bot._masked(np.zeros((1, 64)), tokens[:1], 15, 4)[0]
    assert np.isfinite(last[0]) and np.all(last[1:] == -np.inf)  # the end is forced at the last position
    for cands in bot.reply(UTTS, num=4, temperature=2.0, seed=1):
        for c in cands:
            grams = [c.text[i : i + 4] for i in range(len(c.text) - 3)]
            assert len(grams) == len(set(grams))


def test_rerank_and_errors(bots):
    bot = bots["attention"]
    seen = {}

    def reverse(utt: str, cands: list[Candidate]) -> list[Candidate]:
        seen[utt] = list(cands)
        return cands[::-1]

    out = bot.reply(["アイウ"], num=2, rerank=reverse)
    assert len(seen["アイウ"]) >= 2 and out[0] == seen["アイウ"][::-1][:2]
    for bad in (
        dict(num=0),
        dict(num=51),
        dict(temperature=-1.0),
        dict(top_p=0.0),
        dict(beam=-1),
        dict(beam=2, temperature=1.0),
        dict(no_repeat_ngram=1),
    ):
        with pytest.raises(UsageError):
            bot.reply(["ア"], **bad)
    assert bot.reply([]) == []


def test_load_errors(tmp_path):
    with pytest.raises(ModelError, match="no model folder"):
        Chatbot.load(tmp_path / "missing")


@pytest.mark.slow
def test_jax_backend_trains_and_replies(tmp_path):
    """The same code on JAX: a tiny transformer trained, resumed, and answering from the command line."""
    pairs = write_pairs(tmp_path / "pairs", n_train=80, n_valid=16, shards=1)
    env = {**os.environ, "KERAS_BACKEND": "jax", "NOCPIPE_DATA": str(tmp_path / "data"), "PYTHONPATH": str(REPO)}
    exe = [sys.executable, "-m", "pipeline.cli"]
    r = subprocess.run(
        exe
        + [
            "train",
            "--data-dir",
            str(pairs),
            "--name",
            "j",
            "--arch",
            "transformer",
            "--units",
            "8",
            "--max-len",
            "12",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--steps-per-epoch",
            "2",
            "-q",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "on jax" in r.stdout
    r = subprocess.run(
        exe + ["predict", "--name", "j", "--num", "2", "あいう"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    lines = [ln.split("「")[1].split("」")[0] for ln in r.stdout.splitlines() if "「" in ln]
    assert len(lines) == 2 and len(set(lines)) == 2 and all(is_kana_text(t) for t in lines)
