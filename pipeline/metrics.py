"""The figures `nocpipe evaluate` reports, as pure functions of replies and log-probabilities.

bits_per_char   −log2 p of every reply character plus one end token, averaged over those
                tokens (the inputs are natural-log probabilities, one array per reply)
char_accuracy   share of those tokens the model ranks first (teacher-forced: the true
                reply so far is the model's history)
chrf            sacrebleu's corpus-level chrF (0-100) of replies against references
distinct_n      distinct character n-grams over all replies ÷ all character n-grams
generic_rate    share of replies that are one of the `top` most frequent replies
mean_length     mean reply length in characters
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

GENERIC_TOP = 10
#: The keys of `nocpipe evaluate --json`, in the order they are printed.
FIGURES = (
    "bits_per_char",
    "ngram_bits_per_char",
    "char_accuracy",
    "select_at_1",
    "tfidf_select_at_1",
    "chrf",
    "distinct_1",
    "distinct_2",
    "generic_rate",
    "mean_length",
    "n",
)


def bits_per_char(log_probs: Sequence[np.ndarray]) -> float:
    """−log2 p averaged over every token of every sequence; NaN when there are none."""
    total = sum(float(np.sum(lp)) for lp in log_probs)
    n = sum(len(lp) for lp in log_probs)
    return -total / n / math.log(2) if n else float("nan")


def char_accuracy(correct: Sequence[np.ndarray]) -> float:
    """Share of tokens ranked first, from one boolean array per reply; NaN when there are none."""
    n = sum(len(c) for c in correct)
    return sum(int(np.count_nonzero(c)) for c in correct) / n if n else float("nan")


def chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """sacrebleu's corpus-level chrF (character 6-grams, β = 2), 0-100."""
    from sacrebleu.metrics import CHRF

    if not len(hypotheses):
        return float("nan")
    return float(CHRF().corpus_score(list(hypotheses), [list(references)]).score)


def distinct_n(replies: Sequence[str], n: int) -> float:
    """Distinct character n-grams over all replies ÷ all character n-grams (0 when none)."""
    grams: Counter = Counter()
    for r in replies:
        grams.update(r[i : i + n] for i in range(len(r) - n + 1))
    total = sum(grams.values())
    return len(grams) / total if total else 0.0


def generic_rate(replies: Sequence[str], top: int = GENERIC_TOP) -> float:
    """Share of replies that are one of the `top` most frequent replies (ties by first seen)."""
    if not len(replies):
        return float("nan")
    common = Counter(replies).most_common(top)
    return sum(c for _, c in common) / len(replies)


def mean_length(replies: Sequence[str]) -> float:
    return float(np.mean([len(r) for r in replies])) if len(replies) else float("nan")


def reply_figures(replies: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """The figures of generated replies: chrf, distinct_1/2, generic_rate, mean_length."""
    return {
        "chrf": chrf(replies, references),
        "distinct_1": distinct_n(replies, 1),
        "distinct_2": distinct_n(replies, 2),
        "generic_rate": generic_rate(replies),
        "mean_length": mean_length(replies),
    }
