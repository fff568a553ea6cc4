"""Validated ids: the only things raw-store folder names are made from."""

from __future__ import annotations

import hashlib
import re
import unicodedata

from .errors import UsageError

_UNSAFE_RE = re.compile(r"[^\w.-]+")
#: ASCII only: str patterns would take any Unicode digit (n١٢٣٤ab, n０００１aa) as \d.
NCODE_RE = re.compile(r"n[0-9]{4}[a-z]{1,3}")
MAX_ID_CHARS = 100
#: Files are named after ids with up to ~55 bytes around them (".ID.parquet.XXXXXXXX.tmp"),
#: and most file systems take 255 bytes a name.
MAX_ID_BYTES = 200
HASH_CHARS = 8


def _cut(text: str, max_bytes: int) -> str:
    """`text` cut to at most `max_bytes` of UTF-8, on a character boundary."""
    return text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")


def sanitise(name: str) -> str:
    """`name` reduced to word characters, '.', '-' and '_' (NFC, at most 100 characters
    and 200 bytes of UTF-8)."""
    wid = _UNSAFE_RE.sub("_", unicodedata.normalize("NFC", name)).strip("._-")[:MAX_ID_CHARS]
    return _cut(wid, MAX_ID_BYTES).strip("._-")


def is_safe(name: str) -> bool:
    """True when `name` is its own work id (sanitising leaves it as it is)."""
    return bool(name) and sanitise(name) == name


def path_hash(relpath: str) -> str:
    """A short, stable hash of a file's original relative path (as given, not normalised)."""
    return hashlib.sha256(relpath.encode("utf-8", "surrogateescape")).hexdigest()[:HASH_CHARS]


def work_id_for(name: str, relpath: str, taken: bool = False) -> str:
    """The work id of a file called `name` (its stem) found at `relpath` (its path
    relative to the folder given to ingest, or its file name when given directly).

    A name that is already safe is its own id, as it always was, so existing stores do
    not move. A name that sanitising would change (spaces, a leading dot, NFD, more
    than 100 characters...), or a safe one whose id is `taken` by another file, gets
    '-' and a hash of `relpath` appended: two different files never share an id, and
    the same file gets the same id on every run.
    """
    base = sanitise(name)
    if base and base == name and not taken:
        return base
    base = _cut((base or "work")[: MAX_ID_CHARS - HASH_CHARS - 1], MAX_ID_BYTES - HASH_CHARS - 1).strip("._-")
    return f"{base or 'work'}-{path_hash(relpath)}"


def printable(text: str) -> str:
    """`text` safe to store as JSON and to print on one line: bytes that were not UTF-8
    (file names can hold any) and control characters are written as escapes."""
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def work_id_from_stem(stem: str) -> str:
    """A folder-safe work id from a file stem: word characters, '.', '-' and '_' only."""
    wid = sanitise(stem)
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
    raise UsageError(f"{text!r} is not an ncode (n + 4 digits + letters, e.g. n1234ab) or the URL of a work or episode")
