"""The character vocabulary: ranking, encoding (padding, cutting, reversal), decoding, JSON."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from pipeline.errors import ModelError
from pipeline.vocab import PAD, UNK, Vocab


def test_build_ranks_by_frequency_then_code_point_and_caps_the_size():
    counts = Vocab.count(["アアアイイウ", "エエ"])
    v = Vocab.build(counts, size=5)
    # padding, unknown, then ア(3) and then the tie イ(2)/エ(2) broken by code point: イ < エ
    assert v.tokens == ["", "<unk>", "ア", "イ", "エ"]
    assert len(v) == 5
    assert v.counts == {"ア": 3, "イ": 2, "エ": 2}


def test_build_with_fewer_characters_than_the_size():
    v = Vocab.build(Counter("アイ"), size=128)
    assert v.tokens == ["", "<unk>", "ア", "イ"]


def test_encode_pads_cuts_and_maps_unknown():
    v = Vocab.build(Counter("アイウ"), size=10, max_len=4)
    a, i, u = (v.tokens.index(c) for c in "アイウ")
    assert v.encode("アイ").tolist() == [a, i, PAD, PAD]
    assert v.encode("アイウアイ").tolist() == [a, i, u, a]  # cut to max_len
    assert v.encode("ア漢").tolist() == [a, UNK, PAD, PAD]  # unknown character
    assert v.encode("").tolist() == [PAD] * 4


def test_reversal_reverses_the_whole_padded_row():
    v = Vocab.build(Counter("アイウ"), size=10, max_len=5, reverse_input=True)
    a, i, u = (v.tokens.index(c) for c in "アイウ")
    assert v.encode_utterances(["アイウ"])[0].tolist() == [PAD, PAD, u, i, a]
    assert v.encode_replies(["アイウ"])[0].tolist() == [a, i, u, PAD, PAD]
    assert v.decode(v.encode_utterances(["アイウ"])[0], reverse=True) == "アイウ"
    plain = Vocab.build(Counter("アイウ"), size=10, max_len=5, reverse_input=False)
    assert plain.encode_utterances(["アイウ"])[0].tolist() == [a, i, u, PAD, PAD]


def test_encode_batch_matches_single_encodes_and_is_int32():
    v = Vocab.build(Counter("アイウエオカキ"), size=6, max_len=6)
    texts = ["アイ", "カキクケコサシ", "", "オ😀ア"]
    batch = v.encode_batch(texts)
    assert batch.dtype == np.int32 and batch.shape == (4, 6)
    for row, t in zip(batch, texts):
        assert row.tolist() == v.encode(t).tolist()
    assert v.encode_batch([]).shape == (0, 6)


def test_decode_stops_at_padding_and_drops_unknown():
    v = Vocab.build(Counter("アイウ"), size=10, max_len=6)
    a, i = v.tokens.index("ア"), v.tokens.index("イ")
    assert v.decode([a, UNK, i, PAD, a, a]) == "アイ"
    assert v.decode([PAD, a]) == ""
    assert v.decode([a, 99]) == "ア"  # an id beyond the vocabulary is left out


def test_json_round_trip(tmp_path):
    v = Vocab.build(Counter("アアイ"), size=8, max_len=7, reverse_input=False, reader="unidic", reader_version="x 1")
    v.save(tmp_path / "vocab.json")
    obj = json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))
    assert obj["tokens"][:2] == ["", "<unk>"] and obj["pad_id"] == 0 and obj["unk_id"] == 1
    back = Vocab.load(tmp_path / "vocab.json")
    assert back == v
    assert back.encode("アイ").tolist() == v.encode("アイ").tolist()


def test_load_errors(tmp_path):
    with pytest.raises(ModelError, match="no vocabulary"):
        Vocab.load(tmp_path / "missing.json")
    (tmp_path / "v.json").write_text('{"format": 99, "tokens": []}', encoding="utf-8")
    with pytest.raises(ModelError, match="format 99"):
        Vocab.load(tmp_path / "v.json")
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelError, match="cannot read"):
        Vocab.load(tmp_path / "bad.json")


def test_invalid_vocabularies_are_refused():
    with pytest.raises(ModelError):
        Vocab(["<unk>", ""])
    with pytest.raises(ModelError):
        Vocab(["", "<unk>", "ア", "ア"])
    with pytest.raises(ModelError):
        Vocab.build(Counter("ア"), size=2)
