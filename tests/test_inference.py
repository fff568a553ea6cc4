"""The inference API: loading, log-probabilities that agree with the decoder's scores for every
architecture, greedy / sampling / beam decoding, distinct N-best lists ranked by the scores they
show, the repetition guard, MMI reranking, candidate ranking, load_bot; and one tiny model trained
and answered on the JAX backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from test_dataset import write_pairs  # noqa: E402

from pipeline.decoding import Decoding, Space, constrain  # noqa: E402
from pipeline.errors import ModelError, UsageError  # noqa: E402
from pipeline.inference import Chatbot, load_bot  # noqa: E402
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
    for dec in (Decoding(num=3, length_penalty=0.0), Decoding(num=3, temperature=1.0, seed=1)):
        lists = bot.reply(UTTS, dec)
        for utt, cands in zip(UTTS, lists):
            assert len(cands) == 3 and len({c.text for c in cands}) == 3
            lps = bot.log_probs([utt] * 3, [c.text for c in cands])
            for c, lp in zip(cands, lps):
                assert lp.shape == (len(c.text) + 1,)
                assert float(lp.sum()) == pytest.approx(c.log_p, abs=1e-4)
                assert c.score == pytest.approx(c.log_p, abs=1e-9)  # no length penalty, no MMI: the same
                assert is_kana_text(c.text) and len(c.text) <= bot.max_len - 1
            ranked = bot.rank(utt, [c.text for c in cands])
            assert ranked.dtype == np.float64 and np.allclose(ranked, [c.log_p for c in cands], atol=1e-4)
    # Replies are cut to max_len - 1 characters; unknown characters are scored as the unknown token.
    long, odd = bot.log_probs(["ア", "ア"], ["イ" * 40, "x"])
    assert long.shape == (16,) and odd.shape == (2,)
    assert np.all(long <= 0) and np.all(np.isfinite(odd))
    assert bot.log_probs([], []) == []


@pytest.mark.parametrize("arch", ARCHS)
def test_decoding_modes(bots, arch):
    bot = bots[arch]
    greedy = bot.reply(UTTS, Decoding())
    assert bot.reply(UTTS, Decoding()) == greedy and all(len(c) == 1 for c in greedy)
    # A vanishing nucleus keeps only the most probable character: sampling becomes greedy.
    nucleus = bot.reply(UTTS, Decoding(temperature=1.0, top_p=1e-9, seed=3))
    assert [c[0].text for c in nucleus] == [c[0].text for c in greedy]
    a = bot.reply(UTTS, Decoding(num=5, temperature=1.3, seed=7))
    assert a == bot.reply(UTTS, Decoding(num=5, temperature=1.3, seed=7))
    for cands in a:
        assert len({c.text for c in cands}) == 5
        assert [c.score for c in cands] == sorted((c.score for c in cands), reverse=True)
    assert bot.reply(UTTS, Decoding(beam=1, length_penalty=0.0)) == greedy  # a beam of one is greedy search
    for cands in bot.reply(UTTS, Decoding(beam=4)):
        assert len(cands) == 1 and is_kana_text(cands[0].text)
    # Under beam search the score is the length-normalised log p it ranks by: the shown order holds.
    for cands in bot.reply(UTTS, Decoding(num=4, beam=6, length_penalty=1.0)):
        assert [c.score for c in cands] == sorted((c.score for c in cands), reverse=True)
        for c in cands:
            assert c.score == pytest.approx(c.log_p / ((5 + len(c.text) + 1) / 6), abs=1e-9)


def test_repetition_guard(bots):
    bot = bots["transformer"]
    space = Space(16, 64, 64)
    tokens = np.array([[2, 3, 4, 5, 2, 3, 4, 0], [2, 2, 2, 2, 2, 2, 2, 0]])
    lp = constrain(np.zeros((2, 64)), tokens, 7, space, 4)
    assert lp[0, 5] == -np.inf and np.isfinite(lp[0, 6])  # ア イ ウ then エ again would repeat a 4-gram
    assert lp[1, 2] == -np.inf and np.isfinite(lp[1, 0])
    assert np.isfinite(constrain(np.zeros((2, 64)), tokens, 7, space, 0)[0, 5])  # 0 turns it off
    assert constrain(np.zeros((1, 64)), tokens[:1], 0, space, 4)[0, 0] == -np.inf  # no empty reply
    last = constrain(np.zeros((1, 64)), tokens[:1], 15, space, 4)[0]
    assert np.isfinite(last[0]) and np.all(last[1:] == -np.inf)  # the end is forced at the last position
    assert np.all(constrain(np.zeros((1, 64)), tokens[:1], 3, Space(16, 64, 40), 4)[0, 40:] == -np.inf)
    for cands in bot.reply(UTTS, Decoding(num=4, temperature=2.0, seed=1)):
        for c in cands:
            grams = [c.text[i : i + 4] for i in range(len(c.text) - 3)]
            assert len(grams) == len(set(grams))


def test_mmi_reranks_by_the_score_it_shows_and_errors(bots):
    from pipeline.ngram import NgramLM

    bot = bots["attention"]
    bot.ngram = NgramLM.fit(bot.vocab, [["アイウ", "ソウ", "ソウデス", "イイエ"] * 5], order=3)
    plain = bot.reply(["アイウ"], Decoding(num=8, beam=8, length_penalty=0.0))[0]
    out = bot.reply(["アイウ"], Decoding(num=3, beam=8, mmi=0.5, length_penalty=0.0))[0]
    lm = dict(zip([c.text for c in plain], bot.ngram.score([c.text for c in plain])))
    want = sorted(plain, key=lambda c: -(c.log_p - 0.5 * lm[c.text]))[:3]
    assert [c.text for c in out] == [c.text for c in want]
    for c in out:
        assert c.score == pytest.approx(c.log_p - 0.5 * lm[c.text]) and c.log_p is not None
    assert [c.score for c in out] == sorted((c.score for c in out), reverse=True)
    for bad in (
        dict(num=0),
        dict(num=51),
        dict(temperature=-1.0),
        dict(top_p=0.0),
        dict(beam=-1),
        dict(beam=65),
        dict(beam=2, temperature=1.0),
        dict(no_repeat_ngram=1),
    ):
        with pytest.raises(UsageError):
            bot.reply(["ア"], Decoding(**bad))
    assert bot.reply([], Decoding()) == []


def test_load_bot_gives_the_generative_chatbot(bots):
    bot = load_bot(bots["seed"].model_dir)
    assert isinstance(bot, Chatbot) and bot.arch == "seed" and bot.vocab.max_len == 16
    assert bot.reply(["アイウ"], Decoding()) == bots["seed"].reply(["アイウ"], Decoding())


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
