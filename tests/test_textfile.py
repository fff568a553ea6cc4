"""Encodings and the bad files that get their own message."""

import pytest

from pipeline.errors import BinaryInputError, DecodeError, EmptyInputError
from pipeline.textfile import decode_bytes

TEXT = "「こんにちは」\n「今日は良い天気ですね。」\n"


@pytest.mark.parametrize("encoding", ["utf-8", "cp932", "euc_jp", "utf-16"])
def test_encodings_are_detected(encoding):
    d = decode_bytes(TEXT.encode(encoding))
    assert d.text == TEXT


def test_bom_and_line_endings_are_normalised():
    d = decode_bytes(b"\xef\xbb\xbf" + TEXT.replace("\n", "\r\n").encode("utf-8"))
    assert d.text == TEXT
    assert d.encoding == "utf-8-sig"
    assert decode_bytes(TEXT.replace("\n", "\r").encode("cp932")).text == TEXT


def test_cp932_specific_characters():
    text = "①髙﨑～"
    assert decode_bytes(text.encode("cp932")).text == text


def test_empty_file():
    with pytest.raises(EmptyInputError):
        decode_bytes(b"")
    with pytest.raises(EmptyInputError):
        decode_bytes(b"  \r\n\n")


def test_binary_file():
    with pytest.raises(BinaryInputError):
        decode_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))


def test_undecodable_file():
    data = bytes([0x81, 0x20, 0xFF, 0xFE, 0x80, 0xA0]) * 50  # invalid in every candidate
    with pytest.raises((DecodeError, BinaryInputError)):
        decode_bytes(data)


@pytest.mark.parametrize("encoding", ["iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2004"])
def test_iso2022jp_is_decoded_not_stored_as_ascii(encoding):
    text = "「走れメロス」と\n言った。" + (
        "﨑" if encoding == "iso2022_jp_2004" else "ｶﾞ" if encoding.endswith("ext") else ""
    )
    data = text.encode(encoding)
    assert data.isascii()  # so it would pass a strict UTF-8 decode
    d = decode_bytes(data)
    assert d.text == text and d.encoding.startswith("iso2022_jp")


def test_escape_character_alone_is_not_iso2022jp():
    assert decode_bytes(b"plain \x1b text\n").encoding == "utf-8"
