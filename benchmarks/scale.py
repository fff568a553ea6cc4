"""extract-pairs on local processes and on a Dask cluster: speed-up and overhead per task.

    .venv/bin/python benchmarks/scale.py [--works 30] [--reader READER] [--repeat 2]

Ingests the first --works works of the bundled corpus (data/aozora) once, then runs the
whole command `nocpipe extract-pairs` from scratch (a fresh output folder, a fresh
interpreter) with

    --workers 1, --workers 2              the local executor (forked processes)
    --scheduler local:1, local:2          a Dask LocalCluster, its start-up included

and prints, for each, the best wall time of --repeat runs, the speed-up of two against
one (from the best times, and the median of the ratios within each round: the four runs
of a round follow each other, so a round shares the machine's load of the moment), and
the Dask overhead per task against the local executor at the same count
((dask - local) / works). Every run's rows (order aside) and stats.json (timings aside)
must equal the first run's; a difference stops the benchmark. Last, each executor alone:
its start-up and its cost per empty task. Figures only, no
assertion on time. The machine's load average is printed beside them: on a shared
machine two workers cannot be faster than the free cores allow.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def pairs_files(out_dir: Path) -> list[Path]:
    """The corpus's shards: every Parquet file outside hidden folders (the per-work cache)."""
    return sorted(
        p for p in out_dir.rglob("*.parquet") if not any(part.startswith(".") for part in p.relative_to(out_dir).parts)
    )


def run(cmd: list[str], env: dict) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return wall


def digest(out_dir: Path) -> tuple[str, dict]:
    """(hash of the sorted rows, stats.json without timings): what two runs must share."""
    import pyarrow.parquet as pq

    rows = []
    for f in pairs_files(out_dir):
        rows.extend(json.dumps(r, ensure_ascii=False, sort_keys=True) for r in pq.read_table(f).to_pylist())
    h = hashlib.sha256("\n".join(sorted(rows)).encode()).hexdigest()[:16]
    from pipeline.corpus import read_stats

    stats = read_stats(out_dir) or {}
    return f"{h} ({len(rows)} rows)", {k: v for k, v in stats.items() if "time" not in k and "second" not in k}


def _noop(x: int) -> int:
    return x


def executor_overheads(n_tasks: int = 200) -> None:
    """Start-up and per-task cost of each executor alone, on tasks that do nothing."""
    sys.path.insert(0, str(REPO))
    from pipeline import cluster

    for label, sched, n in (("local processes", None, 2), ("dask local:2", "local:2", 2)):
        t0 = time.perf_counter()
        with cluster.open_executor(sched, workers=n) as ex:
            t1 = time.perf_counter()
            list(ex.map(_noop, list(range(n_tasks)), ordered=False))
            t2 = time.perf_counter()
        print(
            f"  {label:16s} start-up {t1 - t0:5.2f}s, {(t2 - t1) / n_tasks * 1000:6.2f} ms per empty task "
            f"({n_tasks} tasks, pool start included for local processes)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=REPO / "data" / "aozora")
    ap.add_argument("--works", type=int, default=30)
    ap.add_argument("--reader", default=None, help="default: extract-pairs' own default reader")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()

    py = sys.executable
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    files = sorted(p for p in args.corpus.iterdir() if p.suffix in (".txt", ".zip"))[: args.works]
    with tempfile.TemporaryDirectory(prefix="nocpipe-scale-") as tmp:
        tmp = Path(tmp)
        raw = tmp / "raw"
        run([py, "-m", "pipeline.cli", "ingest", "-q", "--raw-dir", str(raw), *map(str, files)], env)
        print(
            f"extract-pairs on {len(files)} works of {args.corpus} (reader {args.reader or 'default'}), "
            f"best of {args.repeat}; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
        )
        configs = [
            ("local", 1, ["--workers", "1"]),
            ("local", 2, ["--workers", "2"]),
            ("dask", 1, ["--scheduler", "local:1"]),
            ("dask", 2, ["--scheduler", "local:2"]),
        ]
        times: dict[tuple[str, int], float] = {}
        rounds: dict[tuple[str, int], list[float]] = {c[:2]: [] for c in configs}
        reference = None
        for rep in range(args.repeat):
            for kind, n, opt in configs:
                out = tmp / f"out-{kind}-{n}-{rep}"
                wall = run(
                    [
                        py,
                        "-m",
                        "pipeline.cli",
                        "extract-pairs",
                        "-q",
                        "--examples",
                        "0",
                        "--raw-dir",
                        str(raw),
                        "--out-dir",
                        str(out),
                        *(["--reader", args.reader] if args.reader else []),
                        *opt,
                    ],
                    env,
                )
                got = digest(out)
                if reference is None:
                    reference = got
                elif got != reference:
                    raise SystemExit(f"{kind} x{n} wrote other rows or stats than the first run:\n{got}\n{reference}")
                times[(kind, n)] = min(wall, times.get((kind, n), float("inf")))
                rounds[(kind, n)].append(wall)
                print(f"  run {rep + 1}: {kind:5s} x{n}  {wall:6.2f}s", flush=True)
        print(f"\nrows and stats.json identical in every run: {reference[0]}")
        print(
            f"{'executor':8s} {'1 worker':>9s} {'2 workers':>10s} {'2 vs 1':>7s}   paired: median (range) of the rounds"
        )
        for kind in ("local", "dask"):
            t1, t2 = times[(kind, 1)], times[(kind, 2)]
            paired = sorted(b / a for a, b in zip(rounds[(kind, 1)], rounds[(kind, 2)]))
            print(
                f"{kind:8s} {t1:8.2f}s {t2:9.2f}s {t2 / t1:6.2f}x   "
                f"{statistics.median(paired):.2f}x ({paired[0]:.2f}-{paired[-1]:.2f})"
            )
        for n in (1, 2):
            over = (times[("dask", n)] - times[("local", n)]) / len(files)
            print(
                f"dask overhead per task at {n} worker(s): {over * 1000:+.0f} ms "
                f"({times[('dask', n)] - times[('local', n)]:+.2f}s over {len(files)} works, cluster start-up included)"
            )
        print("executors alone:")
        executor_overheads()
        print(f"load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
