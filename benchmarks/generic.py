"""Generic replies at the demo's budget: the demo's network trained for the same wall-clock
time with each set of training options (the learning rate, `--lr-decay`, `--itf`,
`--reply-dropout`; two seeds where it matters), then `nocpipe evaluate` on the test split
and greedy `predict` on twelve inputs. One row each: bits/char, chrF, distinct-2, generic
rate, and how many of the twelve inputs got a reply of their own. Prints figures;
asserts nothing. About four minutes a row.

    .venv/bin/python benchmarks/generic.py [--budget 150] [--eval-pairs 300] [--rows all|demo]
                                           [--work DIR] [--corpus DIR]

Every step is the real command line in its own process, as in benchmarks/models.py, whose
corpus folder (--work) it shares.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from models import REPO, ensure_corpus, nocpipe  # noqa: E402

BASE = ["--arch", "transformer", "--units", "64", "--batch-size", "32", "--max-len", "32", "--epochs", "1000"]
SHORT = ["--steps-per-epoch", "134", "--valid-pairs", "400"]
ROWS = [  # (label, options)
    ("Adam 0.001, constant (seed 0)", []),
    ("0.003, constant, 134-step epochs (0)", ["--learning-rate", "0.003", *SHORT]),
    ("0.003, --lr-decay (0)", ["--learning-rate", "0.003", "--lr-decay", *SHORT]),
    ("0.003, --lr-decay (1)", ["--learning-rate", "0.003", "--lr-decay", "--seed", "1", *SHORT]),
    ("0.003, --lr-decay --itf 0.5 (0): the demo", ["--learning-rate", "0.003", "--lr-decay", "--itf", "0.5", *SHORT]),
    (
        "0.003, --lr-decay --itf 0.5 (1)",
        ["--learning-rate", "0.003", "--lr-decay", "--itf", "0.5", "--seed", "1", *SHORT],
    ),
    ("0.003, --lr-decay --itf 1.0 (0)", ["--learning-rate", "0.003", "--lr-decay", "--itf", "1.0", *SHORT]),
    ("--reply-dropout 0.5 (0)", ["--reply-dropout", "0.5"]),
]
INPUTS = [
    "こんな忘れ物、ある?",
    "お母さん？",
    "親分、大変だ",
    "どうしたの？",
    "ありがとう",
    "あなたは誰ですか",
    "どこへ行くの",
    "金を出せ",
    "おはようございます",
    "痛い！",
    "もう帰ろうよ",
    "それは本当か",
]


def run_row(work: Path, label: str, options: list[str], args) -> dict:
    name = "generic-" + "".join(c if c.isalnum() else "-" for c in label)[:60].strip("-")
    nocpipe(work, "train", "--name", name, "--force", "--max-time", f"{args.budget}s", "--quiet", *BASE, *options)
    out = work / f"{name}.json"
    nocpipe(
        work, "evaluate", "--name", name, "--max-pairs", str(args.eval_pairs), "--examples", "0", "--json", str(out)
    )
    figures = json.loads(out.read_text(encoding="utf-8"))
    replies = [line for line in nocpipe(work, "predict", "--name", name, *INPUTS).stdout.splitlines() if line.strip()]
    return {"label": label, **figures, "distinct_replies": len(set(replies)), "replies": replies}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=150, help="seconds of training per row")
    ap.add_argument("--eval-pairs", type=int, default=300)
    ap.add_argument("--rows", choices=["all", "demo"], default="all", help="demo: the demo's settings only")
    ap.add_argument("--work", type=Path, default=Path("/tmp/nocpipe-bench-models"))
    ap.add_argument("--corpus", type=Path, default=REPO / "data" / "aozora")
    args = ap.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    ensure_corpus(args.work, args.corpus)
    rows = [r for r in ROWS if args.rows == "all" or "the demo" in r[0]]
    print(
        f"{'training':45s} {'bits/char':>9s} {'5-gram':>7s} {'chrF':>5s} {'dist-2':>6s} {'generic':>7s} "
        f"{'own replies':>11s}",
        flush=True,
    )
    for label, options in rows:
        r = run_row(args.work, label, options, args)
        print(
            f"{label:45s} {r['bits_per_char']:9.3f} {r['ngram_bits_per_char']:7.3f} {r['chrf']:5.1f} "
            f"{r['distinct_2']:6.3f} {r['generic_rate']:7.3f} {r['distinct_replies']:>5d} of {len(INPUTS)}",
            flush=True,
        )
        print("    " + " | ".join(r["replies"]), flush=True)


if __name__ == "__main__":
    main()
