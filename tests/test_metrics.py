"""The evaluate figures on replies whose values are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline import metrics


def test_bits_per_char_and_char_accuracy():
    lps = [np.log([0.5, 0.5]), np.log([0.25])]
    assert metrics.bits_per_char(lps) == pytest.approx((1 + 1 + 2) / 3)
    assert math.isnan(metrics.bits_per_char([]))
    assert metrics.char_accuracy([np.array([True, False]), np.array([True])]) == pytest.approx(2 / 3)


def test_distinct_and_generic_rate_and_length():
    replies = ["アア", "アイ", "アア", "ウ"]
    # unigrams: ア ア ア イ ア ア ウ -> 3 distinct of 7; bigrams: アア アイ アア -> 2 of 3
    assert metrics.distinct_n(replies, 1) == pytest.approx(3 / 7)
    assert metrics.distinct_n(replies, 2) == pytest.approx(2 / 3)
    assert metrics.distinct_n(["ア"], 2) == 0.0
    assert metrics.generic_rate(replies, top=1) == pytest.approx(2 / 4)
    assert metrics.generic_rate(replies) == 1.0  # four replies, all among the ten most frequent
    assert metrics.generic_rate(["ア"] * 3 + [chr(0x30A4 + i) for i in range(20)]) == pytest.approx(12 / 23)
    assert metrics.mean_length(replies) == pytest.approx(7 / 4)


def test_chrf_is_sacrebleus_corpus_score():
    refs = ["ソウデスカ", "アリガトウゴザイマス"]
    assert metrics.chrf(refs, refs) == pytest.approx(100.0)
    assert metrics.chrf(["ンン", "ヌヌ"], refs) == pytest.approx(0.0)
    partial = metrics.chrf(["ソウデス", "アリガトウ"], refs)
    assert 20 < partial < 100


def test_reply_figures_has_the_reply_keys():
    figs = metrics.reply_figures(["ア", "イ"], ["ア", "ウ"])
    assert set(figs) == {"chrf", "distinct_1", "distinct_2", "generic_rate", "mean_length"}
    assert set(figs) < set(metrics.FIGURES)
