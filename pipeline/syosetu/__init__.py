"""The syosetu.com family (novel18 for Nocturne/Moonlight/Midnight, ncode for narou).

site.py    the sites (hosts, API URLs, cookies) and the page layouts (CSS selectors)
api.py     the official novel API: lookups, filters, and lastup windows past its reach
pages.py   tables of contents and episode pages, parsed from their bytes
"""

from __future__ import annotations

from .pages import (
    EpisodePage,
    LayoutChanged,
    TocEntry,
    TocPage,
    decode_page,
    html_lines,
    parse_episode,
    parse_toc,
    read_work,
    ruby_text,
)
from .site import LAYOUTS, SITES, Layout, Site, site_of_target

__all__ = [
    "EpisodePage",
    "LayoutChanged",
    "TocEntry",
    "TocPage",
    "decode_page",
    "html_lines",
    "parse_episode",
    "parse_toc",
    "read_work",
    "ruby_text",
    "LAYOUTS",
    "SITES",
    "Layout",
    "Site",
    "site_of_target",
]
