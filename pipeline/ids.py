"""Validated ids: the only things raw-store folder names are made from."""

from __future__ import annotations

import re
import unicodedata

from .errors import UsageError

_UNSAFE_RE = re.compile(r"[^\w.-]+")
#: ASCII only: str patterns would take any Unicode digit (n١٢٣٤ab, n０００１aa) as \d.
NCODE_RE = re.compile(r"n[0-9]{4}[a-z]{1,3}")


def work_id_from_stem(stem: str) -> str:
    """A folder-safe work id from a file stem: word characters, '.', '-' and '_' only."""
    wid = _UNSAFE_RE.sub("_", unicodedata.normalize("NFC", stem)).strip("._-")[:100]
    if not wid:
        raise UsageError(f"cannot make a work id from the file name {stem!r}; rename the file")
    return wid


def ncode_of(text: str) -> str:
    """The lower-case ncode in `text`: an ncode (any case) or the URL of a work or an
    episode (https://novel18.syosetu.com/N1234AB/5/). Raises UsageError otherwise."""
    raw = text.strip()
    if NCODE_RE.fullmatch(raw.lower()):
        return raw.lower()
    if "/" in raw:
        from urllib.parse import urlsplit

        for segment in urlsplit(raw if "//" in raw else "//" + raw).path.split("/"):
            if NCODE_RE.fullmatch(segment.lower()):
                return segment.lower()
    raise UsageError(f"{text!r} is not an ncode (n + 4 digits + letters, e.g. n1234ab) "
                     "or the URL of a work or episode")
