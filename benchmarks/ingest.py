"""Peak memory of `nocpipe ingest` on large plain texts, each run in a fresh process:
the file at the default size limit, a 200 MB file (skipped by the limit) and the
same 200 MB file read with the limit raised. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/ingest.py [--big-mb 200] [--keep-tmp]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline import config  # noqa: E402

# The child ingests and reports its own peak RSS (ru_maxrss is in KiB on Linux).
CHILD = """
import resource, sys
from pathlib import Path
from pipeline.errors import NocpipeError
from stages.ingest import ingest
try:
    res = ingest([Path(sys.argv[1])], Path(sys.argv[2]), show_progress=False, max_bytes=int(sys.argv[3]))
    outcome = dict(res.counters.values)
except NocpipeError as exc:
    outcome = f"Error: {exc}"
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, outcome)
"""

BASELINE = "import resource, stages.ingest; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"


def write_text(path: Path, mb: int) -> None:
    line = "「おはようございます、今日もいい天気ですね」\n「ええ、本当に。散歩にでも行きましょうか」\n地の文がここに続く。\n"
    chunk = (line * 2000).encode("utf-8")
    with open(path, "wb") as fh:
        for _ in range(mb * 1024 * 1024 // len(chunk)):
            fh.write(chunk)


def run(src: Path, store: Path, max_mb: int) -> tuple[float, float, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(src), str(store), str(max_mb * 1024 * 1024)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        check=True,
    ).stdout.split(" ", 1)
    return time.perf_counter() - t0, float(out[0]), out[1].strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--big-mb", type=int, default=200)
    ap.add_argument("--keep-tmp", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nocpipe-bench-ingest-"))
    try:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        base = float(
            subprocess.run([sys.executable, "-c", BASELINE], capture_output=True, text=True, env=env, check=True).stdout
        )
        limit = config.MAX_INPUT_MB
        print(f"baseline (interpreter + imports): {base:.0f} MB RSS; default --max-size {limit} MB")
        print(
            f"{'input':>26} {'--max-size':>10} {'wall s':>7} {'peak RSS MB':>12} {'RSS - base':>11} "
            f"{'x file':>7}  counters"
        )
        for mb, max_mb in ((limit, limit), (args.big_mb, limit), (args.big_mb, args.big_mb + 1)):
            src = tmp / f"text_{mb}.txt"
            if not src.exists():
                write_text(src, mb)
            size = src.stat().st_size / 1024 / 1024
            shutil.rmtree(tmp / "raw", ignore_errors=True)
            wall, rss, counters = run(src, tmp / "raw", max_mb)
            print(
                f"{f'{size:.0f} MB plain text':>26} {max_mb:>10} {wall:>7.1f} {rss:>12.0f} {rss - base:>11.0f} "
                f"{(rss - base) / size:>7.2f}  {counters}"
            )
    finally:
        if not args.keep_tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
