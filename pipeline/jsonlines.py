"""The JSON-lines protocol of `nocpipe predict --jsonl`: one object a line in, one a line out.

    in    {"text": "...", "candidates": ["...", ...]}          candidates optional, at most MAX_CANDIDATES
    out   {"text", "kana", "replies": [{"reply", "surface", "score", "source"}],
           "ranked": [{"candidate", "score"}]}                  ranked only when candidates were given
          {"text", "error": "..."}                              an input that cannot be answered

Output lines come in input order, one per non-blank input line. Each line is answered on its own:
a few lines of a file share one model call when that cannot change their answers (never under
sampling, whose draws would then depend on the neighbours), and stdin is answered a line at a
time, flushed, so a program on the other end of a pipe gets each answer before it writes the next
line. A line that is not JSON of that shape stops the run with its line number, after the answers
before it; with an output file (written atomically) nothing appears then.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import cast

from .decoding import MAX_CANDIDATES, Decoding, rank_candidates
from .errors import InputError, UsageError

#: Lines of a --jsonl file sharing one model call (greedy or beam decoding only).
FILE_BATCH = 16
KEYS = ("text", "candidates")


def parse_line(line: str, number: int) -> dict:
    """An input line checked for its shape; UsageError naming the line otherwise."""
    where = f"--jsonl line {number}"
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise UsageError(f'{where} is not JSON ({exc}): give one object like {{"text": "..."}} a line') from None
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        raise UsageError(f'{where} needs an object with a "text" string, like {{"text": "こんにちは"}}')
    extra = sorted(set(obj) - set(KEYS))
    if extra:
        raise UsageError(f"{where} has unknown keys {extra}: only text and candidates are read")
    cands = obj.get("candidates")
    if cands is not None:
        if not isinstance(cands, list) or not all(isinstance(c, str) for c in cands):
            raise UsageError(f'{where}: "candidates" must be a list of strings')
        if len(cands) > MAX_CANDIDATES:
            raise UsageError(f"{where} gives {len(cands)} candidates; at most {MAX_CANDIDATES} a line")
    return obj


def _lines(stream) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(stream, start=1):
        if line.strip():
            yield number, line


def _batches(stream, size: int) -> Iterator[tuple[list[dict], UsageError | None]]:
    """Parsed lines, `size` at most together; a bad line ends the stream after the lines before it."""
    batch: list[dict] = []
    for number, line in _lines(stream):
        try:
            batch.append(parse_line(line, number))
        except UsageError as exc:
            yield batch, exc
            return
        if len(batch) >= size:
            yield batch, None
            batch = []
    if batch:
        yield batch, None


def answer(bot, objs: list[dict], decoding: Decoding, max_len: int) -> list[dict]:
    """The output objects of parsed input lines, in order (one model call for their replies)."""
    out: list[dict | None] = [None] * len(objs)
    kanas, todo = [], []
    for i, obj in enumerate(objs):
        kana = bot.to_kana(obj["text"])[:max_len]
        if not kana:
            out[i] = {"text": obj["text"], "error": "nothing in it reads as katakana"}
            continue
        bad = next((j for j, c in enumerate(obj.get("candidates") or [], 1) if not bot.to_kana(c)), None)
        if bad is not None:
            out[i] = {"text": obj["text"], "error": f"candidate {bad} has nothing that reads as katakana"}
            continue
        kanas.append(kana)
        todo.append(i)
    lists = bot.reply(kanas, decoding) if kanas else []
    for i, kana, cands in zip(todo, kanas, lists):
        obj = objs[i]
        rec = {
            "text": obj["text"],
            "kana": kana,
            "replies": [{"reply": c.text, "surface": c.surface, "score": c.score, "source": c.source} for c in cands],
        }
        if obj.get("candidates") is not None:
            given = obj["candidates"]
            scores = bot.rank(kana, [bot.to_kana(c) for c in given])
            rec["ranked"] = [{"candidate": c, "score": s} for c, s in rank_candidates(given, scores)]
        out[i] = rec
    return cast(list[dict], out)  # every slot is filled: an error above or a reply here


def answer_jsonl(bot, source: str, decoding: Decoding, output: Path | None = None, out=None, stdin=None) -> int:
    """Answer every line of `source` (a path, or "-" for `stdin`) to `out`, or to `output` written
    atomically once complete. Returns the number of lines answered."""
    from contextlib import nullcontext

    from .atomic import atomic_path

    size = 1 if source == "-" or decoding.temperature > 0 else FILE_BATCH
    try:
        stream = (sys.stdin if stdin is None else stdin) if source == "-" else open(source, encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read --jsonl {source}: {exc.strerror or exc}") from None
    with nullcontext() if source == "-" else stream:
        if output is None:
            return _stream(bot, stream, decoding, size, out or sys.stdout)
        with atomic_path(Path(output)) as tmp, open(tmp, "w", encoding="utf-8") as fh:
            return _stream(bot, stream, decoding, size, fh)


def _stream(bot, stream, decoding: Decoding, size: int, out) -> int:
    answered = 0
    try:
        for batch, error in _batches(stream, size):
            for rec in answer(bot, batch, decoding, bot.vocab.max_len):
                out.write(json.dumps(rec, ensure_ascii=False) + "\n")
                answered += 1
            out.flush()
            if error is not None:
                raise error
    except UnicodeDecodeError:
        raise InputError(f"--jsonl input is not UTF-8 text (after {answered} answered lines)") from None
    return answered
