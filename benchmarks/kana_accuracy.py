"""Readings of the words authors annotated with ruby, on the bundled Aozora corpus (data/aozora, 61 works):
with the ruby in the input (must read as annotated), and with it removed (nocpipe's
readers against pykakasi and fugashi alone). Then the work's ruby memory: the later
bare occurrences of words of two or more characters that a work always annotates
one way, and the share read as annotated, with each reader alone and with the
memory, on all works and on two halves split by a hash of the file name (the memory
has no parameters tuned on either). Prints figures; asserts nothing.

    .venv/bin/python benchmarks/kana_accuracy.py [--corpus data/aozora] [--sample 3000] [--readers unidic,pykakasi]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.kana import RUBY_RE, _hira_to_kata, read_side, split_ruby, to_katakana  # noqa: E402
from pipeline.parsers import aozora  # noqa: E402
from pipeline.rubymemory import RubyMemory  # noqa: E402
from pipeline.textfile import decode_bytes  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=REPO / "data" / "aozora")
    ap.add_argument("--sample", type=int, default=3000)
    ap.add_argument("--readers", default="unidic,pykakasi")
    args = ap.parse_args()
    items = []
    works = {}
    for f in sorted(args.corpus.glob("*.txt")):
        works[f.name] = aozora.parse(decode_bytes(f.read_bytes()).text).body
        body = "\n".join(works[f.name])
        for m in RUBY_RE.finditer(body):
            base, reading = (m.group(1), m.group(2)) if m.group(1) is not None else (m.group(3), m.group(4))
            if re.fullmatch(r"[ぁ-ゖァ-ヺー]+", reading) and len(base) <= 8:
                items.append((base, reading))
    random.Random(0).shuffle(items)
    items = items[: args.sample]

    import fugashi
    import pykakasi

    kks = pykakasi.kakasi()
    tagger = fugashi.Tagger()

    def share(read) -> float:
        return sum(read(b, r) == _hira_to_kata(r) for b, r in items) / len(items)

    print(f"{len(items)} ruby-annotated words from {args.corpus}")
    print(
        f"ruby in the input (｜base《reading》), nocpipe kana: {share(lambda b, r: to_katakana(f'｜{b}《{r}》')):.3f}"
    )
    print(
        f"ruby in the input (implicit form, kanji bases only): "
        f"{share(lambda b, r: to_katakana(f'{b}《{r}》') if re.fullmatch(r'[一-龥々〆ヶ]+', b) else _hira_to_kata(r)):.3f}"
    )
    print(f"ruby removed, nocpipe --reader pykakasi: {share(lambda b, r: to_katakana(b, 'pykakasi')):.3f}")
    print(
        f"ruby removed, pykakasi alone:            {share(lambda b, r: ''.join(d['kana'] for d in kks.convert(b))):.3f}"
    )
    print(f"ruby removed, nocpipe --reader unidic:   {share(lambda b, r: to_katakana(b, 'unidic')):.3f}")
    print(
        f"ruby removed, fugashi alone:             "
        f"{share(lambda b, r: ''.join((w.feature.kana or w.surface) if not w.is_unk else w.surface for w in tagger(b))):.3f}"
    )
    memory_figures(works, args.readers.split(","))


def later_bare(lines: list[str]) -> list[tuple[int, str, str, int]]:
    """(line index, base, katakana reading, bare whole-word occurrences on that line) for
    the bases of two or more characters this work annotates one way, after the first
    annotation, in lines where the base stands bare."""
    memory = RubyMemory.from_lines(lines)
    known = memory.readings()
    first: dict[str, int] = {}
    for i, line in enumerate(lines):
        for m in RUBY_RE.finditer(line):
            base = m.group(1) if m.group(1) is not None else m.group(3)
            first.setdefault(base.strip(), i)
    out = []
    for i, line in enumerate(lines):
        bare = "\x00".join(b for b, r in split_ruby(line) if r is None)
        if not bare:
            continue
        for base, reading in known.items():
            if base not in bare or first.get(base, i) >= i:
                continue
            n = len(list(re.finditer(f"(?<![{KANJI}]){re.escape(base)}(?![{KANJI}])", bare)))
            if n:
                out.append((i, base, reading, n))
    return out


KANJI = r"\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF\U00020000-\U0003134F々〆ヶ〇"


def read_as_annotated(line: str, base: str, reading: str, n: int, reader: str, memory) -> int:
    """How many of the n bare occurrences of `base` on `line` read as `reading`: the
    occurrences of the reading in the line's reading beyond those in the reading of
    the line without the base (so a reading that appears elsewhere is not counted)."""
    with_base = read_side(line, reader, memory).count(reading)
    without = read_side(line.replace(base, "・"), reader, memory).count(reading)
    return max(0, min(n, with_base - without))


def memory_figures(works: dict[str, list[str]], readers: list[str]) -> None:
    import hashlib

    half = {name: "A" if hashlib.sha1(name.encode()).digest()[0] % 2 == 0 else "B" for name in works}
    cases = {name: later_bare(lines) for name, lines in works.items()}
    memories = {name: RubyMemory.from_lines(lines) for name, lines in works.items()}
    total = sum(n for c in cases.values() for *_, n in c)
    bases = len({(name, b) for name, c in cases.items() for _, b, _, _ in c})
    print(
        f"\nwork ruby memory: {total} later bare occurrences of {bases} words that "
        f"{sum(1 for c in cases.values() if c)} works annotate one way (two or more characters)"
    )
    print(f"{'reader':9} {'works':6} {'n':>6} {'reader alone':>13} {'with memory':>12}")
    for reader in readers:
        for part in ("all", "A", "B"):
            names = [w for w in works if part == "all" or half[w] == part]
            n = alone = with_memory = 0
            for name in names:
                lines = works[name]
                for i, base, reading, k in cases[name]:
                    n += k
                    alone += read_as_annotated(lines[i], base, reading, k, reader, None)
                    with_memory += read_as_annotated(lines[i], base, reading, k, reader, memories[name])
            print(f"{reader:9} {part:6} {n:>6} {alone / max(1, n):>13.3f} {with_memory / max(1, n):>12.3f}")


if __name__ == "__main__":
    main()
