"""The pair rule (docs/design.md), as pure functions over body lines.

1. strip white space at both ends (U+3000 included);
2. a dialogue line starts with 「, ends with 」, and its first 「 is closed only by its last 」;
3. each dialogue line pairs with the next non-blank line when that is a dialogue line too.
Line numbers are 0-based indices among the episode's body lines (blank ones included).
"""

from __future__ import annotations

from collections.abc import Iterator

from .kana import strip_ruby
from .records import Candidate, Counters, Episode


def is_dialogue(line: str) -> bool:
    """「…」 whose opening bracket is closed by the final 」 and by nothing earlier."""
    if len(line) < 2 or line[0] != "「" or line[-1] != "」":
        return False
    if line.count("「") == 1 and line.count("」") == 1:
        return True  # the common case, without a Python loop
    depth = 0
    last = len(line) - 1
    for i, c in enumerate(line):
        if c == "「":
            depth += 1
        elif c == "」":
            depth -= 1
            if depth == 0 and i != last:
                return False
            if depth < 0:
                return False
    return depth == 0


def _inner(line: str) -> str:
    return line[1:-1]


def find_candidates(episode: Episode, counters: Counters | None = None) -> Iterator[Candidate]:
    """Consecutive dialogue lines of one episode, ruby kept apart for the reader.
    Counts `lines` and `dialogue_lines` into `counters` when given."""
    plain = [strip_ruby(raw).strip() for raw in episode.lines]
    if counters is not None:
        counters.add("lines", len(plain))
    prev: int | None = None  # index of the last non-blank line if it was dialogue
    for i, text in enumerate(plain):
        if not text:
            continue
        if is_dialogue(text):
            if counters is not None:
                counters.add("dialogue_lines")
            if prev is not None:
                yield Candidate(
                    episode=episode.number,
                    line=prev,
                    utterance=_inner(plain[prev]),
                    reply=_inner(text),
                    utterance_ruby=_ruby_inner(episode.lines[prev], plain[prev]),
                    reply_ruby=_ruby_inner(episode.lines[i], text),
                )
            prev = i
        else:
            prev = None


def _ruby_inner(raw: str, plain: str) -> str:
    """The text inside the outer 「」 with its ruby annotations kept."""
    ann = raw.strip()
    if ann.startswith("「") and ann.endswith("」"):
        return ann[1:-1]
    return _inner(plain)
