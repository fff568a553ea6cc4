"""Katakana text -> the ids of its character 1-, 2- and 3-grams: what both towers of the encoder read.

    text ──Vocab──> character ids c1..cn (0 padding, 1 unknown)
         ──with ^ before and $ after──> ^c1..cn$
    unigrams   c1..cn                         ids [0, A)          A = len(vocab) + 2 (^ and $)
    bigrams    ^c1, c1c2, …, cn$              ids A + a·A + b     exact: A² of them
    trigrams   ^c1c2, …, cn-1cn$              ids A + A² + hash mod T

One row per text, `3·max_len + 1` ids, 0 (the padding character's unigram, never a real gram)
where the text is shorter. Bigrams are exact because the alphabet is small (about 130
characters: 17k pairs); trigrams are hashed into `trigram_buckets` rows, so the table does not
grow with the corpus. The start and end markers make "ends in ？" and "starts with ハイ" grams
of their own, which is most of what a question or an answer looks like.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..vocab import Vocab

#: Default rows for hashed trigrams.
TRIGRAM_BUCKETS = 1 << 16
_MIX = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class NgramSpace:
    alphabet: int  # vocabulary size + start and end markers
    trigram_buckets: int
    max_len: int

    @classmethod
    def for_vocab(cls, vocab: Vocab, trigram_buckets: int = TRIGRAM_BUCKETS) -> "NgramSpace":
        return cls(len(vocab) + 2, trigram_buckets, vocab.max_len)

    @property
    def size(self) -> int:
        """Rows of the embedding table."""
        return self.alphabet + self.alphabet**2 + self.trigram_buckets

    @property
    def width(self) -> int:
        """Ids per text."""
        return 3 * self.max_len + 1

    def ids(self, chars: np.ndarray) -> np.ndarray:
        """(n, max_len) character ids, 0-padded at the end -> (n, width) n-gram ids, int32."""
        chars = np.asarray(chars, dtype=np.int64)
        n, length = chars.shape
        a = self.alphabet
        lengths = (chars != 0).sum(axis=1)
        seq = np.zeros((n, length + 2), dtype=np.int64)
        seq[:, 0] = a - 2
        seq[:, 1 : length + 1] = chars
        seq[np.arange(n), lengths + 1] = a - 1
        pos = np.arange(length + 2)[None, :]
        valid = pos <= (lengths + 1)[:, None]  # ^, the characters, $
        uni = chars  # padding is id 0 already
        bi_ok = valid[:, 1:]
        bi = np.where(bi_ok, a + seq[:, :-1] * a + seq[:, 1:], 0)
        tri_ok = valid[:, 2:]
        key = (seq[:, :-2] * a + seq[:, 1:-1]) * a + seq[:, 2:]
        h = (key.astype(np.uint64) * _MIX) >> np.uint64(40)
        tri = np.where(tri_ok, a + a * a + (h % np.uint64(self.trigram_buckets)).astype(np.int64), 0)
        return np.concatenate([uni, bi, tri], axis=1).astype(np.int32)

    def encode(self, vocab: Vocab, texts: list[str]) -> np.ndarray:
        """Katakana texts -> (len(texts), width) n-gram ids (each cut to max_len characters)."""
        if not texts:
            return np.zeros((0, self.width), dtype=np.int32)
        return self.ids(vocab.encode_batch(list(texts), reverse=False))


def document_frequencies(space: NgramSpace, ids: np.ndarray) -> np.ndarray:
    """How many rows hold each n-gram id at least once (id 0 never counts)."""
    df = np.zeros(space.size, dtype=np.int64)
    for start in range(0, len(ids), 8192):
        block = ids[start : start + 8192]
        rows = np.repeat(np.arange(len(block)), block.shape[1])
        flat = block.ravel().astype(np.int64)
        keep = flat != 0
        uniq = np.unique(rows[keep] * space.size + flat[keep])
        np.add.at(df, uniq % space.size, 1)
    return df


def idf_weights(df: np.ndarray, documents: int) -> np.ndarray:
    """Smoothed inverse document frequency, as scikit-learn's TfidfVectorizer: ln((1+N)/(1+df)) + 1;
    0 for the padding id."""
    w = np.log((1.0 + documents) / (1.0 + df)) + 1.0
    w[0] = 0.0
    return w.astype(np.float32)
