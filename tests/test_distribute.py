"""--distribute on CPU: two JAX host devices and two TensorFlow logical CPUs, each in a subprocess
(the device count is fixed when the backend starts). A few steps on two devices give the
loss and weights of one device at the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pipeline.distribute import check_batch
from pipeline.errors import UsageError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs in a fresh interpreter: the same tiny seed network, the same data, trained for four
# steps at global batch 8 once on one device and once distributed over two.
PROBE = r"""
import json, os, sys
backend = os.environ["KERAS_BACKEND"]
if backend == "tensorflow":
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np, keras
from pipeline import distribute
from pipeline.errors import UsageError
from pipeline.models import ModelConfig, build_model, compile_model

rng = np.random.default_rng(0)
x = rng.integers(1, 10, (32, 6)).astype("int32")
y = rng.integers(0, 10, (32, 6)).astype("int32")
out = {}
for name, enabled in (("one", False), ("two", True)):
    plan = distribute.setup(8, enabled=enabled)
    keras.utils.set_random_seed(0)
    with plan.scope():
        model = compile_model(build_model(ModelConfig(units=8, max_len=6, vocab_size=10)), "adam")
    hist = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    v = model.trainable_variables[0].value
    # Where the weights live: every device under DataParallel / MirroredStrategy, one otherwise.
    placed = len(v.sharding.device_set) if backend == "jax" else len(getattr(v, "values", [v]))
    out[name] = {"devices": plan.devices, "placed": placed, "loss": hist.history["loss"],
                 "weights": [np.asarray(w).ravel()[:50].tolist() for w in model.get_weights()]}
    plan.close()
try:
    distribute.setup(7)
except UsageError as exc:
    out["odd_batch"] = str(exc)
print("RESULT " + json.dumps(out))
"""


def _run(backend: str) -> dict:
    env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "PYTHONPATH": REPO,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "CUDA_VISIBLE_DEVICES": "",
    }
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_two_devices_match_one(backend):
    r = _run(backend)
    assert r["one"]["devices"] == 1 and r["two"]["devices"] == 2
    assert r["one"]["placed"] == 1 and r["two"]["placed"] == 2
    assert r["one"]["loss"] == pytest.approx(r["two"]["loss"], rel=1e-4, abs=1e-5)
    for a, b in zip(r["one"]["weights"], r["two"]["weights"]):
        assert a == pytest.approx(b, rel=1e-3, abs=1e-5)
    assert "--batch-size 7 does not divide over 2 devices" in r["odd_batch"]


def test_check_batch():
    check_batch(8, 2)
    check_batch(7, 1)
    with pytest.raises(UsageError, match="multiple of 4, such as 4 or 8"):
        check_batch(6, 4)


# Two epochs straight on one device, against one epoch with --distribute on two devices and a
# --resume on one: the same steps on the same batches, so the same losses within rounding.
TRAIN = r"""
import json, sys
from pathlib import Path
import numpy as np
from pipeline import modeldir
from pipeline.cli import main
root = Path(sys.argv[1])
tiny = ["--arch", "transformer", "--units", "8", "--max-len", "16", "--vocab-size", "64", "--batch-size", "16", "--max-pairs", "160",
        "--steps-per-epoch", "4", "--seed", "7", "-q", "--data-dir", str(root / "pairs")]
assert main(["train", "--model-dir", str(root / "straight"), "--epochs", "2", *tiny]) == 0
assert main(["train", "--model-dir", str(root / "moved"), "--epochs", "1", "--distribute", *tiny]) == 0
assert main(["train", "--model-dir", str(root / "moved"), "--epochs", "2", "--resume",
             "--data-dir", str(root / "pairs"), "-q"]) == 0
assert main(["train", "--model-dir", str(root / "odd"), "--epochs", "1", "--distribute",
             *tiny, "--batch-size", "15"]) == 1
out = {}
for name in ("straight", "moved"):
    folder = modeldir.ModelDir(root / name)
    ck = folder.load_checkpoint()
    out[name] = {"loss": [float(r["loss"]) for r in folder.read_history()],
                 "epoch": ck.state.epoch, "w": [np.asarray(a).ravel()[:40].tolist() for a in ck.weights]}
print("RESULT " + json.dumps(out))
"""


@pytest.mark.slow
def test_train_distribute_on_two_jax_devices_then_resume_on_one(tmp_path):
    from test_dataset import write_pairs

    write_pairs(tmp_path / "pairs", n_train=300, n_valid=40, shards=2)
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "PYTHONPATH": REPO,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "CUDA_VISIBLE_DEVICES": "",
    }
    proc = subprocess.run(
        [sys.executable, "-c", TRAIN, str(tmp_path)], cwd=REPO, env=env, capture_output=True, text=True, timeout=400
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, (proc.stdout[-2000:], proc.stderr[-3000:])
    assert "DataParallel over 2 device(s)" in proc.stdout
    assert "Error: --batch-size 15 does not divide over 2 devices" in proc.stderr
    r = json.loads(lines[-1][len("RESULT ") :])
    assert r["straight"]["epoch"] == r["moved"]["epoch"] == 2
    assert r["straight"]["loss"] == pytest.approx(r["moved"]["loss"], rel=1e-4, abs=1e-5)
    for a, b in zip(r["straight"]["w"], r["moved"]["w"]):
        diff = np.abs(np.subtract(a, b))
        # Adam scales each step by the gradient's own size, so a weight whose gradient is
        # nearly zero moves by the sign of a rounding-sized one: a single weight may differ by
        # up to the learning rate's order (1e-3), while the weights as a whole agree to rounding.
        assert np.median(diff) < 1e-5 and diff.max() < 1e-3, diff


def test_rows_per_host_and_whole_device_batches():
    import numpy as np

    from pipeline.distribute import Plan

    batch = ((np.arange(8), np.arange(8) * 2), np.arange(8), None)  # (encoder, decoder inputs), targets, weights
    host1 = Plan("jax", devices=4, processes=2, process_id=1).local_rows(batch)
    assert [list(a) for a in host1[0]] == [[4, 5, 6, 7], [8, 10, 12, 14]] and list(host1[1]) == [4, 5, 6, 7]
    assert host1[2] is None
    assert Plan("jax").local_rows(batch) is batch
    x, (a, b), w = Plan("jax", devices=4).whole_batches(np.arange(10), (np.arange(10), np.arange(10)), None)
    assert len(x) == len(a) == len(b) == 8 and w is None
