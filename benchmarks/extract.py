"""extract-pairs on the bundled Aozora corpus (data/aozora, 61 works): wall time, characters per second and
peak memory for both readers and 1 and 2 workers, next to the reader library's own
time for the same sides; then the marginal cost: a run over a bigger corpus minus a
run over a smaller one (everything extract-pairs does included: parsing, ruby
memory, reading, near-duplicate detection, writing), against the library's time for
the extra works' sides in one process divided by the workers. Prints figures;
asserts nothing.

    .venv/bin/python benchmarks/extract.py [--corpus data/aozora] [--extra DIR] [--readers unidic,pykakasi]

Without --extra, the smaller corpus is the first half of --corpus (by file name) and
the bigger one all of it; with --extra (works of the same form that the project has
not seen), --corpus is the smaller and --corpus plus --extra the bigger.
Target: marginal wall <= 1.3 x (library time of the extra sides / workers).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.kana import get_reader, strip_ruby  # noqa: E402
from pipeline.pairs import find_candidates  # noqa: E402
from pipeline.parsers import parser_for  # noqa: E402
from pipeline.records import Counters  # noqa: E402
from stages.extract_pairs import list_works  # noqa: E402
from stages.ingest import ingest  # noqa: E402


def peak_rss_of(cmd: list[str]) -> tuple[float, float]:
    """Run cmd; return (wall seconds, peak RSS in MB summed over its process tree)."""
    t0 = time.perf_counter()
    proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def poll() -> None:
        nonlocal peak
        while not done.is_set():
            try:
                procs = [proc] + proc.children(recursive=True)
                peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.02)

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    done.set()
    th.join()
    if proc.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{err.decode()}")
    return wall, peak / 2**20


def candidate_texts(raw: Path) -> tuple[list[str], int]:
    """The sides extract-pairs reads (plain text, ruby removed), and the corpus size."""
    texts, chars = [], 0
    for w in list_works(raw):
        for ep in parser_for(w.source)(w.path, Counters()):
            chars += sum(len(ln) for ln in ep.lines)
            seen_line = set()
            for c in find_candidates(ep):
                for key, text in ((c.line, c.utterance), (("r", c.line), c.reply)):
                    if key not in seen_line:
                        seen_line.add(key)
                        texts.append(strip_ruby(text))
    return texts, chars


def library_reader(name: str):
    """The reader library used the way its documentation shows: the baseline."""
    if name == "pykakasi":
        import pykakasi

        kks = pykakasi.kakasi()
        return lambda t: "".join(d["kana"] for d in kks.convert(t))
    import fugashi

    tagger = fugashi.Tagger()
    return lambda t: "".join((w.feature.kana or w.surface) if not w.is_unk else w.surface for w in tagger(t))


def _ingest(files: list[Path], raw: Path) -> None:
    src = raw.parent / (raw.name + "-src")
    src.mkdir(parents=True)
    for f in files:
        (src / f.name).symlink_to(f.resolve())
    ingest([src], raw, show_progress=False)


def _extract(raw: Path, out: Path, reader: str, workers: int) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "pipeline.cli", "extract-pairs", "--raw-dir", str(raw),
           "--out-dir", str(out), "--reader", reader, "--workers", str(workers), "-q",
           "--examples", "0", "--max-len", "0"]
    return peak_rss_of(cmd)


def _library_time(reader: str, texts: list[str]) -> float:
    convert = library_reader(reader)
    convert("準備")  # dictionaries loaded before timing
    t0 = time.perf_counter()
    for t in texts:
        convert(t)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=REPO / "data" / "aozora")
    ap.add_argument("--extra", type=Path, default=None, help="held-out works for the marginal cost")
    ap.add_argument("--readers", default="unidic,pykakasi")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--repeat", type=int, default=2, help="runs per figure; the fastest counts")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="nocpipe-bench-"))
    files = sorted(args.corpus.glob("*.txt")) + sorted(args.corpus.glob("*.zip"))
    if args.extra:
        small_files = files
        big_files = files + sorted(args.extra.glob("*.txt")) + sorted(args.extra.glob("*.zip"))
    else:
        small_files, big_files = files[: len(files) // 2], files
    t0 = time.perf_counter()
    raw_small, raw_big = tmp / "raw-small", tmp / "raw-big"
    _ingest(small_files, raw_small)
    _ingest(big_files, raw_big)
    print(f"ingest: {len(small_files)} and {len(big_files)} works in {time.perf_counter() - t0:.1f} s")
    texts, corpus_chars = candidate_texts(raw_big)
    small_texts, small_chars = candidate_texts(raw_small)
    # The extra works' sides: the bigger corpus's minus the smaller's (as a multiset).
    left = {}
    for t in small_texts:
        left[t] = left.get(t, 0) + 1
    extra_texts = []
    for t in texts:
        if left.get(t):
            left[t] -= 1
        else:
            extra_texts.append(t)
    print(f"corpus: {corpus_chars:,} body characters; {len(texts):,} dialogue sides to read "
          f"({sum(map(len, texts)):,} characters); the extra works: {len(extra_texts):,} sides "
          f"({sum(map(len, extra_texts)):,} characters); cores: {os.cpu_count()}")

    def best(raw: Path, reader: str, workers: int, name: str) -> tuple[float, float]:
        runs = [_extract(raw, tmp / f"{name}-{reader}-{workers}-{i}", reader, workers) for i in range(args.repeat)]
        return min(r[0] for r in runs), max(r[1] for r in runs)

    print("\nwhole run (the bigger corpus)")
    print(f"{'reader':9} {'workers':>7} {'wall s':>7} {'chars/s':>10} {'peak MB':>8} "
          f"{'library s':>9} {'ratio':>6}")
    marginal = []
    for reader in args.readers.split(","):
        pure = _library_time(reader, texts)
        pure_extra = _library_time(reader, extra_texts)
        ours = get_reader(reader)
        ours.read("準備")
        t0 = time.perf_counter()
        for t in texts:
            ours.read(t)
        print(f"{reader:9} {'-':>7}  nocpipe's reader alone: {time.perf_counter() - t0:.1f} s "
              f"for the same sides (library alone: {pure:.1f} s)")
        for workers in map(int, args.workers.split(",")):
            wall, peak = best(raw_big, reader, workers, "big")
            print(f"{reader:9} {workers:>7} {wall:>7.1f} {corpus_chars / wall:>10,.0f} {peak:>8.0f} "
                  f"{pure:>9.1f} {wall / (pure / workers):>6.2f}")
            small_wall, _ = best(raw_small, reader, workers, "small")
            marginal.append((reader, workers, wall - small_wall, pure_extra))
        # A rerun with nothing new: what "no work" costs.
        wall, peak = _extract(raw_big, tmp / f"big-{reader}-{workers}-0", reader, workers)
        print(f"{reader:9} {'rerun':>7} {wall:>7.1f} {'':>10} {peak:>8.0f}   (nothing new)")

    print(f"\nmarginal cost: {len(big_files) - len(small_files)} more works "
          f"({len(big_files)} minus {len(small_files)})")
    print(f"{'reader':9} {'workers':>7} {'marginal s':>10} {'library s':>9} {'target s':>9} {'ratio':>6}")
    for reader, workers, extra_wall, pure_extra in marginal:
        print(f"{reader:9} {workers:>7} {extra_wall:>10.1f} {pure_extra:>9.1f} {1.3 * pure_extra / workers:>9.1f} "
              f"{extra_wall / (pure_extra / workers):>6.2f}")
    print("\nratio = wall / (library reader time in one process / workers); the target for the marginal"
          " cost is <= 1.3. Walls are the fastest of --repeat runs.")


if __name__ == "__main__":
    main()
