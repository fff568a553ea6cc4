"""Text a user types or pipes in: lines from stdin and text arguments, as UTF-8 or refused.

Python decodes stdin and argv by the locale, with surrogate escapes for bytes that are not
UTF-8 (a Shift_JIS file piped in, a UTF-16 one, a non-UTF-8 terminal): the reader then fails
deep inside MeCab on a string it cannot encode. `kana` and `predict` read their input
through these functions instead, so such input is one `Error:` line saying what it is and
how to convert it, before anything is read into katakana.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import IO

from .errors import UsageError

# What textfile.decode_bytes calls an encoding, as iconv spells it for the user.
_ICONV_NAMES = {
    "cp932": "CP932",
    "shift_jis_2004": "SHIFT_JISX0213",
    "euc_jis_2004": "EUC-JP",
    "utf-16": "UTF-16",
}


class NotUtf8Error(UsageError):
    """Input that the user typed or piped in is not UTF-8 text."""


def _guess(data: bytes) -> str | None:
    """The encoding `data` looks like, as iconv names it (None when nothing fits)."""
    from .errors import InputError
    from .textfile import _plausibility, decode_bytes

    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "UTF-16"
    if data.count(b"\x00") * 4 >= len(data):  # every other byte: UTF-16 without its mark
        return "UTF-16LE" if data[1::2].count(0) >= data[0::2].count(0) else "UTF-16BE"
    try:
        return _ICONV_NAMES.get(decode_bytes(data, "stdin").encoding)
    except InputError:
        pass
    # UTF-16 without its mark, cut at a 0x0A byte that was half of a character or a newline.
    even = data[: len(data) // 2 * 2]
    for enc, name in (("utf-16-le", "UTF-16LE"), ("utf-16-be", "UTF-16BE")):
        try:
            text = even.decode(enc)
        except UnicodeDecodeError:
            continue
        if text.strip() and _plausibility(text) >= 0.9:
            return name
    return None


def _refuse(what: str, data: bytes, command: str) -> NotUtf8Error:
    enc = _guess(data)
    looks = f" (it looks like {enc})" if enc else ""
    if what == "stdin":
        fix = f"convert it first: iconv -f {enc or 'ENCODING'} -t UTF-8 FILE | nocpipe {command}"
    else:
        fix = "set the terminal to UTF-8, or pipe the text in through iconv -t UTF-8 instead"
    return NotUtf8Error(f"{what} is not UTF-8 text{looks}; {fix}")


def read_stdin_lines(command: str = "kana", stream: IO[bytes] | None = None, hint=None) -> Iterator[str]:
    """The lines of stdin (binary, decoded here) without their line endings, one at a time as
    they arrive. The first line that is not UTF-8 (or holds a NUL byte: UTF-16 without a BOM
    decodes as ASCII and NULs) raises NotUtf8Error; a UTF-8 byte-order mark is dropped.
    `hint` (a Reporter or log callable) is told how to end the input when stdin is a terminal."""
    if stream is None:
        if hint is not None and sys.stdin.isatty():
            hint("reading lines from stdin (Ctrl-D to end)")
        stream = sys.stdin.buffer
    first = True
    for raw in stream:
        if first and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            if b"\x00" in raw:
                raise UnicodeDecodeError("utf-8", raw, raw.index(b"\x00"), len(raw), "NUL byte")
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _refuse("stdin", raw, command) from None
        first = False
        yield line.rstrip("\r\n")


def text_arguments(texts: Iterable[str], command: str = "kana") -> list[str]:
    """Text arguments as given, refused when the shell passed bytes that are not UTF-8
    (Python keeps them as lone surrogates, which no reader can read)."""
    out = []
    for text in texts:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            try:
                raw = text.encode("utf-8", "surrogateescape")  # the bytes the shell passed
            except UnicodeEncodeError:
                raw = b""
            raise _refuse("an argument", raw, command) from None
        out.append(text)
    return out
