"""pipeline.syosetu: TOC and episode pages of both layouts, ruby, the raw store."""

import json

import pytest
from syosetu_server import Ep, Work, episode_current, episode_old, toc_current, toc_old

from pipeline.errors import StoreError
from pipeline.records import Counters
from pipeline.syosetu import LayoutChanged, decode_page, parse_episode, parse_toc, read_work, ruby_text

CURRENT_EPISODE = """<!DOCTYPE html><html><head><meta charset="UTF-8"><title>x</title></head><body>
<article class="p-novel">
<h1 class="p-novel__title p-novel__title--rensai">第一話　雨</h1>
<div class="p-novel__body">
<div class="js-novel-text p-novel__text p-novel__text--preface">
<p id="Lp1">「前書きの台詞」</p>
<p id="Lp2">「前書きの返事」</p>
</div>
<div class="js-novel-text p-novel__text">
<p id="L1">　雨が降っていた。</p>
<p id="L2"><br /></p>
<p id="L3">「<ruby><rb>魔王</rb><rp>(</rp><rt>まおう</rt><rp>)</rp></ruby>様ですか」</p>
<p id="L4">「いいえ、<ruby>勇者<rt>ゆうしゃ</rt></ruby>です &amp; <em>旅人</em>&#12540;」</p>
<p id="L5"><ruby><rb>本当</rb><rp>(</rp><rt>・・</rt><rp>)</rp></ruby>に<a href="/x/"><img src="/i.png" alt="挿絵"></a></p>
<p id="L6">一行目<br />二行目</p>
</div>
<div class="js-novel-text p-novel__text p-novel__text--afterword">
<p id="La1">「後書き」</p>
</div>
</div></article></body></html>"""

OLD_EPISODE = """<html><body><div id="novel_color">
<p class="novel_subtitle">第二話</p>
<div id="novel_p" class="novel_view"><p id="Lp1">まえがき</p></div>
<div id="novel_honbun" class="novel_view">
<p id="L1">「<ruby><rb>古都</rb><rp>(</rp><rt>こと</rt><rp>)</rp></ruby>へ」</p>
<p id="L2"><br /></p>
<p id="L3">「行こう」</p>
</div>
<div id="novel_a" class="novel_view"><p id="La1">あとがき</p></div>
</div></body></html>"""


def test_current_episode_body_without_preface_and_afterword():
    page = parse_episode(CURRENT_EPISODE)
    assert page.layout == "current"
    assert page.subtitle == "第一話 雨"
    assert page.body == [
        "　雨が降っていた。",
        "",
        "「｜魔王《まおう》様ですか」",
        "「いいえ、｜勇者《ゆうしゃ》です & 旅人ー」",
        "本当に",
        "一行目",
        "二行目",
    ]
    assert page.preface == ["「前書きの台詞」", "「前書きの返事」"]
    assert page.afterword == ["「後書き」"]


def test_old_episode_body_without_preface_and_afterword():
    page = parse_episode(OLD_EPISODE)
    assert page.layout == "old"
    assert page.subtitle == "第二話"
    assert page.body == ["「｜古都《こと》へ」", "", "「行こう」"]
    assert page.preface == ["まえがき"] and page.afterword == ["あとがき"]


@pytest.mark.parametrize(
    "markup,expected",
    [
        ("<ruby><rb>漢字</rb><rp>(</rp><rt>かんじ</rt><rp>)</rp></ruby>", "｜漢字《かんじ》"),
        ("<ruby>漢字<rt>かんじ</rt></ruby>", "｜漢字《かんじ》"),
        ("<ruby>漢<rt>かん</rt>字<rt>じ</rt></ruby>", "｜漢《かん》｜字《じ》"),
        ("<ruby><rb>漢</rb><rb>字</rb><rt>かん</rt><rt>じ</rt></ruby>", "｜漢《かん》｜字《じ》"),
        ("<ruby><rb>強調</rb><rt>・・</rt></ruby>", "強調"),
        ("<ruby><rb>空</rb><rt></rt></ruby>", "空"),
        ("<ruby><rb>本《気》</rb><rt>マ｜ジ</rt></ruby>", "｜本気《マジ》"),
    ],
)
def test_ruby_forms(markup, expected):
    from bs4 import BeautifulSoup

    assert ruby_text(BeautifulSoup(markup, "lxml").ruby) == expected


def test_current_toc_with_chapters_revisions_and_pager():
    w = Work(
        "n0001aa",
        "題名",
        "作者名",
        [
            Ep("一", ["a"], chapter="第一章"),
            Ep("二", ["b"], published="2021/04/02 12:00", revised="2021/05/06 07:08", chapter="第一章"),
            Ep("三", ["c"], published="2021/04/03 12:00", chapter="第二章"),
        ],
    )
    page = parse_toc(toc_current(w, 1, 2), "http://h/n0001aa/")
    assert (page.layout, page.title, page.author, page.short) == ("current", "題名", "作者名", False)
    assert [(e.number, e.url, e.subtitle, e.chapter, e.published, e.revised) for e in page.entries] == [
        (1, "http://h/n0001aa/1/", "一", "第一章", "2021-04-01 12:00", None),
        (2, "http://h/n0001aa/2/", "二", "第一章", "2021-04-02 12:00", "2021-05-06 07:08"),
    ]
    assert page.next_url == "http://h/n0001aa/?p=2" and page.last_page == 2
    page2 = parse_toc(toc_current(w, 2, 2), "http://h/n0001aa/?p=2", chapter="第一章")
    assert [(e.number, e.chapter) for e in page2.entries] == [(3, "第二章")]
    assert page2.next_url is None


def test_old_toc():
    w = Work(
        "n0002bb",
        "古い",
        "誰か",
        [Ep("一", ["a"], chapter="序"), Ep("二", ["b"], revised="2022/01/02 03:04")],
        layout="old",
    )
    page = parse_toc(toc_old(w), "https://ncode.syosetu.com/n0002bb/")
    assert (page.layout, page.title, page.author) == ("old", "古い", "誰か")
    assert [(e.number, e.subtitle, e.chapter, e.revised) for e in page.entries] == [
        (1, "一", "序", None),
        (2, "二", "序", "2022-01-02 03:04"),
    ]
    assert page.entries[0].url == "https://ncode.syosetu.com/n0002bb/1/"
    assert page.next_url is None


@pytest.mark.parametrize("layout", ["current", "old"])
def test_short_story_is_its_own_page(layout):
    w = Work(
        "n0003cc",
        "短編",
        "作者",
        [Ep("短編", ["「はい」", "「いいえ」"], preface=["「前」", "「書」"])],
        short=True,
        layout=layout,
    )
    html = episode_current(w, None) if layout == "current" else episode_old(w, None)
    page = parse_toc(html, "http://h/n0003cc/")
    assert page.short and page.entries == [] and page.title == "短編"
    assert parse_episode(html).body == ["「はい」", "「いいえ」"]


@pytest.mark.parametrize(
    "html",
    [
        "<html><body><div class='p-eplist'></div></body></html>",
        "<html><body><div class='new-index'><a href='/n0001aa/1/'>一</a></div></body></html>",
        "<html><body><div class='p-eplist'><a class='p-eplist__subtitle' href='/n0001aa/x/'>一</a></div></body></html>",
    ],
)
def test_toc_layout_change_is_an_error_not_zero_episodes(html):
    with pytest.raises(LayoutChanged, match="layout"):
        parse_toc(html, "http://h/n0001aa/")


@pytest.mark.parametrize(
    "html",
    [
        "<html><body><div class='novel-body'><p>「こんにちは」</p></div></body></html>",
        "<html><body><div class='js-novel-text p-novel__text'><p><br/></p></div></body></html>",
        "<html><body><div class='js-novel-text p-novel__text p-novel__text--preface'><p>前</p></div></body></html>",
    ],
)
def test_episode_layout_change_is_an_error(html):
    with pytest.raises(LayoutChanged, match="layout"):
        parse_episode(html)


def test_read_work_follows_meta_and_yields_body_only(tmp_path):
    w = Work(
        "n0001aa",
        "t",
        "a",
        [
            Ep("一", ["「あ」", "「い」"], preface=["「ま」", "「え」"]),
            Ep("二", ["「う」"], afterword=["「あと」", "「がき」"]),
            Ep("三", ["「え」"]),
        ],
        layout="current",
    )
    (tmp_path / "episodes").mkdir()
    (tmp_path / "episodes" / "0001.html").write_text(episode_current(w, 1), encoding="utf-8")
    (tmp_path / "episodes" / "0002.html").write_text(episode_old(w, 2), encoding="utf-8")
    (tmp_path / "episodes" / "0010.html").write_text(episode_current(w, 3), encoding="utf-8")
    (tmp_path / "meta.json").write_text(
        json.dumps(
            {"episodes": [{"number": 1, "file": "episodes/0001.html"}, {"number": 2, "file": "episodes/0002.html"}]}
        )
    )
    c = Counters()
    eps = list(read_work(tmp_path, c))
    assert [(e.number, e.lines) for e in eps] == [(1, ["「あ」", "「い」"]), (2, ["「う」"])]
    assert c["preface_lines"] == 2 and c["afterword_lines"] == 2
    # Without an episode list in meta.json every stored episode counts, in number order.
    (tmp_path / "meta.json").write_text("{}")
    assert [e.number for e in read_work(tmp_path, Counters())] == [1, 2, 10]


def test_read_work_reports_a_stored_page_it_cannot_parse(tmp_path):
    (tmp_path / "episodes").mkdir()
    (tmp_path / "episodes" / "0001.html").write_text("<html><body>nothing</body></html>")
    (tmp_path / "meta.json").write_text("{}")
    with pytest.raises(StoreError, match="0001.html"):
        list(read_work(tmp_path, Counters()))


XHTML_TOC = """<?xml version="1.0" encoding="{enc}"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.1//EN" "http://www.w3.org/TR/xhtml11/DTD/xhtml11.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="ja"><head>
<meta http-equiv="Content-Type" content="application/xhtml+xml; charset={enc}" /><title>t</title></head>
<body><div id="novel_color"><p class="novel_title">古い題名</p>
<div class="novel_writername">作者：<a href="/u/">古い作者</a></div>
<div class="index_box"><div class="chapter_title">第一章</div>
<dl class="novel_sublist2"><dd class="subtitle"><a href="/n0002bb/1/">一話</a></dd>
<dt class="long_update">2013/01/02 03:04<span title="2013/02/03 04:05 改稿">（<u>改</u>）</span></dt></dl>
</div></div></body></html>"""


@pytest.mark.parametrize(
    "enc,codec,prefix",
    [
        ("UTF-8", "utf-8", b""),
        ("Shift_JIS", "cp932", b""),
        ("UTF-8", "utf-8", b"\xef\xbb\xbf"),
        ("EUC-JP", "euc_jp", b""),
    ],
)
def test_xhtml_with_an_xml_declaration_parses_from_bytes_and_from_text(enc, codec, prefix):
    data = prefix + XHTML_TOC.format(enc=enc).encode(codec)
    for page in (parse_toc(data, "http://x/n0002bb/"), parse_toc(XHTML_TOC.format(enc=enc), "http://x/n0002bb/")):
        assert (page.layout, page.title, page.author) == ("old", "古い題名", "古い作者")
        assert [(e.number, e.subtitle, e.chapter, e.published, e.revised) for e in page.entries] == [
            (1, "一話", "第一章", "2013-01-02 03:04", "2013-02-03 04:05")
        ]


def test_a_wrong_charset_header_does_not_garble_the_page():
    sjis = CURRENT_EPISODE.replace('charset="UTF-8"', 'charset="Shift_JIS"').encode("cp932")
    assert parse_episode(sjis, header_charset="utf-8").body == parse_episode(CURRENT_EPISODE).body
    utf8 = CURRENT_EPISODE.encode("utf-8")
    assert parse_episode(utf8, header_charset="Shift_JIS").body == parse_episode(CURRENT_EPISODE).body
    assert decode_page(sjis, "utf-8")[1] == "cp932" and decode_page(utf8, "euc-jp")[1] == "utf-8"


def test_a_page_that_is_not_a_page_is_a_layout_change_not_a_crash():
    for junk in (b"", b"\x00\x01\x02", b"<?xml version='1.0' encoding='UTF-8'?><rss/>", "\ufeff", b"\xff\xfe\x00"):
        with pytest.raises(LayoutChanged):
            parse_toc(junk, "http://x/n0001aa/")
        with pytest.raises(LayoutChanged):
            parse_episode(junk)


def test_a_page_that_looks_like_xml_is_parsed_as_html_without_a_warning():
    import warnings

    from pipeline.syosetu.pages import _soup

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Two declarations: the first is dropped before parsing, the second reaches bs4.
        soup = _soup(b"<?xml version='1.0'?>\n<?xml version='1.0'?><rss><channel><title>t</title></channel></rss>")
    assert soup.find("title").get_text() == "t"
