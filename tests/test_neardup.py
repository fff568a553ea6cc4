"""Near-duplicates: the pair key, work signatures and groups, and on real Aozora text a lightly
edited copy that must land in its original's split with its pairs dropped."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq

from pipeline import neardup
from pipeline.config import NearDupConfig
from pipeline.shards import list_shards
from stages.extract_pairs import ExtractOptions, extract_pairs
from stages.ingest import ingest


def test_near_key_ignores_punctuation_and_long_vowels_only():
    assert neardup.near_key("オハヨー、ゴザイマス！", "ハイ…") == neardup.near_key("オハヨゴザイマス", "ハイ")
    assert neardup.near_key("「ア」『イ』・～。？", "ウ") == neardup.near_key("アイ", "ウ")
    assert neardup.near_key("アイ", "ウ") != neardup.near_key("アイ", "エ")
    assert neardup.near_key("アイ", "ウ") != neardup.near_key("ア", "イウ")  # sides stay apart


def test_shingle_hashes_count_the_shingles():
    rng = np.random.default_rng(0)
    sides = ["".join(rng.choice(list("アイウエオ、。ー"), rng.integers(1, 20))) for _ in range(300)]
    for k in (3, 5):
        assert len(neardup.shingle_hashes(sides, k)) == len(neardup.shingles(sides, k))


def test_groups_are_deterministic_and_need_enough_text():
    cfg = NearDupConfig()
    rng = np.random.default_rng(1)
    base = ["".join(rng.choice(list("アイウエオカキクケコサシスセソ"), 12)) for _ in range(200)]
    other = ["".join(rng.choice(list("アイウエオカキクケコサシスセソ"), 12)) for _ in range(200)]
    copy = [s if i % 10 else s[:-1] + "ン" for i, s in enumerate(base) if i % 20 != 7]
    sigs = {
        "b": neardup.signature(base, cfg),
        "a": neardup.signature(copy, cfg),
        "c": neardup.signature(other, cfg),
        "tiny": neardup.signature(["アイ"], cfg),
    }
    assert sigs["tiny"] is None
    assert neardup.similarity(sigs["a"], sigs["b"]) > 0.7 > 0.2 > neardup.similarity(sigs["a"], sigs["c"])
    assert neardup.group_works(sigs, cfg) == [["a", "b"]]
    assert neardup.group_works(dict(reversed(list(sigs.items()))), cfg) == [["a", "b"]]


def test_an_edited_copy_takes_its_originals_split_and_loses_its_pairs(tmp_path, shared_corpus):
    src = tmp_path / "src"
    src.mkdir()
    original = shared_corpus / "1018_ruby_2213.txt"  # 半七捕物帳 鷹のゆくえ
    sibling = shared_corpus / "972_ruby_2038.txt"  # another 半七 story: similar style, other text
    for f in (original, sibling):
        (src / f.name).write_bytes(f.read_bytes())
    lines = original.read_bytes().decode("cp932").split("\r\n")
    edited, n = [], 0
    for ln in lines:
        if ln.startswith("「"):
            n += 1
            if n % 20 == 0:
                continue  # a line left out
            if n % 10 == 3:
                ln = ln.replace("、", "", 1).replace("。", "！", 1)  # punctuation revised
        edited.append(ln)
    (src / "1018_ruby_2213_rev.txt").write_text("\n".join(edited), encoding="utf-8")
    raw, out = tmp_path / "raw", tmp_path / "corpus"
    ingest([src], raw, show_progress=False)
    extract_pairs(ExtractOptions(raw_dir=raw, out_dir=out, workers=1, show_progress=False))

    stats = json.loads((out / "stats.json").read_text())
    groups = [[m["work"] for m in g] for g in stats["near_copy_groups"]]
    assert groups == [["aozora/1018_ruby_2213", "aozora/1018_ruby_2213_rev"]]
    rows = pq.read_table(list_shards(out)).to_pylist()
    split = {r["work_id"]: r["split"] for r in rows}
    assert split.get("1018_ruby_2213_rev", split["1018_ruby_2213"]) == split["1018_ruby_2213"]
    kept = {w: sum(r["work_id"] == w for r in rows) for w in split}
    assert kept["1018_ruby_2213"] > 30 and kept.get("1018_ruby_2213_rev", 0) < kept["1018_ruby_2213"] * 0.2
    assert stats["dropped"]["dropped_near_duplicate"] > 0
    assert "1018_ruby_2213_rev" in (out / "README.md").read_text()


def test_signatures_estimate_jaccard_similarity():
    cfg = NearDupConfig()
    rng = np.random.default_rng(2)
    alphabet = list("アイウエオカキクケコサシスセソタチツテトナニヌネノ")
    base = ["".join(rng.choice(alphabet, 10)) for _ in range(300)]
    for keep in (1.0, 0.8, 0.5, 0.2, 0.0):
        n = int(len(base) * keep)
        other = base[:n] + ["".join(rng.choice(alphabet, 10)) for _ in range(len(base) - n)]
        sa, sb = neardup.shingles(base, cfg.shingle), neardup.shingles(other, cfg.shingle)
        exact = len(sa & sb) / len(sa | sb)
        est = neardup.similarity(neardup.signature(base, cfg), neardup.signature(other, cfg))
        # 128 permutations: a standard error of at most 0.045
        assert abs(est - exact) < 0.15, (keep, exact, est)


def test_banded_candidates_find_every_pair_a_full_comparison_finds():
    cfg = NearDupConfig()
    rng = np.random.default_rng(3)
    alphabet = list("アイウエオカキクケコサシスセソタチツテトナニヌネノ")
    originals = [["".join(rng.choice(alphabet, 10)) for _ in range(150)] for _ in range(8)]
    sigs = {}
    for i, orig in enumerate(originals):
        sigs[f"w{i}"] = neardup.signature(orig, cfg)
        for j, share in enumerate((0.9, 0.7, 0.55, 0.3)):  # copies from near to far
            n = int(len(orig) * share)
            copy = orig[:n] + ["".join(rng.choice(alphabet, 10)) for _ in range(len(orig) - n)]
            sigs[f"w{i}c{j}"] = neardup.signature(copy, cfg)
    keys = sorted(sigs)
    # LSH is probabilistic at the threshold itself; a clear margin above it is always found.
    full = {
        (a, b)
        for x, a in enumerate(keys)
        for b in keys[x + 1 :]
        if neardup.similarity(sigs[a], sigs[b]) >= cfg.threshold + 0.1
    }
    assert len(full) >= 8  # the near copies are there to be found
    grouped = {(a, b) for g in neardup.group_works(sigs, cfg) for x, a in enumerate(g) for b in g[x + 1 :]}
    assert full <= grouped
    bands, rows = neardup.band_params(cfg.threshold, cfg.num_perm)
    assert bands * rows <= cfg.num_perm and bands > 1 and rows > 1


def test_band_params_is_the_best_banding_of_a_plain_search():
    import numpy as np

    def plain(threshold, num_perm, fp_weight=0.1):
        below = (np.arange(200) + 0.5) / 200 * threshold
        above = threshold + (np.arange(200) + 0.5) / 200 * (1 - threshold)
        best, best_err = None, float("inf")
        for b in range(1, num_perm + 1):
            for r in range(1, num_perm // b + 1):
                err = fp_weight * (1 - (1 - below**r) ** b).mean() * threshold + (1 - fp_weight) * (
                    (1 - above**r) ** b
                ).mean() * (1 - threshold)
                if err < best_err:
                    best, best_err = (b, r), err
        return best

    for threshold in (0.3, 0.5, 0.8):
        for num_perm in (16, 64, 128):
            assert neardup.band_params(threshold, num_perm) == plain(threshold, num_perm)
    assert neardup.band_params(0.5, 128) == (32, 4)
