"""Aozora Bunko notation: header, legend, footer, ［＃…］ notes, gaiji and ruby.

    title / author            header lines, up to the first blank line
    -------- … --------       the legend of symbols (not body)
    body                      ruby 漢字《かんじ》 and ｜base《reading》, notes ［＃…］ (may nest),
                              gaiji ※［＃「…」、U+XXXX、…］ or ※［＃「…」、第3水準1-85-54］
    底本：… to the end         the footer (not body)

Ruby is kept in the body lines (the readings are the author's); notes are removed;
a gaiji becomes its character when the note gives a code point or a JIS X 0213
position, and is dropped (counted as `gaiji_dropped`) otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .. import rawstore
from ..records import Counters, Episode

_DASHES_RE = re.compile(r"^-{10,}\s*$")
_UCODE_RE = re.compile(r"U\+([0-9A-Fa-f]{4,6})")
_JIS_RE = re.compile(r"(?:第[34]水準)?([12])-(\d{1,2})-(\d{1,2})")
FOOTER_START = "底本："


@dataclass(frozen=True)
class AozoraText:
    title: str
    author: str
    body: list[str]


def looks_like_aozora(lines: list[str]) -> bool:
    """Aozora files have the dashed legend near the top or a 底本： footer."""
    head = lines[:60]
    if sum(1 for ln in head if _DASHES_RE.match(ln)) >= 2:
        return True
    return any(ln.startswith(FOOTER_START) for ln in lines[-200:])


def _find_close(line: str, start: int) -> int:
    """Index of the ］ closing the ［ at `start` (nesting counted), or -1."""
    depth = 0
    for i in range(start, len(line)):
        c = line[i]
        if c == "［":
            depth += 1
        elif c == "］":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _gaiji_char(note: str) -> str | None:
    m = _UCODE_RE.search(note)
    if m:
        try:
            return chr(int(m.group(1), 16))
        except ValueError:
            return None
    # The last plane-row-cell in the note is the JIS X 0213 position.
    matches = list(_JIS_RE.finditer(note))
    if matches:
        plane, row, cell = (int(x) for x in matches[-1].groups())
        raw = bytes([0xA0 + row, 0xA0 + cell])
        if plane == 2:
            raw = b"\x8f" + raw
        try:
            ch = raw.decode("euc_jis_2004")
        except UnicodeDecodeError:
            return None
        return ch if ch and "\ufffd" not in ch else None
    return None


def clean_line(line: str, counters: Counters) -> str:
    """Resolve gaiji and remove notes from one line; ruby stays."""
    if "［＃" not in line:
        return line
    out = []
    i = 0
    while True:
        start = line.find("［＃", i)
        if start < 0:
            out.append(line[i:])
            break
        gaiji = start > 0 and line[start - 1] == "※"
        out.append(line[i : start - 1 if gaiji else start])
        end = _find_close(line, start)
        if end < 0:  # an unclosed note: keep the rest as text
            out.append(line[start:])
            break
        if gaiji:
            ch = _gaiji_char(line[start : end + 1])
            if ch is None:
                counters.add("gaiji_dropped")
            else:
                counters.add("gaiji_resolved")
                out.append(ch)
        i = end + 1
    return "".join(out)


def parse(text: str, counters: Counters | None = None) -> AozoraText:
    """Split an Aozora text into title, author and body lines (notes removed)."""
    counters = counters if counters is not None else Counters()
    lines = text.split("\n")
    header_end = next((i for i, ln in enumerate(lines) if not ln.strip()), len(lines))
    header = [ln.strip() for ln in lines[:header_end] if ln.strip()]
    title = " ".join(header[:2]) if len(header) >= 3 else (header[0] if header else "")
    author = header[-1] if len(header) >= 2 else ""

    dashes = [i for i, ln in enumerate(lines[:80]) if _DASHES_RE.match(ln)]
    body_start = dashes[1] + 1 if len(dashes) >= 2 else header_end + 1
    body_end = next(
        (i for i in range(len(lines) - 1, body_start - 1, -1) if lines[i].startswith(FOOTER_START)), len(lines)
    )
    body = [clean_line(ln, counters) for ln in lines[body_start:body_end]]
    # Line numbers count from the first line of text, not from the blank after the legend.
    while body and not body[0].strip():
        body.pop(0)
    while body and not body[-1].strip():
        body.pop()
    return AozoraText(title=title, author=author, body=body)


def read_work(work_dir: Path, counters: Counters) -> Iterator[Episode]:
    text = rawstore.read_text(work_dir)
    yield Episode(1, parse(text, counters).body)
