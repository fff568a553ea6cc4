"""Progress bars on stderr (tqdm), off when not wanted or not on a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(
    items: Iterable[T], desc: str, unit: str = "it", enabled: bool = True, total: int | None = None
) -> Iterator[T]:
    if not enabled:
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(
        items, desc=desc, unit=unit, total=total, file=sys.stderr, disable=None, dynamic_ncols=True, leave=False
    )
