"""Validated ids: the only things raw-store folder names are made from."""

from __future__ import annotations

import re
import unicodedata

from .errors import UsageError

_UNSAFE_RE = re.compile(r"[^\w.-]+")
NCODE_RE = re.compile(r"n\d{4}[a-z]{1,3}")


def work_id_from_stem(stem: str) -> str:
    """A folder-safe work id from a file stem: word characters, '.', '-' and '_' only."""
    wid = _UNSAFE_RE.sub("_", unicodedata.normalize("NFC", stem)).strip("._-")[:100]
    if not wid:
        raise UsageError(f"cannot make a work id from the file name {stem!r}; rename the file")
    return wid


