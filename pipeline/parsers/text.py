"""Plain text works: every line is body, one episode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..rawstore import TEXT_FILE
from ..records import Counters, Episode


def read_work(work_dir: Path, counters: Counters) -> Iterator[Episode]:
    text = (work_dir / TEXT_FILE).read_text(encoding="utf-8")
    yield Episode(1, text.split("\n"))
