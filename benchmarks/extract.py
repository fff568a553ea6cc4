"""extract-pairs on the bundled Aozora corpus (data/aozora, 61 works): wall time, characters per second and
peak memory for both readers and 1 and 2 workers, next to the reader library's own
time for the same sides; then the marginal cost: a run over a bigger corpus minus a
run over a smaller one (everything extract-pairs does included: parsing, ruby
memory, reading, near-duplicate detection, writing), against the library's time for
the extra works' sides in one process divided by the workers; then what
near-duplicate detection costs and the similarities that chose its thresholds.
Prints figures; asserts nothing.

    .venv/bin/python benchmarks/extract.py [--corpus data/aozora] [--extra DIR] [--readers unidic,pykakasi]
    .venv/bin/python benchmarks/extract.py --neardup-only     # the near-duplicate section alone

Without --extra, the smaller corpus is the first half of --corpus (by file name) and
the bigger one all of it; with --extra (works of the same form that the project has
not seen), --corpus is the smaller and --corpus plus --extra the bigger.
Target: marginal wall <= 1.3 x (library time of the extra sides / workers).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline import corpus, rawstore  # noqa: E402
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


def _extract(raw: Path, out: Path, reader: str, workers: int) -> tuple[float, float, float]:
    """(wall s, peak MB, cpu s of the process and its workers) of one extract-pairs run."""
    cmd = [
        sys.executable,
        "-m",
        "pipeline.cli",
        "extract-pairs",
        "--raw-dir",
        str(raw),
        "--out-dir",
        str(out),
        "--reader",
        reader,
        "--workers",
        str(workers),
        "-q",
        "--examples",
        "0",
        "--max-len",
        "0",
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, peak = peak_rss_of(cmd)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, peak, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _library_time(reader: str, texts: list[str]) -> tuple[float, float]:
    """(wall s, cpu s) of the reader library alone over `texts`, in this process."""
    convert = library_reader(reader)
    convert("準備")  # dictionaries loaded before timing
    t0, c0 = time.perf_counter(), time.process_time()
    for t in texts:
        convert(t)
    return time.perf_counter() - t0, time.process_time() - c0


def _work_sides(out: Path) -> dict[str, list[str]]:
    """Each work's distinct katakana sides, from extract-pairs' per-work files."""
    from pipeline.corpus import work_tables

    works = {}
    for key, t in work_tables(out, ["utterance_kana", "reply_kana"]):
        sides = zip(t.column(0).to_pylist(), t.column(1).to_pylist())
        works[key] = list(dict.fromkeys(s for pair in sides for s in pair))
    return works


def _edited(sides: list[str], edit: float, drop: float, seed: int = 0) -> list[str]:
    """A lightly edited copy: a share `drop` of the lines removed, `edit` with one character changed."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for s in sides:
        r = rng.random()
        if r < drop:
            continue
        if r < drop + edit and len(s) > 2:
            j = int(rng.integers(0, len(s)))
            s = s[:j] + ("ア" if s[j] != "ア" else "イ") + s[j + 1 :]
        out.append(s)
    return out


def neardup_section(out: Path, extract_wall: float | None) -> None:
    """Cost of near-duplicate detection, and the similarities behind NearDupConfig."""
    import itertools

    from pipeline import neardup
    from pipeline.config import NearDupConfig

    cfg = NearDupConfig()
    works = _work_sides(out)
    pairs = []
    for sides in works.values():
        pairs += list(zip(sides, sides[1:]))
    print(
        f"\nnear-duplicates on {len(works)} works, {len(pairs):,} pairs "
        f"(shingle {cfg.shingle}, {cfg.num_perm} permutations, threshold {cfg.threshold}):"
    )
    t0 = time.perf_counter()
    sigs = {k: neardup.signature(v, cfg) for k, v in works.items()}
    t_sig = time.perf_counter() - t0
    t0 = time.perf_counter()
    groups = neardup.group_works(sigs, cfg)
    t_group = time.perf_counter() - t0
    t0 = time.perf_counter()
    seen = {neardup.exact_key(u, r) for u, r in pairs}
    t_exact = time.perf_counter() - t0
    t0 = time.perf_counter()
    near = {neardup.near_key(u, r) for u, r in pairs}
    t_near = time.perf_counter() - t0
    base = f" ({(t_sig + t_group + t_near) / extract_wall:.1%} of the extract-pairs wall time)" if extract_wall else ""
    print(
        f"  signatures {t_sig:.2f} s, grouping {t_group:.3f} s, near-duplicate keys {t_near:.3f} s "
        f"(exact keys {t_exact:.3f} s){base}; {len(groups)} near-copy groups; "
        f"{len(seen) - len(near)} pairs equal to another once punctuation is removed"
    )

    names = [k for k, s in sigs.items() if s is not None]
    print(f"  {len(names)} of {len(works)} works have >= {cfg.min_shingles} shingles and are compared")
    print(f"  {'shingle':>7} {'unrelated max':>13} {'edited copies min (Jaccard of shingles)':>40}")
    rates = ((0.1, 0.05), (0.3, 0.1), (0.5, 0.2))
    for k in sorted({4, cfg.shingle, 6, 8}):
        sh = {n: neardup.shingles(works[n], k) for n in names}
        jac = [len(sh[a] & sh[b]) / len(sh[a] | sh[b]) for a, b in itertools.combinations(names, 2)]
        cells = []
        for edit, drop in rates:
            cells.append(
                min(
                    len(sh[n] & (e := neardup.shingles(_edited(works[n], edit, drop), k))) / len(sh[n] | e)
                    for n in names
                )
            )
        print(
            f"  {k:>7} {max(jac):>13.3f} "
            + "  ".join(f"edit {e:.0%} drop {d:.0%}: {v:.3f}" for (e, d), v in zip(rates, cells))
        )
    est = [neardup.similarity(sigs[a], sigs[b]) for a, b in itertools.combinations(names, 2)]
    copies = [neardup.similarity(sigs[n], neardup.signature(_edited(works[n], 0.1, 0.05), cfg)) for n in names]
    print(
        f"  MinHash estimate at shingle {cfg.shingle}: unrelated max {max(est):.3f}, "
        f"copies (10% edited, 5% dropped) min {min(copies):.3f}, median {sorted(copies)[len(copies) // 2]:.3f}"
    )


def incremental_section(raw: Path, tmp: Path, reader: str = "pykakasi") -> None:
    """A rerun after one work changed, against a clean run: wall time and shards rewritten
    (phase 2 always runs over every work; only shards whose content changed are written)."""

    out = tmp / "pairs-incremental"
    base = [
        sys.executable,
        "-m",
        "pipeline.cli",
        "extract-pairs",
        "--raw-dir",
        str(raw),
        "--reader",
        reader,
        "--workers",
        "2",
        "--examples",
        "0",
        "--shard-size",
        "1000",
    ]
    clean, _ = peak_rss_of(base + ["--out-dir", str(out), "-q"])
    work = sorted(p for p in (raw / "aozora").iterdir() if p.is_dir())[len(list((raw / "aozora").iterdir())) // 2]
    lines = rawstore.read_text(work).split("\n")
    quoted = [i for i, ln in enumerate(lines) if ln.startswith("「") and len(ln) < 20]  # kept by --max-len
    lines[quoted[len(quoted) // 2]] = "「ええ、" + lines[quoted[len(quoted) // 2]][1:]  # one reply revised
    rawstore.write_text(work, "\n".join(lines))
    t0 = time.perf_counter()
    proc = subprocess.run(base + ["--out-dir", str(out)], capture_output=True, text=True)
    rerun = time.perf_counter() - t0
    shards = corpus.read_stats(out)["shards"]
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("extracted")), proc.stdout.strip())
    print(
        f"\nincremental ({reader}, 2 workers, --shard-size 1000): clean run {clean:.1f} s; "
        f"after one work changed {rerun:.1f} s ({rerun / clean:.0%}); {line.split('-> ')[-1]} of {shards}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=REPO / "data" / "aozora")
    ap.add_argument("--extra", type=Path, default=None, help="held-out works for the marginal cost")
    ap.add_argument("--readers", default="unidic,pykakasi")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--repeat", type=int, default=2, help="runs per figure; the fastest counts")
    ap.add_argument("--neardup-only", action="store_true", help="only the near-duplicate and incremental sections")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="nocpipe-bench-"))
    if args.neardup_only:
        raw = tmp / "raw"
        ingest([args.corpus], raw, show_progress=False)
        out = tmp / "pairs-neardup"
        wall, _, _ = _extract(raw, out, "pykakasi", 2)
        neardup_section(out, wall)
        incremental_section(raw, tmp)
        return
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
    small_texts, _ = candidate_texts(raw_small)
    # The extra works' sides: the bigger corpus's minus the smaller's (as a multiset).
    left: dict[str, int] = {}
    for t in small_texts:
        left[t] = left.get(t, 0) + 1
    extra_texts = []
    for t in texts:
        if left.get(t):
            left[t] -= 1
        else:
            extra_texts.append(t)
    print(
        f"corpus: {corpus_chars:,} body characters; {len(texts):,} dialogue sides to read "
        f"({sum(map(len, texts)):,} characters); the extra works: {len(extra_texts):,} sides "
        f"({sum(map(len, extra_texts)):,} characters); cores: {os.cpu_count()}; "
        f"load average {os.getloadavg()[0]:.1f}"
    )

    def best(raw: Path, reader: str, workers: int, name: str) -> tuple[float, float, float]:
        runs = [_extract(raw, tmp / f"{name}-{reader}-{workers}-{i}", reader, workers) for i in range(args.repeat)]
        return min(r[0] for r in runs), max(r[1] for r in runs), min(r[2] for r in runs)

    print("\nwhole run (the bigger corpus)")
    print(
        f"{'reader':9} {'workers':>7} {'wall s':>7} {'cpu s':>6} {'chars/s':>10} {'peak MB':>8} "
        f"{'library s':>9} {'ratio':>6}"
    )
    marginal = []
    first_out = first_wall = None
    for reader in args.readers.split(","):
        pure, pure_cpu = _library_time(reader, texts)
        pure_extra, pure_extra_cpu = _library_time(reader, extra_texts)
        ours = get_reader(reader)
        ours.read("準備")
        t0 = time.perf_counter()
        for t in texts:
            ours.read(t)
        print(
            f"{reader:9} {'-':>7}  nocpipe's reader alone: {time.perf_counter() - t0:.1f} s "
            f"for the same sides (library alone: {pure:.1f} s, {pure_cpu:.1f} cpu s)"
        )
        for workers in map(int, args.workers.split(",")):
            wall, peak, cpu = best(raw_big, reader, workers, "big")
            if first_out is None:
                first_out, first_wall = tmp / f"big-{reader}-{workers}-0", wall
            print(
                f"{reader:9} {workers:>7} {wall:>7.1f} {cpu:>6.1f} {corpus_chars / wall:>10,.0f} {peak:>8.0f} "
                f"{pure:>9.1f} {wall / (pure / workers):>6.2f}"
            )
            small_wall, _, small_cpu = best(raw_small, reader, workers, "small")
            marginal.append((reader, workers, wall - small_wall, cpu - small_cpu, pure_extra, pure_extra_cpu))
        # A rerun with nothing new: what "no work" costs.
        wall, peak, _ = _extract(raw_big, tmp / f"big-{reader}-{workers}-0", reader, workers)
        print(f"{reader:9} {'rerun':>7} {wall:>7.1f} {'':>6} {'':>10} {peak:>8.0f}   (nothing new)")

    print(
        f"\nmarginal cost: {len(big_files) - len(small_files)} more works ({len(big_files)} minus {len(small_files)})"
    )
    print(
        f"{'reader':9} {'workers':>7} {'wall s':>7} {'library s':>9} {'target s':>8} {'ratio':>6} "
        f"{'cpu s':>6} {'lib cpu s':>9} {'cpu ratio':>9}"
    )
    for reader, workers, extra_wall, extra_cpu, pure_extra, pure_extra_cpu in marginal:
        print(
            f"{reader:9} {workers:>7} {extra_wall:>7.1f} {pure_extra:>9.1f} {1.3 * pure_extra / workers:>8.1f} "
            f"{extra_wall / (pure_extra / workers):>6.2f} {extra_cpu:>6.1f} {pure_extra_cpu:>9.1f} "
            f"{extra_cpu / pure_extra_cpu:>9.2f}"
        )
    print(
        "\nratio = wall / (library reader time in one process / workers); the target for the marginal"
        " cost is <= 1.3. Walls are the fastest of --repeat runs. cpu = user + system seconds of"
        " extract-pairs and its workers; cpu ratio = marginal cpu / library cpu, the same target on"
        " a quiet machine whose workers run in parallel, and a steadier figure on a busy one."
    )
    neardup_section(first_out, first_wall)
    incremental_section(raw_big, tmp)


if __name__ == "__main__":
    main()
