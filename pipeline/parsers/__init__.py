"""Raw-store parsers: one module per source format, each with
`read_work(work_dir: Path, counters: Counters) -> Iterator[Episode]`.

A new source plugs in by adding its module to PARSERS; extract-pairs needs nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from ..records import Counters, Episode
from . import aozora, text

ReadWork = Callable[[Path, Counters], Iterator[Episode]]


def _syosetu(work_dir: Path, counters: Counters) -> Iterator[Episode]:
    # Imported on first use: BeautifulSoup and soupsieve cost a run over Aozora files alone
    # a tenth of a second in every process.
    from .. import syosetu

    return syosetu.read_work(work_dir, counters)


PARSERS: dict[str, ReadWork] = {
    "aozora": aozora.read_work,
    "text": text.read_work,
    "nocturne": _syosetu,
    "narou": _syosetu,
}


def parser_for(source: str) -> ReadWork | None:
    return PARSERS.get(source)
