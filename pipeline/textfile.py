"""Turning the bytes of a local file into text: encoding detection and the checks
that give each bad file its own message (empty, binary, undecodable)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import BinaryInputError, DecodeError, EmptyInputError

# UTF-8 first (strict, so a Shift_JIS file never passes for it), then the Japanese
# legacy encodings. CP932 is Windows' Shift_JIS (what Aozora's "Shift_JIS" files
# really are); EUC-JIS-2004 is a superset of EUC-JP. Bytes often decode without error
# in both CP932 and EUC, so the decoding that looks most like Japanese text wins.
_LEGACY = ("cp932", "euc_jis_2004", "shift_jis_2004", "iso2022_jp_2004")
# ISO-2022-JP is 7-bit, so it passes a strict UTF-8 decode with its escape sequences
# left in the text: it is recognised by those sequences first (ESC $ @, ESC $ B,
# ESC $ ( Q ... switch to a double-byte set; ESC ( B / ESC ( J back to ASCII).
# Its variants are tried narrowest first; each decodes the plain form too.
_ISO2022_ESC_RE = re.compile(rb"\x1b(?:\$[@B]|\$\([DOPQ]|\([BJI])")
_ISO2022 = ("iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2", "iso2022_jp_2004", "iso2022_jp_3")


@dataclass(frozen=True)
class Decoded:
    text: str  # newlines normalised to \n, BOM removed
    encoding: str


def _plausibility(text: str) -> float:
    """Share of characters that ordinary Japanese prose is made of."""
    good = 0
    for c in text[:20000]:
        o = ord(c)
        if (
            (c.isascii() and (c.isprintable() or c in "\r\n\t"))
            or 0x3000 <= o <= 0x30FF
            or 0x4E00 <= o <= 0x9FFF
            or 0xFF01 <= o <= 0xFF5E
            or 0x2460 <= o <= 0x24FF
            or 0xF900 <= o <= 0xFAFF
            or c in "…‥―※〜"
        ):
            good += 1
    return good / max(1, min(len(text), 20000))


def decode_bytes(data: bytes, name: str = "file") -> Decoded:
    if not data.strip():
        raise EmptyInputError(f"{name}: the file is empty")
    bom_utf16 = data[:2] in (b"\xff\xfe", b"\xfe\xff")
    if b"\x00" in data[:8192] and not bom_utf16:
        raise BinaryInputError(f"{name}: this is a binary file, not text")
    encoding = text = None
    if bom_utf16 and _ok(data, "utf-16"):
        encoding, text = "utf-16", data.decode("utf-16")
    elif data.startswith(b"\xef\xbb\xbf") and _ok(data[3:], "utf-8"):
        encoding, text = "utf-8-sig", data[3:].decode("utf-8")
    elif _is_iso2022(data):
        enc = next((e for e in _ISO2022 if _ok(data, e)), None)
        if enc is not None:
            encoding, text = enc, data.decode(enc)
    elif _ok(data, "utf-8"):
        encoding, text = "utf-8", data.decode("utf-8")
    else:
        scored = [(_plausibility(data.decode(enc)), -i, enc) for i, enc in enumerate(_LEGACY) if _ok(data, enc)]
        if scored:
            score, _, enc = max(scored)
            if score >= 0.5:
                encoding, text = enc, data.decode(enc)
    if text is None:
        raise DecodeError(
            f"{name}: cannot decode it as UTF-8, Shift_JIS/CP932, EUC-JP or ISO-2022-JP; "
            "save it as UTF-8 and ingest again"
        )
    assert encoding is not None  # set together with text
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    if not text.strip():
        raise EmptyInputError(f"{name}: the file holds no text")
    if sum(1 for c in text[:4096] if ord(c) < 32 and c not in "\n\t\f\v") > 8:
        raise BinaryInputError(f"{name}: this is a binary file, not text")
    return Decoded(text=text, encoding=encoding)


def _is_iso2022(data: bytes) -> bool:
    """7-bit bytes that switch character sets with ISO-2022-JP escape sequences."""
    return b"\x1b" in data and data.isascii() and _ISO2022_ESC_RE.search(data) is not None


def _ok(data: bytes, enc: str) -> bool:
    try:
        data.decode(enc)
        return True
    except (UnicodeDecodeError, LookupError):
        return False
