"""Aozora Bunko notation: header, legend, footer, notes, gaiji, ruby."""

from conftest import aozora_text

from pipeline.parsers import aozora
from pipeline.records import Counters


def parse(body: str):
    c = Counters()
    return aozora.parse(aozora_text(body), c), c


def test_header_legend_and_footer_are_not_body():
    doc, _ = parse("　本文の一行目。\n「台詞だ。」")
    assert doc.title == "試験の話"
    assert doc.author == "作者太郎"
    assert "　本文の一行目。" in doc.body
    assert not any("底本" in ln or "入力" in ln or "ルビ" in ln or "----" in ln for ln in doc.body)


def test_three_line_header_joins_title_and_subtitle():
    text = aozora_text("本文", title="半七捕物帳\n鷹のゆくえ", author="岡本綺堂")
    doc = aozora.parse(text)
    assert doc.title == "半七捕物帳 鷹のゆくえ"
    assert doc.author == "岡本綺堂"


def test_text_without_legend_starts_after_first_blank_line():
    doc = aozora.parse("題名\n著者\n\n本文です。\n\n底本：どこか\n")
    assert doc.body[0] == "本文です。"
    assert all("底本" not in ln for ln in doc.body)


def test_notes_removed_even_when_nested():
    doc, _ = parse("彼は［＃「彼」に傍点］言った。\n「あ［＃「［＃注］」は入れ子］い」\n［＃改ページ］\n終わり")
    assert doc.body[:3] == ["彼は言った。", "「あい」", ""]


def test_gaiji_with_code_point_becomes_the_character():
    doc, c = parse("※［＃「土へん＋竒」、U+57FC、12-3］玉の話")
    assert doc.body[0] == "埼玉の話"
    assert c["gaiji_resolved"] == 1


def test_gaiji_with_jis_x0213_position_becomes_the_character():
    # 第3水準1-85-54 is 黑 (U+9ED1) in JIS X 0213 plane 1.
    doc, c = parse("※［＃「黑」、第3水準1-94-20］い")
    assert doc.body[0] == b"\xfe\xb4".decode("euc_jis_2004") + "い"
    assert c["gaiji_resolved"] == 1


def test_gaiji_without_code_is_dropped_and_counted():
    doc, c = parse("あ※［＃「てへん＋劣」、ページ数-行数］い")
    assert doc.body[0] == "あい"
    assert c["gaiji_dropped"] == 1


def test_ruby_is_kept_for_the_reader_and_repeat_marks_stay():
    doc, _ = parse("邪智暴虐《じゃちぼうぎゃく》の王。疲労｜困憊《こんぱい》。わざ／＼来た")
    assert doc.body[0] == "邪智暴虐《じゃちぼうぎゃく》の王。疲労｜困憊《こんぱい》。わざ／＼来た"


def test_looks_like_aozora():
    assert aozora.looks_like_aozora(aozora_text("x").split("\n"))
    assert not aozora.looks_like_aozora(["ただの文章。", "「台詞」"])
