"""nocpipe train on this CPU: samples/s and peak memory per architecture and batch size,
next to the original's approach (one-hot float32 arrays of every pair in memory,
`model.fit`) on the same pairs and network, and peak memory at 20k against 400k pairs
(the bundled corpus's pairs replicated) to show memory does not grow with the corpus.
Also the input pipeline alone (batches straight from the shards), which must outrun
the H200's ~61-67k samples/s. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/train.py [--pairs DIR] [--work DIR] [--quick] [--json FILE]

Every configuration runs in its own process: the real `nocpipe train` entry point (or
the original's approach), timed from the outside (whole process, TensorFlow import
included) and measured with ru_maxrss of that process. Without --pairs, the shared
Aozora corpus is ingested and extracted first (about a minute, kept in --work).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CORPUS = REPO / "data" / "aozora"
PY = sys.executable


# ---------------------------------------------------------------- children


def child_train(argv: list[str], out: str) -> None:
    """In a fresh process: `nocpipe train ARGV`, then its peak RSS."""
    from pipeline.cli import main

    code = main(argv)
    json.dump({"code": code, "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}, open(out, "w"))


def child_original(pairs: str, n: int, units: int, batch: int, epochs: int, out: str, model_path: str) -> None:
    """The 2017 approach: every pair as one-hot float32 arrays (X and Y) in memory, the figure-3
    network on float inputs, Adam, categorical cross-entropy, model.fit one epoch at a time and
    the model saved after each, as the original's training loop did."""
    t_start = time.perf_counter()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from collections import Counter

    import numpy as np

    from pipeline.dataset import read_unit, scan_units
    from pipeline.models import quiet_native_logs
    from pipeline.vocab import Vocab

    with quiet_native_logs():
        import keras
        from keras.layers import LSTM, Bidirectional, Dense, Flatten, Input, RepeatVector, TimeDistributed, multiply
        from keras.models import Model

    T, V = 50, 128
    utt, rep = [], []
    for unit in scan_units(Path(pairs), "train", n):
        u, r = read_unit(unit, "train")
        utt += u
        rep += r
    counts: Counter = Counter()
    Vocab.count(utt + rep, counts)
    vocab = Vocab.build(counts, V, max_len=T)
    # One-hot float32, X reversed as the original fed it; built vectorised (kinder than the
    # original's loops), so only the memory layout differs from nocpipe's.
    X = np.eye(V, dtype=np.float32)[vocab.encode_utterances(utt)]
    Y = np.eye(V, dtype=np.float32)[vocab.encode_replies(rep)]
    t_data = time.perf_counter()

    inputs = Input(shape=(T, V))
    encoded = LSTM(units)(inputs)
    a_vector = Dense(units, activation="softmax")(Flatten()(inputs))
    mul = multiply([encoded, a_vector])
    x = RepeatVector(T)(mul)
    x = Bidirectional(LSTM(units, return_sequences=True))(x)
    decoded = TimeDistributed(Dense(V, activation="softmax"))(x)
    autoencoder = Model(inputs, decoded)
    autoencoder.compile(optimizer=keras.optimizers.Adam(), loss="categorical_crossentropy")
    fit_seconds = []
    with quiet_native_logs():
        for _ in range(epochs):
            t = time.perf_counter()
            autoencoder.fit(X, Y, batch_size=batch, epochs=1, verbose=0)
            fit_seconds.append(time.perf_counter() - t)
            autoencoder.save(model_path)
    json.dump(
        {
            "code": 0,
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "pairs": len(X),
            "onehot_mb": (X.nbytes + Y.nbytes) / 2**20,
            "data_s": t_data - t_start,
            "fit_s": fit_seconds,
        },
        open(out, "w"),
    )


# ---------------------------------------------------------------- parent


def run_child(args: list[str], work: Path) -> dict:
    """Run this script in child mode; whole-process wall time plus what the child reported."""
    out = work / f"child-{time.monotonic_ns()}.json"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [PY, __file__, *args, "--child-out", str(out)],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not out.exists():
        raise SystemExit(f"child failed: {args}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    res = json.loads(out.read_text())
    out.unlink()
    res["wall_s"] = wall
    if res.get("code"):
        raise SystemExit(f"child exited {res['code']}: {args}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return res


def train_run(work: Path, pairs: Path, name: str, *opts: str) -> dict:
    mdir = work / "models" / name
    argv = ["train", "--data-dir", str(pairs), "--model-dir", str(mdir), "--force", "--quiet", *opts]
    res = run_child(["--child-train", json.dumps(argv)], work)
    from pipeline.modeldir import ModelDir

    rows = ModelDir(mdir).read_history()
    res["epochs"] = rows
    res["last_sps"] = float(rows[-1]["samples_per_s"])
    res["fit_s"] = [float(r["seconds"]) for r in rows]
    return res


def ensure_pairs(work: Path) -> Path:
    pairs = work / "data" / "processed" / "pairs"
    if not any(pairs.glob("*.parquet")):
        env = {**os.environ, "NOCPIPE_DATA": str(work / "data")}
        nocpipe = [PY, "-m", "pipeline.cli"]
        print(f"building pairs from {CORPUS} (ingest + extract-pairs) ...", flush=True)
        subprocess.run(
            nocpipe + ["ingest", "-q", str(CORPUS)], env=env, cwd=REPO, check=True, stdout=subprocess.DEVNULL
        )
        subprocess.run(
            nocpipe + ["extract-pairs", "-q", "--examples", "0"],
            env=env,
            cwd=REPO,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return pairs


def replicate(pairs: Path, dest: Path, n_train: int) -> Path:
    """Shards of n_train train pairs (the corpus's train pairs repeated) plus its valid pairs once."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from pipeline.config import SHARD_TARGET_PAIRS
    from pipeline.corpus import SCHEMA, list_shards, read_stats, shard_name, write_stats

    if len(list_shards(dest)) and json.loads((dest / "_bench.json").read_text())["n_train"] == n_train:
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    for p in list_shards(dest):
        p.unlink()
    table = pa.concat_tables([pq.read_table(p) for p in list_shards(pairs)]).cast(SCHEMA)
    train = table.filter(pc.equal(table["split"], "train"))
    valid = table.filter(pc.equal(table["split"], "valid"))
    reps = -(-n_train // train.num_rows)
    big = pa.concat_tables([train] * reps).slice(0, n_train)
    shard = 0
    for start in range(0, n_train, SHARD_TARGET_PAIRS):
        part = big.slice(start, SHARD_TARGET_PAIRS)
        if start == 0:
            part = pa.concat_tables([part, valid])
        pq.write_table(part, dest / shard_name(shard), compression="zstd")
        shard += 1
    write_stats(dest, read_stats(pairs.parent) or {})  # stats sit at the corpus root
    (dest / "_bench.json").write_text(json.dumps({"n_train": n_train}))
    return dest


def pipeline_speed(pairs: Path, batch: int, seconds: float = 3.0) -> float:
    """Samples/s of the streaming input pipeline alone (PairStream.batch), fresh windows included."""
    from collections import Counter

    from pipeline.dataset import PairStream, read_unit, scan_units
    from pipeline.vocab import Vocab

    units = scan_units(pairs, "train")
    counts: Counter = Counter()
    for u in units:
        a, b = read_unit(u, "train")
        Vocab.count(a + b, counts)
    stream = PairStream(units, Vocab.build(counts, 128), batch, seed=0)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        stream.batch(n)
        n += 1
    return n * batch / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=Path, help="pair shards (default: built from the bundled corpus in --work)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/nocpipe-bench-train"))
    ap.add_argument("--units", type=int, default=64, help="units for the per-architecture throughput runs")
    ap.add_argument("--batches", default="64,256")
    ap.add_argument("--archs", default="seed,simple,dense-attention")
    ap.add_argument("--quick", action="store_true", help="smaller everything (a smoke run)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each approach in the comparison (best shown)")
    ap.add_argument("--sections", default="pipeline,arch,versus,memory", help="which parts to run")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--child-train")
    ap.add_argument("--child-original")
    ap.add_argument("--child-out")
    args = ap.parse_args()
    if args.child_train:
        return child_train(json.loads(args.child_train), args.child_out)
    if args.child_original:
        return child_original(**json.loads(args.child_original), out=args.child_out)

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    pairs = args.pairs or ensure_pairs(work)
    import psutil

    from pipeline.dataset import scan_units

    n_train = sum(u.take for u in scan_units(pairs, "train"))
    print(
        f"pairs: {pairs} ({n_train:,} train pairs); CPU: {psutil.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB; load average {os.getloadavg()[0]:.2f}"
    )
    results: dict = {"train_pairs": n_train}
    quick = args.quick
    sections = set(args.sections.split(","))

    if "pipeline" in sections:
        pipeline_section(pairs, quick, results)
    if "arch" in sections:
        arch_section(work, pairs, args, quick, results)
    if "versus" in sections:
        versus_section(work, pairs, n_train, quick, results, args.repeat)
    if "memory" in sections:
        memory_section(work, pairs, quick, results)
    print(f"\ntotal benchmark time {time.perf_counter() - t_all:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def pipeline_section(pairs, quick, results):
    print("\n== input pipeline alone (PairStream batches from the shards, one core)")
    results["pipeline"] = {}
    for b in (1024, 4096):
        sps = pipeline_speed(pairs, b, 1.0 if quick else 3.0)
        results["pipeline"][b] = sps
        print(f"  batch {b:5d}: {sps:12,.0f} samples/s")


def arch_section(work, pairs, args, quick, results):
    samples = 1024 if quick else 5120
    print(
        f"\n== nocpipe train per architecture and batch size (units {args.units}, 2 epochs of {samples} "
        f"pairs; samples/s of the 2nd epoch, peak RSS of the process)"
    )
    print(f"  {'arch':16s} {'batch':>5s} {'samples/s':>10s} {'1st epoch s':>11s} {'wall s':>7s} {'peak MB':>8s}")
    results["throughput"] = []
    for arch in args.archs.split(","):
        for b in (int(x) for x in args.batches.split(",")):
            r = train_run(
                work,
                pairs,
                f"tp-{arch}-{b}",
                "--arch",
                arch,
                "--units",
                str(args.units),
                "--batch-size",
                str(b),
                "--epochs",
                "2",
                "--steps-per-epoch",
                str(max(1, samples // b)),
                "--valid-pairs",
                str(b),
            )
            results["throughput"].append(
                {
                    "arch": arch,
                    "batch": b,
                    "samples_per_s": r["last_sps"],
                    "first_epoch_s": r["fit_s"][0],
                    "wall_s": r["wall_s"],
                    "peak_mb": r["maxrss_mb"],
                }
            )
            print(
                f"  {arch:16s} {b:5d} {r['last_sps']:10,.0f} {r['fit_s'][0]:11.1f} {r['wall_s']:7.1f} "
                f"{r['maxrss_mb']:8.0f}",
                flush=True,
            )


def versus_section(work, pairs, n_train, quick, results, repeat=1):
    """nocpipe train against the original's approach: same pairs, network, batch and epochs.
    With repeat > 1 the two alternate (ABBA...) and the fastest run of each is shown."""
    scenarios = [dict(units=32, n=2000, batch=128, epochs=1)]
    if not quick:
        scenarios.append(dict(units=128, n=min(n_train, 4000), batch=128, epochs=2))
    print(
        "\n== nocpipe train vs the original's approach (seed network; whole process: TensorFlow import, data,"
        f" training, saving; best of {repeat})"
    )
    print(
        f"  {'units':>5s} {'pairs':>6s} {'batch':>5s} {'ep':>2s}  {'approach':10s} {'wall s':>7s} "
        f"{'fit s':>7s} {'peak MB':>8s}"
    )
    results["versus"] = []
    for sc in scenarios:
        runs: dict[str, list[dict]] = {"nocpipe": [], "original": []}
        for i in range(repeat):
            order = ("nocpipe", "original") if i % 2 == 0 else ("original", "nocpipe")
            for label in order:
                if label == "nocpipe":
                    runs[label].append(
                        train_run(
                            work,
                            pairs,
                            f"vs-{sc['units']}-{sc['n']}",
                            "--units",
                            str(sc["units"]),
                            "--max-pairs",
                            str(sc["n"]),
                            "--batch-size",
                            str(sc["batch"]),
                            "--epochs",
                            str(sc["epochs"]),
                        )
                    )
                else:
                    runs[label].append(
                        run_child(
                            [
                                "--child-original",
                                json.dumps(
                                    {
                                        "pairs": str(pairs),
                                        "n": sc["n"],
                                        "units": sc["units"],
                                        "batch": sc["batch"],
                                        "epochs": sc["epochs"],
                                        "model_path": str(work / "original.keras"),
                                    }
                                ),
                            ],
                            work,
                        )
                    )
        best = {k: min(v, key=lambda r: r["wall_s"]) for k, v in runs.items()}
        for label, r in best.items():
            print(
                f"  {sc['units']:5d} {sc['n']:6d} {sc['batch']:5d} {sc['epochs']:2d}  {label:10s} {r['wall_s']:7.1f} "
                f"{sum(r['fit_s']):7.1f} {r['maxrss_mb']:8.0f}"
                + ("   (all: " + ", ".join(f"{x['wall_s']:.1f}" for x in runs[label]) + ")" if repeat > 1 else ""),
                flush=True,
            )
        orig = best["original"]
        print(
            f"         original's one-hot arrays: {orig['onehot_mb']:.0f} MB for {orig['pairs']:,} pairs "
            f"(= {orig['onehot_mb'] / orig['pairs'] * 500_000 / 1024:.1f} GiB at the original's 500k pairs)"
        )
        results["versus"].append(
            {
                **sc,
                **{
                    label: {k: r.get(k) for k in ("wall_s", "fit_s", "maxrss_mb", "onehot_mb")}
                    for label, r in best.items()
                },
            }
        )


def memory_section(work, pairs, quick, results):
    small, large = (2_000, 40_000) if quick else (20_000, 400_000)
    print(
        f"\n== peak memory of nocpipe train at {small:,} vs {large:,} train pairs (corpus replicated; "
        "seed, units 64, batch 128, 20 steps)"
    )
    results["memory"] = {}
    for n in (small, large):
        d = replicate(pairs, work / f"rep-{n}", n)
        t = time.perf_counter()
        r = train_run(
            work,
            d,
            f"mem-{n}",
            "--units",
            "64",
            "--batch-size",
            "128",
            "--epochs",
            "1",
            "--steps-per-epoch",
            "5" if quick else "20",
        )
        results["memory"][n] = {"peak_mb": r["maxrss_mb"], "wall_s": r["wall_s"]}
        print(
            f"  {n:8,d} pairs: peak RSS {r['maxrss_mb']:7.0f} MB, wall {time.perf_counter() - t:5.1f} s "
            f"(the original's one-hot arrays would be {n * 50 * 128 * 4 * 2 / 2**30:6.1f} GiB)",
            flush=True,
        )
    a, b = results["memory"][small]["peak_mb"], results["memory"][large]["peak_mb"]
    print(f"  difference: {b - a:+.0f} MB for {large // small}x the pairs")


if __name__ == "__main__":
    main()
