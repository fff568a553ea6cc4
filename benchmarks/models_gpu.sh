#!/usr/bin/env bash
# benchmarks/models.py on a lent GPU machine (one H200; JAX there, no TensorFlow, no keras):
# every architecture for the same wall-clock budget at the original's width (--units 512),
# then `nocpipe evaluate` on the test split, with KERAS_BACKEND=jax. Same table, curves and
# --mmi comparison as on the CPU, at a size the CPU cannot reach in minutes.
#
# Two modes:
#   benchmarks/models_gpu.sh prepare   HERE: download into .whl/ the wheels the GPU image lacks
#                                      (keras, the CLI's and evaluate's pure dependencies, matplotlib)
#                                      and build the corpus into .bench/models (ingest + extract-pairs
#                                      of the bundled works: the reader's dictionaries stay here)
#   benchmarks/models_gpu.sh           THERE: install the missing wheels into /tmp/site and run
# The device call (carry both ignored folders; about 8-9 minutes with the defaults):
#   on the GPU machine, with .whl and .bench copied beside the checkout: bash benchmarks/models_gpu.sh  (within 600 s)
# Environment knobs: UNITS (default 512), BUDGET_S (training seconds per architecture, default 60),
# BATCH (default 512), STEPS (steps between validations, default 40), ARCHS (default: all five),
# MMI (λ values for the best model, default 0.5), OUT (results folder, default $OUT or .bench).
set -euo pipefail
cd "$(dirname "$0")/.."
START=$(date +%s)

# Pinned to what the project's own environment runs; each is installed there only when missing.
WHEELS="keras==3.15.1 namex==0.1.0 optree==0.20.0 typer==0.29.2 click==8.5.1 shellingham==1.5.4 rich==15.0.0
markdown-it-py==4.3.0 mdurl==0.1.2 pygments==2.21.0 sacrebleu==2.6.0 portalocker==4.4.2 tabulate==0.10.0
colorama==0.4.6 lxml==6.1.3 regex==2026.11.19 tqdm==4.70.1 matplotlib==3.11.2 contourpy==1.3.3 cycler==0.12.1
fonttools==4.68.0 kiwisolver==1.5.1 pillow==13.0.0 pyparsing==3.3.3 python-dateutil==4.0.0 six==1.17.0
psutil==7.2.2"

if [[ "${1:-}" == "prepare" ]]; then
    mkdir -p .whl
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl $WHEELS
    PYBIN=${PYBIN:-.venv/bin/python}
    "$PYBIN" benchmarks/models.py --work .bench/models --corpus-only
    du -sh .whl .bench
    echo "ready: copy .whl and .bench to the GPU machine with the checkout, then: bash benchmarks/models_gpu.sh"
    exit 0
fi

echo "== nocpipe models_gpu.sh on $(hostname), $(date -u +%FT%TZ)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
export KERAS_BACKEND=jax
# Install only the wheels whose distribution the image lacks (its numpy, jax and pyarrow stay).
python3 - <<'PY'
import importlib.metadata as md, pathlib, subprocess, sys
missing = []
for whl in sorted(pathlib.Path(".whl").glob("*.whl")):
    dist = whl.name.split("-")[0]
    try:
        md.version(dist.replace("_", "-"))
    except md.PackageNotFoundError:
        missing.append(str(whl))
print("installing:", " ".join(pathlib.Path(m).name for m in missing) or "nothing")
if missing:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                    "--no-cache-dir", "--target", "/tmp/site", *missing], check=True)
PY
export PYTHONPATH="/tmp/site:$PWD"
export PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false
RESULTS=${OUT:-.bench}
python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), '| keras', keras.__version__, keras.backend.backend())"

python3 benchmarks/models.py --work .bench/models --units "${UNITS:-512}" --budget "${BUDGET_S:-60}" \
    --batch-size "${BATCH:-512}" --steps-per-epoch "${STEPS:-40}" \
    --archs "${ARCHS:-seed,simple,dense-attention,attention,transformer}" --mmi "${MMI:-0.5}" --eval-pairs 0 --mmi-pairs 0 \
    --json "$RESULTS/models_gpu.json" --png "$RESULTS/models_gpu.png"
echo "== done in $(( $(date +%s) - START ))s"
