"""Every architecture for the same wall-clock budget at the same width on the same pairs,
then `nocpipe evaluate` on the test split: one table (bits/char beside the reply 5-gram's,
char accuracy, chrF, distinct-1/2, generic rate, mean length, training pairs/s, parameters),
a PNG of validation bits/char against training time, what `--mmi` does to the best model's
replies, and greedy predict's time per line at the default architecture and width.
Prints figures; asserts nothing.

    .venv/bin/python benchmarks/models.py [--budget 180] [--units 128] [--archs seed,...,transformer]
                                          [--work DIR] [--corpus DIR] [--json FILE] [--png FILE]

Every step is the real command line in its own process (`nocpipe train --max-time`,
`nocpipe evaluate --json`), with NOCPIPE_DATA pointed at --work, so the corpus layout is
whatever ingest and extract-pairs write. The corpus (the bundled Aozora works by default)
is ingested and extracted once and kept in --work. On a shared machine the figures move
with the load: the budget is wall-clock time, so a busy neighbour costs a model steps.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline import metrics  # noqa: E402  (the figures evaluate writes)

PY = sys.executable
FIGURES = metrics.FIGURES


def nocpipe(work: Path, *args: str, quiet: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "NOCPIPE_DATA": str(work / "data"), "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        [PY, "-m", "pipeline.cli", *args], env=env, cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    if proc.returncode != 0:
        raise SystemExit(
            f"nocpipe {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def ensure_corpus(work: Path, corpus: Path) -> None:
    marker = work / "corpus.done"
    if marker.exists() and marker.read_text() == str(corpus.resolve()):
        return
    print(f"building the corpus from {corpus} (ingest + extract-pairs into {work}/data) ...", flush=True)
    t = time.perf_counter()
    nocpipe(work, "ingest", "-q", str(corpus))
    nocpipe(work, "extract-pairs", "-q", "--examples", "0")
    marker.write_text(str(corpus.resolve()))
    print(f"  done in {time.perf_counter() - t:.0f}s", flush=True)


def history(model_dir: Path) -> list[dict]:
    with open(model_dir / "history.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def val_curve(rows: list[dict]) -> list[tuple[float, float]]:
    """(training seconds so far, validation bits/char) after each epoch."""
    out, t = [], 0.0
    for r in rows:
        t += num(r.get("seconds"))
        bpc = num(r.get("val_bpc"))
        if bpc != bpc:  # older histories: the validation cross-entropy, in bits
            bpc = num(r.get("val_loss")) / math.log(2)
        out.append((t, bpc))
    return out


def params_of(model_dir: Path) -> int:
    """Trainable and other parameters of model.keras, counted in a child (Keras import there)."""
    code = (
        "import sys, keras; from pipeline.models import load_inference_model; "
        "print(load_inference_model(sys.argv[1]).count_params())"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run(
        [PY, "-c", code, str(model_dir / "model.keras")],
        env=env,
        cwd=REPO,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        return int(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return -1


def run_arch(work: Path, arch: str, args) -> dict:
    name = f"bench-{arch}-{args.units}"
    mdir = work / "data" / "models" / name
    t = time.perf_counter()
    nocpipe(
        work,
        "train",
        "--name",
        name,
        "--arch",
        arch,
        "--units",
        str(args.units),
        "--max-time",
        f"{args.budget}s",
        "--epochs",
        "10000",
        "--batch-size",
        str(args.batch_size),
        "--steps-per-epoch",
        str(args.steps_per_epoch),
        "--valid-pairs",
        str(args.valid_pairs),
        "--seed",
        "0",
        "--force",
        "--quiet",
        *args.train_opts.split(),
    )
    train_wall = time.perf_counter() - t
    rows = history(mdir)
    samples = sum(num(r.get("samples")) for r in rows)
    seconds = sum(num(r.get("seconds")) for r in rows)
    t = time.perf_counter()
    out = work / f"evaluate-{name}.json"
    nocpipe(
        work,
        "evaluate",
        "--name",
        name,
        "--json",
        str(out),
        "--examples",
        "0",
        "--quiet",
        "--max-pairs",
        str(args.eval_pairs),
    )
    figs = json.loads(out.read_text())
    return {
        "arch": arch,
        "name": name,
        "model_dir": str(mdir),
        **{k: figs[k] for k in FIGURES},
        "pairs_per_s": samples / seconds if seconds else float("nan"),
        "epochs": len(rows),
        "pairs_seen": samples,
        "train_wall_s": train_wall,
        "evaluate_s": time.perf_counter() - t,
        "params": params_of(mdir),
        "curve": val_curve(rows),
    }


def mmi_section(work: Path, best: dict, args) -> list[dict]:
    out = []
    for lam in [0.0] + [float(x) for x in args.mmi.split(",") if x]:
        path = work / f"mmi-{best['name']}-{lam}.json"
        opts = ["--mmi", str(lam)] if lam else ["--beam", "8"]
        nocpipe(
            work,
            "evaluate",
            "--name",
            best["name"],
            "--json",
            str(path),
            "--examples",
            "0",
            "--quiet",
            "--max-pairs",
            str(args.mmi_pairs or args.eval_pairs),
            *opts,
        )
        figs = json.loads(path.read_text())
        out.append({"mmi": lam, "decoding": figs.get("decoding", ""), **{k: figs[k] for k in FIGURES}})
    return out


def predict_speed(work: Path, args) -> dict:
    """Greedy replies per line after load and warm-up: the default architecture at its default
    width, trained briefly (speed does not depend on how well it learned), 100 lines a batch."""
    name = "bench-speed-default"
    nocpipe(
        work,
        "train",
        "--name",
        name,
        "--max-time",
        "20s",
        "--epochs",
        "1",
        "--steps-per-epoch",
        "20",
        "--max-pairs",
        "2000",
        "--force",
        "--quiet",
    )
    code = """
import json, sys, time
from pathlib import Path
from pipeline.inference import Chatbot
from pipeline.dataset import read_unit, scan_units
bot = Chatbot.load(Path(sys.argv[1]))
units = scan_units(Path(sys.argv[2]), "test", 100)
lines = [u for unit in units for u in read_unit(unit, "test")[0]][:100]
kana = lines  # already katakana: the reading is the same for every architecture, so only decoding is timed
bot.reply(kana[:8]); bot.reply(kana)  # load, compile and warm up
times = []
for _ in range(3):
    t = time.perf_counter(); bot.reply(kana); times.append(time.perf_counter() - t)
print(json.dumps({"lines": len(kana), "ms_per_line": min(times) / len(kana) * 1000,
                  "arch": bot.arch, "units": bot.model_config.units}))
"""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", "NOCPIPE_DATA": str(work / "data")}
    cfg = json.loads((work / "data" / "models" / name / "config.json").read_text())
    proc = subprocess.run(
        [PY, "-c", code, str(work / "data" / "models" / name), cfg["data"]["data_dir"]],
        env=env,
        cwd=REPO,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr[-1500:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def plot(results: list[dict], path: Path, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for r in results:
        pts = [(t, b) for t, b in r["curve"] if b == b]
        if pts:
            ax.plot(
                [t for t, _ in pts],
                [b for _, b in pts],
                "o-",
                ms=3,
                label=f"{r['arch']} (test {r['bits_per_char']:.2f})",
            )
    ng = [r["ngram_bits_per_char"] for r in results if r["ngram_bits_per_char"] == r["ngram_bits_per_char"]]
    if ng:
        ax.axhline(ng[0], color="grey", ls="--", lw=1, label=f"reply 5-gram (test {ng[0]:.2f})")
    ax.set_xlabel("training time (s)")
    ax.set_ylabel("validation bits/char (reply chars + end)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png")


def table(results: list[dict]) -> str:
    head = (
        "| arch | bits/char | 5-gram | char acc | chrF | distinct-2 | generic | mean len | pairs/s | params | epochs |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    lines = [head]
    for r in results:
        lines.append(
            f"| {r['arch']} | {r['bits_per_char']:.3f} | {r['ngram_bits_per_char']:.3f} | "
            f"{r['char_accuracy']:.3f} | {r['chrf']:.1f} | {r['distinct_2']:.3f} | {r['generic_rate']:.3f} | "
            f"{r['mean_length']:.1f} | {r['pairs_per_s']:,.0f} | {r['params']:,} | {r['epochs']} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=int, default=180, help="training seconds per architecture (train --max-time)")
    ap.add_argument("--units", type=int, default=128, help="--units of every architecture")
    ap.add_argument("--archs", default="seed,simple,dense-attention,attention,transformer")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps-per-epoch", type=int, default=60, help="steps between validations (curve points)")
    ap.add_argument("--valid-pairs", type=int, default=500, help="validation pairs (the curve's points)")
    ap.add_argument("--eval-pairs", type=int, default=300, help="test pairs to evaluate (0 = all)")
    ap.add_argument("--mmi", default="0.5", help="λ values to try on the best model ('' = skip)")
    ap.add_argument("--mmi-pairs", type=int, default=150, help="test pairs for the --mmi runs (0 = --eval-pairs)")
    ap.add_argument("--train-opts", default="", help="more `nocpipe train` options for every run")
    ap.add_argument("--no-speed", action="store_true", help="skip the predict-speed measurement")
    ap.add_argument("--corpus-only", action="store_true", help="build the corpus in --work and stop")
    ap.add_argument("--speed-only", action="store_true", help="only the predict-speed measurement")
    ap.add_argument("--work", type=Path, default=Path("/tmp/nocpipe-bench-models"))
    ap.add_argument("--corpus", type=Path, default=REPO / "data" / "aozora")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--png", type=Path, help="the curves (default: WORK/models.png)")
    args = ap.parse_args()

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    ensure_corpus(work, args.corpus)
    if args.corpus_only:
        return
    if args.speed_only:
        print(json.dumps(predict_speed(work, args)))
        return
    load = os.getloadavg()[0]
    print(
        f"architectures at --units {args.units}, {args.budget}s of training each (batch {args.batch_size}), "
        f"evaluated on the test split; {os.cpu_count()} CPUs, load average {load:.1f} at the start",
        flush=True,
    )
    results = []
    for arch in args.archs.split(","):
        print(f"  {arch}: training {args.budget}s ...", flush=True)
        r = run_arch(work, arch, args)
        results.append(r)
        print(
            f"  {arch}: bits/char {r['bits_per_char']:.3f} (5-gram {r['ngram_bits_per_char']:.3f}), "
            f"chrF {r['chrf']:.1f}, distinct-2 {r['distinct_2']:.3f}, generic {r['generic_rate']:.3f}, "
            f"{r['pairs_per_s']:,.0f} pairs/s, {r['epochs']} epochs, {r['params']:,} params",
            flush=True,
        )
    print(f"\n{table(results)}\n")
    png = args.png or work / "models.png"
    plot(
        results,
        png,
        f"--units {args.units}, {args.budget}s each, batch {args.batch_size}, {results[0]['n']:,} test pairs",
    )
    print(f"curves -> {png}")
    out: dict = {
        "units": args.units,
        "budget_s": args.budget,
        "batch_size": args.batch_size,
        "load_average_start": load,
        "results": results,
    }
    best = min(results, key=lambda r: r["bits_per_char"])
    if args.mmi:
        print(f"\n== --mmi on the best model by bits/char ({best['arch']}): 8 beams, reranked")
        out["mmi"] = mmi_section(work, best, args)
        print("| decoding | chrF | distinct-2 | generic | mean len |\n| --- | ---: | ---: | ---: | ---: |")
        for m in out["mmi"]:
            print(
                f"| {m['decoding']} | {m['chrf']:.1f} | {m['distinct_2']:.3f} | {m['generic_rate']:.3f} | "
                f"{m['mean_length']:.1f} |"
            )
    if not args.no_speed:
        sp = predict_speed(work, args)
        out["predict_speed"] = sp
        if "error" in sp:
            print(f"\npredict speed: failed\n{sp['error']}")
        else:
            print(
                f"\ngreedy predict, {sp['arch']} at --units {sp['units']}: {sp['ms_per_line']:.1f} ms a line "
                f"({sp['lines']} lines a batch, after load and warm-up; best of 3)"
            )
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}; total {time.perf_counter() - t_all:.0f}s")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
