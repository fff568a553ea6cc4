"""Reading time against line length: one line of 1k, 4k, 16k and 64k characters
(the bundled corpus's dialogue lines joined without line breaks, and a kanji-dense
sentence repeated), read by each reader
the way extract-pairs and `nocpipe kana` read it. Prints seconds and microseconds per
character; a reading linear in length keeps the second column flat. Asserts nothing.

    .venv/bin/python benchmarks/kana_length.py [--sizes 1000,4000,16000,64000] [--readers unidic,pykakasi]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.kana import get_reader, to_katakana  # noqa: E402
from pipeline.parsers import aozora  # noqa: E402
from pipeline.textfile import decode_bytes  # noqa: E402

DENSE = "王様は人を殺します。邪智暴虐の王だ、東京特許許可局長。"


def sample_text(corpus: Path, size: int) -> str:
    parts: list[str] = []
    total = 0
    for f in sorted(corpus.glob("*.txt")):
        for line in aozora.parse(decode_bytes(f.read_bytes()).text).body:
            line = line.strip()
            if line.startswith("「"):
                parts.append(line)
                total += len(line)
                if total >= size:
                    return "".join(parts)[:size]
    text = "".join(parts)
    return (text * (size // max(1, len(text)) + 1))[:size]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=REPO / "data" / "aozora")
    ap.add_argument("--sizes", default="1000,4000,16000,64000")
    ap.add_argument("--readers", default="unidic,pykakasi")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    texts = {"dialogue": sample_text(args.corpus, max(sizes)), "dense": DENSE * (max(sizes) // len(DENSE) + 1)}
    print(f"{'reader':9} {'text':9} {'chars':>7} {'seconds':>8} {'us/char':>8}")
    for reader in args.readers.split(","):
        get_reader(reader).read("準備")  # dictionaries loaded before timing
        for name, longest in texts.items():
            for size in sizes:
                # A fresh string each time, so that no cache answers.
                text = longest[: size - 1] + str(size % 10)
                t0 = time.perf_counter()
                to_katakana.__wrapped__(text, reader)
                dt = time.perf_counter() - t0
                print(f"{reader:9} {name:9} {size:>7,} {dt:>8.3f} {dt / size * 1e6:>8.1f}")


if __name__ == "__main__":
    main()
