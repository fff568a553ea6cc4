"""The reply n-gram model: proper distributions, hand-checked figures, streaming fit, disk."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.errors import ModelError
from pipeline.metrics import bits_per_char
from pipeline.ngram import NgramLM, reply_ids
from pipeline.vocab import Vocab

REPLIES = ["アイウ", "アイエ", "アイウ", "オ", "カキクケコアイウ", "アイウ", "ウソ", "ソウカ", "アア", "イイエ"]


def vocab_of(texts, size=12, max_len=6) -> Vocab:
    return Vocab.build(Vocab.count(texts), size, max_len=max_len)


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_distribution_sums_to_one_for_every_kind_of_context(order):
    v = vocab_of(REPLIES, size=20)
    lm = NgramLM.fit(v, [REPLIES], order=order)
    V = len(v)
    ids = {c: i for i, c in enumerate(v.tokens)}
    begin = V
    contexts = [
        [begin] * (order - 1),  # start of a reply
        ([begin] * order + [ids["ア"], ids["イ"]])[-(order - 1) :] if order > 1 else [],  # seen
        [ids["コ"], ids["ア"], ids["オ"], ids["オ"]][-(order - 1) :] if order > 1 else [],  # unseen
        [1] * (order - 1),  # unknown characters
    ]
    for ctx in contexts:
        p = lm.prob(np.array([ctx] * V, dtype=np.int64).reshape(V, order - 1), np.arange(V))
        assert p.min() > 0
        assert p.sum() == pytest.approx(1.0, abs=1e-12)


def test_unigram_figures_by_hand():
    # Tokens: ア end ア end イ end -> end 3, ア 2, イ 1, unknown 0 of 6; too few n-grams for
    # the modified-KN estimate, so every count loses 0.5 and the 1.5 goes to the uniform 1/4.
    v = Vocab(["", "<unk>", "ア", "イ"], max_len=10)
    lm = NgramLM.fit(v, [["ア", "ア", "イ"]], order=1)
    p_end, p_a = 2.5 / 6 + 0.25 / 4, 1.5 / 6 + 0.25 / 4
    got = lm.log_probs(["ア"])[0]
    assert np.exp(got) == pytest.approx([p_a, p_end])
    assert bits_per_char(lm.log_probs(["ア"])) == pytest.approx(-(math.log2(p_a) + math.log2(p_end)) / 2)
    # A character outside the vocabulary is the unknown token: the uniform share alone.
    assert np.exp(lm.log_probs(["ヌ"])[0][0]) == pytest.approx(0.25 / 4)


def test_lower_orders_use_continuation_counts():
    # コ is frequent but only ever after ア; ヤ is rarer but follows many characters. After a
    # context never seen, Kneser-Ney trusts how many contexts a character follows.
    replies = ["アコ"] * 20 + ["イヤ", "ウヤ", "エヤ", "オヤ", "アヤ"]
    v = vocab_of(replies, size=20)
    lm = NgramLM.fit(v, [replies], order=2)
    ids = {c: i for i, c in enumerate(v.tokens)}
    hist = np.array([[ids["ヤ"]], [ids["ヤ"]]])  # ヤ is never followed by a character
    p = lm.prob(hist, np.array([ids["コ"], ids["ヤ"]]))
    assert p[1] > p[0]


def test_replies_are_cut_and_end_with_the_end_token():
    v = vocab_of(REPLIES, max_len=4)
    seqs = reply_ids(v, ["カキクケコ", "ア", ""])
    assert [len(s) for s in seqs] == [4, 2, 1]  # max_len − 1 characters, then the end
    assert all(s[-1] == 0 for s in seqs)
    lm = NgramLM.fit(v, [REPLIES], order=3)
    assert [len(x) for x in lm.log_probs(["カキクケコ", "ア", ""])] == [4, 2, 1]


def test_streamed_fit_equals_one_batch_and_disk_round_trip(tmp_path):
    v = vocab_of(REPLIES)
    one = NgramLM.fit(v, [REPLIES])
    streamed = NgramLM.fit(v, [REPLIES[:3], REPLIES[3:7], REPLIES[7:]])
    probe = ["アイウ", "ソ", "ヌヌ", "カキクケコアイウ"]
    assert np.allclose(one.score(probe), streamed.score(probe))
    one.save(tmp_path / "ngram.npz")
    back = NgramLM.load(tmp_path / "ngram.npz")
    assert np.allclose(back.score(probe), one.score(probe))
    assert back.matches(v) and back.pairs == len(REPLIES) and back.order == 5


def test_held_out_text_like_the_training_text_beats_uniform():
    rng = np.random.default_rng(0)
    words = ["ソウダ", "ナニ", "アリガトウ", "イヤ", "ハイ"]
    train = ["".join(rng.choice(words, 3)) for _ in range(400)]
    test = ["".join(rng.choice(words, 3)) for _ in range(50)]
    v = vocab_of(train, size=30, max_len=50)
    bpc = bits_per_char(NgramLM.fit(v, [train]).log_probs(test))
    assert bpc < 0.5 * math.log2(len(v))


def test_errors_are_model_errors(tmp_path):
    v = vocab_of(REPLIES)
    with pytest.raises(ModelError, match="no replies"):
        NgramLM.fit(v, [[]])
    with pytest.raises(ModelError, match="no n-gram model"):
        NgramLM.load(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="cannot read"):
        NgramLM.load(tmp_path / "bad.npz")


def test_mmi_rerank_demotes_the_reply_the_language_model_expects():
    from dataclasses import dataclass

    from pipeline.ngram import mmi_rerank

    @dataclass(frozen=True)
    class Cand:
        text: str
        score: float

    replies = ["ハイ"] * 30 + ["ソウデスカ", "イエ"]
    lm = NgramLM.fit(vocab_of(replies, size=20, max_len=20), [replies])
    cands = [Cand("ハイ", -1.0), Cand("ソウデスカ", -1.5)]
    assert [c.text for c in mmi_rerank(lm, 0.0)(None, cands)] == ["ハイ", "ソウデスカ"]
    ranked = mmi_rerank(lm, 0.5)(None, cands)
    assert ranked == [cands[1], cands[0]]  # the model's own scores stay
