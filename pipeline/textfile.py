"""Turning the bytes of a local file into text: encoding detection and the checks
that give each bad file its own message (empty, binary, undecodable)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import BinaryInputError, DecodeError, EmptyInputError

# Tried in order, strictly. CP932 is Windows' Shift_JIS (a superset of it, and what
# Aozora's "Shift_JIS" files really are); shift_jis_2004 covers JIS X 0213 additions.
_CANDIDATES = ("utf-8", "cp932", "shift_jis_2004", "euc_jis_2004", "utf-16")


@dataclass(frozen=True)
class Decoded:
    text: str  # newlines normalised to \n, BOM removed
    encoding: str


def decode_bytes(data: bytes, name: str = "file") -> Decoded:
    if not data.strip():
        raise EmptyInputError(f"{name}: the file is empty")
    bom_utf16 = data[:2] in (b"\xff\xfe", b"\xfe\xff")
    if b"\x00" in data[:8192] and not bom_utf16:
        raise BinaryInputError(f"{name}: this is a binary file, not text")
    encoding = None
    text = None
    if data.startswith(b"\xef\xbb\xbf"):
        encoding, text = "utf-8-sig", data[3:].decode("utf-8", errors="strict") if _ok(data[3:], "utf-8") else None
    if text is None:
        for enc in (("utf-16",) if bom_utf16 else _CANDIDATES[:-1]):
            if _ok(data, enc):
                encoding, text = enc, data.decode(enc)
                break
    if text is None:
        try:
            from charset_normalizer import from_bytes

            best = from_bytes(data).best()
        except ImportError:  # pragma: no cover
            best = None
        if best is not None and best.encoding and _ok(data, best.encoding):
            encoding, text = best.encoding, str(best)
    if text is None:
        raise DecodeError(
            f"{name}: cannot decode it as UTF-8, Shift_JIS/CP932 or EUC-JP; save it as UTF-8 and ingest again"
        )
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    if not text.strip():
        raise EmptyInputError(f"{name}: the file holds no text")
    if sum(1 for c in text[:4096] if ord(c) < 32 and c not in "\n\t\f\v") > 8:
        raise BinaryInputError(f"{name}: this is a binary file, not text")
    return Decoded(text=text, encoding=encoding)


def _ok(data: bytes, enc: str) -> bool:
    try:
        data.decode(enc)
        return True
    except (UnicodeDecodeError, LookupError):
        return False
