"""A small local stand-in for the syosetu.com family, for tests and the benchmark.

It serves hand-written pages in the current and the older layout (made-up text, the
real markup shapes), the novel API (JSON, gzip=5, lim/st paging with the real limits,
the filters), robots.txt, an age gate for the R18 site, and faults on demand. Every
request is logged with its arrival time, path and headers, so tests can check what
was asked for and when.

    with SyosetuServer([Work(...)]) as srv:
        srv.url, srv.api_url
        srv.fault("/n0001aa/2/", "429:1", "truncate")   # the next requests of that path
        srv.log                                        # [Hit(t, path, headers), ...]

Pages can be served as older sites and mirrors do: XHTML with an XML declaration
(`xhtml=True`), in Shift_JIS (`encoding="cp932"`), with a BOM, or with a Content-Type
charset that lies (`charset_header`). A work's TOC can link an episode to another host
(`Work.links`), and any path can redirect anywhere (fault "redirect:URL"). Two servers
side by side are two origins on 127.0.0.1: the second one's log shows what reached it.
"""

from __future__ import annotations

import gzip
import html
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlsplit

JST = timezone(timedelta(hours=9))
RUBY_RE = re.compile(r"｜([^｜《》]+)《([^《》]+)》")


@dataclass
class Ep:
    subtitle: str
    body: list[str]  # lines; ruby written ｜base《reading》
    preface: list[str] = field(default_factory=list)
    afterword: list[str] = field(default_factory=list)
    published: str = "2021/04/01 12:00"
    revised: str | None = None
    chapter: str | None = None


@dataclass
class Work:
    ncode: str
    title: str
    author: str
    episodes: list[Ep]
    layout: str = "current"  # or "old"
    short: bool = False
    gone: bool = False
    updated_at: str = "2021-05-01 10:00:00"
    lastup: str = "2021-05-01 10:00:00"
    genre: int = 1
    length: int = 10000
    kaiwaritu: int = 40
    end: int = 0
    links: dict[int, str] = field(default_factory=dict)  # episode number -> the TOC's href instead

    def api_record(self, site: str) -> dict:
        rec = {
            "title": self.title,
            "ncode": self.ncode.upper(),
            "writer": self.author,
            "noveltype": 2 if self.short else 1,
            "end": self.end,
            "general_all_no": len(self.episodes),
            "length": self.length,
            "kaiwaritu": self.kaiwaritu,
            "general_firstup": "2021-04-01 12:00:00",
            "general_lastup": self.lastup,
            "novelupdated_at": self.updated_at,
            "updated_at": self.updated_at,
        }
        rec["nocgenre" if site == "nocturne" else "genre"] = self.genre
        return rec


@dataclass
class Hit:
    t: float
    path: str
    headers: dict[str, str]

    @property
    def plain_path(self) -> str:
        return urlsplit(self.path).path


def ruby_html(line: str, with_rb: bool = True) -> str:
    out, pos = [], 0
    for m in RUBY_RE.finditer(line):
        out.append(html.escape(line[pos : m.start()], quote=False))
        base, reading = html.escape(m.group(1), quote=False), html.escape(m.group(2), quote=False)
        if with_rb:
            out.append(f"<ruby><rb>{base}</rb><rp>(</rp><rt>{reading}</rt><rp>)</rp></ruby>")
        else:
            out.append(f"<ruby>{base}<rt>{reading}</rt></ruby>")
        pos = m.end()
    out.append(html.escape(line[pos:], quote=False))
    return "".join(out)


def _ps(lines: list[str], prefix: str, with_rb: bool) -> str:
    return "\n".join(
        f'<p id="{prefix}{i}">{ruby_html(ln, with_rb) if ln else "<br />"}</p>' for i, ln in enumerate(lines, 1)
    )


def _page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="ja">\n<head>\n<meta charset="UTF-8">\n<title>{title}</title>\n'
        f'<link rel="stylesheet" href="/css/site.css">\n</head>\n<body>\n<header class="l-header">'
        f'<a href="/">トップ</a> <a href="/secret/admin/">管理</a></header>\n{body}\n'
        '<footer class="l-footer"><a href="/info/">案内</a></footer>\n</body>\n</html>\n'
    )


def _href(w: Work, n: int) -> str:
    return html.escape(w.links.get(n, f"/{w.ncode}/{n}/"))


def as_xhtml(page: str, charset: str = "UTF-8") -> str:
    """The same page as XHTML 1.1 with an XML declaration, as older pages and mirrors serve it."""
    head = '<!DOCTYPE html>\n<html lang="ja">\n<head>\n<meta charset="UTF-8">'
    assert page.startswith(head)
    return (
        f'<?xml version="1.0" encoding="{charset}"?>\n'
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.1//EN" "http://www.w3.org/TR/xhtml11/DTD/xhtml11.dtd">\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="ja">\n<head>\n'
        f'<meta http-equiv="Content-Type" content="application/xhtml+xml; charset={charset}" />'
        + page[len(head) :].replace("<br>", "<br />")
    )


def _update_html(ep: Ep) -> str:
    mark = f'<span title="{ep.revised} 改稿">（<u>改</u>）</span>' if ep.revised else ""
    return f"\n{ep.published}\n{mark}\n"


# ---------------------------------------------------------------- pages, current layout


def toc_current(w: Work, page: int, per_page: int) -> str:
    eps = w.episodes[(page - 1) * per_page : page * per_page]
    last = max(1, -(-len(w.episodes) // per_page))
    items, chapter = [], None if page == 1 else w.episodes[(page - 1) * per_page - 1].chapter
    for i, ep in enumerate(eps, (page - 1) * per_page + 1):
        if ep.chapter and ep.chapter != chapter:
            items.append(f'<div class="p-eplist__chapter-title">{html.escape(ep.chapter)}</div>')
        chapter = ep.chapter
        items.append(
            f'<div class="p-eplist__sublist">\n<a href="{_href(w, i)}" class="p-eplist__subtitle">\n'
            f'{html.escape(ep.subtitle)}\n</a>\n<div class="p-eplist__update">{_update_html(ep)}</div>\n</div>'
        )
    pager = ""
    if last > 1:
        parts = []
        if page > 1:
            parts.append(f'<a href="/{w.ncode}/" class="c-pager__item c-pager__item--first">最初へ</a>')
            parts.append(f'<a href="/{w.ncode}/?p={page - 1}" class="c-pager__item c-pager__item--before">前へ</a>')
        if page < last:
            parts.append(f'<a href="/{w.ncode}/?p={page + 1}" class="c-pager__item c-pager__item--next">次へ</a>')
            parts.append(f'<a href="/{w.ncode}/?p={last}" class="c-pager__item c-pager__item--last">最後へ</a>')
        pager = '<div class="c-pager c-pager--center">' + "\n".join(parts) + "</div>"
    body = (
        f'<div class="l-container"><article class="p-novel">\n'
        f'<h1 class="p-novel__title">{html.escape(w.title)}</h1>\n'
        f'<div class="p-novel__author">作者：<a href="https://mypage.example/1/">{html.escape(w.author)}</a></div>\n'
        f'<div id="novel_ex" class="p-novel__summary">「あらすじ」です。</div>\n'
        f'{pager}\n<div class="p-eplist">\n' + "\n".join(items) + f"\n</div>\n{pager}\n</article></div>"
    )
    return _page(w.title, body)


def episode_current(w: Work, n: int | None) -> str:
    ep = w.episodes[(n or 1) - 1]
    blocks = []
    if ep.preface:
        blocks.append(
            f'<div class="js-novel-text p-novel__text p-novel__text--preface">\n{_ps(ep.preface, "Lp", True)}\n</div>'
        )
    blocks.append(f'<div class="js-novel-text p-novel__text">\n{_ps(ep.body, "L", True)}\n</div>')
    if ep.afterword:
        blocks.append(
            '<div class="js-novel-text p-novel__text p-novel__text--afterword">\n'
            f"{_ps(ep.afterword, 'La', True)}\n</div>"
        )
    title = w.title if n is None else ep.subtitle
    nav = (
        ""
        if n is None
        else (
            f'<div class="c-pager"><a href="/{w.ncode}/" class="c-pager__item">目次</a>'
            + (
                f'<a href="/{w.ncode}/{n + 1}/" class="c-pager__item c-pager__item--next">次へ</a>'
                if n < len(w.episodes)
                else ""
            )
            + "</div>"
        )
    )
    body = (
        f'<div class="l-container"><article class="p-novel">{nav}\n'
        f'<h1 class="p-novel__title">{html.escape(title)}</h1>\n<div class="p-novel__body">\n'
        + "\n".join(blocks)
        + f"\n</div>\n{nav}</article></div>"
    )
    return _page(title, body)


# ---------------------------------------------------------------- pages, older layout


def toc_old(w: Work) -> str:
    items, chapter = [], None
    for i, ep in enumerate(w.episodes, 1):
        if ep.chapter and ep.chapter != chapter:
            items.append(f'<div class="chapter_title">{html.escape(ep.chapter)}</div>')
        chapter = ep.chapter
        items.append(
            f'<dl class="novel_sublist2">\n<dd class="subtitle">\n<a href="{_href(w, i)}">'
            f'{html.escape(ep.subtitle)}</a>\n</dd>\n<dt class="long_update">{_update_html(ep)}</dt>\n</dl>'
        )
    body = (
        f'<div id="novel_contents"><div id="novel_color">\n<p class="novel_title">{html.escape(w.title)}</p>\n'
        f'<div class="novel_writername">作者：<a href="https://mypage.example/2/">{html.escape(w.author)}</a></div>\n'
        f'<div id="novel_ex">あらすじ「です」。</div>\n<div class="index_box">\n'
        + "\n".join(items)
        + "\n</div>\n</div></div>"
    )
    return _page(w.title, body)


def episode_old(w: Work, n: int | None) -> str:
    ep = w.episodes[(n or 1) - 1]
    parts = []
    if n is not None:
        parts.append(
            f'<div class="novel_bn"><a href="/{w.ncode}/{n + 1}/">次へ &gt;&gt;</a></div>'
            f'<p class="novel_subtitle">{html.escape(ep.subtitle)}</p>'
        )
    else:
        parts.append(
            f'<p class="novel_title">{html.escape(w.title)}</p>'
            f'<div class="novel_writername">作者：{html.escape(w.author)}</div>'
        )
    if ep.preface:
        parts.append(f'<div id="novel_p" class="novel_view">\n{_ps(ep.preface, "Lp", False)}\n</div>')
    parts.append(f'<div id="novel_honbun" class="novel_view">\n{_ps(ep.body, "L", False)}\n</div>')
    if ep.afterword:
        parts.append(f'<div id="novel_a" class="novel_view">\n{_ps(ep.afterword, "La", False)}\n</div>')
    return _page(ep.subtitle, '<div id="novel_contents"><div id="novel_color">\n' + "\n".join(parts) + "\n</div></div>")


# ---------------------------------------------------------------- the server


class SyosetuServer:
    def __init__(
        self,
        works: list[Work],
        site: str = "nocturne",
        *,
        per_page: int = 100,
        robots: str = "User-agent: *\nDisallow: /secret/\nDisallow: /n9999zz/\n",
        robots_status: int = 200,
        age_gate: bool | None = None,
        gzip_html: bool = True,
        extra_api_records: list[dict] | None = None,
        api_ignores_lastup: bool = False,
        xhtml: bool = False,
        encoding: str = "utf-8",
        bom: bool = False,
        charset_header: str | None = None,
    ):
        self.works = {w.ncode: w for w in works}
        self.site = site
        self.per_page = per_page
        self.robots = robots
        self.robots_status = robots_status
        self.age_gate = site == "nocturne" if age_gate is None else age_gate
        self.gzip_html = gzip_html
        self.extra_api_records = extra_api_records or []
        self.api_ignores_lastup = api_ignores_lastup
        self.xhtml, self.encoding, self.bom, self.charset_header = xhtml, encoding, bom, charset_header
        self.log: list[Hit] = []
        self.faults: dict[str, list[str]] = {}
        self.overrides: dict[str, tuple[int, str]] = {}  # path -> (status, body): a changed layout
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    # -------------------------------------------------------- control

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def api_path(self) -> str:
        return "/novel18api/api/" if self.site == "nocturne" else "/novelapi/api/"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.api_path}"

    def fault(self, path: str, *actions: str) -> None:
        """The next len(actions) requests of `path` (with its query) get these faults:
        "429:S" (Retry-After S s), "429date:S", "503", "503:S", "500", "502", "504",
        "truncate", "slow:S", "reset", "ageauth", "redirect:URL" (a 302 there), "drip:S" (the
        page one byte every S seconds), "ok"."""
        with self._lock:
            self.faults.setdefault(path, []).extend(actions)

    def hits(self, path_prefix: str = "") -> list[Hit]:
        with self._lock:
            return [h for h in self.log if h.path.startswith(path_prefix)]

    def episode_hits(self) -> list[Hit]:
        return [h for h in self.hits() if re.fullmatch(r"/n\d{4}[a-z]+/\d+/", h.plain_path)]

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    def start(self) -> "SyosetuServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                server._handle(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> "SyosetuServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -------------------------------------------------------- requests

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        t = time.monotonic()
        with self._lock:
            self.log.append(Hit(t, h.path, {k: v for k, v in h.headers.items()}))
            queue = self.faults.get(h.path)
            action = queue.pop(0) if queue else "ok"
        name, _, arg = action.partition(":")
        if name == "slow":
            time.sleep(float(arg))
        elif name == "reset":
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        elif name in ("429", "429date", "500", "502", "503", "504"):
            headers = {}
            if arg:
                headers["Retry-After"] = formatdate(time.time() + float(arg), usegmt=True) if name == "429date" else arg
            self._send(
                h,
                int(name[:3]),
                "text/html; charset=utf-8",
                f"<html><body>error {name[:3]}</body></html>".encode(),
                headers,
            )
            return
        elif name == "redirect":
            self._redirect(h, arg)
            return
        elif name == "drip":
            self._drip(h, float(arg))
            return
        elif name == "ageauth":
            self._redirect(h, "https://nl.syosetu.com/redirect/ageauth/?url=" + quote(self.url[:-1] + h.path, safe=""))
            return
        status, ctype, body, headers = self._route(h)
        self._send(h, status, ctype, body, headers, truncate=(name == "truncate"))

    def _drip(self, h: BaseHTTPRequestHandler, every: float) -> None:
        body = self._route(h)[2]
        h.send_response(200)
        h.send_header("Content-Type", "text/html; charset=utf-8")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        try:
            for i in range(len(body)):
                h.wfile.write(body[i : i + 1])
                h.wfile.flush()
                time.sleep(every)
        except OSError:
            pass  # the client gave up: that is the point

    def _redirect(self, h: BaseHTTPRequestHandler, location: str) -> None:
        self._send(h, 302, "text/html", b"", {"Location": location})

    def _send(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        ctype: str,
        body: bytes,
        headers: dict | None = None,
        truncate: bool = False,
    ) -> None:
        headers = dict(headers or {})
        if self.gzip_html and ctype.startswith("text/html") and body and "gzip" in h.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            h.send_header(k, v)
        if truncate:
            h.send_header("Connection", "close")
            h.close_connection = True
        h.end_headers()
        try:
            h.wfile.write(body[: len(body) // 2] if truncate else body)
            h.wfile.flush()
        except OSError:
            pass

    def _route(self, h: BaseHTTPRequestHandler) -> tuple[int, str, bytes, dict]:
        parts = urlsplit(h.path)
        path, query = parts.path, parse_qs(parts.query)
        html_type = "text/html; charset=utf-8"
        if path in self.overrides:
            status, text = self.overrides[path]
            return status, html_type, text.encode(), {}
        if path == "/robots.txt":
            if self.robots_status != 200:
                return self.robots_status, "text/plain", b"error", {}
            return 200, "text/plain", self.robots.encode(), {}
        if path == self.api_path:
            return self._api(query)
        m = re.fullmatch(r"/(n\d{4}[a-z]+)/(?:(\d+)/)?", path)
        if not m or m.group(1) not in self.works:
            return 404, html_type, b"<html><body>404 Not Found</body></html>", {}
        w = self.works[m.group(1)]
        if self.age_gate and "over18=yes" not in h.headers.get("Cookie", ""):
            return (
                302,
                "text/html",
                b"",
                {"Location": "https://nl.syosetu.com/redirect/ageauth/?url=" + quote(self.url[:-1] + h.path, safe="")},
            )
        if w.gone:
            return 404, html_type, "<html><body>作品は削除されました</body></html>".encode(), {}
        n = int(m.group(2)) if m.group(2) else None
        if w.short:
            if n is not None:
                return 404, html_type, b"<html><body>404</body></html>", {}
            page = episode_current(w, None) if w.layout == "current" else episode_old(w, None)
        elif n is None:
            p = int(query.get("p", ["1"])[0])
            page = toc_current(w, p, self.per_page) if w.layout == "current" else toc_old(w)
        elif 1 <= n <= len(w.episodes):
            page = episode_current(w, n) if w.layout == "current" else episode_old(w, n)
        else:
            return 404, html_type, b"<html><body>404</body></html>", {}
        return 200, self._content_type(), self._encode(page), {}

    def _content_type(self) -> str:
        charset = self.charset_header or ("Shift_JIS" if self.encoding == "cp932" else self.encoding)
        return f"text/html; charset={charset}"

    def _encode(self, page: str) -> bytes:
        declared = {"cp932": "Shift_JIS"}.get(self.encoding, self.encoding.upper())
        if self.xhtml:
            page = as_xhtml(page, declared)
        else:
            page = page.replace('<meta charset="UTF-8">', f'<meta charset="{declared}">')
        data = page.encode(self.encoding)
        return (b"\xef\xbb\xbf" + data) if self.bom and self.encoding == "utf-8" else data

    # -------------------------------------------------------- the API

    def api_records(self) -> list[dict]:
        # A deleted work leaves the API too.
        return [w.api_record(self.site) for w in self.works.values() if not w.gone] + self.extra_api_records

    def _api(self, q: dict[str, list[str]]) -> tuple[int, str, bytes, dict]:
        def one(k: str, default: str | None = None) -> str | None:
            return q.get(k, [default])[0]

        lim, st = int(one("lim", "20")), int(one("st", "1"))
        if not (1 <= lim <= 500) or not (1 <= st <= 2000):
            return 400, "application/json", json.dumps({"error": "lim or st out of range"}).encode(), {}
        recs = self.api_records()
        if one("ncode"):
            wanted = {n.lower() for n in one("ncode").split("-")}
            recs = [r for r in recs if r["ncode"].lower() in wanted]
        genre_key = "nocgenre" if self.site == "nocturne" else "genre"
        if one(genre_key):
            genres = {int(g) for g in one(genre_key).split("-")}
            recs = [r for r in recs if r.get(genre_key) in genres]
        if one("word"):
            recs = [r for r in recs if one("word") in r["title"]]
        if one("minlen"):
            recs = [r for r in recs if r["length"] >= int(one("minlen"))]
        if one("kaiwaritu"):
            lo, _, hi = one("kaiwaritu").partition("-")
            recs = [r for r in recs if int(lo or 0) <= r["kaiwaritu"] <= int(hi or 100)]
        if one("type") == "ter":
            recs = [r for r in recs if r["end"] == 0]
        if one("lastup") and not self.api_ignores_lastup:
            lo, hi = (int(x) for x in one("lastup").split("-"))
            recs = [r for r in recs if lo <= _ts(r["general_lastup"]) <= hi]
        order = one("order", "new")
        if order == "ncodeasc":
            recs.sort(key=lambda r: r["ncode"])
        else:
            recs.sort(key=lambda r: (r["general_lastup"], r["ncode"]), reverse=True)
        page = recs[st - 1 : st - 1 + lim]
        body = json.dumps([{"allcount": len(recs)}] + page, ensure_ascii=False).encode()
        if one("gzip"):
            return 200, "application/octet-stream", gzip.compress(body, int(one("gzip"))), {}
        return 200, "application/json; charset=utf-8", body, {}


def _ts(jst: str) -> int:
    return int(datetime.strptime(jst, "%Y-%m-%d %H:%M:%S").replace(tzinfo=JST).timestamp())


def sample_works() -> list[Work]:
    """Three works: a paged serial in the current layout (preface, afterword, ruby, a
    revised episode, chapters), a serial in the older layout, and a short story."""
    a = Work(
        "n0001aa",
        "夜の図書館",
        "山田花子",
        [
            Ep(
                "はじまり",
                [
                    "　図書館は静かだった。",
                    "「こんばんは」",
                    "「｜魔王《サタン》様、お待ちしておりました」",
                    "",
                    "　彼女は微笑んだ。",
                    "「本を探しに来たの」",
                    "「どの本でしょう」",
                ],
                preface=["「前書きの台詞です」", "「前書きの返事です」"],
                afterword=["「後書きの台詞」", "「後書きの返事」"],
                chapter="第一章 出会い",
            ),
            Ep(
                "二つ目の夜",
                ["「また来たのね」", "「ええ、また来ました」", "　窓の外は雨。"],
                published="2021/04/02 12:00",
                revised="2021/04/10 09:30",
                chapter="第一章 出会い",
            ),
            Ep(
                "三つ目の夜",
                ["「雨ですね」", "「傘を貸しましょうか」", "「ありがとう」"],
                published="2021/04/03 12:00",
                chapter="第二章 雨",
            ),
            Ep("四つ目の夜", ["「さようなら」", "「またね」"], published="2021/04/04 12:00", chapter="第二章 雨"),
            Ep(
                "五つ目の夜",
                ["「おはよう」", "「｜早起《はやお》きですね」"],
                afterword=["「あとがき」", "「です」"],
                published="2021/04/05 12:00",
                chapter="第二章 雨",
            ),
        ],
        layout="current",
    )
    b = Work(
        "n0002bb",
        "古い街",
        "佐藤次郎",
        [
            Ep(
                "一話",
                ["「ここはどこ」", "「｜古都《ふるみやこ》だよ」"],
                preface=["「まえがき」", "「です」"],
                chapter="序章",
            ),
            Ep(
                "二話",
                ["　歩いた。", "「疲れた」", "「休もう」"],
                published="2021/04/02 08:00",
                revised="2021/04/03 08:00",
                afterword=["「おわり」", "「はい」"],
            ),
        ],
        layout="old",
        lastup="2021-04-02 08:00:00",
        updated_at="2021-04-03 08:00:00",
    )
    c = Work(
        "n0003cc",
        "短い話",
        "鈴木三郎",
        [
            Ep(
                "短い話",
                ["「短編です」", "「そうですね」", "", "「｜終《お》わり」", "「はい」"],
                preface=["「前書き」", "「はい」"],
            ),
        ],
        short=True,
        lastup="2021-03-01 10:00:00",
        updated_at="2021-03-01 10:00:00",
    )
    return [a, b, c]
