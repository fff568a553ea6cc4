"""Near-duplicates: pairs that differ only in punctuation, and works that are near-copies.

Pairs: two pairs are near-duplicates when both katakana sides are equal once punctuation
(、。！？…・～「」『』) and long-vowel marks (ー) are removed; `near_key` is that
comparison as a 16-byte key, a set lookup like exact dedup.

Works: one MinHash signature per work over character shingles of its katakana dialogue
(normalised as above); `group_works` links works whose estimated Jaccard similarity
reaches the threshold (LSH finds the candidates, the signatures confirm them) and
returns connected groups. Thresholds live in pipeline.config (NearDupConfig), with the
figures that chose them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

from .config import NearDupConfig

_DROP = "、。！？…・～「」『』ー"
_TABLE = str.maketrans("", "", _DROP)


def normalise(kana: str) -> str:
    return kana.translate(_TABLE)


def exact_key(u: str, r: str) -> bytes:
    # 16 bytes per pair instead of two strings: the seen-set stays small for big corpora.
    return hashlib.blake2b(f"{u}\t{r}".encode(), digest_size=16).digest()


def near_key(u: str, r: str) -> bytes:
    return exact_key(normalise(u), normalise(r))


def shingles(sides: Iterable[str], k: int) -> set[bytes]:
    """Character k-grams of each normalised side (a side shorter than k is one shingle)."""
    out: set[bytes] = set()
    for side in sides:
        s = normalise(side)
        if not s:
            continue
        if len(s) <= k:
            out.add(s.encode())
        else:
            out.update(s[i:i + k].encode() for i in range(len(s) - k + 1))
    return out


def _identity(x: int) -> int:
    return x


def _minhash(cfg: NearDupConfig, hashvalues: np.ndarray | None = None):
    from datasketch import MinHash

    # Shingles arrive hashed (shingle_hashes, vectorised): datasketch's own per-item SHA-1
    # made signatures a tenth of extract-pairs' time.
    try:  # datasketch 2 names its hashing scheme; values are only comparable within one
        return MinHash(num_perm=cfg.num_perm, seed=cfg.seed, hashvalues=hashvalues, hashfunc=_identity,
                       scheme="affine32")
    except TypeError:  # datasketch 1.x: one scheme only
        return MinHash(num_perm=cfg.num_perm, seed=cfg.seed, hashvalues=hashvalues, hashfunc=_identity)


def shingle_hashes(sides: Iterable[str], k: int) -> np.ndarray:
    """The distinct 32-bit hashes of `shingles(sides, k)`, computed with numpy."""
    from numpy.lib.stride_tricks import sliding_window_view

    norm = [t for t in map(normalise, sides) if t]
    if not norm:
        return np.zeros(0, dtype=np.uint64)
    powers = (np.uint64(1_000_003) ** np.arange(k, dtype=np.uint64)).astype(np.uint64)
    # Sides joined by NUL; windows holding a NUL cross two sides and are left out.
    codes = np.frombuffer("\0".join(norm).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    parts = []
    if len(codes) >= k:
        win = sliding_window_view(codes, k)
        win = win[~(win == 0).any(axis=1)]
        parts.append((win * powers).sum(axis=1, dtype=np.uint64))
    short = [t for t in norm if len(t) < k]
    if short:
        pad = np.zeros((len(short), k), dtype=np.uint64)
        for i, t in enumerate(short):
            pad[i, :len(t)] = np.frombuffer(t.encode("utf-32-le"), dtype=np.uint32)
        parts.append((pad * powers).sum(axis=1, dtype=np.uint64) ^ np.uint64(0x9E3779B97F4A7C15))
    h = np.concatenate(parts)
    h ^= h >> np.uint64(33)                      # murmur3's finaliser: spread the bits
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    return np.unique(h >> np.uint64(32))


def preload() -> None:
    """Import datasketch now (about a second, mostly its asyncio parts): once in the parent
    before worker processes fork, rather than once in each."""
    import datasketch  # noqa: F401


def engine_version() -> str:
    """Signatures are comparable only when made by the same datasketch (part of the cache key)."""
    from importlib.metadata import version

    return version("datasketch")


def signature(sides: Iterable[str], cfg: NearDupConfig = NearDupConfig()) -> np.ndarray | None:
    """The MinHash hash values (uint64) of a work's dialogue sides; None when the work has
    too few shingles to compare (a handful of lines says nothing about being a copy)."""
    sh = shingle_hashes(sides, cfg.shingle)
    if len(sh) < cfg.min_shingles:
        return None
    m = _minhash(cfg)
    m.update_batch(sh.tolist())
    return m.hashvalues.astype(np.uint64)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of two signatures."""
    return float(np.count_nonzero(a == b)) / len(a)


def group_works(signatures: dict[str, np.ndarray | None], cfg: NearDupConfig = NearDupConfig()
                ) -> list[list[str]]:
    """Groups (of two or more) of near-copy works, each sorted, sorted by first member.
    Deterministic: depends on the signatures only, not on the order they are given in."""
    from datasketch import MinHashLSH

    keys = sorted(k for k, s in signatures.items() if s is not None)
    if len(keys) < 2:
        return []
    lsh = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm)
    for k in keys:
        lsh.insert(k, _minhash(cfg, signatures[k]))
    parent = {k: k for k in keys}

    def find(k: str) -> str:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for k in keys:
        for other in lsh.query(_minhash(cfg, signatures[k])):
            if other != k and similarity(signatures[k], signatures[other]) >= cfg.threshold:
                a, b = find(k), find(other)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    groups: dict[str, list[str]] = {}
    for k in keys:
        groups.setdefault(find(k), []).append(k)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)
