"""A work's own ruby read into its bare words: safety rules, extract-pairs, `kana --context`."""

import json

import pyarrow.parquet as pq
import pytest
from conftest import write_aozora

from pipeline.config import READERS
from pipeline.kana import read_side, to_katakana
from pipeline.rubymemory import RubyMemory
from pipeline.shards import list_shards
from stages.extract_pairs import ExtractOptions, extract_pairs
from stages.ingest import ingest


def memory(*lines):
    return RubyMemory.from_lines(lines)


@pytest.mark.parametrize("reader", READERS)
def test_bare_words_read_as_the_work_annotated_them(reader):
    m = memory("清葉《きよは》は笑った。", "｜祥子《さちこ》が来た")
    assert read_side("清葉、待って", reader, m) == "キヨハ、マッテ"
    assert read_side("祥子が言った", reader, m).startswith("サチコガ")
    # The ruby on the line itself wins over the memory.
    assert read_side("清葉《せいよう》だ", reader, m) == "セイヨウダ"


@pytest.mark.parametrize("reader", READERS)
def test_only_whole_words_change(reader):
    m = memory("祥子《さちこ》", "清葉《きよは》")
    # Inside a longer kanji run (祥子様, 友清葉) the memory is not used.
    assert read_side("祥子様", reader, m) == to_katakana("祥子様", reader)
    assert read_side("友清葉", reader, m) == to_katakana("友清葉", reader)
    assert m.apply("祥子様と祥子と清葉子") == ("祥子様とサチコと清葉子", 1)


def test_what_is_not_remembered():
    m = memory(
        "人《ひと》",
        "友人《ゆうじん》を",
        "友人《ともだち》も",
        "｜ありす《ありす》",
        "貴方《You》",
        "御前《おまえ》",
        "御前《おんまえ》",
        "｜ＡＢ《》",
    )
    # Single kanji, bases annotated two ways, kana read as written, readings not in kana.
    assert m.readings() == {}
    assert m.apply("人と友人と御前") == ("人と友人と御前", 0)
    assert len(memory("貴下《あなた》", "貴下《アナタ》")) == 1  # hiragana and katakana agree


def test_bases_with_kana_are_whole_words_too():
    m = memory("｜お嬢様《おじょうさま》")
    assert m.apply("お嬢様が") == ("オジョウサマが", 1)
    assert m.apply("お嬢様方") == ("お嬢様方", 0)
    m = memory("｜ＨＰ《ひっとぽいんと》", "｜ステータス《すてえたす》")
    assert m.apply("ＨＰが0、ＨＰＳ、ステータス画面、ステータスバー") == (
        "ヒットポイントが0、ＨＰＳ、ステータス画面、ステータスバー",
        1,
    )


def test_reading_sources_are_counted():
    m = memory("清葉《きよは》")
    counts: dict[str, int] = {}
    read_side("清葉は3回、元気《げんき》に走った", "unidic", m, counts)
    assert counts == {"ruby": 1, "memory": 1, "numbers": 1, "reader": 1}  # 走 (3回 is a number)


def test_extract_pairs_uses_the_whole_works_ruby(tmp_path):
    body = (
        "「清葉《きよは》さん、こんにちは」\n「はい」\n地の文で清葉《きよは》が歩く。\n"
        "「清葉、待って」\n「待たない」\n「友人《ゆうじん》だ」\n「人《ひと》だ」\n「友人と人」\n「3人」"
    )
    src = tmp_path / "src"
    write_aozora(src / "w.txt", body, encoding="utf-8")
    raw = tmp_path / "raw"
    ingest([src], raw, show_progress=False)
    out = tmp_path / "pairs"
    extract_pairs(ExtractOptions(raw_dir=raw, out_dir=out, workers=1, show_progress=False))
    got = {r["utterance"]: r["utterance_kana"] for r in pq.read_table(list_shards(out)).to_pylist()}
    assert got["清葉、待って"] == "キヨハ、マッテ"
    assert got["友人と人"] == "ユウジントヒト"  # 人 is one kanji: left to the reader
    stats = json.loads((out / "stats.json").read_text())
    assert stats["reader"] == "unidic"
    r = stats["readings"]
    assert set(r) == {"ruby", "memory", "numbers", "reader"}
    # Counted per side read: a line inside a run is a reply and then an utterance.
    assert r["ruby"] == 5 and r["memory"] == 3 and r["numbers"] == 1 and r["reader"] > 0


def test_kana_context_file(tmp_path, cli):
    ctx = tmp_path / "work.txt"
    ctx.write_text("清葉《きよは》は笑った。\n", encoding="utf-8")
    res = cli("kana", "--context", ctx, "清葉が来た")
    assert res.code == 0 and res.out == "キヨハガキタ\n"
    aozora = write_aozora(tmp_path / "aozora.txt", "祥子《さちこ》は笑った。")
    assert cli("kana", "--reader", "pykakasi", "--context", aozora, "祥子です").out == "サチコデス\n"
    res = cli("kana", "--context", tmp_path / "missing.txt", "x")
    assert res.code == 1 and "Error:" in res.err and "missing.txt" in res.err
