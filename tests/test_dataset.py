"""The streaming pair dataset: split scan, --max-pairs, seeded shuffle across shards,
random access by batch index (the resumable position), bounded memory."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.dataset import PairStream, count_too_long, keras_batches, load_arrays, read_unit, scan_units
from pipeline.errors import StoreError
from pipeline.shards import SCHEMA, shard_name, write_shard
from pipeline.vocab import Vocab

KANA = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲン"


def pair_rows(n: int, split: str, work: str, seed: int = 0, start: int = 0) -> list[dict]:
    """n synthetic pairs; the reply is the utterance shifted one kana along (learnable)."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n):
        length = int(rng.integers(2, 12))
        utt = "".join(KANA[int(j)] for j in rng.integers(0, len(KANA) - 1, length))
        rep = "".join(KANA[KANA.index(c) + 1] for c in utt) + "。"
        rows.append(
            {
                "source": "text",
                "work_id": work,
                "episode": 1,
                "line": start + k,
                "utterance": utt,
                "reply": rep,
                "utterance_kana": utt,
                "reply_kana": rep,
                "split": split,
            }
        )
    return rows


def write_pairs(
    folder: Path, n_train: int = 300, n_valid: int = 40, shards: int = 3, row_group_size: int | None = None
) -> Path:
    """`shards` shards of train pairs (plus valid pairs in the first one) and a stats.json."""
    folder.mkdir(parents=True, exist_ok=True)
    per = -(-n_train // shards)
    for s in range(shards):
        rows = pair_rows(min(per, n_train - s * per), "train", f"w{s}", seed=s, start=0)
        if s == 0:
            rows += pair_rows(n_valid, "valid", "wv", seed=99)
        if row_group_size:
            table = pa.Table.from_pylist(rows, schema=SCHEMA)
            pq.write_table(table, folder / shard_name(s), row_group_size=row_group_size)
        else:
            write_shard(folder / shard_name(s), rows)
    (folder / "stats.json").write_text('{"reader": "pykakasi", "reader_version": "test"}', encoding="utf-8")
    return folder


def all_train_pairs(folder: Path) -> list[tuple[str, str]]:
    t = pa.concat_tables([pq.read_table(p) for p in sorted(folder.glob("*.parquet"))])
    return [(r["utterance_kana"], r["reply_kana"]) for r in t.to_pylist() if r["split"] == "train"]


@pytest.fixture
def pairs(tmp_path) -> Path:
    return write_pairs(tmp_path / "pairs", n_train=300, n_valid=40, shards=3, row_group_size=37)


@pytest.fixture
def vocab(pairs) -> Vocab:
    units = scan_units(pairs, "train")
    c: Counter = Counter()
    for u in units:
        a, b = read_unit(u, "train")
        Vocab.count(a + b, c)
    return Vocab.build(c, 64, max_len=16, reverse_input=False)


def decode_rows(vocab: Vocab, x: np.ndarray, y: np.ndarray) -> list[tuple[str, str]]:
    return [(vocab.decode(a), vocab.decode(b)) for a, b in zip(x, y)]


def test_scan_counts_the_split_per_row_group_and_caps(pairs):
    units = scan_units(pairs, "train")
    assert sum(u.take for u in units) == 300
    assert len({u.path for u in units}) == 3 and max(u.row_group for u in units) > 0
    assert sum(u.take for u in scan_units(pairs, "valid")) == 40
    capped = scan_units(pairs, "train", max_pairs=50)
    assert sum(u.take for u in capped) == 50
    assert capped[0].path == units[0].path  # the first pairs in shard order


def test_no_shards_is_a_store_error(tmp_path):
    with pytest.raises(StoreError, match="extract-pairs"):
        scan_units(tmp_path, "train")


def test_one_pass_yields_every_pair_once_in_a_shuffled_order(pairs, vocab):
    units = scan_units(pairs, "train")
    stream = PairStream(units, vocab, batch_size=30, seed=1, window_rows=64)
    x, y = stream.rows(0, 300)
    got = decode_rows(vocab, x, y)
    want = [(u, r) for u, r in all_train_pairs(pairs)]
    assert sorted(got) == sorted(want)
    assert got != want
    # The first batch already mixes shards (a seeded order of row groups, not file order).
    first = set(got[:30])
    shards_seen = {next(i for i, (u, r) in enumerate(want) if (u, r) == p) // 100 for p in first}
    assert len(shards_seen) >= 2


def test_batches_are_a_pure_function_of_seed_and_index(pairs, vocab):
    units = scan_units(pairs, "train")
    a = PairStream(units, vocab, batch_size=32, seed=5, window_rows=50)
    b = PairStream(units, vocab, batch_size=32, seed=5, window_rows=50)
    forward = [a.batch(i) for i in range(25)]  # crosses windows and passes
    backward = [b.batch(i) for i in reversed(range(25))][::-1]
    for (x1, y1), (x2, y2) in zip(forward, backward):
        assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
        assert x1.shape == (32, 16) and x1.dtype == np.int32
    c = PairStream(units, vocab, batch_size=32, seed=6, window_rows=50)
    assert not np.array_equal(c.batch(0)[0], forward[0][0])


def test_passes_differ_and_batches_span_pass_boundaries(pairs, vocab):
    units = scan_units(pairs, "train")
    s = PairStream(units, vocab, batch_size=64, seed=0, window_rows=80)
    p0 = decode_rows(vocab, *s.rows(0, 300))
    p1 = decode_rows(vocab, *s.rows(300, 300))
    assert sorted(p0) == sorted(p1) and p0 != p1
    x, _ = s.batch(4)  # rows 256..319: the end of pass 0 and the start of pass 1
    assert len(x) == 64
    assert decode_rows(vocab, *s.batch(4))[-20:] == p1[:20]


def test_memory_holds_at_most_two_windows(pairs, vocab):
    units = scan_units(pairs, "train")
    s = PairStream(units, vocab, batch_size=16, seed=0, window_rows=40)
    for i in range(60):
        s.batch(i)
        assert len(s._windows) <= 2 and len(s._plans) <= 2
    assert s.windows_read >= 5
    assert all(len(x) <= 40 + 37 for x, _ in s._windows.values())  # window_rows + one row group


def test_max_pairs_limits_the_stream(pairs, vocab):
    units = scan_units(pairs, "train", max_pairs=50)
    s = PairStream(units, vocab, batch_size=10, seed=0)
    assert s.n_rows == 50 and s.steps_per_pass() == 5
    assert sorted(decode_rows(vocab, *s.rows(0, 50))) == sorted(all_train_pairs(pairs)[:50])


def test_reversed_utterances(pairs):
    units = scan_units(pairs, "train")
    v = Vocab.build(Counter(KANA + "。"), 80, max_len=16, reverse_input=True)
    s = PairStream(units, v, batch_size=8, seed=0)
    x, y = s.batch(0)
    for a, b in zip(x, y):
        assert a[-1] != 0 and (b[0] != 0)  # reversed input ends on its first character
        utt = v.decode(a, reverse=True)
        assert v.decode(b) == "".join(KANA[KANA.index(c) + 1] for c in utt) + "。"


def test_load_arrays_for_validation(pairs, vocab):
    x, y = load_arrays(scan_units(pairs, "valid"), "valid", vocab, limit=25)
    assert x.shape == (25, 16) and y.shape == (25, 16)
    x, y = load_arrays([], "valid", vocab)
    assert x.shape == (0, 16)


def test_keras_py_dataset_is_endless_and_offset(pairs, vocab):
    units = scan_units(pairs, "train")
    s = PairStream(units, vocab, batch_size=16, seed=2)
    ds = keras_batches(s, start=7)
    assert ds.num_batches is None
    x, y = ds[3]
    assert np.array_equal(x, s.batch(10)[0]) and np.array_equal(y, s.batch(10)[1])


def test_empty_stream_is_refused(vocab):
    with pytest.raises(StoreError):
        PairStream([], vocab, batch_size=4)


def test_end_weights_count_characters_and_the_end_only():
    from pipeline.dataset import end_weights

    y = np.array([[5, 6, 0, 0], [7, 0, 0, 0], [1, 2, 3, 4]], dtype=np.int32)
    assert end_weights(y).tolist() == [[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]]


def test_scan_accepts_a_root_a_folder_or_one_file(pairs, tmp_path):
    root = tmp_path / "root"
    (root / "pairs").mkdir(parents=True)
    for p in pairs.glob("*.parquet"):
        (root / "pairs" / p.name).write_bytes(p.read_bytes())
    want = sum(u.take for u in scan_units(pairs, "train"))
    assert sum(u.take for u in scan_units(root, "train")) == want == 300
    one = tmp_path / "filtered.parquet"
    pq.write_table(pq.read_table(sorted(pairs.glob("*.parquet"))[0]), one)
    assert sum(u.take for u in scan_units(one, "valid")) == 40


def test_missing_columns_are_named(tmp_path):
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"utterance_kana": ["ア"], "split": ["train"]}), bad)
    with pytest.raises(StoreError, match="reply_kana"):
        scan_units(bad, "train")
    with pytest.raises(StoreError, match="no pair shards"):
        scan_units(tmp_path / "nowhere", "train")


def test_count_too_long_counts_both_sides(pairs):
    from pipeline.dataset import count_too_long

    units = scan_units(pairs, "train")
    want = sum((len(u) > 8) + (len(r) > 8) for u, r in all_train_pairs(pairs))
    assert count_too_long(units, "train", 8) == (want, 2 * 300) and want > 0
    assert count_too_long(units, "train", 1000) == (0, 600)


def test_itf_weights_favour_rare_characters_and_average_one():
    from pipeline.dataset import ITF_CAP, itf_weights

    counts = {"イ": 5000, "ン": 3000, "カ": 1000, "ゾ": 50, "ヂ": 2, "☆": 3}  # ☆ is outside the vocabulary
    vocab = Vocab(tokens=["", "<unk>", "イ", "ン", "カ", "ゾ", "ヂ"], max_len=8, counts=counts)
    ends = 2000
    w = itf_weights(vocab, 10, 0.5, ends)
    assert w.shape == (10,) and w.dtype == np.float32
    assert w[2] < w[3] < w[4] < w[5] <= w[6]  # the rarer, the heavier
    assert w[1] < w[5] and w[1] < w[6]  # unknown, rare as it is, is not promoted
    freq = np.array([ends, 3, 5000, 3000, 1000, 50, 2], dtype=np.float64)
    assert float((freq / freq.sum() * w[:7]).sum()) == pytest.approx(1.0, rel=1e-5)
    assert w[6] / w[1] <= ITF_CAP * 1.0001  # a character seen twice is capped
    assert (w[7:] == 1).all()  # ids without a count
    assert np.allclose(itf_weights(vocab, 10, 0.0, ends)[:7], 1.0)


def test_keras_batches_weigh_targets_by_token_weights(pairs, vocab):
    from pipeline.dataset import end_weights, teacher_forcing

    s = PairStream(scan_units(pairs, "train"), vocab, batch_size=8, seed=0)
    table = np.linspace(0.5, 2.0, len(vocab.tokens) + 2).astype(np.float32)
    start = len(vocab.tokens) + 1
    (inputs, y, w) = keras_batches(s, start_id=start, token_weights=table)[0]
    _, y0 = teacher_forcing(*s.batch(0), start)
    assert np.array_equal(y, y0)
    assert np.allclose(w, end_weights(y0) * table[y0])


# ---------------------------------------------------------------- the split's two names


def _corpus_with_split_word(folder, word: str, n: int = 12):
    rows = pair_rows(30, "train", "wt") + pair_rows(n, word, "wv", seed=5)
    write_shard(folder / shard_name(0), rows)
    return folder


@pytest.mark.parametrize("written", ["valid", "validation"])
@pytest.mark.parametrize("asked", ["valid", "validation"])
def test_either_name_of_the_validation_split_reads_either_corpus(tmp_path, written, asked):
    """A corpus written before (`valid` in the column) reads as before, and callers passing
    `valid` keep working on a corpus that says `validation`."""
    folder = _corpus_with_split_word(tmp_path, written)
    units = scan_units(folder, asked)
    assert sum(u.take for u in units) == 12
    utt, rep = read_unit(units[0], asked)
    assert len(utt) == len(rep) == 12
    assert count_too_long(units, asked, 1)[1] == 24


def test_an_unknown_split_is_one_line(tmp_path):
    with pytest.raises(StoreError, match="not a split"):
        scan_units(_corpus_with_split_word(tmp_path, "valid"), "dev")
