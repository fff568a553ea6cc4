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

import functools
import hashlib
from collections.abc import Iterable

import numpy as np

from .config import NearDupConfig

_DROP = "、。！？…・～「」『』ー"
_TABLE = str.maketrans("", "", _DROP)


def normalise(kana: str) -> str:
    return kana.translate(_TABLE)


#: A pair key's size: 16 bytes per pair instead of two strings keeps the seen-sets small.
KEY_BYTES = 16


def exact_key(u: str, r: str) -> bytes:
    return hashlib.blake2b(f"{u}\t{r}".encode(), digest_size=KEY_BYTES).digest()


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
            out.update(s[i : i + k].encode() for i in range(len(s) - k + 1))
    return out


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
            pad[i, : len(t)] = np.frombuffer(t.encode("utf-32-le"), dtype=np.uint32)
        parts.append((pad * powers).sum(axis=1, dtype=np.uint64) ^ np.uint64(0x9E3779B97F4A7C15))
    h = np.concatenate(parts)
    h ^= h >> np.uint64(33)  # murmur3's finaliser: spread the bits
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    return np.unique(h >> np.uint64(32))


MINHASH_ENGINE = "nocpipe-affine32-1"


@functools.lru_cache(maxsize=8)
def _permutations(cfg: NearDupConfig) -> tuple[np.ndarray, np.ndarray]:
    """num_perm affine maps h -> (a*h + b) mod 2**32, a odd (so each is a permutation of the
    32-bit values), drawn from cfg.seed: the same maps in every process and on every run."""
    rng = np.random.default_rng(cfg.seed)
    a = rng.integers(0, 2**32, size=cfg.num_perm, dtype=np.uint64).astype(np.uint32) | np.uint32(1)
    b = rng.integers(0, 2**32, size=cfg.num_perm, dtype=np.uint64).astype(np.uint32)
    return a, b


def signature(sides: Iterable[str], cfg: NearDupConfig = NearDupConfig()) -> np.ndarray | None:
    """The MinHash values (uint64 holding 32 bits) of a work's dialogue sides; None when the
    work has too few shingles to compare (a handful of lines says nothing about being a copy)."""
    sh = shingle_hashes(sides, cfg.shingle).astype(np.uint32)
    if len(sh) < cfg.min_shingles:
        return None
    a, b = _permutations(cfg)
    out = np.full(cfg.num_perm, 0xFFFFFFFF, dtype=np.uint32)
    # uint32 arithmetic wraps mod 2**32 by itself. Permutations by rows, shingles along each
    # row, so that the minimum runs over contiguous memory (ten times faster than down the
    # columns); blocks of shingles keep the product small for long works.
    for i in range(0, len(sh), 8192):
        t = np.multiply.outer(a, sh[i : i + 8192])
        t += b[:, None]
        np.minimum(out, t.min(axis=1), out=out)
    return out.astype(np.uint64)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of two signatures."""
    return float(np.count_nonzero(a == b)) / len(a)


@functools.lru_cache(maxsize=16)
def band_params(threshold: float, num_perm: int, fp_weight: float = 0.1) -> tuple[int, int]:
    """(bands, rows) for LSH at this threshold: the banding whose S-curve 1-(1-s**r)**b misses
    the fewest pairs above the threshold and lets through the fewest below it (areas under
    the curve, weighted), as in Leskovec et al., Mining of Massive Datasets, ch. 3. A false
    candidate costs one comparison of signatures, a missed one a lost group: misses weigh
    nine times more. At 0.5 and 128 permutations: 32 bands of 4 rows, which make candidates
    of 87 % of the pairs at similarity 0.5, 99 % at 0.6 and 0.3 % at 0.1."""
    # Midpoint sums over 200 steps: the areas to three decimals, enough to rank bandings.
    below = (np.arange(200) + 0.5) / 200 * threshold
    above = threshold + (np.arange(200) + 0.5) / 200 * (1 - threshold)
    # Every banding at once (b bands of r rows, b * r <= num_perm), in order of b then r: the
    # first of equal errors wins, as in a loop over b and r.
    b, r = np.array([(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)]).T
    b, r = b[:, None].astype(float), r[:, None].astype(float)
    fp = (1 - (1 - below**r) ** b).mean(axis=1) * threshold
    fn = ((1 - above**r) ** b).mean(axis=1) * (1 - threshold)
    i = int(np.argmin(fp_weight * fp + (1 - fp_weight) * fn))
    return int(b[i, 0]), int(r[i, 0])


def group_works(signatures: dict[str, np.ndarray | None], cfg: NearDupConfig = NearDupConfig()) -> list[list[str]]:
    """Groups (of two or more) of near-copy works, each sorted, sorted by first member.
    Deterministic: depends on the signatures only, not on the order they are given in.

    Banded LSH finds the candidates (works that agree on every row of some band) and the
    whole signatures confirm them, so no pair of works is compared unless it might match."""
    present = {k: s for k, s in signatures.items() if s is not None}  # works too short to sign are never grouped
    keys = sorted(present)
    if len(keys) < 2:
        return []
    bands, rows = band_params(cfg.threshold, cfg.num_perm)
    buckets: dict[tuple[int, bytes], list[str]] = {}
    for k in keys:
        sig = np.asarray(present[k], dtype=np.uint64)
        for j in range(bands):
            buckets.setdefault((j, sig[j * rows : (j + 1) * rows].tobytes()), []).append(k)
    parent = {k: k for k in keys}

    def find(k: str) -> str:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    checked: set[tuple[str, str]] = set()
    for members in buckets.values():
        for i, k in enumerate(members):
            for other in members[i + 1 :]:
                if (k, other) in checked:
                    continue
                checked.add((k, other))
                if similarity(present[k], present[other]) >= cfg.threshold:
                    a, b = find(k), find(other)
                    if a != b:
                        parent[max(a, b)] = min(a, b)
    groups: dict[str, list[str]] = {}
    for k in keys:
        groups.setdefault(find(k), []).append(k)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


def engine_version() -> str:
    """Signatures are comparable only when made by the same hashing (part of the cache key)."""
    return MINHASH_ENGINE
