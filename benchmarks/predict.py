"""Greedy predict speed per architecture: milliseconds a line after the model is loaded and warmed
up, over a batch of 100 utterances of the corpus's test split (as `nocpipe predict --input FILE`
decodes them), plus the same with a beam of 4. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/predict.py [--pairs DIR] [--work DIR] [--archs transformer attention seed]
                                           [--train-time 60s] [--units N] [--model-dir DIR ...]

Without --model-dir, each architecture is trained for --train-time at its default width (or --units)
on the corpus (the bundled Aozora works, ingested and extracted into --work when --pairs is not
given), so the replies have realistic lengths. Decoding stops when the longest reply of the batch
ends, so an untrained model (short replies) would flatter the figure.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CORPUS = REPO / "data" / "aozora"
LINES = 100


def cli(*args: str, env_data: Path | None = None) -> None:
    import os

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if env_data is not None:
        env["NOCPIPE_DATA"] = str(env_data)
    subprocess.run([sys.executable, "-m", "pipeline.cli", *args], check=True, env=env, cwd=REPO)


def corpus(work: Path) -> Path:
    data = work / "data"
    pairs = data / "processed"
    if not any(pairs.rglob("*.parquet")):
        cli("ingest", "-q", str(CORPUS), env_data=data)
        cli("extract-pairs", "-q", "--examples", "0", env_data=data)
    return pairs


def test_utterances(pairs: Path, n: int = LINES) -> list[str]:
    import pyarrow.parquet as pq

    out: list[str] = []
    for f in sorted(Path(pairs).rglob("*.parquet")):
        t = pq.read_table(f, columns=["utterance_kana", "split"]).to_pylist()
        out += [r["utterance_kana"] for r in t if r["split"] == "test"]
    if len(out) < n:  # a small corpus: repeat its test lines
        out = (out * (n // max(1, len(out)) + 1)) or ["ア"]
    return out[:n]


def measure(model_dir: Path, utts: list[str]) -> dict:
    from pipeline.decoding import Decoding
    from pipeline.inference import load_bot

    t0 = time.perf_counter()
    bot = load_bot(model_dir)
    bot.warm_up()
    bot.reply(utts[: LINES // 4], Decoding())
    loaded = time.perf_counter() - t0
    t0 = time.perf_counter()
    greedy = bot.reply(utts, Decoding())
    g = time.perf_counter() - t0
    t0 = time.perf_counter()
    bot.reply(utts, Decoding(beam=4))
    b = time.perf_counter() - t0
    texts = [c[0].text for c in greedy]
    return {
        "arch": bot.arch,
        "units": getattr(getattr(bot, "model_config", None), "units", 0),  # a retrieval bot has none
        "load_s": loaded,
        "greedy_ms": 1000 * g / len(utts),
        "beam4_ms": 1000 * b / len(utts),
        "mean_len": sum(map(len, texts)) / len(texts),
        "longest": max(map(len, texts)),
        "distinct": len(set(texts)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=Path, help="corpus root or pairs folder (default: the bundled works)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/nocpipe-bench-predict"))
    ap.add_argument("--archs", nargs="+", default=["transformer", "attention", "seed"])
    ap.add_argument("--train-time", default="60s")
    ap.add_argument("--units", type=int)
    ap.add_argument("--model-dir", type=Path, nargs="+", help="measure these model folders instead")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    pairs = args.pairs or corpus(args.work)
    utts = test_utterances(pairs)
    folders = list(args.model_dir or [])
    if not folders:
        for arch in args.archs:
            d = args.work / "models" / arch
            cli(
                "train",
                "--data-dir",
                str(pairs),
                "--model-dir",
                str(d),
                "--force",
                "--arch",
                arch,
                "--epochs",
                "1000",
                "--max-time",
                args.train_time,
                "-q",
                *(["--units", str(args.units)] if args.units else []),
            )
            folders.append(d)
    print(f"\ngreedy predict, {LINES} test lines in one batch, after load and warm-up")
    print(
        f"{'arch':<12} {'units':>5} {'load s':>7} {'greedy ms/line':>15} {'beam 4 ms/line':>15} "
        f"{'mean len':>8} {'longest':>7} {'distinct':>8}"
    )
    for d in folders:
        r = measure(d, utts)
        print(
            f"{r['arch']:<12} {r['units']:>5} {r['load_s']:>7.1f} {r['greedy_ms']:>15.1f} {r['beam4_ms']:>15.1f} "
            f"{r['mean_len']:>8.1f} {r['longest']:>7} {r['distinct']:>8}"
        )


if __name__ == "__main__":
    main()
