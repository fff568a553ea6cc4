"""Pages of the syosetu.com family (Nocturne/Moonlight/Midnight on novel18, narou on ncode):
tables of contents for `scrape`, episode pages for `extract-pairs`.

Two layouts are read, the current one (2024 on) and the older one:

                    current layout                              older layout
    title, author   h1.p-novel__title, div.p-novel__author a    p.novel_title, div.novel_writername a
    TOC entries     div.p-eplist > div.p-eplist__sublist:       div.index_box > dl.novel_sublist2:
                      a.p-eplist__subtitle                        dd.subtitle a
                      div.p-eplist__update (date,                 dt.long_update (date,
                        <span title="… 改稿"> when revised)         <span title="… 改稿"> when revised)
    chapters        div.p-eplist__chapter-title                 div.chapter_title
    TOC pages       a.c-pager__item--next / --last, ?p=N        (one page)
    body            div.js-novel-text.p-novel__text             div#novel_honbun
    not body        … p-novel__text--preface / --afterword      div#novel_p / div#novel_a

A short story (API noveltype 2) has its body on the work's own page and no episode list.
Each <p> of a body is one line (<p><br></p> is a blank line). Ruby becomes ｜base《reading》
in the line, so pipeline.kana reads it as the author did; ruby that is only emphasis dots
(傍点) keeps its base. Other tags are removed, entities decoded.

A page with no episode list and no body, or a body container that is missing, is a
layout change: `LayoutChanged` says so instead of yielding nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

from lxml import etree
from lxml import html as lxml_html

from .. import rawstore
from ..errors import FetchError, StoreError
from ..records import Counters, Episode

_DATE_RE = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})\s*(\d{1,2}):(\d{2})")
_EP_NUMBER_RE = re.compile(r"/(\d+)/?$")
_CHARSET_RE = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_EMPHASIS = set("・﹅﹆、゛•●○◦·．.丶ヽ ")
_RUBY_MARKS = str.maketrans("", "", "｜|《》")
_SKIP = ("rt", "rp", "script", "style")


class LayoutChanged(FetchError):
    """A page does not have the shape nocpipe knows: the site's layout has changed."""


@dataclass(frozen=True)
class TocEntry:
    number: int
    url: str
    subtitle: str
    chapter: str | None
    published: str | None  # "YYYY-MM-DD HH:MM" (JST, as shown)
    revised: str | None    # the 改稿 date, when there is one

    @property
    def key(self) -> list:
        """What identifies this version of the episode (compared on updates)."""
        return [self.subtitle, self.published, self.revised]


@dataclass
class TocPage:
    layout: str                     # "current" or "old"
    title: str
    author: str
    entries: list[TocEntry] = field(default_factory=list)
    next_url: str | None = None
    last_page: int | None = None
    short: bool = False             # the page itself is the text (a short story)


@dataclass
class EpisodePage:
    layout: str
    subtitle: str
    body: list[str]
    preface: list[str]
    afterword: list[str]


# ---------------------------------------------------------------- lxml helpers

def _doc(data: bytes | str) -> etree._Element:
    """The document of a page: bytes are decoded by their <meta charset> (UTF-8 otherwise)."""
    if isinstance(data, bytes):
        m = _CHARSET_RE.search(data[:4096])
        charset = m.group(1).decode("ascii") if m else "utf-8"
        try:
            data = data.decode(charset, errors="replace")
        except LookupError:
            data = data.decode("utf-8", errors="replace")
    if not data.strip():
        data = "<html></html>"
    return lxml_html.document_fromstring(data)


def _cls(name: str) -> str:
    """XPath test: the element has class `name`."""
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


def _has_class(el: etree._Element, name: str) -> bool:
    return name in (el.get("class") or "").split()


def _first(root: etree._Element, xpath: str) -> etree._Element | None:
    found = root.xpath(xpath)
    return found[0] if found else None


def _text(el: etree._Element | None) -> str:
    return " ".join(el.text_content().split()) if el is not None else ""


def _date(text: str) -> str | None:
    m = _DATE_RE.search(text)
    if not m:
        return None
    y, mo, d, h, mi = (int(x) for x in m.groups())
    return f"{y:04d}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}"


def _dates(update: etree._Element | None) -> tuple[str | None, str | None]:
    """(published, revised) from a p-eplist__update / long_update element: the first
    date in its own text, and the date in the title of its 改稿 mark."""
    if update is None:
        return None, None
    revised: str | None = None
    own: list[str] = []

    def walk(el: etree._Element) -> None:
        nonlocal revised
        own.append(el.text or "")
        for child in el:
            if isinstance(child.tag, str):
                title = child.get("title") or ""
                if "改稿" in title:
                    revised = _date(title) or title.strip()
                elif not title:
                    walk(child)
            own.append(child.tail or "")

    walk(update)
    return _date(" ".join(own)), revised


# ---------------------------------------------------------------- table of contents

def parse_toc(html: bytes | str, page_url: str, chapter: str | None = None) -> TocPage:
    """The work page or one TOC page (?p=N). `chapter` is the chapter the previous TOC
    page ended in. Raises LayoutChanged when the page holds neither an episode list
    nor a short story's body."""
    doc = _doc(html)
    eplist = _first(doc, f"//div[{_cls('p-eplist')}]")
    if eplist is not None:
        page = TocPage("current", _text(_first(doc, f"//*[{_cls('p-novel__title')}]")),
                       _author(_first(doc, f"//*[{_cls('p-novel__author')}]")))
        page.entries = _entries(eplist.xpath(f".//*[{_cls('p-eplist__chapter-title')} or (self::a and "
                                             f"{_cls('p-eplist__subtitle')}) or {_cls('p-eplist__update')}]"),
                                "p-eplist__chapter-title", "p-eplist__update", chapter, page_url)
        nxt = _first(doc, f"//a[{_cls('c-pager__item--next')}][@href]")
        if nxt is not None:
            page.next_url = urljoin(page_url, nxt.get("href"))
        last = _first(doc, f"//a[{_cls('c-pager__item--last')}][@href]")
        if last is not None:
            p = parse_qs(urlsplit(urljoin(page_url, last.get("href"))).query).get("p")
            page.last_page = int(p[0]) if p and p[0].isdigit() else None
    elif doc.xpath(f"//dl[{_cls('novel_sublist2')}]"):
        page = TocPage("old", _text(_first(doc, f"//*[{_cls('novel_title')}]")),
                       _author(_first(doc, f"//*[{_cls('novel_writername')}]")))
        page.entries = _entries(doc.xpath(f"//div[{_cls('chapter_title')}] | //dl[{_cls('novel_sublist2')}]"
                                          f"//dd[{_cls('subtitle')}]//a | //dl[{_cls('novel_sublist2')}]"
                                          f"//dt[{_cls('long_update')}]"),
                                "chapter_title", "long_update", chapter, page_url)
    else:
        current = _first(doc, f"//div[{_cls('p-novel__body')} or {_cls('js-novel-text')}]") is not None
        page = TocPage("current" if current else "old",
                       _text(_first(doc, f"//*[{_cls('p-novel__title' if current else 'novel_title')}]")),
                       _author(_first(doc, f"//*[{_cls('p-novel__author' if current else 'novel_writername')}]")))
        if _body_containers(doc)[0]:
            page.short = True
            return page
        raise LayoutChanged(f"{page_url}: no episode list and no novel text found; the page layout "
                            "has probably changed, so nocpipe needs an update (nothing stored)")
    numbers = [e.number for e in page.entries]
    if not page.entries:
        raise LayoutChanged(f"{page_url}: the episode list parsed to zero episodes; the page layout "
                            "has probably changed, so nocpipe needs an update (nothing stored)")
    if len(set(numbers)) != len(numbers):
        raise LayoutChanged(f"{page_url}: the episode list has repeated episode numbers; the page "
                            "layout has probably changed")
    return page


def _author(el: etree._Element | None) -> str:
    if el is None:
        return ""
    a = _first(el, ".//a")
    text = _text(a) if a is not None else _text(el)
    return re.sub(r"^作者[:：]\s*", "", text)


def _entries(elements: list, chapter_class: str, update_class: str, chapter: str | None,
             page_url: str) -> list[TocEntry]:
    """Entries from chapter titles, episode links and update dates in document order
    (an update element belongs to the link before it)."""
    found: list[list] = []  # [link, update, chapter]
    for el in elements:
        if _has_class(el, chapter_class):
            chapter = _text(el)
        elif _has_class(el, update_class):
            if found and found[-1][1] is None:
                found[-1][1] = el
        else:
            found.append([el, None, chapter])
    return [_entry(link, update, ch, page_url) for link, update, ch in found]


def _entry(link: etree._Element, update: etree._Element | None, chapter: str | None,
           page_url: str) -> TocEntry:
    href = link.get("href")
    if not href:
        raise LayoutChanged(f"{page_url}: an episode entry without a link; the page layout has "
                            "probably changed")
    url = urljoin(page_url, href)
    m = _EP_NUMBER_RE.search(urlsplit(url).path)
    if not m:
        raise LayoutChanged(f"{page_url}: episode link {href!r} has no episode number; the "
                            "page layout has probably changed")
    published, revised = _dates(update)
    return TocEntry(int(m.group(1)), url, _text(link), chapter, published, revised)


# ---------------------------------------------------------------- episode pages

def _body_containers(doc: etree._Element) -> tuple[list, list, list, str]:
    """(body, preface, afterword) containers and the layout name."""
    texts = doc.xpath(f"//div[{_cls('p-novel__text')}]")
    if texts:
        pre = [d for d in texts if _has_class(d, "p-novel__text--preface")]
        after = [d for d in texts if _has_class(d, "p-novel__text--afterword")]
        body = [d for d in texts if d not in pre and d not in after]
        return body, pre, after, "current"
    return doc.xpath("//*[@id='novel_honbun']"), doc.xpath("//*[@id='novel_p']"), \
        doc.xpath("//*[@id='novel_a']"), "old"


def parse_episode(html: bytes | str, where: str = "episode page") -> EpisodePage:
    """Body, preface and afterword lines of an episode page (or a short story's page)."""
    doc = _doc(html)
    body, pre, after, layout = _body_containers(doc)
    if not body:
        raise LayoutChanged(f"{where}: no novel text found (neither div.p-novel__text nor #novel_honbun); "
                            "the page layout has probably changed, so nocpipe needs an update")
    lines = [ln for c in body for ln in html_lines(c)]
    if not any(ln.strip() for ln in lines) and not any(True for c in body for _ in c.iter("img")):
        raise LayoutChanged(f"{where}: the novel text is empty; the page layout has probably changed, "
                            "so nocpipe needs an update")
    subtitle = _text(_first(doc, f"//*[{_cls('p-novel__title')} or {_cls('novel_subtitle')}]"))
    return EpisodePage(layout, subtitle, lines,
                       [ln for c in pre for ln in html_lines(c)],
                       [ln for c in after for ln in html_lines(c)])


def html_lines(container: etree._Element) -> list[str]:
    """One line per <p> (split at <br>), ruby as ｜base《reading》, other tags removed."""
    paragraphs = container.xpath(".//p[not(ancestor::p)]")
    if not paragraphs:
        return _split_lines(container)
    out: list[str] = []
    for p in paragraphs:
        out.extend(_split_lines(p))
    return out


def _split_lines(el: etree._Element) -> list[str]:
    parts: list[list[str]] = [[]]
    _walk(el, parts)
    lines = ["".join(p) for p in parts]
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()  # a trailing <br> ends the line, it does not start another
    return lines


def _clean(text: str | None) -> str:
    return text.replace("\r", "").replace("\n", "") if text else ""


def _walk(el: etree._Element, parts: list[list[str]]) -> None:
    parts[-1].append(_clean(el.text))
    for child in el:
        tag = child.tag if isinstance(child.tag, str) else None  # None: a comment
        if tag == "br":
            parts.append([])
        elif tag == "ruby":
            parts[-1].append(ruby_text(child))
        elif tag is not None and tag not in _SKIP:
            _walk(child, parts)
        parts[-1].append(_clean(child.tail))


def _plain(el: etree._Element) -> str:
    out = [el.text or ""]
    for child in el:
        if isinstance(child.tag, str) and child.tag not in _SKIP:
            out.append(_plain(child))
        out.append(child.tail or "")
    return "".join(out)


def ruby_text(ruby: etree._Element) -> str:
    """<ruby>漢字<rt>かんじ</rt></ruby> (with or without rb/rp) -> ｜漢字《かんじ》."""
    rbs = [c for c in ruby if c.tag == "rb"]
    rts = [c for c in ruby if c.tag == "rt"]
    pairs: list[tuple[str, str]] = []
    if rbs and len(rbs) == len(rts):
        pairs = [(_plain(b), _plain(t)) for b, t in zip(rbs, rts)]
    elif rbs:
        pairs = [("".join(_plain(b) for b in rbs), "".join(_plain(t) for t in rts))]
    else:
        base = [ruby.text or ""]
        for child in ruby:
            if child.tag == "rt":
                pairs.append(("".join(base), _plain(child)))
                base = []
            elif isinstance(child.tag, str) and child.tag != "rp":
                base.append(_plain(child))
            base.append(child.tail or "")
        if "".join(base).strip():
            pairs.append(("".join(base), ""))
    out = []
    for base_text, reading in pairs:
        base_text = _clean(base_text).translate(_RUBY_MARKS)
        reading = _clean(reading).strip().translate(_RUBY_MARKS)
        if not base_text:
            continue
        if not reading or set(reading) <= _EMPHASIS:
            out.append(base_text)
        else:
            out.append(f"｜{base_text}《{reading}》")
    return "".join(out)


# ---------------------------------------------------------------- the raw store

def read_work(work_dir: Path, counters: Counters) -> Iterator[Episode]:
    """Episodes of a scraped work (raw/<nocturne|narou>/<ncode>/), body lines only."""
    for number, path in rawstore.episode_files(work_dir):
        try:
            page = parse_episode(path.read_bytes(), where=str(path))
        except LayoutChanged as exc:
            raise StoreError(f"{exc} (stored file; scrape the work again or update nocpipe)") from exc
        counters.add("preface_lines", sum(1 for ln in page.preface if ln.strip()))
        counters.add("afterword_lines", sum(1 for ln in page.afterword if ln.strip()))
        yield Episode(number, page.body)
