"""Spoken readings of everyday words, applied to a reader's tokens (docs/readings.md).

Dictionaries give a word's reading as written in formal prose: UniDic reads 明日 アス, 私
ワタクシ and 上手は カミテ, pykakasi reads 今日は コンニチハ and 今年 コンネン. Dialogue says
アシタ, ワタシ, ジョウズ, キョウ, コトシ. The table below holds the reading a speaker uses;
it is applied to whole tokens, so the reader's word boundaries decide what a word is: 明日香
(one token, アスカ) and 今日中 are left alone, while 私 in 私達 becomes ワタシ. The author's
ruby and the work's ruby memory are read before the reader and still win.

A token sequence is matched too (UniDic splits 一昨日 into 一昨 + 日); pykakasi's tokens can
carry the particles after a word (今日は), so a token that starts with a word of the table
and goes on with particles only is matched as well.
"""

from __future__ import annotations

import re

#: Surface -> the reading used in speech. Only words that a reader gets wrong in dialogue, or
#: could; the spoken reading is the one of everyday talk (ruby overrides it).
SPOKEN = {
    "明日": "アシタ",
    "明後日": "アサッテ",
    "一昨日": "オトトイ",
    "昨日": "キノウ",
    "今日": "キョウ",
    "今日中": "キョウジュウ",
    "今年": "コトシ",
    "今朝": "ケサ",
    "一日中": "イチニチジュウ",
    "私": "ワタシ",
    "貴方": "アナタ",
    "上手": "ジョウズ",
    "下手": "ヘタ",
    "一杯": "イッパイ",
    "一人": "ヒトリ",
    "二人": "フタリ",
    "大人": "オトナ",
    "何": "ナニ",  # ナン before a d, t or n sound: see _NAN_BEFORE
}
#: 何 reads ナン before these (何で, 何だ, 何の, 何と, 何て), ナニ before other kana (何を, 何が,
#: 何か, 何に), and as the reader says before a kanji (何人 ナンニン, 何度 ナンド).
_NAN_BEFORE = "ダヂヅデドナヌネノタチツテトン"
#: What may follow a word inside one pykakasi token: particles and the copula.
_PARTICLES = re.compile(r"[はがをにでともへのやかよねなだぞさ]+")
_LONGEST = 3  # tokens one entry may span
SPOKEN_RE = re.compile("|".join(sorted(map(re.escape, SPOKEN), key=len, reverse=True)))
_KANA = re.compile(r"[\u3041-\u30FF]")


def _hira_to_kata(text: str) -> str:
    return "".join(chr(ord(c) + 0x60) if "\u3041" <= c <= "\u3096" else c for c in text)


def _resolve(word: str, reading: str, after: str, surface_after: str) -> str:
    """The spoken reading of `word` given the reading (and surface) of what follows it."""
    if word != "何":
        return reading
    if surface_after and not _KANA.match(surface_after):
        return ""  # before a kanji (or nothing readable): the reader's own reading
    return "ナン" if after[:1] in _NAN_BEFORE and after else "ナニ"


def apply(tokens: list[tuple[str, str]]) -> list[str]:
    """The readings of `tokens` ((surface, reading) pairs, in order) with the table's spoken
    readings in place of the reader's where a token, or a run of tokens, is a word of it."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for n in range(min(_LONGEST, len(tokens) - i), 0, -1):
            surface = "".join(s for s, _ in tokens[i : i + n])
            word, rest = surface, ""
            if surface not in SPOKEN and n == 1:
                m = SPOKEN_RE.match(surface)
                if m and _PARTICLES.fullmatch(surface[m.end() :]):
                    word, rest = m.group(), surface[m.end() :]
            if word in SPOKEN:
                nxt = tokens[i + n] if i + n < len(tokens) else ("", "")
                after = _hira_to_kata(rest or nxt[1])  # kana read as written are still hiragana
                spoken = _resolve(word, SPOKEN[word], after, rest or nxt[0])
                if spoken:
                    out.append(spoken + _hira_to_kata(rest))
                    i += n
                    break
        else:
            out.append(tokens[i][1])
            i += 1
    return out
