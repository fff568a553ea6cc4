"""select@1: can a model tell the fitting reply from replies of other pairs?

    for N pairs of a split (default 1,000, drawn with a fixed seed):
        candidates = the pair's own reply + 9 replies of other pairs of the split, none equal to it
                     in katakana, in shuffled positions
        hit when the model's score of the true reply is higher than every other candidate's
        (a tie is a miss: a model that scores everything alike gets 0, not chance)
    select@1 = hits / N

The draws depend only on the split's replies and the seed, so every model, and the TF-IDF
baseline beside it, is judged on the same candidates. The baseline is the cosine of character
1-3-gram TF-IDF vectors of the utterance and the reply (katakana; IDF from the train split),
scikit-learn's TfidfVectorizer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

#: Pairs drawn by default, and distractors per pair.
DEFAULT_DRAWS = 1000
#: The most draws one run may ask for: each costs a scoring of 10 candidates.
MAX_DRAWS = 100_000
DISTRACTORS = 9
DRAW_SEED = 0


@dataclass(frozen=True)
class Draw:
    pair: int  # index of the pair whose utterance is asked
    candidates: tuple[int, ...]  # indices of pairs whose replies are the candidates, in shown order
    truth: int  # position of the pair's own reply among the candidates


def draw(replies: Sequence[str], n: int = DEFAULT_DRAWS, seed: int = DRAW_SEED) -> list[Draw]:
    """`n` draws (fewer when the split is smaller) over pairs whose reply has a distinct other."""
    total = len(replies)
    rng = np.random.default_rng(seed)
    order = rng.permutation(total)
    out: list[Draw] = []
    for i in order:
        if len(out) >= n:
            break
        others: list[int] = []
        seen = {replies[i]}
        for _ in range(4):  # random probes; a split of few distinct replies may run out
            for j in rng.integers(0, total, size=4 * DISTRACTORS):
                if replies[j] not in seen:
                    seen.add(replies[j])
                    others.append(int(j))
                    if len(others) == DISTRACTORS:
                        break
            if len(others) == DISTRACTORS:
                break
        if len(others) < DISTRACTORS:
            continue
        cands = [int(i), *others]
        perm = rng.permutation(len(cands))
        shown = tuple(cands[p] for p in perm)
        out.append(Draw(int(i), shown, int(np.flatnonzero(perm == 0)[0])))
    return out


def select_at_1(
    draws: Sequence[Draw],
    utterances: Sequence[str],
    replies: Sequence[str],
    score: Callable[[str, list[str]], np.ndarray],
) -> float:
    """Share of draws where `score(utterance, candidates)` puts the true reply strictly first."""
    if not draws:
        return float("nan")
    hits = 0
    for d in draws:
        s = np.asarray(score(utterances[d.pair], [replies[c] for c in d.candidates]), dtype=np.float64)
        true = s[d.truth]
        hits += bool(np.isfinite(true) and (np.delete(s, d.truth) < true).all())
    return hits / len(draws)


class TfidfBaseline:
    """Cosine of character 1-3-gram TF-IDF vectors (IDF from the train split's utterances and replies)."""

    def __init__(self, train_texts: Sequence[str]):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self._vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), lowercase=False).fit(list(train_texts))

    def score(self, utterance: str, candidates: list[str]) -> np.ndarray:
        u = self._vec.transform([utterance])
        c = self._vec.transform(candidates)
        return np.asarray((c @ u.T).toarray()).ravel()
