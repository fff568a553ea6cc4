"""Pages of the syosetu.com family (Nocturne/Moonlight/Midnight on novel18, narou on ncode):
tables of contents for `scrape`, episode pages for `scrape` and `extract-pairs`.

Pages are parsed from their bytes with Beautiful Soup (the lxml builder). The encoding is
the one the bytes prove: a BOM, then strict UTF-8, then what the page declares (XML
declaration, <meta charset>, http-equiv, the HTTP header as a hint), each used only if the
bytes decode with it, then the Japanese legacy encodings. So XHTML with an XML declaration,
a BOM, a Shift_JIS page served with a UTF-8 header all parse; a page is never decoded by a
header that lies. Where things are on a page is the layout table in `site.py` (CSS).

A short story (API noveltype 2) has its body on the work's own page and no episode list.
Each <p> of a body is one line (<p><br></p> is a blank line). Ruby becomes ｜base《reading》
in the line, so pipeline.kana reads it as the author did; ruby that is only emphasis dots
(傍点) keeps its base. Other tags are removed, entities decoded.

A page with no episode list and no body, or a body container that is missing, is a
layout change: `LayoutChanged` says so (with the URL) instead of yielding nothing.
"""

from __future__ import annotations

import codecs
import functools
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import soupsieve
from bs4 import BeautifulSoup, NavigableString, ParserRejectedMarkup, Tag, XMLParsedAsHTMLWarning
from bs4.element import CData, Comment, Declaration, Doctype, ProcessingInstruction

from .. import rawstore
from ..errors import FetchError, StoreError
from ..records import Counters, Episode
from .site import LAYOUTS, Layout

_DATE_RE = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})\s*(\d{1,2}):(\d{2})")
_EP_NUMBER_RE = re.compile(r"/([0-9]+)/?$")
_XML_DECL_RE = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""")
_CHARSET_RE = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_EMPHASIS = set("・﹅﹆、゛•●○◦·．.丶ヽ ")
_RUBY_MARKS = str.maketrans("", "", "｜|《》")
_SKIP = ("rt", "rp", "script", "style")
_NOT_TEXT = (Comment, CData, Declaration, Doctype, ProcessingInstruction)
# Shift_JIS pages are really Windows-31J (NEC and IBM extensions); EUC-JP pages may use JIS X 0213.
_ALIASES = {
    "shift_jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "ms_kanji": "cp932",
    "euc-jp": "euc_jis_2004",
    "euc_jp": "euc_jis_2004",
    "x-euc-jp": "euc_jis_2004",
}
_LEGACY = ("cp932", "euc_jis_2004")


class LayoutChanged(FetchError):
    """A page does not have the shape nocpipe knows: the site's layout has changed."""


@dataclass(frozen=True)
class TocEntry:
    number: int
    url: str
    subtitle: str
    chapter: str | None
    published: str | None  # "YYYY-MM-DD HH:MM" (JST, as shown)
    revised: str | None  # the 改稿 date, when there is one

    @property
    def key(self) -> list:
        """What identifies this version of the episode (compared on updates)."""
        return [self.subtitle, self.published, self.revised]


@dataclass
class TocPage:
    layout: str  # "current" or "old"
    title: str
    author: str
    entries: list[TocEntry] = field(default_factory=list)
    next_url: str | None = None
    last_page: int | None = None
    short: bool = False  # the page itself is the text (a short story)


@dataclass
class EpisodePage:
    layout: str
    subtitle: str
    body: list[str]
    preface: list[str]
    afterword: list[str]


# ---------------------------------------------------------------- bytes to a document


def _codec(name: str | bytes | None) -> str | None:
    if not name:
        return None
    if isinstance(name, bytes):
        name = name.decode("ascii", "replace")
    name = name.strip().strip("\"'").lower()
    name = _ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _strict(data: bytes, enc: str | None) -> str | None:
    if not enc:
        return None
    try:
        return data.decode(enc)
    except (UnicodeDecodeError, LookupError):
        return None


def decode_page(data: bytes | str, header_charset: str | None = None) -> tuple[str, str]:
    """(text, encoding) of a page's bytes; see the module docstring for the order."""
    if isinstance(data, str):
        return data.lstrip("\ufeff"), "str"
    for bom, enc in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if data.startswith(bom):
            text = _strict(data[len(bom) :], enc)
            if text is not None:
                return text, enc
    text = _strict(data, "utf-8")
    if text is not None:
        return text, "utf-8"
    head = data[:4096]
    declared = [m.group(1) for m in (_XML_DECL_RE.match(head), _CHARSET_RE.search(head)) if m]
    candidates = [_codec(d) for d in declared] + [_codec(header_charset)] + list(_LEGACY)
    for name in [c for c in candidates if c]:  # an unknown or missing charset names no codec
        text = _strict(data, name)
        if text is not None:
            return text, name
    return data.decode("utf-8", errors="replace"), "utf-8 (with replacements)"


# Processing instructions (an XML declaration) and doctypes are dropped before parsing:
# the HTML builder has no use for them, and the text is already decoded.
_PROLOG_RE = re.compile(r"^\s*(?:<\?xml[^>]*\?>\s*)?", re.IGNORECASE)


def _soup(data: bytes | str, header_charset: str | None = None) -> BeautifulSoup:
    text, _ = decode_page(data, header_charset)
    text = _PROLOG_RE.sub("", text, count=1)
    try:
        # A page is parsed as HTML whatever it claims to be (an XML declaration further in,
        # a feed served by mistake): bs4's advice to use an XML parser does not apply.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
            return BeautifulSoup(text or "<html></html>", "lxml")
    except (ValueError, ParserRejectedMarkup) as exc:  # whatever the page is, it is not one we know
        raise LayoutChanged(f"the page cannot be parsed as HTML ({exc})") from exc


def _layout_of(soup: BeautifulSoup, what: str) -> Layout | None:
    for layout in LAYOUTS:
        if soup.select_one(getattr(layout, what)) is not None:
            return layout
    return None


def _text(el: Tag | None) -> str:
    return " ".join(el.get_text().split()) if el is not None else ""


def _date(text: str) -> str | None:
    m = _DATE_RE.search(text)
    if not m:
        return None
    y, mo, d, h, mi = (int(x) for x in m.groups())
    return f"{y:04d}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}"


def _dates(update: Tag | None) -> tuple[str | None, str | None]:
    """(published, revised) from an update element: the first date in its own text, and
    the date in the title of its 改稿 mark."""
    if update is None:
        return None, None
    revised: str | None = None
    own: list[str] = []

    def walk(el: Tag) -> None:
        nonlocal revised
        for child in el.children:
            if isinstance(child, Tag):
                title = child.get("title") or ""
                if isinstance(title, list):
                    title = " ".join(title)
                if "改稿" in title:
                    revised = _date(title) or title.strip()
                elif not title:
                    walk(child)
            elif isinstance(child, NavigableString) and not isinstance(child, _NOT_TEXT):
                own.append(str(child))

    walk(update)
    return _date(" ".join(own)), revised


def _untrusted(where_arg: str) -> Callable:
    """A page is input from elsewhere: whatever goes wrong while reading it (a malformed
    URL, markup no layout expects) is that page not parsing, never a crash of the run."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def run(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except LayoutChanged:
                raise
            except Exception as exc:  # noqa: BLE001 - see the docstring
                where = kwargs.get(where_arg, args[1] if len(args) > 1 else "page")
                raise LayoutChanged(f"{where}: the page cannot be read ({type(exc).__name__}: {exc})") from exc

        return run

    return decorate


# ---------------------------------------------------------------- table of contents


@_untrusted("page_url")
def parse_toc(
    html: bytes | str, page_url: str, chapter: str | None = None, header_charset: str | None = None
) -> TocPage:
    """The work page or one TOC page (?p=N). `chapter` is the chapter the previous TOC
    page ended in. Raises LayoutChanged when the page holds neither an episode list
    nor a short story's body."""
    soup = _soup(html, header_charset)
    layout = _layout_of(soup, "toc")
    if layout is None:
        layout = _layout_of(soup, "body")
        if layout is None:
            raise LayoutChanged(
                f"{page_url}: no episode list and no novel text found; the page layout "
                "has probably changed, so nocpipe needs an update (nothing stored)"
            )
        return TocPage(
            layout.name, _text(soup.select_one(layout.title)), _author(soup.select_one(layout.author)), short=True
        )
    page = TocPage(layout.name, _text(soup.select_one(layout.title)), _author(soup.select_one(layout.author)))
    page.entries = _entries(soup.select(layout.toc_items), layout, chapter, page_url)
    if layout.next_page:
        nxt = soup.select_one(layout.next_page)
        if nxt is not None:
            try:
                page.next_url = urljoin(page_url, _attr(nxt, "href"))
            except ValueError as exc:
                raise LayoutChanged(f"{page_url}: the pager's next link is not a URL ({exc})") from exc
    if layout.last_page:
        last = soup.select_one(layout.last_page)
        if last is not None:
            try:
                p = parse_qs(urlsplit(urljoin(page_url, _attr(last, "href"))).query).get("p")
            except ValueError:
                p = None
            page.last_page = int(p[0]) if p and p[0].isascii() and p[0].isdigit() else None
    numbers = [e.number for e in page.entries]
    if not page.entries:
        raise LayoutChanged(
            f"{page_url}: the episode list parsed to zero episodes; the page layout "
            "has probably changed, so nocpipe needs an update (nothing stored)"
        )
    if len(set(numbers)) != len(numbers):
        raise LayoutChanged(
            f"{page_url}: the episode list has repeated episode numbers; the page layout has probably changed"
        )
    return page


def _attr(el: Tag, name: str) -> str:
    value = el.get(name) or ""
    return " ".join(value) if isinstance(value, list) else value.strip()


def _author(el: Tag | None) -> str:
    if el is None:
        return ""
    a = el.select_one("a")
    text = _text(a) if a is not None else _text(el)
    return re.sub(r"^作者[:：]\s*", "", text)


def _entries(elements: list[Tag], layout: Layout, chapter: str | None, page_url: str) -> list[TocEntry]:
    """Entries from chapter titles, episode links and update dates in document order
    (an update element belongs to the link before it)."""
    found: list[list] = []  # [link, update, chapter]
    for el in elements:
        if soupsieve.match(layout.chapter, el):
            chapter = _text(el)
        elif soupsieve.match(layout.update, el):
            if found and found[-1][1] is None:
                found[-1][1] = el
        else:
            found.append([el, None, chapter])
    return [_entry(link, update, ch, page_url) for link, update, ch in found]


def _entry(link: Tag, update: Tag | None, chapter: str | None, page_url: str) -> TocEntry:
    href = _attr(link, "href")
    if not href:
        raise LayoutChanged(f"{page_url}: an episode entry without a link; the page layout has probably changed")
    try:
        url = urljoin(page_url, href)
        m = _EP_NUMBER_RE.search(urlsplit(url).path)
    except ValueError:  # a malformed URL ("http://[::1")
        m = None
    if not m or int(m.group(1)) < 1:
        raise LayoutChanged(
            f"{page_url}: episode link {href!r} has no episode number; the page layout has probably changed"
        )
    published, revised = _dates(update)
    return TocEntry(int(m.group(1)), url, _text(link), chapter, published, revised)


# ---------------------------------------------------------------- episode pages


@_untrusted("where")
def parse_episode(html: bytes | str, where: str = "episode page", header_charset: str | None = None) -> EpisodePage:
    """Body, preface and afterword lines of an episode page (or a short story's page)."""
    soup = _soup(html, header_charset)
    layout = _layout_of(soup, "body")
    if layout is None:
        wanted = " nor ".join(lay.body for lay in LAYOUTS)
        raise LayoutChanged(
            f"{where}: no novel text found (neither {wanted}); "
            "the page layout has probably changed, so nocpipe needs an update"
        )
    body = soup.select(layout.body)
    lines = [ln for c in body for ln in html_lines(c)]
    if not any(ln.strip() for ln in lines) and not any(c.find("img") for c in body):
        raise LayoutChanged(
            f"{where}: the novel text is empty; the page layout has probably changed, so nocpipe needs an update"
        )
    return EpisodePage(
        layout.name,
        _text(soup.select_one(layout.subtitle)),
        lines,
        [ln for c in soup.select(layout.preface) for ln in html_lines(c)],
        [ln for c in soup.select(layout.afterword) for ln in html_lines(c)],
    )


def html_lines(container: Tag) -> list[str]:
    """One line per <p> (split at <br>), ruby as ｜base《reading》, other tags removed."""
    paragraphs = [p for p in container.find_all("p") if p.find_parent("p") is None]
    if not paragraphs:
        return _split_lines(container)
    out: list[str] = []
    for p in paragraphs:
        out.extend(_split_lines(p))
    return out


def _split_lines(el: Tag) -> list[str]:
    parts: list[list[str]] = [[]]
    _walk(el, parts)
    lines = ["".join(p) for p in parts]
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()  # a trailing <br> ends the line, it does not start another
    return lines


def _clean(text: str | None) -> str:
    return text.replace("\r", "").replace("\n", "") if text else ""


def _is_text(node: object) -> bool:
    return isinstance(node, NavigableString) and not isinstance(node, _NOT_TEXT)


def _walk(el: Tag, parts: list[list[str]]) -> None:
    for child in el.children:
        if _is_text(child):
            parts[-1].append(_clean(str(child)))
        elif isinstance(child, Tag):
            if child.name == "br":
                parts.append([])
            elif child.name == "ruby":
                parts[-1].append(ruby_text(child))
            elif child.name not in _SKIP:
                _walk(child, parts)


def _plain(el: Tag) -> str:
    out = []
    for child in el.children:
        if _is_text(child):
            out.append(str(child))
        elif isinstance(child, Tag) and child.name not in _SKIP:
            out.append(_plain(child))
    return "".join(out)


def ruby_text(ruby: Tag) -> str:
    """<ruby>漢字<rt>かんじ</rt></ruby> (with or without rb/rp) -> ｜漢字《かんじ》."""
    tags = [c for c in ruby.children if isinstance(c, Tag)]
    rbs = [c for c in tags if c.name == "rb"]
    rts = [c for c in tags if c.name == "rt"]
    pairs: list[tuple[str, str]] = []
    if rbs and len(rbs) == len(rts):
        pairs = [(_plain(b), _plain(t)) for b, t in zip(rbs, rts)]
    elif rbs:
        pairs = [("".join(_plain(b) for b in rbs), "".join(_plain(t) for t in rts))]
    else:
        base: list[str] = []
        for child in ruby.children:
            if isinstance(child, Tag) and child.name == "rt":
                pairs.append(("".join(base), _plain(child)))
                base = []
            elif isinstance(child, Tag) and child.name != "rp":
                base.append(_plain(child))
            elif _is_text(child):
                base.append(str(child))
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
