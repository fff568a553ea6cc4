"""The sites of the syosetu.com family and their page layouts, as data.

A layout change on the site is one edit here: every selector is CSS (soupsieve, as
Beautiful Soup's `select` reads it), one table per layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Site:
    name: str
    base_url: str  # the site root: works live at <base_url><ncode>/
    api_url: str  # the official novel API for this site
    host: str  # the site's host name (links to it are taken onto --base-url)
    genre_param: str  # the API's genre filter for this site
    fields: str  # the API fields asked for (`of`)
    cookies: dict[str, str] = field(default_factory=dict)  # sent to the site's own origin only


_FIELDS = "t-n-u-w-s-k-nt-e-ga-l-ka-gf-gl-nu-ua"
SITES = {
    "nocturne": Site(
        "nocturne",
        "https://novel18.syosetu.com/",
        "https://api.syosetu.com/novel18api/api/",
        "novel18.syosetu.com",
        "nocgenre",
        _FIELDS + "-ng",
        {"over18": "yes"},
    ),
    "narou": Site(
        "narou",
        "https://ncode.syosetu.com/",
        "https://api.syosetu.com/novelapi/api/",
        "ncode.syosetu.com",
        "genre",
        _FIELDS + "-bg-g",
    ),
}


def site_of_target(target: str) -> str | None:
    """The site a work URL belongs to (None for a bare ncode)."""
    low = target.lower()
    for site in SITES.values():
        if site.host in low:
            return site.name
    return None


@dataclass(frozen=True)
class Layout:
    """Where things are on the pages of one layout (CSS selectors)."""

    name: str
    toc: str  # present only on a table-of-contents page
    toc_items: str  # chapter titles, episode links and update dates, in document order
    chapter: str  # which of the toc_items are chapter titles
    update: str  # which are update dates (the rest are episode links)
    title: str
    author: str
    body: str  # the novel text (an episode, or a short story's page)
    preface: str
    afterword: str
    subtitle: str
    next_page: str | None  # the TOC pager's next / last links (?p=N)
    last_page: str | None


LAYOUTS = (
    Layout(
        name="current",  # 2024 on
        toc="div.p-eplist",
        toc_items="div.p-eplist .p-eplist__chapter-title, div.p-eplist a.p-eplist__subtitle, "
        "div.p-eplist .p-eplist__update",
        chapter=".p-eplist__chapter-title",
        update=".p-eplist__update",
        title=".p-novel__title",
        author=".p-novel__author",
        body="div.p-novel__text:not(.p-novel__text--preface):not(.p-novel__text--afterword)",
        preface="div.p-novel__text--preface",
        afterword="div.p-novel__text--afterword",
        subtitle=".p-novel__title",
        next_page="a.c-pager__item--next[href]",
        last_page="a.c-pager__item--last[href]",
    ),
    Layout(
        name="old",
        toc="dl.novel_sublist2",
        toc_items="div.chapter_title, dl.novel_sublist2 dd.subtitle a, dl.novel_sublist2 dt.long_update",
        chapter=".chapter_title",
        update=".long_update",
        title=".novel_title",
        author=".novel_writername",
        body="#novel_honbun",
        preface="#novel_p",
        afterword="#novel_a",
        subtitle=".novel_subtitle",
        next_page=None,
        last_page=None,
    ),
)
