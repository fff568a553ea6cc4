"""Exact TF-IDF cosine over the encoder's own n-gram ids: the lexical score beside the encoder's.

The IDF weights are the ones the encoder's pooling starts from (kept in the model), so the
lexical score needs nothing but the model folder: no fitted vectoriser to store. Trigrams are
hashed as the encoder hashes them; a collision merges two rare trigrams, which a cosine barely
notices.
"""

from __future__ import annotations

import numpy as np


def tfidf_rows(ids: np.ndarray, idf: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per row: (distinct gram ids, L2-normalised tf·idf values)."""
    out = []
    for row in ids:
        grams, counts = np.unique(row[row != 0], return_counts=True)
        values = counts * idf[grams].astype(np.float64)
        norm = np.sqrt((values**2).sum())
        out.append((grams, values / norm if norm > 0 else values))
    return out


def cosine(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    common, ia, ib = np.intersect1d(a[0], b[0], assume_unique=True, return_indices=True)
    return float((a[1][ia] * b[1][ib]).sum()) if len(common) else 0.0


def cosines(query: tuple[np.ndarray, np.ndarray], rows: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    return np.array([cosine(query, r) for r in rows], dtype=np.float64)
