"""Streaming training batches from the pair shards: bounded memory, shuffled, resumable exactly.

    shards ──scan (split column only)──> units: (shard, row group, rows of the split to take)
    pass p of the data (an endless stream of passes):
      units in a seeded order (seed, p)                       # shuffles across shards
      -> consecutive units grouped into windows of >= window_rows rows
      -> a window is read (by row group), encoded to int ids, rows permuted (seed, p, w)
    batch i = rows [i*B, (i+1)*B) of that endless stream     # a batch may span two windows/passes

Everything random is a pure function of (seed, pass, window), so the data position of
a run is one number, the index of the next batch: `batch(i)` gives the same rows in
any process, in any order of calls, on any backend. Memory holds at most two windows
(about window_rows or one row group of pairs, whichever is larger) and the index of
units, whatever the size of the corpus. `--max-pairs N` keeps the first N pairs of the
split in shard order (the same N every pass).

Keras reads it through `keras_batches()`, an endless `keras.utils.PyDataset` (works
on the TensorFlow, JAX and PyTorch backends); `fit(steps_per_epoch=...)` cuts epochs.
"""

from __future__ import annotations

import bisect
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .corpus import find_shards, open_checked, read_row_group_checked, split_values
from .errors import StoreError
from .vocab import Vocab

TEXT_COLUMNS = ["utterance_kana", "reply_kana"]
DEFAULT_WINDOW_ROWS = 16_384


def _of_split(column: pa.ChunkedArray, split: str) -> pa.ChunkedArray:
    """Which rows belong to `split`, whichever of its names (`validation`, `valid`) they carry."""
    return pc.is_in(column, value_set=pa.array(split_values(split)))


@dataclass(frozen=True)
class Unit:
    """The first `take` rows of split `split` in one row group of one shard."""

    path: str
    row_group: int
    take: int


def scan_units(folder: Path, split: str, max_pairs: int = 0) -> list[Unit]:
    """Units of `split` in shard order, capped at `max_pairs` rows in all (0 = no cap).

    `folder` is a corpus root (extract-pairs' --out-dir), a folder of Parquet files or one
    Parquet file with the pair columns. Reads only the `split` column, one row group at a time.
    """
    shards = find_shards(folder)
    units: list[Unit] = []
    total = 0
    for path in shards:
        pf = open_checked(path, ["split"])
        for rg in range(pf.num_row_groups):
            col = read_row_group_checked(pf, path, rg, ["split"]).column(0)
            n = int(pc.sum(_of_split(col, split)).as_py() or 0)
            if max_pairs:
                n = min(n, max_pairs - total)
            if n > 0:
                units.append(Unit(str(path), rg, n))
                total += n
            if max_pairs and total >= max_pairs:
                return units
    return units


def _unit_table(unit: Unit, split: str) -> pa.Table:
    """The text columns of one unit's rows, read through the corpus module's door."""
    columns = TEXT_COLUMNS + ["split"]
    table = read_row_group_checked(open_checked(unit.path, columns), unit.path, unit.row_group, columns)
    return table.filter(_of_split(table.column("split"), split)).slice(0, unit.take)


def count_too_long(units: list[Unit], split: str, max_len: int) -> tuple[int, int]:
    """(sides longer than max_len, sides) among `units`: what a model of that length cuts."""
    cut = total = 0
    for unit in units:
        table = _unit_table(unit, split)
        for name in TEXT_COLUMNS:
            cut += int(pc.sum(pc.greater(pc.utf8_length(table.column(name)), max_len)).as_py() or 0)
            total += table.num_rows
    return cut, total


def read_unit(unit: Unit, split: str) -> tuple[list[str], list[str]]:
    """(utterances, replies) of one unit: its split's first `take` rows, in file order."""
    table = _unit_table(unit, split)
    return table.column("utterance_kana").to_pylist(), table.column("reply_kana").to_pylist()


def fingerprint(units: list[Unit]) -> str:
    """Names, sizes and modification times of the shards behind `units` (to warn when data changed)."""
    h = hashlib.sha256()
    for u in units:
        st = Path(u.path).stat()
        h.update(f"{Path(u.path).name}:{st.st_size}:{int(st.st_mtime)}:{u.row_group}:{u.take}\n".encode())
    return h.hexdigest()[:16]


def load_arrays(units: list[Unit], split: str, vocab: Vocab, limit: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Encoded (x, y) of the first `limit` rows of `units` (0 = all): for validation and small sets."""
    xs, ys, n = [], [], 0
    for unit in units:
        utt, rep = read_unit(unit, split)
        if limit:
            utt, rep = utt[: limit - n], rep[: limit - n]
        xs.append(vocab.encode_utterances(utt))
        ys.append(vocab.encode_replies(rep))
        n += len(utt)
        if limit and n >= limit:
            break
    if not xs:
        z = np.zeros((0, vocab.max_len), dtype=np.int32)
        return z, z.copy()
    return np.concatenate(xs), np.concatenate(ys)


class PairStream:
    """The endless, seeded stream of encoded training pairs; `batch(i)` is random access."""

    def __init__(
        self,
        units: list[Unit],
        vocab: Vocab,
        batch_size: int,
        seed: int = 0,
        split: str = "train",
        window_rows: int = DEFAULT_WINDOW_ROWS,
    ):
        if not units:
            raise StoreError(f"no {split} pairs to train on")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.units = list(units)
        self.vocab = vocab
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.split = split
        self.window_rows = max(1, int(window_rows))
        self.n_rows = sum(u.take for u in self.units)
        self._store_dtype = np.uint8 if len(vocab) <= 256 else np.uint16 if len(vocab) <= 65536 else np.int32
        self._plans: OrderedDict[int, tuple[list[list[int]], list[int]]] = OrderedDict()
        self._windows: OrderedDict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()
        self.windows_read = 0

    # ------------------------------------------------------------ plan of one pass

    def _plan(self, p: int) -> tuple[list[list[int]], list[int]]:
        """Windows of pass p (lists of unit indices) and their first row offsets in the pass."""
        if p in self._plans:
            return self._plans[p]
        order = np.random.default_rng([self.seed, p, 0]).permutation(len(self.units))
        windows: list[list[int]] = []
        starts: list[int] = []
        current: list[int] = []
        rows = offset = 0
        for i in order:
            if not current:
                starts.append(offset)
            current.append(int(i))
            rows += self.units[i].take
            offset += self.units[i].take
            if rows >= self.window_rows:
                windows.append(current)
                current, rows = [], 0
        if current:
            windows.append(current)
        self._plans[p] = (windows, starts)
        while len(self._plans) > 2:
            self._plans.popitem(last=False)
        return self._plans[p]

    def _window(self, p: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        key = (p, w)
        if key in self._windows:
            self._windows.move_to_end(key)
            return self._windows[key]
        windows, _ = self._plan(p)
        utt: list[str] = []
        rep: list[str] = []
        for i in windows[w]:
            u, r = read_unit(self.units[i], self.split)
            utt += u
            rep += r
        x = self.vocab.encode_utterances(utt).astype(self._store_dtype)
        y = self.vocab.encode_replies(rep).astype(self._store_dtype)
        perm = np.random.default_rng([self.seed, p, w + 1]).permutation(len(x))
        self._windows[key] = (x[perm], y[perm])
        self.windows_read += 1
        while len(self._windows) > 2:
            self._windows.popitem(last=False)
        return self._windows[key]

    # ------------------------------------------------------------ access

    def rows(self, start: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows [start, start+count) of the endless stream, as int32 (x, y)."""
        xs, ys = [], []
        pos, left = int(start), int(count)
        while left > 0:
            p, off = divmod(pos, self.n_rows)
            windows, starts = self._plan(p)
            w = bisect.bisect_right(starts, off) - 1
            x, y = self._window(p, w)
            i = off - starts[w]
            n = min(left, len(x) - i)
            xs.append(x[i : i + n])
            ys.append(y[i : i + n])
            pos += n
            left -= n
        x = xs[0] if len(xs) == 1 else np.concatenate(xs)
        y = ys[0] if len(ys) == 1 else np.concatenate(ys)
        return x.astype(np.int32), y.astype(np.int32)

    def batch(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch number `index` (0-based, counted from the start of training)."""
        with self._lock:
            return self.rows(index * self.batch_size, self.batch_size)

    def iter_batches(self, start: int = 0, count: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        i = start
        while count is None or i < start + count:
            yield self.batch(i)
            i += 1

    def steps_per_pass(self) -> int:
        return -(-self.n_rows // self.batch_size)


def end_weights(y: np.ndarray) -> np.ndarray:
    """Per-character loss weights: every reply character and the first padding (the end
    of the reply) count 1, the padding after it 0. Without this, padding is most of the
    targets of short replies and an early model learns to answer with padding."""
    w = (y != 0).astype(np.float32)
    lengths = w.sum(axis=1).astype(np.int64)
    rows = np.nonzero(lengths < y.shape[1])[0]
    w[rows, lengths[rows]] = 1.0
    return w


ITF_CAP = 5.0


def itf_weights(vocab, size: int, lam: float, ends: int) -> np.ndarray:
    """Per-id loss weights 1 / frequency**lam (inverse token frequency: Nakamura et al. 2018,
    "Another Diversity-Promoting Objective Function for Neural Dialogue Generation"), scaled so
    that the average weight of a character of the training text is 1. Generic replies are made
    of the most frequent characters; weighing them less moves the model's most likely reply,
    which greedy decoding returns, towards the informative ones. `ends`: how many end tokens
    the counted text holds (one per side); the unknown id counts as the characters outside
    the vocabulary; ids without a count (padding after the end, the start token) weigh 1.
    No weight exceeds ITF_CAP times the average before the final scaling."""
    freq = np.zeros(len(vocab.tokens), dtype=np.float64)
    freq[0] = max(1, ends)
    known = set(vocab.tokens[2:])
    freq[1] = max(1, sum(n for c, n in vocab.counts.items() if c not in known))
    for i, c in enumerate(vocab.tokens[2:], start=2):
        freq[i] = max(1, vocab.counts.get(c, 1))
    p = freq / freq.sum()
    w = freq ** -float(lam)
    w /= float((p * w).sum())
    # A character seen a handful of times would otherwise weigh hundreds of steps' worth, and
    # "unknown" is no information at all: rare ones are capped, unknown weighs as usual.
    w = np.minimum(w, ITF_CAP)
    w[1] = 1.0
    w /= float((p * w).sum())
    out = np.ones(size, dtype=np.float32)
    out[: len(w)] = w
    return out


def teacher_forcing(x: np.ndarray, y: np.ndarray, start_id: int) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """An autoregressive model's inputs and targets: the reply cut to max_len - 1 characters (so its
    end, id 0, always has a position), and the decoder's input, the start token then the reply
    shifted right by one: ((utterance, [start, r1, ..., r(T-1)]), [r1, ..., rn, end, 0, ...])."""
    y = np.array(y, dtype=np.int32, copy=True)
    y[:, -1] = 0
    shifted = np.empty_like(y)
    shifted[:, 0] = start_id
    shifted[:, 1:] = y[:, :-1]
    return (x, shifted), y


def keras_batches(
    stream: PairStream,
    start: int = 0,
    weighted: bool = False,
    start_id: int | None = None,
    token_weights: np.ndarray | None = None,
):
    """An endless keras.utils.PyDataset whose item i is stream.batch(start + i),
    with end_weights() as sample weights when `weighted`; with `start_id`, batches are
    teacher_forcing() pairs for an autoregressive model (always weighted), each target
    also weighted by `token_weights[id]` when given (itf_weights)."""
    import keras

    class StreamBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=1, use_multiprocessing=False)
            self.stream = stream
            self.start = start

        @property
        def num_batches(self):
            return None  # endless: fit(steps_per_epoch=...) decides where an epoch ends

        def __getitem__(self, index):
            x, y = stream.batch(self.start + index)
            if start_id is not None:
                inputs, y = teacher_forcing(x, y, start_id)
                w = end_weights(y)
                return inputs, y, (w if token_weights is None else w * token_weights[y])
            return (x, y, end_weights(y)) if weighted else (x, y)

    return StreamBatches()
