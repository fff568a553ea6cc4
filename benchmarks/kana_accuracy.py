"""Readings of the words authors annotated with ruby, on the bundled Aozora corpus (data/aozora, 61 works):
with the ruby in the input (must read as annotated), and with it removed (nocpipe's
readers against pykakasi and fugashi alone). Prints figures; asserts nothing.

    .venv/bin/python benchmarks/kana_accuracy.py [--corpus data/aozora] [--sample 3000]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.kana import RUBY_RE, _hira_to_kata, to_katakana  # noqa: E402
from pipeline.parsers import aozora  # noqa: E402
from pipeline.textfile import decode_bytes  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=REPO / "data" / "aozora")
    ap.add_argument("--sample", type=int, default=3000)
    args = ap.parse_args()
    items = []
    for f in sorted(args.corpus.glob("*.txt")):
        body = "\n".join(aozora.parse(decode_bytes(f.read_bytes()).text).body)
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
    print(f"ruby in the input (｜base《reading》), nocpipe kana: {share(lambda b, r: to_katakana(f'｜{b}《{r}》')):.3f}")
    print(f"ruby in the input (implicit form, kanji bases only): "
          f"{share(lambda b, r: to_katakana(f'{b}《{r}》') if re.fullmatch(r'[一-龥々〆ヶ]+', b) else _hira_to_kata(r)):.3f}")
    print(f"ruby removed, nocpipe --reader pykakasi: {share(lambda b, r: to_katakana(b, 'pykakasi')):.3f}")
    print(f"ruby removed, pykakasi alone:            "
          f"{share(lambda b, r: ''.join(d['kana'] for d in kks.convert(b))):.3f}")
    print(f"ruby removed, nocpipe --reader unidic:   {share(lambda b, r: to_katakana(b, 'unidic')):.3f}")
    print(f"ruby removed, fugashi alone:             "
          f"{share(lambda b, r: ''.join((w.feature.kana or w.surface) if not w.is_unk else w.surface for w in tagger(b))):.3f}")


if __name__ == "__main__":
    main()
