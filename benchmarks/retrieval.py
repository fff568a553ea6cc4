"""The retrieval chatbot against the TF-IDF baseline, and its index at scale. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/retrieval.py [--budget 180] [--work DIR] [--heldout CORPUS] [--scale 150000,1000000]

1. The bundled works are ingested and extracted into --work (once), and `nocpipe train --arch retrieval
   --max-time BUDGET` trains with every other option at its default, as a user's first run does.
2. `nocpipe evaluate --json` on the test split: select@1, the TF-IDF baseline's, chrF, distinct-2,
   generic rate.
3. select@1 on the same draws of the test split (and of --heldout, a corpus of other works) by
   the encoder alone, the lexical score alone (the model's own IDF-weighted n-gram cosine), the
   two together as the model ranks, and the TF-IDF baseline.
4. The index at --scale replies: the train replies repeated to that many rows, encoded by the
   model (build time), written to a copy of the model folder; then a fresh process loads it and
   answers 200 inputs one at a time: resident memory after load, milliseconds per reply.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PY = sys.executable

INPUTS = ["おはようございます", "今日は寒いね", "どこへ行くの", "腹が減った", "ありがとう", "お母さん？", "もう帰ろうよ",
          "本当に好きなの？", "明日また来るよ", "それは嘘だろう", "誰かいるの？", "早く逃げろ"]  # fmt: skip


def nocpipe(work: Path, *args: str) -> str:
    env = {**os.environ, "NOCPIPE_DATA": str(work / "data"), "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([PY, "-m", "pipeline.cli", *args], env=env, cwd=REPO, text=True, capture_output=True)
    if proc.returncode != 0:
        raise SystemExit(f"nocpipe {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout + proc.stderr


def train(work: Path, budget: int) -> tuple[Path, float, str]:
    if not (work / "corpus.done").exists():
        nocpipe(work, "ingest", "-q", str(REPO / "data" / "aozora"))
        nocpipe(work, "extract-pairs", "-q", "--examples", "0")
        (work / "corpus.done").write_text("ok")
    t0 = time.perf_counter()
    log = nocpipe(work, "train", "--arch", "retrieval", "--name", "r", "--force", "--max-time", f"{budget}s")
    return work / "data" / "models" / "r", time.perf_counter() - t0, log


def selection(model: Path, corpora: dict[str, Path]) -> dict:
    from pipeline.retrieval.bot import RetrievalBot
    from pipeline.retrieval.lexical import cosines, tfidf_rows
    from pipeline.retrieval.pairs import read_pairs
    from pipeline.selection import TfidfBaseline, draw, select_at_1

    bot = RetrievalBot.load(model)
    train_pairs = read_pairs(corpora["test"], "train")
    baseline = TfidfBaseline(train_pairs.utterances + train_pairs.replies)
    lam = bot.settings.lexical_weight

    def lexical(u: str, cands: list[str]):
        rows = tfidf_rows(bot.space.encode(bot.vocab, [u, *cands]), bot._idf)
        return cosines(rows[0], rows[1:])

    out = {}
    for name, folder in corpora.items():
        pairs = read_pairs(folder, "test")
        draws = draw(pairs.replies, 1000)
        bot.settings.lexical_weight = 0.0
        encoder = select_at_1(draws, pairs.utterances, pairs.replies, bot.rank)
        bot.settings.lexical_weight = lam
        out[name] = {
            "pairs": len(pairs),
            "encoder": encoder,
            "lexical": select_at_1(draws, pairs.utterances, pairs.replies, lexical),
            "model": select_at_1(draws, pairs.utterances, pairs.replies, bot.rank),
            "tfidf": select_at_1(draws, pairs.utterances, pairs.replies, baseline.score),
        }
    replies = bot.reply([bot.to_kana(t) for t in INPUTS])
    out["everyday"] = [(t, c[0].surface, c[0].source.get("title")) for t, c in zip(INPUTS, replies)]
    return out


def scaled_index(model: Path, rows: int, work: Path) -> dict:
    """The train replies repeated to `rows`, encoded (build time), written to a copy of the folder."""
    import numpy as np
    import pyarrow as pa

    from pipeline.modeldir import ModelDir
    from pipeline.reporter import Reporter
    from pipeline.retrieval.bot import RetrievalBot
    from pipeline.retrieval.index import _vectors

    bot = RetrievalBot.load(model)
    table = bot.table
    reps = np.resize(np.arange(table.num_rows), rows)
    big = table.take(pa.array(reps))
    dest = work / f"scaled-{rows}"
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(model, dest)
    t0 = time.perf_counter()
    kana = big.column("reply_kana").to_pylist()
    utts = big.column("utterance_kana").to_pylist()
    vectors = _vectors(bot.encoder, bot.space, bot.vocab, utts, kana, Reporter(quiet=True))
    build = time.perf_counter() - t0
    ModelDir(dest).write_reply_index(big, vectors)
    probe = (
        "import sys, time, resource; sys.path.insert(0, %r)\n"
        "from pipeline.retrieval.bot import RetrievalBot\n"
        "from pipeline.decoding import Decoding\n"
        "bot = RetrievalBot.load(%r); bot.warm_up()\n"
        "rss = int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0]) / 1024\n"
        "texts = [bot.to_kana(t) for t in %r] * 17\n"
        "t0 = time.perf_counter()\n"
        "for t in texts[:200]: bot.reply([t], Decoding())\n"
        "print(rss, (time.perf_counter() - t0) / 200 * 1000)\n"
    ) % (str(REPO), str(dest), INPUTS)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run([PY, "-c", probe], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    rss, ms = map(float, out.stdout.split()[-2:])
    shutil.rmtree(dest, ignore_errors=True)
    return {"rows": rows, "build_s": round(build, 1), "vector_mb": round(vectors.nbytes / 2**20), "rss_mb": round(rss),
            "ms_per_reply": round(ms, 2)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=int, default=180, help="train --max-time, seconds")
    ap.add_argument("--work", type=Path, default=Path("/tmp/nocpipe-bench-retrieval"))
    ap.add_argument("--heldout", type=Path, help="a corpus of other works (its test split is drawn from)")
    ap.add_argument("--scale", default="150000,1000000", help="index sizes to measure ('' = skip)")
    ap.add_argument("--model", type=Path, help="a trained retrieval model folder (skips training)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    figures: dict = {}
    if args.model is None:
        model, seconds, log = train(args.work, args.budget)
        figures["train_s"] = round(seconds, 1)
        figures["train_log_tail"] = log.strip().splitlines()[-3:]
    else:
        model = args.model
    data = args.work / "data" / "processed"
    ev = args.work / "evaluate.json"
    nocpipe(args.work, "evaluate", "--model-dir", str(model), "--json", str(ev), "-q")
    figures["evaluate"] = json.loads(ev.read_text(encoding="utf-8"))
    corpora = {"test": data}
    if args.heldout:
        corpora["heldout"] = args.heldout
    figures["selection"] = selection(model, corpora)
    figures["scale"] = [scaled_index(model, int(n), args.work) for n in args.scale.split(",") if n]
    print(json.dumps(figures, ensure_ascii=False, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
