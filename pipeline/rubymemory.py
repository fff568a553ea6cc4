"""A work's own ruby, remembered: words the author annotated once are read the same
way where they later stand bare.

Authors annotate a name or an unusual reading at its first occurrence (or the first
of an episode) and leave the later ones bare; read line by line, 清葉《きよは》 would
be キヨハ once and キヨシハ after. The memory is built from every body line of the
whole work (for a web novel: all its episodes) before any side is read, and is
applied only where it is safe:

- bases of two or more characters (a single kanji is read in too many ways to
  carry over: 人《ひと》 must not make every 人 ヒト);
- readings written in kana only;
- bases the work annotates one way only (a base annotated two ways is left to the
  reader);
- whole words only: an occurrence counts when the characters before and after it
  are not kanji, so 人《ひと》 never turns 友人 into ユウヒト, and 祥子様 is neither
  counted nor changed. A base that begins or ends in katakana or Latin letters
  must not run on into more of the same either (｜ＨＰ《ヒットポイント》 is not read
  inside ＨＰＳ).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from .kana import KANJI_CHARS, _hira_to_kata

_KANJI_RUN_RE = re.compile(f"[{KANJI_CHARS}]+")
# pipeline.kana's RUBY_RE, kept inside one line, and written backwards: searched over
# the reversed text of a whole work, the pattern starts with the literal 》 that the
# regex engine finds fast, instead of trying every kanji run. Groups (reversed):
# reading, then the explicit base (｜base) or the implicit one (kanji run, 〔…〕, Latin).
_RUBY_REVERSED_RE = re.compile(
    f"》([^《》\n]*)《(?:([^｜|《》\n]+)[｜|]|([{KANJI_CHARS}]+|〕[^〔〕《》\n]*〔|[A-Za-zＡ-Ｚａ-ｚ]+))"
)
_KANA_READING_RE = re.compile(r"[ぁ-ゖァ-ヺー]+")
# Scripts in which words run together without a break, besides kanji.
_RUN_ON = (re.compile(r"[ァ-ヺー]"), re.compile(r"[A-Za-zＡ-Ｚａ-ｚ0-9０-９]"))
MIN_BASE = 2


class RubyMemory:
    """base -> katakana reading for the bases one work annotates one way."""

    def __init__(self) -> None:
        self._seen: dict[str, str | None] = {}  # None: annotated more than one way
        self._kanji: dict[str, str] = {}  # all-kanji bases: looked up by kanji run
        self._mixed: dict[str, str] = {}  # bases with kana or Latin too: searched
        self._mixed_re: re.Pattern | None = None
        self._mixed_edges: dict[str, tuple[re.Pattern | None, re.Pattern | None]] = {}
        self._dirty = False

    # ------------------------------------------------------------ building

    @classmethod
    def from_lines(cls, lines: Iterable[str]) -> "RubyMemory":
        memory = cls()
        memory.observe("\n".join(lines))
        return memory

    def observe(self, text: str) -> None:
        """Remember the ruby of body lines (ruby kept as ｜base《reading》 or kanji《reading》)."""
        if "《" not in text:
            return
        # One search over all the lines, and each distinct annotation added once.
        found = _RUBY_REVERSED_RE.findall(text[::-1])
        for reading, explicit, implicit in dict.fromkeys(reversed(found)):
            self.add((explicit or implicit)[::-1], reading[::-1])

    def add(self, base: str, reading: str) -> None:
        base = base.strip()
        if len(base) < MIN_BASE or not _KANA_READING_RE.fullmatch(reading):
            return
        kana = _hira_to_kata(reading)
        if kana == _hira_to_kata(base):
            return  # kana read as written: nothing to remember
        if base in self._seen:
            if self._seen[base] not in (None, kana):
                self._seen[base] = None
                self._dirty = True
            return
        self._seen[base] = kana
        self._dirty = True

    def _refresh(self) -> None:
        self._kanji = {b: r for b, r in self._seen.items() if r is not None and _KANJI_RUN_RE.fullmatch(b)}
        self._mixed = {b: r for b, r in self._seen.items() if r is not None and b not in self._kanji}
        self._mixed_edges = {b: (_run_on(b[0]), _run_on(b[-1])) for b in self._mixed}
        self._mixed_re = None
        if self._mixed:
            # Longest first, so that the longer of two overlapping bases wins.
            alts = "|".join(re.escape(b) for b in sorted(self._mixed, key=len, reverse=True))
            self._mixed_re = re.compile(f"(?<![{KANJI_CHARS}])(?:{alts})(?![{KANJI_CHARS}])")
        self._dirty = False

    # ------------------------------------------------------------ using

    def __len__(self) -> int:
        if self._dirty:
            self._refresh()
        return len(self._kanji) + len(self._mixed)

    def readings(self) -> dict[str, str]:
        """The bases in use and their katakana readings."""
        if self._dirty:
            self._refresh()
        return {**self._kanji, **self._mixed}

    def apply(self, text: str) -> tuple[str, int]:
        """`text` (no ruby) with every remembered whole word replaced by its katakana
        reading, and how many were replaced."""
        if self._dirty:
            self._refresh()
        n = 0
        if self._kanji:
            runs = _KANJI_RUN_RE.findall(text)
            # A kanji run is a whole word by construction: its neighbours are not kanji.
            if runs and not self._kanji.keys().isdisjoint(runs):

                def sub(m: re.Match) -> str:
                    nonlocal n
                    reading = self._kanji.get(m.group())
                    if reading is None:
                        return m.group()
                    n += 1
                    return reading

                text = _KANJI_RUN_RE.sub(sub, text)
        if self._mixed_re is not None:

            def sub_mixed(m: re.Match) -> str:
                nonlocal n
                base = m.group()
                head, tail = self._mixed_edges[base]
                start, end = m.span()
                if (head and start > 0 and head.match(text, start - 1)) or (
                    tail and end < len(text) and tail.match(text, end)
                ):
                    return base
                n += 1
                return self._mixed[base]

            text = self._mixed_re.sub(sub_mixed, text)
        return text, n


def _run_on(c: str) -> re.Pattern | None:
    """The script that `c` would run on into, if any (kanji are checked for every base)."""
    return next((p for p in _RUN_ON if p.match(c)), None)


def memory_of_file(path: Path) -> RubyMemory:
    """The ruby memory of one local file (plain text or Aozora notation), the way
    extract-pairs builds it for an ingested work."""
    import os
    import stat

    from .config import MAX_INPUT_MB
    from .errors import UsageError
    from .parsers import aozora
    from .textfile import decode_bytes

    limit = MAX_INPUT_MB * 1024 * 1024
    try:
        st = os.stat(path)
        # A FIFO would block and /dev/zero never end: only a regular file of bounded size is read.
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"--context {path} is not a regular file; give a text file")
        if st.st_size > limit:
            raise UsageError(f"--context {path} is larger than {MAX_INPUT_MB} MB; give one work's text")
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"--context {path}: {exc.strerror or exc}") from exc
    lines = decode_bytes(data, str(path)).text.split("\n")
    if aozora.looks_like_aozora(lines):
        lines = aozora.parse("\n".join(lines)).body
    return RubyMemory.from_lines(lines)
