"""Plain text works: every line is body, one episode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .. import rawstore
from ..records import Counters, Episode


def read_work(work_dir: Path, counters: Counters) -> Iterator[Episode]:
    text = rawstore.read_text(work_dir)
    yield Episode(1, text.split("\n"))
