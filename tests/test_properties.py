"""Property-based tests for everything that reads untrusted text: the Aozora and HTML
parsers, the pair rule, the katakana reading and the text decoder. Whatever the
input: no exception but the tree's own, and every side extract-pairs keeps lies
inside the katakana alphabet (the rest is counted as dropped)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import NocpipeError
from pipeline.kana import is_kana_text, to_katakana
from pipeline.pairs import find_candidates, is_dialogue
from pipeline.parsers import aozora
from pipeline.records import Counters, Episode, WorkRef

# Few examples each: the suite's time is shared. The alphabet leans on the characters
# the parsers treat specially, so short inputs still reach their branches.
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SPECIAL = list("「」『』《》｜|［］＃※〔〕（）、。！？…‥―ーゝゞヽヾ々〃／＼″\n\r\t 　") + [
    "［＃",
    "］",
    "《",
    "》",
    "底本：",
    "-" * 20,
    "「",
    "」",
    "※［＃「木＋吶のつくり」、第3水準1-85-54］",
    "［＃ここから2字下げ］",
    "U+20B9F",
    "漢字",
    "かな",
    "カナ",
    "ABC",
    "１２３",
    "123",
    "\ufeff",
    "\x00",
    "\ud7ff",
    "\U0002000b",
]
JAPANESE = st.one_of(
    st.sampled_from(SPECIAL),
    st.characters(min_codepoint=0x3000, max_codepoint=0x9FFF),
    st.characters(blacklist_categories=("Cs",)),
)
texts = st.lists(JAPANESE, max_size=40).map("".join)
line_lists = st.lists(texts, max_size=12)


@SETTINGS
@given(texts)
def test_kana_reads_any_text_without_error(text):
    out = to_katakana(text)
    assert isinstance(out, str)
    if "\n" not in text and "\r" not in text:  # one line in, one line out
        assert "\n" not in out


@SETTINGS
@given(st.lists(st.sampled_from(list("アイウエオカキクケコガンッャー、。！？…・「」『』～")), max_size=30).map("".join))
def test_kana_leaves_katakana_as_it_is(text):
    assert is_kana_text(text)
    assert is_kana_text(to_katakana(text))


@SETTINGS
@given(texts)
def test_aozora_parser_takes_any_text(text):
    counters = Counters()
    parsed = aozora.parse(text, counters)
    assert all("\n" not in ln for ln in parsed.body)
    assert all("［＃" not in ln for ln in parsed.body)  # notes never reach the body
    aozora.looks_like_aozora(text.split("\n"))


HTML_PIECES = st.sampled_from(
    [
        "<html>",
        "</html>",
        "<body>",
        "</body>",
        '<div id="novel_honbun" class="novel_view">',
        '<div class="js-novel-text p-novel__text">',
        "</div>",
        '<p id="L1">',
        "</p>",
        "<br>",
        "<br/>",
        "<ruby>",
        "</ruby>",
        "<rb>",
        "</rb>",
        "<rt>",
        "</rt>",
        "<rp>",
        "</rp>",
        '<?xml version="1.0"?>',
        "<!DOCTYPE html>",
        "&amp;",
        "&#12354;",
        "&bogus;",
        "<![CDATA[",
        "]]>",
        "<!--",
        "-->",
        "<script>",
        "<",
        '<dl class="novel_sublist2"><dd class="subtitle"><a href="/n1234ab/1/">',
        "</a></dd></dl>",
        '<div class="p-eplist__sublist"><a class="p-eplist__subtitle" href="/n1234ab/2/">',
    ]
)
html_docs = st.lists(st.one_of(HTML_PIECES, texts), max_size=30).map("".join)


@SETTINGS
@given(html_docs, st.sampled_from([None, "utf-8", "shift_jis", "euc-jp", "bogus"]), st.booleans())
def test_html_parsers_take_any_page(html, encoding, as_bytes):
    from pipeline.syosetu import pages

    page = html.encode(encoding or "utf-8", "replace") if as_bytes and encoding != "bogus" else html
    charset = encoding if as_bytes else None
    for parse in (
        lambda p: pages.parse_episode(p, header_charset=charset),
        lambda p: pages.parse_toc(p, "https://x.test/n1234ab/", header_charset=charset),
    ):
        try:
            parse(page)
        except NocpipeError:
            pass  # a page that is not a novel page is reported as such


@SETTINGS
@given(line_lists)
def test_pair_rule_pairs_only_consecutive_dialogue(lines):
    counters = Counters()
    candidates = list(find_candidates(Episode(1, lines), counters))
    assert counters["dialogue_lines"] >= len(candidates)
    for c in candidates:
        assert 0 <= c.line < len(lines)
    if len(candidates) > 0:
        assert counters["dialogue_lines"] >= 2
    assert all(isinstance(is_dialogue(ln), bool) for ln in lines)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line_lists)
def test_extract_pairs_keeps_only_sides_inside_the_alphabet(lines):
    from pipeline import rawstore
    from stages.extract_pairs import process_work

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "text" / "w"
        work.mkdir(parents=True)
        (work / rawstore.TEXT_FILE).write_text("\n".join(lines), encoding="utf-8")
        out = process_work(WorkRef("text", "w", work), "pykakasi", 50)
    c = out.counters
    dropped = sum(v for k, v in c.values.items() if k.startswith("dropped_"))
    assert len(out.rows) + dropped == c["candidate_pairs"]
    for row in out.rows:
        u_kana, r_kana = row[-2], row[-1]
        assert u_kana and r_kana and is_kana_text(u_kana) and is_kana_text(r_kana)
        assert len(u_kana) <= 50 and len(r_kana) <= 50


@SETTINGS
@given(st.binary(max_size=400))
def test_the_decoder_takes_any_bytes(data):
    from pipeline.textfile import decode_bytes

    try:
        decoded = decode_bytes(data, "x")
    except NocpipeError:
        return
    assert "\r" not in decoded.text and not decoded.text.startswith("\ufeff")
