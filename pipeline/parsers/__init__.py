"""Raw-store parsers: one module per source format, each with
`read_work(work_dir: Path, counters: Counters) -> Iterator[Episode]`.

A new source plugs in by adding its module to PARSERS; extract-pairs needs nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from ..records import Counters, Episode
from .. import syosetu
from . import aozora, text

ReadWork = Callable[[Path, Counters], Iterator[Episode]]

PARSERS: dict[str, ReadWork] = {
    "aozora": aozora.read_work,
    "text": text.read_work,
    "nocturne": syosetu.read_work,
    "narou": syosetu.read_work,
}


def parser_for(source: str) -> ReadWork | None:
    return PARSERS.get(source)
