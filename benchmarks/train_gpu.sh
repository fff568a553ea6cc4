#!/usr/bin/env bash
# nocpipe train on the lent GPU machine (one H200; JAX and PyTorch there, no TensorFlow, no keras):
# samples/s of the seed network (the original's size: units 512, 50 steps, 128 characters) at
# batch 1024 and 4096, on random data and on real pairs streamed from Parquet shards through
# nocpipe's input pipeline (pipeline.dataset), with KERAS_BACKEND=jax; then the real trainer
# (stages.train: precision auto = mixed bfloat16 there, the cuDNN line, checkpoints) for a few
# steps, plain and with --distribute (DataParallel over its one device: the overhead of the
# engine alone). Reference: Keras on JAX reaches about 61-67k samples/s with this network on random data.
#
# Two modes:
#   benchmarks/train_gpu.sh prepare   HERE: download the wheels into .whl/ (keras and the two pure
#                                      dependencies the GPU image lacks) and real pair shards into
#                                      .bench/pairs (ingest + extract-pairs of the bundled corpus)
#   benchmarks/train_gpu.sh           THERE: install .whl/*.whl into /tmp/site and measure
# The device call (carry both ignored folders; the whole run takes about 3-5 minutes):
#   on the GPU machine, with .whl and .bench copied beside the checkout: bash benchmarks/train_gpu.sh  (within 420 s)
# Environment knobs: PAIRS (shards, default .bench/pairs), BUDGET_S (stop starting new
# measurements after this many seconds, default 270), SECONDS_PER_POINT (default 6), and for a
# smoke run on a CPU: UNITS (default 512), BATCHES (default "1024 4096").
set -euo pipefail
cd "$(dirname "$0")/.."
START=$(date +%s)

KERAS_VERSION=3.15.1
WHEELS="keras==${KERAS_VERSION} namex==0.1.0 optree==0.20.0"

if [[ "${1:-}" == "prepare" ]]; then
    mkdir -p .whl
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl $WHEELS
    if ! ls .bench/pairs/*.parquet >/dev/null 2>&1; then
        PYBIN=${PYBIN:-.venv/bin/python}
        rm -rf .bench/data
        NOCPIPE_DATA=.bench/data "$PYBIN" -m pipeline.cli ingest -q data/aozora
        NOCPIPE_DATA=.bench/data "$PYBIN" -m pipeline.cli extract-pairs -q --examples 0
        mkdir -p .bench
        rm -rf .bench/pairs
        mv .bench/data/processed/pairs .bench/pairs
        rm -rf .bench/data
    fi
    ls -la .whl .bench/pairs
    du -sh .whl .bench
    echo "ready: copy .whl and .bench to the GPU machine with the checkout, then: bash benchmarks/train_gpu.sh"
    exit 0
fi

echo "== nocpipe train_gpu.sh on $(hostname), $(date -u +%FT%TZ)"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader || true
export KERAS_BACKEND=jax
if ! python3 -c "import keras" >/dev/null 2>&1; then
    ls .whl/*.whl >/dev/null
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
export PAIRS=${PAIRS:-.bench/pairs}
export BUDGET_S=${BUDGET_S:-270}
export SECONDS_PER_POINT=${SECONDS_PER_POINT:-6}
export UNITS=${UNITS:-512}
export BATCHES=${BATCHES:-1024 4096}
export SCRIPT_START=$START
export PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=${XLA_PYTHON_CLIENT_PREALLOCATE:-true}

python3 - <<'PY'
import os, sys, time, platform, tempfile, traceback
from pathlib import Path

import numpy as np

START = float(os.environ["SCRIPT_START"])
BUDGET = float(os.environ["BUDGET_S"])
PER_POINT = float(os.environ["SECONDS_PER_POINT"])
PAIRS = Path(os.environ["PAIRS"])
UNITS = int(os.environ["UNITS"])
BATCHES = [int(b) for b in os.environ["BATCHES"].split()]

def elapsed():
    return time.time() - START

import jax
import keras
import pyarrow
import jaxlib
print(f"python {platform.python_version()}, jax {jax.__version__}, jaxlib {jaxlib.__version__}, "
      f"keras {keras.__version__} (backend {keras.backend.backend()}), numpy {np.__version__}, pyarrow {pyarrow.__version__}")
print("devices:", jax.devices())

from pipeline.models import ModelConfig, build_model, compile_model, cudnn_report, gpu_info, choose_precision
from pipeline.dataset import PairStream, keras_batches, read_unit, scan_units
from pipeline.vocab import Vocab
from collections import Counter

gpu = gpu_info()
print("gpu:", gpu, "| precision auto ->", choose_precision("auto", gpu))
CFG = ModelConfig(arch="seed", units=UNITS, max_len=50, vocab_size=128)

# ---- real pairs: nocpipe's streaming pipeline on the carried shards
stream_vocab = None
if any(PAIRS.glob("*.parquet")):
    units = scan_units(PAIRS, "train")
    counts = Counter()
    for u in units:
        a, b = read_unit(u, "train")
        Vocab.count(a + b, counts)
    stream_vocab = Vocab.build(counts, CFG.vocab_size, max_len=CFG.max_len)
    n_pairs = sum(u.take for u in units)
    print(f"real pairs: {n_pairs:,} train pairs in {PAIRS}")
    for b in BATCHES:
        s = PairStream(units, stream_vocab, b, seed=0)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 1.5:
            s.batch(n); n += 1
        print(f"  input pipeline alone, batch {b}: {n * b / (time.perf_counter() - t0):,.0f} samples/s (one CPU thread)")
else:
    print(f"no shards in {PAIRS}: the real-pair points are skipped (run `benchmarks/train_gpu.sh prepare` here first)")


class RandomBatches(keras.utils.PyDataset):
    """The same fixed random batch every step: no input cost at all."""
    def __init__(self, batch):
        super().__init__()
        rng = np.random.default_rng(0)
        self.x = rng.integers(0, CFG.vocab_size, (batch, CFG.max_len)).astype("int32")
        self.y = rng.integers(0, CFG.vocab_size, (batch, CFG.max_len)).astype("int32")
    @property
    def num_batches(self):
        return None
    def __getitem__(self, i):
        return self.x, self.y


def sync(model):
    np.asarray(model.trainable_weights[-1].value)


def measure(model, data, batch):
    """Samples/s of model.fit after warm-up; steps sized to about PER_POINT seconds."""
    model.fit(data, epochs=1, steps_per_epoch=3, verbose=0, shuffle=False); sync(model)          # compile + warm up
    t = time.perf_counter(); model.fit(data, epochs=1, steps_per_epoch=5, verbose=0, shuffle=False); sync(model)
    rate = 5 * batch / (time.perf_counter() - t)
    steps = int(min(max(PER_POINT * rate / batch, 10), 2000))
    t = time.perf_counter(); model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False); sync(model)
    return steps * batch / (time.perf_counter() - t), steps


def disable_cudnn(model):
    for layer in model.layers:
        for l in ([layer.forward_layer, layer.backward_layer] if isinstance(layer, keras.layers.Bidirectional) else [layer]):
            if isinstance(l, keras.layers.LSTM):
                l.use_cudnn = False


results = []
for precision in ("float32", "mixed_bfloat16"):
    for batch in BATCHES:
        if precision != "float32" and batch != BATCHES[-1]:
            continue
        if elapsed() > BUDGET:
            print(f"(time budget reached: {precision} batch {batch} skipped)")
            continue
        keras.config.set_dtype_policy(precision)
        keras.utils.set_random_seed(0)
        model = compile_model(build_model(CFG), "adam")
        if batch == BATCHES[0] and precision == "float32":
            print(cudnn_report(model, gpu))
        t0 = time.perf_counter()
        for label, data in (("random", RandomBatches(batch)),
                            ("real pairs", keras_batches(PairStream(units, stream_vocab, batch, seed=0)) if stream_vocab else None)):
            if data is None or elapsed() > BUDGET:
                continue
            try:
                sps, steps = measure(model, data, batch)
            except Exception as exc:
                print(f"  {precision} batch {batch} {label}: FAILED with the cuDNN path ({type(exc).__name__}: {str(exc)[:300]}); retrying without it")
                model = compile_model(build_model(CFG), "adam"); disable_cudnn(model)
                try:
                    sps, steps = measure(model, data, batch)
                    label += " (generic LSTM loop)"
                except Exception:
                    traceback.print_exc(); continue
            results.append((precision, batch, label, sps))
            print(f"  seed units {UNITS}, {precision:14s} batch {batch:5d}, {label:26s}: {sps:9,.0f} samples/s "
                  f"({steps} timed steps; point done at {elapsed():.0f}s)")
        keras.config.set_dtype_policy("float32")

# ---- the real trainer end to end on the real pairs (stages.train: mixed precision auto, checkpoints),
# then the same with --distribute (DataParallel over the one device): the engine's own overhead
train_times = {}
if stream_vocab is not None and elapsed() < BUDGET:
    from stages.train import TrainOptions, train
    for distribute in (False, True):
        if elapsed() > BUDGET:
            print(f"(time budget reached: train distribute={distribute} skipped)")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            try:
                res = train(TrainOptions(data_dir=PAIRS, model_dir=Path(tmp) / "m", epochs=2, batch_size=BATCHES[-1],
                                         units=UNITS, steps_per_epoch=12, verbose=2, distribute=distribute),
                            log=lambda s: print("  train:", s))
                train_times[distribute] = time.perf_counter() - t
                rows = [r for r in res.history if r.get("samples_per_s")]
                print(f"  nocpipe train{' --distribute' if distribute else ''} (2 epochs x 12 steps at batch "
                      f"{BATCHES[-1]}): {train_times[distribute]:.1f}s whole, second epoch "
                      f"{rows[-1]['samples_per_s'] if rows else 0:,.0f} samples/s, status {res.status}")
            except Exception:
                traceback.print_exc()
    if len(train_times) == 2:
        print(f"  --distribute on one device: {train_times[True] / train_times[False]:.2f}x the plain run's time")

print(f"\n== summary (samples/s, seed network units {UNITS}; reference on an H200 at 512: ~61-67k on random data)")
for precision, batch, label, sps in results:
    print(f"  {precision:14s} batch {batch:5d}  {label:26s} {sps:9,.0f}")
print(f"total {elapsed():.0f}s")
PY
echo "== done in $(( $(date +%s) - START ))s"
