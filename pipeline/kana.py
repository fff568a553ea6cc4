"""Katakana readings: the one code path used by extract-pairs, `nocpipe kana` and predict.

    text (may carry ruby: ｜漢字《かんじ》 or 漢字《かんじ》)
      -> ruby segments read as the author wrote them
      -> other segments: the work's ruby memory (pipeline.rubymemory) for words the
         author annotated elsewhere, widened kana, numbers read out (pipeline.numbers),
         then the reader, with the spoken readings of everyday words (pipeline.spoken)
         in place of its own on its tokens
      -> hiragana to katakana, punctuation mapped onto the alphabet of docs/design.md

Readers: `unidic` (the default: fugashi + unidic-lite, the `kana` field; unknown
words fall back to pykakasi) and `pykakasi` (pure Python). A reader is built once per
process and its results are cached per segment, because dialogue repeats itself.

What normalisation does with characters outside the alphabet (also in the README):
- half-width katakana and punctuation are widened; full-width digits and Latin are
  narrowed first so that numbers can be read;
- dash runs (―, —, ─, －, -, ‐) become one …; ‥ and ... become …; ･ becomes ・;
- !, ?, ‼, ⁉, ⁈ become ！ and ？ (runs kept as written); 〜 and ~ become ～;
- brackets other than 「」『』 ((), （）, 【】, 〈〉, ［］, 〔〕) are removed, their content kept;
  “ ” and 〝 〟 become 『 』;
- ゝゞヽヾ repeat (and voice) the kana before them;
- Latin letters the reader leaves alone are spelled out (OK -> オーケー, DNA -> ディーエヌエー);
- spaces and the decorative ♡♥❤♪♫☆★ are removed.
Anything still outside the alphabet (unread kanji, emoji, ※ ...) stays, and
extract-pairs drops that side as `dropped_bad_chars` / `dropped_unread_kanji`.
"""

from __future__ import annotations

import gc
import re
import threading
import unicodedata
from functools import lru_cache
from importlib import metadata
from typing import TYPE_CHECKING, Any

from .errors import UsageError
from .numbers import NUMBER_RE, read_numbers
from .spoken import SPOKEN_RE
from .spoken import apply as spoken_readings

if TYPE_CHECKING:
    from .rubymemory import RubyMemory

#: The reader extract-pairs, `nocpipe kana` and new corpora use unless told otherwise.
DEFAULT_READER = "unidic"
ALPHABET_PUNCT = "、。！？…・「」『』～"
ALPHABET_RE = re.compile(r"[\u30A1-\u30FAー" + ALPHABET_PUNCT + r"]*")
_KANJI = r"\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF\U00020000-\U0003134F々〆ヶ〇"
KANJI_CHARS = _KANJI
KANJI_RE = re.compile(f"[{_KANJI}]")
# ｜base《reading》 or kanji-run《reading》 (Aozora's two ruby forms).
# Also tolerated without ｜: an accent group 〔Bohe`me〕 or a Latin word before 《》.
RUBY_RE = re.compile(
    f"[｜|]([^｜|《》]+)《([^《》]*)》|([{_KANJI}]+|〔[^〔〕《》]*〕|[A-Za-zＡ-Ｚａ-ｚ]+)《([^《》]*)》"
)
_STRAY_RUBY_RE = re.compile(r"《[^《》]*》|[｜]")


def is_kana_text(text: str) -> bool:
    """True when `text` lies entirely inside the katakana alphabet of docs/design.md."""
    return ALPHABET_RE.fullmatch(text) is not None


def split_ruby(text: str) -> list[tuple[str, str | None]]:
    """Split text into (base, reading) pieces; reading is None for plain text."""
    if "《" not in text and "｜" not in text:
        return [(text, None)]
    out: list[tuple[str, str | None]] = []
    pos = 0
    for m in RUBY_RE.finditer(text):
        if m.start() > pos:
            out.append((text[pos : m.start()], None))
        base, reading = (m.group(1), m.group(2)) if m.group(1) is not None else (m.group(3), m.group(4))
        out.append((base, reading))
        pos = m.end()
    if pos < len(text):
        out.append((text[pos:], None))
    # A 《》 with no base (or a lone ｜) is an annotation without a target: drop it.
    return [(_STRAY_RUBY_RE.sub("", b), r) if r is None else (b, r) for b, r in out]


_EXPLICIT_RUBY_RE = re.compile(r"[｜|]([^｜|《》]+)《[^《》]*》")
_READING_RE = re.compile(r"《[^《》]*》")


def strip_ruby(text: str) -> str:
    """The base text of a ruby-annotated line: 漢字《かんじ》 -> 漢字 (two C-level regex passes)."""
    if "《" not in text and "｜" not in text:
        return text
    text = _EXPLICIT_RUBY_RE.sub(r"\1", text)
    return _READING_RE.sub("", text).replace("｜", "")


# ---------------------------------------------------------------- normalisation

_HIRA_TO_KATA = {c: c + 0x60 for c in range(0x3041, 0x3097)} | {ord("ゝ"): ord("ヽ"), ord("ゞ"): ord("ヾ")}


def _hira_to_kata(text: str) -> str:
    return text.translate(_HIRA_TO_KATA)


_WIDE_TABLE = {
    # Full-width ASCII narrowed so that numbers and Latin are handled in one form.
    **{ord(c): ord(c) - 0xFEE0 for c in "０１２３４５６７８９"},
}
_PUNCT_TABLE = str.maketrans(
    {
        ",": "、",
        "，": "、",
        "､": "、",
        ".": "。",
        "．": "。",
        "｡": "。",
        "!": "！",
        "?": "？",
        "･": "・",
        "｢": "「",
        "｣": "」",
        "〜": "～",
        "~": "～",
        "∼": "～",
        "〰": "～",
        "“": "『",
        "”": "』",
        "〝": "『",
        "〟": "』",
        "＂": None,
        '"': None,
        "‥": "…",
        "⋯": "…",
        "(": None,
        ")": None,
        "（": None,
        "）": None,
        "【": None,
        "】": None,
        "〈": None,
        "〉": None,
        "［": None,
        "］": None,
        "[": None,
        "]": None,
        "〔": None,
        "〕": None,
        "《": None,
        "》": None,
        "｛": None,
        "｝": None,
        "{": None,
        "}": None,
        "≪": None,
        "≫": None,
        "«": None,
        "»": None,
        " ": None,
        "\u3000": None,
        "\t": None,
        "♡": None,
        "♥": None,
        "❤": None,
        "♪": None,
        "♫": None,
        "☆": None,
        "★": None,
        "\u200b": None,
        "\ufeff": None,
        "'": None,
        "`": None,
        "‘": None,
        "’": None,
    }
)
_MULTI = [("‼", "！！"), ("⁉", "！？"), ("⁈", "？！"), ("⁇", "？？"), ("...", "…")]
_DASH_RE = re.compile(r"[―—–‐‑‒─━－\-]+")
_ELLIPSIS_DOTS_RE = re.compile(r"。{2,}")
_LETTERS = {
    "A": "エー",
    "B": "ビー",
    "C": "シー",
    "D": "ディー",
    "E": "イー",
    "F": "エフ",
    "G": "ジー",
    "H": "エイチ",
    "I": "アイ",
    "J": "ジェー",
    "K": "ケー",
    "L": "エル",
    "M": "エム",
    "N": "エヌ",
    "O": "オー",
    "P": "ピー",
    "Q": "キュー",
    "R": "アール",
    "S": "エス",
    "T": "ティー",
    "U": "ユー",
    "V": "ブイ",
    "W": "ダブリュー",
    "X": "エックス",
    "Y": "ワイ",
    "Z": "ゼット",
}
_LATIN_RE = re.compile(r"[A-Za-z]")
_VOICED = dict(zip("カキクケコサシスセソタチツテトハヒフヘホウ", "ガギグゲゴザジズゼゾダヂヅデドバビブベボヴ"))


_HALFWIDTH_RE = re.compile(r"[\uff61-\uff9f]")
_DIGIT_RE = re.compile(r"[0-9]")
_ANY_DIGIT_RE = re.compile(r"[0-9０-９]")
_FULLWIDTH_LATIN_RE = re.compile(r"[\uff21-\uff3a\uff41-\uff5a]")
_NEEDS_READER_RE = re.compile(f"[{_KANJI}A-Za-z\uff21-\uff3a\uff41-\uff5a]")

# Aozora's くの字点: ／＼ repeats the two characters before it, ／″＼ voices the repeat.
_KUNOJI_RE = re.compile(r"(..)／([″〃]?)＼")


def _kunoji(m: re.Match) -> str:
    head = m.group(1)
    rep = head
    if m.group(2):
        first = _hira_to_kata(rep[0])
        voiced = _VOICED.get(first)
        rep = (chr(ord(voiced) - 0x60) if "\u3041" <= rep[0] <= "\u3096" and voiced else voiced or rep[0]) + rep[1:]
    return head + rep


# Kinship words with an honorific, as spoken: UniDic-lite splits お母さん into お/母/さん and
# reads オハハサン (the full dictionary and pykakasi read オカアサン). A kanji right before the
# word makes it another word (叔母さん オバサン, 伯父さん), left to the reader.
_KINSHIP = {"母": "かあ", "父": "とう", "兄": "にい", "姉": "ねえ", "祖母": "ばあ", "祖父": "じい"}
_KINSHIP_RE = re.compile(f"(?<![{_KANJI}])(祖母|祖父|母|父|兄|姉)(さん|さま|様|ちゃん)")


def _kinship(text: str) -> str:
    return _KINSHIP_RE.sub(lambda m: _KINSHIP[m.group(1)] + ("さま" if m.group(2) == "様" else m.group(2)), text)


# Variation selectors choose a glyph, never a reading; pykakasi's own handling of them
# fails on some sequences (漢字︀々), so they go before anything is read.
_VARIATION_RE = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")


def prenormalise(text: str) -> str:
    """Before the reader: drop variation selectors, read kinship words with an honorific as
    spoken (お母さん オカアサン), NFKC-widen half-width kana, narrow
    digits, read numbers out, expand the repeat marks ／＼ and 〻."""
    if _VARIATION_RE.search(text):
        text = _VARIATION_RE.sub("", text)
    if "さ" in text or "様" in text or "ち" in text:
        text = _kinship(text)
    if "＼" in text:
        text = _KUNOJI_RE.sub(_kunoji, text)
    if "〻" in text:
        text = text.replace("〻", "々")
    if _HALFWIDTH_RE.search(text):
        # NFKC widens half-width katakana (ｶﾞ -> ガ); apply it to those runs only so
        # that other characters (…, ～, full-width letters) keep their form.
        text = re.sub(r"[\uff61-\uff9f]+", lambda m: unicodedata.normalize("NFKC", m.group()), text)
    if _ANY_DIGIT_RE.search(text):
        text = text.translate(_WIDE_TABLE)
        text = read_numbers(text)
    return text


def _repeat_marks(text: str) -> str:
    if "ヽ" not in text and "ヾ" not in text:
        return text
    out: list[str] = []
    for c in text:
        if c in "ヽヾ" and out:
            prev = out[-1]
            c = _VOICED.get(prev, prev) if c == "ヾ" else prev
        out.append(c)
    return "".join(out)


def postnormalise(text: str) -> str:
    """After the reader: katakana, the alphabet's punctuation, letters spelled out."""
    text = _hira_to_kata(text)
    if ALPHABET_RE.fullmatch(text) and "。。" not in text:
        return text  # the common case: nothing left to map
    for a, b in _MULTI:
        if a in text:
            text = text.replace(a, b)
    text = _DASH_RE.sub("…", text)
    text = text.translate(_PUNCT_TABLE)
    text = _ELLIPSIS_DOTS_RE.sub("…", text)
    text = _repeat_marks(text)
    if _FULLWIDTH_LATIN_RE.search(text):
        text = _FULLWIDTH_LATIN_RE.sub(lambda m: chr(ord(m.group()) - 0xFEE0), text)
    if _LATIN_RE.search(text):
        text = _LATIN_RE.sub(lambda m: _LETTERS[m.group().upper()], text)
    return text


# ---------------------------------------------------------------- readers


class Reader:
    """Reads plain Japanese text (no ruby) into katakana-ish text."""

    name = "reader"

    @staticmethod
    def version() -> str:
        """Reader and dictionary versions, read from package metadata (nothing loaded)."""
        raise NotImplementedError

    def read(self, text: str) -> str:
        raise NotImplementedError


def _kana_only(kks: Any) -> None:  # a pykakasi.Kakasi; its internals are untyped
    """pykakasi computes hiragana, katakana and three romanisations for every segment;
    we read only `kana`. Swapping its per-segment converter for one that skips the
    romanisations keeps its segmentation and readings and saves about a third of
    its time. Left alone if pykakasi's internals are not what we expect."""
    iconv = getattr(kks, "_iconv", None)
    h2k: Any = getattr(iconv, "_h2k", None)
    if iconv is None or h2k is None:
        return

    class _KanaOnly:
        @lru_cache(maxsize=4096)  # noqa: B019 (one instance for the process)
        def convert(self, otext: str, hira: str) -> dict[str, str]:
            return {"orig": otext, "kana": h2k(hira)}

    kks._iconv = _KanaOnly()
    jconv = getattr(kks, "_jconv", None)
    if jconv is not None and all(hasattr(jconv, a) for a in ("_kanwa", "_itaiji")):
        kks._jconv = _FastJConv(jconv)


class _FastJConv:
    """pykakasi's dictionary look-up, by key instead of by scanning.

    pykakasi tests every dictionary word that starts with the current kanji
    (thousands for 一 or 大) and keeps the longest match. Trying the possible
    lengths longest first, as dictionary keys, finds the same word, reading and
    length. Strings with variation selectors go to the original code."""

    def __init__(self, jconv: Any) -> None:  # pykakasi's J2H converter
        self._orig = jconv
        self._kanwa = jconv._kanwa
        self._itaiji = jconv._itaiji
        self._maxlen: dict[int, int] = {}
        self.isRegion = jconv.isRegion

    def convert(self, itext: str, btext: str) -> tuple[str, int]:
        # Only the first `longest` characters can match, so only they are translated:
        # translating the whole rest of the line for every kanji made a line's
        # reading quadratic in its length.
        first = self._itaiji.convert(itext[0])
        if not first:
            return "", 0  # a lone variation selector: nothing to read (pykakasi itself fails here)
        if len(first) != 1:
            return self._orig.convert(itext[:64], btext)
        table = self._kanwa.load(first)
        if table is None:
            return "", 0
        key = ord(first)
        longest = self._maxlen.get(key)
        if longest is None:
            longest = self._maxlen[key] = max(map(len, table))
        head = itext[:longest]
        text = self._itaiji.convert(head)
        if len(text) != len(head):
            # Variation selectors: pykakasi's own handling, on a window wide enough
            # for the longest word plus one selector per character.
            return self._orig.convert(itext[: 2 * longest + 1], btext)
        for length in range(len(text), 0, -1):
            entries = table.get(text[:length])
            if entries:
                for yomi, con in entries:
                    if con is None or btext in con:
                        return yomi, length
        return "", 0


class PykakasiReader(Reader):
    name = "pykakasi"

    def __init__(self) -> None:
        import pykakasi

        from .kanwacache import install

        install()  # pykakasi's dictionary read a character at a time, not loaded whole
        self._kks = pykakasi.Kakasi()
        _kana_only(self._kks)

    @staticmethod
    def version() -> str:
        return "pykakasi " + metadata.version("pykakasi")

    def read(self, text: str) -> str:
        items = self._kks.convert(text)
        if SPOKEN_RE.search(text) is None:
            return "".join(item["kana"] for item in items)
        return "".join(spoken_readings([(item["orig"], item["kana"]) for item in items]))


# MeCab writes each token as \f surface \t kana \n (\v for the kana of an unknown
# word), so that the per-token work happens in C; one regex pass then picks, per
# token, the surface (kana and symbols are read as written), the kana field, or the
# fallback reader (unknown words, words without a kana field).
_MECABRC = (
    "output-format-type = nocpipe\n"
    "node-format-nocpipe = \\f%m\\t%f[17]\\n\n"
    "unk-format-nocpipe = \\f%m\\t\\v\\n\n"
    "bos-format-nocpipe =\n"
    "eos-format-nocpipe = #\n"
)
_AS_WRITTEN = r"\u3041-\u30FF\uFF01-\uFF5E\u3000-\u303F…‥―ー!-~"
# Group 1: a surface read as written; 2: a kana field; 3: a surface for the fallback.
_TOKEN_RE = re.compile(f"\f(?:([{_AS_WRITTEN}]*+)\t[^\n]*+|[^\t]*+\t([^\n\v*][^\n]*+)|([^\t]*+)\t[\v*]?+)\n")
# Each token's surface, token for token with _TOKEN_RE (for the spoken-readings table).
_SURFACE_RE = re.compile(r"\f([^\t]*+)\t[^\n]*+\n")
# White space and control characters: MeCab skips the one and would misread the
# other, and they are the format's delimiters. None of them is readable.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


class UnidicReader(Reader):
    """fugashi + unidic-lite; the `kana` field (as written), not the pronunciation."""

    name = "unidic"

    def __init__(self) -> None:
        try:
            import fugashi
            import unidic_lite
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise UsageError("--reader unidic needs fugashi and unidic-lite: pip install fugashi unidic-lite") from exc
        import os
        import tempfile

        # The output format is chosen by a resource file: unidic-lite's own dicrc
        # fixes the format type, and MeCab lets an -r file's keys win over it.
        fd, rc = tempfile.mkstemp(suffix=".mecabrc", prefix="nocpipe-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(_MECABRC)
            self._tagger = fugashi.GenericTagger(f'-r "{rc}" -d "{unidic_lite.DICDIR}"')
        finally:
            os.unlink(rc)
        # Built now, not on the first unknown word: extract-pairs builds its reader
        # before forking workers, which then share the loaded dictionaries.
        self._fallback = PykakasiReader()

    @staticmethod
    def version() -> str:
        return f"fugashi {metadata.version('fugashi')} + unidic-lite {metadata.version('unidic-lite')}"

    def read(self, text: str) -> str:
        text = _CONTROL_RE.sub("", text)
        if not text:
            return ""
        # The end-of-sentence mark # keeps fugashi's trimming of white space off
        # the last token's delimiters.
        parsed = self._tagger.parse(text)[:-1]
        if SPOKEN_RE.search(text) is None:
            return _TOKEN_RE.sub(self._token, parsed)
        # A word of the spoken-readings table: the same readings, token by token, then the table.
        tokens = [(m[1], self._token(t)) for m, t in zip(_SURFACE_RE.finditer(parsed), _TOKEN_RE.finditer(parsed))]
        return "".join(spoken_readings(tokens))

    def _token(self, m: re.Match) -> str:
        # A callback is cheaper than a template replacement in CPython.
        i = m.lastindex
        assert i is not None  # each of _TOKEN_RE's alternatives has a group
        return m[i] if i != 3 else self._fallback.read(m[3])


_READERS: dict[str, Reader] = {}
_LOCK = threading.Lock()


def get_reader(name: str = DEFAULT_READER) -> Reader:
    """The process-wide reader of that name (built on first use)."""
    with _LOCK:
        if name not in _READERS:
            if name not in ("pykakasi", "unidic"):
                raise UsageError(f"unknown reader {name!r}: use unidic or pykakasi")
            # pykakasi unpickles a dictionary of about a million small objects, and the
            # cyclic collector would walk them again and again while they load: two thirds
            # of the reader's start-up. Nothing built here is garbage.
            was_enabled = gc.isenabled()
            gc.disable()
            try:
                _READERS[name] = PykakasiReader() if name == "pykakasi" else UnidicReader()
            finally:
                if was_enabled:
                    gc.enable()
        return _READERS[name]


@lru_cache(maxsize=200_000)
def _read_plain(reader_name: str, text: str) -> str:
    return _read_plain_counted(reader_name, text)[0]


# What the reader is left with, counted as runs: kanji runs and Latin words.
_READER_RUN_RE = re.compile(f"[{_KANJI}]+|[A-Za-z]+")


@lru_cache(maxsize=200_000)
def _read_plain_counted(reader_name: str, text: str) -> tuple[str, int, int]:
    """(reading, numbers read out, runs left to the reader) of text without ruby."""
    numbers = len(NUMBER_RE.findall(text.translate(_WIDE_TABLE))) if _ANY_DIGIT_RE.search(text) else 0
    text = prenormalise(text)
    # Pure kana needs no reader (and no dictionary look-up).
    if not _NEEDS_READER_RE.search(text):
        return text, numbers, 0
    runs = len(_READER_RUN_RE.findall(text))
    out = get_reader(reader_name).read(text)
    if "々" in out:
        # The reader did not know the word with its repeat mark (吾々, 馬鹿々々):
        # spell the repeat out and read again.
        text = re.sub(r"(..)々々", r"\1\1", text)
        text = re.sub(r"(.)々", r"\1\1", text)
        out = get_reader(reader_name).read(text)
    return out, numbers, runs


#: Changes whenever the same text and reader may read differently (corpora re-extract).
READINGS_VERSION = 4
#: Where a side's readings come from, in the order they are tried.
READING_SOURCES = ("ruby", "memory", "numbers", "reader")


def read_side(
    text: str, reader: str = DEFAULT_READER, memory: RubyMemory | None = None, counts: dict[str, int] | None = None
) -> str:
    """The katakana reading of `text`: the author's ruby on the line first, then the
    work's ruby memory (a pipeline.rubymemory.RubyMemory) for the bare words, then
    numbers, then the reader. When `counts` is given, adds how many words each
    source read (READING_SOURCES) to it."""
    parts = []
    ruby = mem = numbers = runs = 0
    for base, reading in split_ruby(text):
        if reading is None:
            if memory is not None and len(memory):
                base, n = memory.apply(base)
                mem += n
            kana, n_num, n_runs = _read_plain_counted(reader, base)
            parts.append(kana)
            numbers += n_num
            runs += n_runs
        else:
            ruby += 1
            if KANJI_RE.search(reading):  # a reading that is itself kanji still needs reading
                parts.append(_read_plain(reader, reading))
            else:
                parts.append(prenormalise(reading))
    if counts is not None:
        for name, n in zip(READING_SOURCES, (ruby, mem, numbers, runs)):
            if n:
                counts[name] = counts.get(name, 0) + n
    return postnormalise("".join(parts))


class SideReader:
    """Reads the sides of one work with its ruby memory, counting sources in `counts`.

    A dialogue line inside a run is read twice, as a reply and as the next utterance:
    the second reading comes from a small cache (and is counted again)."""

    def __init__(self, reader: str = DEFAULT_READER, memory: RubyMemory | None = None) -> None:
        self.reader = reader
        self.memory = memory
        self.counts: dict[str, int] = {}
        self._last: dict[str, tuple[str, dict[str, int]]] = {}

    def read(self, text: str) -> str:
        hit = self._last.get(text)
        if hit is None:
            if len(self._last) > 64:
                self._last.clear()
            own: dict[str, int] = {}
            hit = self._last[text] = (read_side(text, self.reader, self.memory, own), own)
        for name, n in hit[1].items():
            self.counts[name] = self.counts.get(name, 0) + n
        return hit[0]


@lru_cache(maxsize=200_000)
def to_katakana(text: str, reader: str = DEFAULT_READER) -> str:
    """The katakana reading extract-pairs stores for `text` (ruby used when present)."""
    return read_side(text, reader)


_READER_CLASSES = {"pykakasi": PykakasiReader, "unidic": UnidicReader}


def reader_version(name: str) -> str:
    """The reader's version without loading its dictionaries (for resume checks)."""
    if name not in _READER_CLASSES:
        raise UsageError(f"unknown reader {name!r}: use unidic or pykakasi")
    try:
        return _READER_CLASSES[name].version()
    except metadata.PackageNotFoundError as exc:
        raise UsageError(f"--reader {name} is not installed: pip install 'nocpipe[unidic]'") from exc
