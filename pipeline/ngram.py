"""A character n-gram language model of replies: the yardstick a chatbot must beat.

It ignores the utterance, so a chatbot whose bits/char is no better than this model's
has only learned what replies look like. It also scores candidate replies for
`predict --mmi` (the anti-language-model rerank).

    symbols    the model's own vocabulary ids: 0 = end of reply (the padding id), 1 = unknown,
               2… characters; a reply is cut to max_len − 1 characters, then the end token
               follows, exactly the tokens the chatbot's bits/char counts
    history    order − 1 begin markers (id V, never predicted) pad the left, so every
               token has a full history
    smoothing  interpolated Kneser-Ney with three discounts per order (Chen & Goodman's
               modified KN): raw counts at the top order, continuation counts (distinct
               left neighbours) below, a uniform distribution over the V symbols at the bottom

    p_k(w | h) = max(c_k(h w) − D_k(c), 0) / c_k(h·)  +  γ_k(h) · p_{k−1}(w | h')
    γ_k(h)     = (D_k1·N1(h·) + D_k2·N2(h·) + D_k3+·N3+(h·)) / c_k(h·)
    p_k(w | h) = p_{k−1}(w | h')          when h was never seen at order k
    p_0(w)     = 1 / V

n-grams are integer keys in base V + 1 (sorted numpy arrays, looked up with
searchsorted), so fitting is a few `np.unique` calls over chunks of encoded replies
and scoring is vectorised over every token of a batch. Saved as one .npz
(`ngram.npz` in the model folder) so scoring needs no pass over the corpus.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import write_with
from .errors import ModelError, StoreError
from .vocab import PAD, Vocab

NGRAM_FORMAT = 1
DEFAULT_ORDER = 5
#: The N-best list an --mmi rerank draws from when decoding is greedy (a beam this wide).
MMI_NBEST = 8
_CHUNK_ROWS = 20_000


def reply_ids(vocab: Vocab, replies: Sequence[str]) -> list[np.ndarray]:
    """Token ids of each reply as every bits/char figure counts them: its characters cut to
    max_len − 1 (unknown ones as the unknown id), then the end token (id 0)."""
    n = max(1, vocab.max_len - 1)
    if not len(replies):
        return []
    enc = vocab.encode_batch(list(replies), max_len=n)
    lengths = [min(len(r), n) for r in replies]
    return [np.append(enc[i, :k], PAD).astype(np.int64) for i, k in enumerate(lengths)]


def _discounts(counts: np.ndarray) -> np.ndarray:
    """(D1, D2, D3+) from counts of counts; safe values when a small corpus lacks some."""
    n = [int(np.count_nonzero(counts == k)) for k in (1, 2, 3, 4)]
    if min(n) == 0:
        # Too few n-grams for the estimate: one absolute discount of 0.5 per count class.
        return np.array([0.5, 0.5, 0.5])
    y = n[0] / (n[0] + 2 * n[1])
    d = np.array([1 - 2 * y * n[1] / n[0], 2 - 3 * y * n[2] / n[1], 3 - 4 * y * n[3] / n[2]])
    # D_c must stay in (0, c] for the distributions to stay proper and to keep every n-gram.
    return np.clip(d, 1e-3, [1.0, 2.0, 3.0])


@dataclass
class _Order:
    """Everything order k needs: its n-grams with counts, and its contexts' totals."""

    keys: np.ndarray  # int64, sorted: k-gram keys
    counts: np.ndarray  # float64: raw (top order) or continuation counts
    ctx_keys: np.ndarray  # int64, sorted: (k−1)-gram context keys
    ctx_total: np.ndarray  # float64: sum of counts after the context
    ctx_gamma: np.ndarray  # float64: back-off weight γ of the context
    discount: np.ndarray  # (3,) float64


def _build_order(keys: np.ndarray, counts: np.ndarray, base: int) -> _Order:
    d = _discounts(counts)
    ctx = keys // base
    ctx_keys, inv = np.unique(ctx, return_inverse=True)
    total = np.bincount(inv, weights=counts, minlength=len(ctx_keys))
    cls = np.minimum(counts, 3).astype(np.int64) - 1
    mass = np.bincount(inv, weights=d[cls], minlength=len(ctx_keys))
    return _Order(keys, counts.astype(np.float64), ctx_keys, total, mass / total, d)


class NgramLM:
    """An interpolated Kneser-Ney character model over a chatbot's vocabulary."""

    def __init__(self, tokens: list[str], max_len: int, order: int, orders: list[_Order], pairs: int = 0):
        self.tokens = list(tokens)
        self.max_len = int(max_len)
        self.order = int(order)
        self.orders = orders  # orders[k - 1] is order k
        self.pairs = int(pairs)
        self.source: dict = {}  # what it was fitted on (fingerprint of the train shards), saved with it
        self.size = len(self.tokens)  # V: the symbols predicted (end, unknown, characters)
        self.base = self.size + 1  # the begin marker is id V
        self._vocab: Vocab | None = None

    # ------------------------------------------------------------ fitting

    @classmethod
    def fit(cls, vocab: Vocab, replies: Iterable[Sequence[str]], order: int = DEFAULT_ORDER) -> "NgramLM":
        """Fit on batches of reply texts (an iterable of lists, so a corpus can stream through)."""
        if order < 1:
            raise ModelError(f"n-gram order must be at least 1, not {order}")
        size = len(vocab)
        base = size + 1
        if order * math.log2(base) >= 62:
            raise ModelError(f"a {order}-gram model over {size} symbols does not fit 64-bit keys")
        parts_k, parts_c = [], []
        pairs = 0
        for batch in replies:
            batch = list(batch)
            for start in range(0, len(batch), _CHUNK_ROWS):
                chunk = batch[start : start + _CHUNK_ROWS]
                pairs += len(chunk)
                keys = cls._top_keys(vocab, chunk, order, base)
                chunk_k, chunk_c = np.unique(keys, return_counts=True)
                parts_k.append(chunk_k)
                parts_c.append(chunk_c)
        if not pairs:
            raise ModelError("no replies to fit the n-gram model on")
        keys, inv = np.unique(np.concatenate(parts_k), return_inverse=True)
        counts = np.bincount(inv, weights=np.concatenate(parts_c).astype(np.float64))
        orders = [_build_order(keys, counts, base)]
        for k in range(order - 1, 0, -1):
            # Continuation count of a k-gram: how many distinct symbols precede it.
            keys, counts = np.unique(keys % base**k, return_counts=True)
            orders.append(_build_order(keys, counts.astype(np.float64), base))
        orders.reverse()
        lm = cls(vocab.tokens, vocab.max_len, order, orders, pairs)
        lm._vocab = vocab
        return lm

    @staticmethod
    def _top_keys(vocab: Vocab, replies: Sequence[str], order: int, base: int) -> np.ndarray:
        """Keys of every order-gram ending at a reply token (characters and the end), vectorised:
        rows are [begin × (order−1), ids cut to max_len − 1, end], keys taken at every token."""
        n = max(1, vocab.max_len - 1)
        enc = vocab.encode_batch(list(replies), max_len=n).astype(np.int64)
        rows = np.concatenate(
            [
                np.full((len(enc), order - 1), base - 1, dtype=np.int64),
                enc,
                np.full((len(enc), 1), PAD, dtype=np.int64),
            ],
            axis=1,
        )
        keys = np.zeros((len(enc), n + 1), dtype=np.int64)
        for j in range(order):
            keys = keys * base + rows[:, j : j + n + 1]
        lengths = np.minimum(np.fromiter((len(r) for r in replies), dtype=np.int64, count=len(replies)), n)
        return keys[np.arange(n + 1)[None, :] <= lengths[:, None]]

    # ------------------------------------------------------------ scoring

    def prob(self, history: np.ndarray, word: np.ndarray) -> np.ndarray:
        """p(word | history) for rows of histories (n, order−1, begin-padded ids) and words (n,)."""
        history = np.asarray(history, dtype=np.int64).reshape(len(word), self.order - 1)
        word = np.asarray(word, dtype=np.int64)
        p = np.full(len(word), 1.0 / self.size)
        for k, o in enumerate(self.orders, start=1):
            ctx = np.zeros(len(word), dtype=np.int64)
            for j in range(self.order - k, self.order - 1):
                ctx = ctx * self.base + history[:, j]
            ci = np.searchsorted(o.ctx_keys, ctx).clip(0, max(len(o.ctx_keys) - 1, 0))
            seen = o.ctx_keys[ci] == ctx if len(o.ctx_keys) else np.zeros(len(word), bool)
            key = ctx * self.base + word
            ki = np.searchsorted(o.keys, key).clip(0, len(o.keys) - 1)
            c = np.where(o.keys[ki] == key, o.counts[ki], 0.0)
            d = np.where(c > 0, o.discount[np.clip(np.minimum(c, 3).astype(np.int64) - 1, 0, 2)], 0.0)
            total = np.where(seen, o.ctx_total[ci], 1.0)
            here = np.maximum(c - d, 0.0) / total + o.ctx_gamma[ci] * p
            p = np.where(seen, here, p)
        return p

    def token_log_probs(self, seqs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Natural-log probability of every token of each id sequence (begin markers implied)."""
        if not len(seqs):
            return []
        hist, words = [], []
        for s in seqs:
            padded = np.concatenate([np.full(self.order - 1, self.size, dtype=np.int64), np.asarray(s, np.int64)])
            idx = np.arange(len(s))[:, None] + np.arange(self.order - 1)[None, :]
            hist.append(padded[idx])
            words.append(np.asarray(s, np.int64))
        p = self.prob(np.concatenate(hist), np.concatenate(words))
        logp = np.log(p)
        return np.split(logp, np.cumsum([len(s) for s in seqs])[:-1])

    def log_probs(self, replies: Sequence[str]) -> list[np.ndarray]:
        """Natural-log probability of each reply's characters and its end token (reply_ids)."""
        return self.token_log_probs(reply_ids(self.vocab, replies))

    def score(self, replies: Sequence[str]) -> np.ndarray:
        """log p_LM(reply + end) of each reply (natural log)."""
        return np.array([float(lp.sum()) for lp in self.log_probs(replies)])

    @property
    def vocab(self) -> Vocab:
        if self._vocab is None:
            self._vocab = Vocab(self.tokens, max_len=self.max_len)
        return self._vocab

    def matches(self, vocab: Vocab) -> bool:
        return vocab.tokens == self.tokens and vocab.max_len == self.max_len

    # ------------------------------------------------------------ disk

    def save(self, path: Path) -> None:
        arrays: dict[str, Any] = {}  # ndarrays; Any so that ** does not look like savez's allow_pickle
        for k, o in enumerate(self.orders, start=1):
            arrays[f"keys{k}"] = o.keys
            arrays[f"counts{k}"] = o.counts.astype(np.float32 if o.counts.max(initial=0) < 2**24 else np.float64)
        meta = {
            "format": NGRAM_FORMAT,
            "order": self.order,
            "max_len": self.max_len,
            "pairs": self.pairs,
            "tokens": self.tokens,
            "source": self.source,
            "smoothing": "interpolated modified Kneser-Ney",
        }
        arrays["meta"] = np.frombuffer(json.dumps(meta, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **arrays)

        write_with(Path(path), write)

    @classmethod
    def load(cls, path: Path) -> "NgramLM":
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(bytes(data["meta"]).decode("utf-8"))
                if meta.get("format") != NGRAM_FORMAT:
                    raise ModelError(
                        f"{path} is an n-gram model of format {meta.get('format')!r}, "
                        f"not {NGRAM_FORMAT}: run `nocpipe evaluate` again to refit it"
                    )
                base = len(meta["tokens"]) + 1
                # Discounts and back-off weights follow from the counts: rebuilt, not stored.
                orders = [
                    _build_order(data[f"keys{k}"].astype(np.int64), data[f"counts{k}"].astype(np.float64), base)
                    for k in range(1, int(meta["order"]) + 1)
                ]
        except FileNotFoundError:
            raise ModelError(f"no n-gram model at {path}: `nocpipe evaluate` fits one") from None
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"cannot read the n-gram model {path}: {exc}") from None
        lm = cls(meta["tokens"], meta["max_len"], meta["order"], orders, meta.get("pairs", 0))
        lm.source = dict(meta.get("source") or {})
        return lm


def ngram_for_model(
    model_dir: Path,
    vocab: Vocab,
    data_dir: Path | None = None,
    order: int = DEFAULT_ORDER,
    log: Callable[[str], None] = lambda s: None,
) -> tuple[NgramLM, bool]:
    """The model folder's n-gram model and whether it was fitted now: loaded from ngram.npz when it
    matches the vocabulary and the train pairs (the model's --max-pairs of them) of `data_dir`
    (default: the corpus the model trained on), else fitted on their replies and saved."""
    from . import modeldir
    from .dataset import fingerprint, read_unit, scan_units

    cfg = modeldir.read_config(model_dir)
    if data_dir is None:
        saved = cfg.get("data", {}).get("data_dir")
        if not saved:
            raise StoreError(f"{model_dir} does not say which corpus it trained on: give --data-dir")
        data_dir = Path(saved)
    max_pairs = int(cfg.get("train", {}).get("max_pairs") or 0)
    units = scan_units(data_dir, "train", max_pairs)
    if not units:
        raise StoreError(f"no train pairs in {data_dir} to fit the reply n-gram model on")
    fp = fingerprint(units)
    path = modeldir.ModelDir(model_dir).ngram_path
    if path.exists():
        lm = NgramLM.load(path)
        if lm.matches(vocab) and lm.order == order and lm.source.get("fingerprint") == fp:
            return lm, False
    t = time.perf_counter()
    lm = NgramLM.fit(vocab, (read_unit(u, "train")[1] for u in units), order=order)
    lm.source = {"fingerprint": fp, "data_dir": str(data_dir), "max_pairs": max_pairs}
    lm.save(path)
    log(
        f"reply n-gram model (order {order}, interpolated Kneser-Ney) fitted on {lm.pairs:,} train replies "
        f"in {time.perf_counter() - t:.1f}s -> {path}"
    )
    return lm, True


def mmi_rerank(lm: NgramLM, weight: float):
    """A rerank for N-best lists: best first by log p(reply | utterance) − weight · log p_LM(reply)
    (Li et al. 2016's anti-language model). Each candidate needs `.text` and `.score` (the model's
    natural-log probability of the reply and its end); candidates come back unchanged, reordered."""

    def rerank(utterance: str, candidates: list) -> list:
        if not candidates:
            return []
        lm_scores = lm.score([c.text for c in candidates])
        order = sorted(range(len(candidates)), key=lambda i: -(candidates[i].score - weight * lm_scores[i]))
        return [candidates[i] for i in order]

    return rerank
