"""nocpipe train: the model folder, exact resume (epoch boundary and mid-epoch Ctrl-C),
optimizer rotation, NaN stop, and every user error. Tiny models on synthetic shards."""

from __future__ import annotations

import csv
import json
import signal
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

# Keras converts its own variables with np.array(copy=False) inside save/fit: not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

from test_dataset import write_pairs  # noqa: E402

from pipeline import modeldir  # noqa: E402
from pipeline.errors import ModelError, StoreError, UsageError  # noqa: E402
from stages.train import TrainOptions, _rotation, train  # noqa: E402

TINY = dict(
    arch="transformer",
    units=8,
    max_len=16,
    vocab_size=64,
    batch_size=16,
    max_pairs=160,
    steps_per_epoch=4,
    seed=7,
    verbose=0,
)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("train") / "pairs", n_train=300, n_valid=40, shards=3)


def run(pairs: Path, model_dir: Path, epochs: int, logs: list | None = None, **kw):
    """A tiny training run (TINY settings, overridden by kw)."""
    return train(
        TrainOptions(data_dir=pairs, model_dir=model_dir, epochs=epochs, **{**TINY, **kw}),
        log=(logs.append if logs is not None else (lambda s: None)),
    )


def weights(model_dir: Path):
    ck = modeldir.ModelDir(model_dir).load_checkpoint()
    return ck.weights, ck.optimizer, ck.state.to_json()


def assert_same(a: Path, b: Path) -> None:
    wa, oa, sa = weights(a)
    wb, ob, sb = weights(b)
    assert len(wa) == len(wb) and len(oa) == len(ob)
    for x, y in zip(wa + oa, wb + ob):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
    assert (sa["epoch"], sa["step"], sa["batch_position"]) == (sb["epoch"], sb["step"], sb["batch_position"])


@pytest.fixture(scope="module")
def straight(pairs, tmp_path_factory) -> Path:
    """Two epochs in one run: the reference for the resume tests."""
    d = tmp_path_factory.mktemp("straight") / "m"
    logs: list[str] = []
    res = train(TrainOptions(data_dir=pairs, model_dir=d, epochs=2, **TINY), log=logs.append)
    assert res.status == "done" and res.epochs_done == 2
    (d / "log.txt").write_text("\n".join(logs), encoding="utf-8")
    return d


def test_model_folder_is_complete(straight):
    for name in (
        "model.keras",
        "vocab.json",
        "config.json",
        "history.csv",
        "curves.png",
        "checkpoint.npz",
        "checkpoint.json",
    ):
        assert (straight / name).is_file(), name
    assert (straight / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cfg = json.loads((straight / "config.json").read_text(encoding="utf-8"))
    assert cfg["format"] == modeldir.MODEL_FORMAT
    assert cfg["model"]["arch"] == "transformer" and cfg["model"]["units"] == 8  # the default architecture
    assert cfg["model"]["reverse_input"] is True
    assert cfg["train"]["batch_size"] == 16 and cfg["train"]["seed"] == 7
    assert cfg["data"]["train_pairs"] == 160 and cfg["data"]["reader"] == "pykakasi"
    rows = list(csv.DictReader(open(straight / "history.csv", encoding="utf-8")))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    for r in rows:
        assert float(r["loss"]) > 0 and 0 <= float(r["acc"]) <= 1 and float(r["val_loss"]) > 0
        assert float(r["val_bpc"]) == pytest.approx(float(r["val_loss"]) / np.log(2), rel=1e-3)  # nats -> bits
        assert r["optimizer"] == "adam" and int(r["steps"]) == 4 and int(r["samples"]) == 64
    state = json.loads((straight / "checkpoint.json").read_text(encoding="utf-8"))
    assert state["epoch"] == 2 and state["step"] == 0 and state["batch_position"] == 8
    assert state["optimizer_iterations"] == 8
    log = (straight / "log.txt").read_text(encoding="utf-8")
    assert "RNN: no recurrent layers" in log
    assert "epoch 1/2:" in log and "pairs/s" in log and "val loss" in log
    from pipeline.models import load_inference_model

    model = load_inference_model(straight / "model.keras")
    assert model.output_shape == (None, 16, 64) and [t.name for t in model.inputs] == ["chars", "reply_in"]


@pytest.mark.slow
def test_resume_at_an_epoch_boundary_equals_a_straight_run(pairs, straight, tmp_path):
    d = tmp_path / "m"
    assert run(pairs, d, 1).epochs_done == 1
    logs: list[str] = []
    res = train(TrainOptions(data_dir=pairs, model_dir=d, epochs=2, resume=True, verbose=0), log=logs.append)
    assert res.status == "done" and res.epochs_done == 2
    assert any("resuming at epoch 2, step 0" in line for line in logs)
    assert_same(straight, d)
    rows = list(csv.DictReader(open(d / "history.csv", encoding="utf-8")))
    ref = list(csv.DictReader(open(straight / "history.csv", encoding="utf-8")))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert [float(r["loss"]) for r in rows] == pytest.approx([float(r["loss"]) for r in ref], rel=1e-5)


def test_ctrl_c_saves_the_step_and_resume_continues_exactly(pairs, straight, tmp_path):
    class CtrlC(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                signal.raise_signal(signal.SIGINT)

    d = tmp_path / "m"
    logs: list[str] = []
    res = train(TrainOptions(data_dir=pairs, model_dir=d, epochs=2, **TINY), log=logs.append, callbacks=(CtrlC(),))
    assert res.status == "interrupted" and res.epochs_done == 0 and 0 < res.step < 4
    assert f"interrupted; 0 of 2 epochs and {res.step} of 4 steps of epoch 1; best validation" in res.summary()
    state = json.loads((d / "checkpoint.json").read_text(encoding="utf-8"))
    assert (state["epoch"], state["step"]) == (0, res.step)
    assert state["optimizer_iterations"] == res.step
    assert any("--resume" in line for line in logs)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    res = train(TrainOptions(data_dir=pairs, model_dir=d, epochs=2, resume=True, verbose=0), log=lambda s: None)
    assert res.status == "done"
    assert_same(straight, d)
    rows = list(csv.DictReader(open(d / "history.csv", encoding="utf-8")))
    assert rows[0]["resumed_at_step"] == str(state["step"]) and int(rows[0]["steps"]) == 4 - state["step"]


@pytest.mark.slow
def test_rotating_optimizers_follow_the_seed(pairs, tmp_path):
    run(pairs, tmp_path / "m", 2, rotate_optimizers=True, steps_per_epoch=1, seed=3)
    rows = list(csv.DictReader(open(tmp_path / "m" / "history.csv", encoding="utf-8")))
    assert [r["optimizer"] for r in rows] == [_rotation(3, e) for e in range(2)]
    assert {_rotation(3, e) for e in range(30)} == {"adam", "rmsprop", "sgd"}


@pytest.mark.slow
def test_rotating_optimizers_resume_exactly(pairs, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    run(pairs, a, 3, rotate_optimizers=True, steps_per_epoch=2)
    run(pairs, b, 2, rotate_optimizers=True, steps_per_epoch=2)
    train(TrainOptions(data_dir=pairs, model_dir=b, epochs=3, resume=True, verbose=0), log=lambda s: None)
    assert_same(a, b)


@pytest.mark.slow
def test_nan_loss_stops_naming_epoch_and_step(pairs, tmp_path):
    class Poison(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 2:
                kernel = self.model.get_layer("reply").kernel
                kernel.assign(np.full(kernel.shape, np.nan, dtype="float32"))

    d = tmp_path / "m"
    with pytest.raises(ModelError, match=r"NaN at epoch 1, step 3: training stopped; no checkpoint had been saved"):
        train(TrainOptions(data_dir=pairs, model_dir=d, epochs=1, **TINY), log=lambda s: None, callbacks=(Poison(),))
    assert not (d / "checkpoint.npz").exists()  # nothing poisoned was saved


def test_errors_a_user_can_cause(pairs, straight, tmp_path):
    with pytest.raises(UsageError, match="already holds a model in training: --resume"):
        run(pairs, straight, 1)
    with pytest.raises(ModelError, match="no model folder"):
        train(TrainOptions(data_dir=pairs, model_dir=tmp_path / "none", epochs=1, resume=True), log=print)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text('{"format": 1, "model": {}}', encoding="utf-8")
    with pytest.raises(ModelError, match="nothing to resume"):
        train(TrainOptions(data_dir=pairs, model_dir=tmp_path / "empty", epochs=1, resume=True), log=print)
    with pytest.raises(UsageError, match="--units 16 differs from the saved 8"):
        train(TrainOptions(data_dir=pairs, model_dir=straight, epochs=3, resume=True, units=16), log=print)
    with pytest.raises(StoreError, match="no pair shards"):
        run(tmp_path / "nopairs", tmp_path / "m1", 1)
    with pytest.raises(UsageError, match="epochs"):
        run(pairs, tmp_path / "m2", 0)
    with pytest.raises(UsageError, match="architecture"):
        run(pairs, tmp_path / "m3", 1, arch="gpt")
    with pytest.raises(UsageError, match="batch-size"):
        run(pairs, tmp_path / "m4", 1, batch_size=0)
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text('{"format": 99, "nocpipe": "9.9", "model": {}}', encoding="utf-8")
    with pytest.raises(ModelError, match="format 99"):
        train(TrainOptions(data_dir=pairs, model_dir=other, epochs=1, resume=True), log=print)
    logs: list[str] = []
    res = train(TrainOptions(data_dir=pairs, model_dir=straight, epochs=2, resume=True), log=logs.append)
    assert res.status == "already-done" and "raise --epochs" in logs[-1]
    assert "nothing to train" in res.summary() and "2 of 2 epochs" in res.summary()


def test_force_starts_over_and_no_validation_picks_by_training_loss(pairs, tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "config.json").write_text('{"format": 1, "model": {"arch": "seed"}}', encoding="utf-8")
    (d / "checkpoint.npz").write_bytes(b"old")
    (d / "notes.txt").write_text("mine", encoding="utf-8")
    logs: list[str] = []
    res = run(pairs, d, 1, logs, steps_per_epoch=1, force=True, arch="dense-attention", valid_pairs=0)
    assert res.status == "done" and res.best_epoch == 1 and (d / "model.keras").exists()
    assert json.loads((d / "config.json").read_text(encoding="utf-8"))["model"]["arch"] == "dense-attention"
    assert weights(d)[2]["epoch"] == 1
    assert (d / "notes.txt").read_text(encoding="utf-8") == "mine"  # only training files are replaced
    assert any("no validation (--valid-pairs 0)" in line for line in logs)


@pytest.mark.slow
def test_pad_loss_end_trains_with_end_weights_and_is_saved(pairs, tmp_path):
    import json

    d = tmp_path / "end"
    res = run(pairs, d, 1, pad_loss="end")
    assert res.status == "done"
    assert json.loads((d / "config.json").read_text())["train"]["pad_loss"] == "end"
    assert res.history and res.history[-1]["loss"] > 0


def test_keras_callbacks_see_every_epoch_and_the_validation_metrics(pairs, tmp_path):
    log = tmp_path / "log.csv"
    cbs = (keras.callbacks.CSVLogger(str(log)), keras.callbacks.EarlyStopping(monitor="val_bpc", patience=50))
    train(TrainOptions(data_dir=pairs, model_dir=tmp_path / "m", epochs=3, **TINY), log=lambda s: None, callbacks=cbs)
    rows = list(csv.DictReader(open(log, encoding="utf-8")))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert all(float(r["val_bpc"]) > 0 and float(r["val_loss"]) > 0 for r in rows)
    hist = modeldir.ModelDir(tmp_path / "m").read_history()
    assert [float(h["val_bpc"]) for h in hist] == pytest.approx([float(r["val_bpc"]) for r in rows], rel=1e-4)


@pytest.mark.slow
def test_max_time_stops_after_a_step_and_resume_continues_exactly(pairs, straight, tmp_path):
    d = tmp_path / "m"
    logs: list[str] = []
    res = run(pairs, d, 2, logs, max_time=1e-6)
    assert res.status == "time-up" and (res.epochs_done, res.step) == (0, 1)
    assert any("time budget reached at epoch 1, step 1/4" in s for s in logs)
    assert res.summary().startswith(f"{d}: stopped at the time budget; 0 of 2 epochs and 1 of 4 steps of epoch 1;")
    assert "at epoch 1 (its first step)" in res.summary()
    assert (d / modeldir.MODEL_FILE).exists()  # the partial epoch was validated and kept
    res = run(pairs, d, 2, resume=True)
    assert res.status == "done"
    assert_same(d, straight)


def test_early_stop_watches_validation_bits_per_char(pairs, tmp_path):
    logs: list[str] = []
    # A learning rate too small to change a float32 weight: the validation figure never improves.
    res = run(pairs, tmp_path / "m", 6, logs, early_stop=1, optimizer="sgd", learning_rate=1e-30)
    assert res.status == "early-stopped" and res.epochs_done == 2 and res.best_epoch == 1
    assert any("early stop after epoch 2" in s for s in logs)
    assert "stopped early; 2 of 6 epochs; best validation bits/char" in res.summary()
    assert res.summary().endswith(f"at epoch 1 -> {tmp_path / 'm' / 'model.keras'}")
    with pytest.raises(UsageError, match="validation"):
        run(pairs, tmp_path / "n", 2, early_stop=1, valid_pairs=0)


def test_max_time_durations(cli, tmp_path):
    from pipeline.cli.model import parse_duration
    from pipeline.errors import NocpipeError

    assert [parse_duration(t) for t in ("90s", "20m", "2h", "1.5h", "45")] == [90, 1200, 7200, 5400, 45]
    for bad in ("soon", "0s", "-5m", "10d", ""):
        with pytest.raises(NocpipeError, match="--max-time"):
            parse_duration(bad)
    res = cli("train", "--data-dir", tmp_path, "--model-dir", tmp_path / "m", "--max-time", "soon")
    assert res.code == 1 and res.err.startswith("Error: --max-time takes a duration")


@pytest.mark.slow
def test_lr_decay_lowers_the_learning_rate_as_the_time_budget_runs_out(pairs, tmp_path, monkeypatch):
    import time as real_time

    import stages.train as st

    class Clock:
        """Training time that advances one second whenever it is read."""

        now = 0.0

        def monotonic(self):
            Clock.now += 1.0
            return Clock.now

        def __getattr__(self, name):
            return getattr(real_time, name)

    monkeypatch.setattr(st, "time", Clock())
    res = run(pairs, tmp_path / "m", 20, max_time=20, lr_decay=True, learning_rate=0.01)
    assert res.status == "time-up"
    rates = [float(r["learning_rate"]) for r in modeldir.ModelDir(tmp_path / "m").read_history()]
    assert len(rates) >= 3 and rates[0] < 0.01
    assert all(b < a for a, b in zip(rates, rates[1:]))  # falls at every epoch
    assert rates[-1] < 0.01 * 0.5  # most of the way down by the end
    plain = run(pairs, tmp_path / "p", 2, learning_rate=0.01)
    assert [float(r["learning_rate"]) for r in plain.history] == pytest.approx([0.01, 0.01])


def test_lr_decay_needs_a_time_budget_and_no_rotation(pairs, tmp_path):
    with pytest.raises(UsageError, match="--max-time"):
        run(pairs, tmp_path / "m", 1, lr_decay=True)
    with pytest.raises(UsageError, match="rotate"):
        run(pairs, tmp_path / "n", 1, lr_decay=True, max_time=60, rotate_optimizers=True)


def test_itf_trains_an_autoregressive_model_and_is_saved(pairs, tmp_path):
    res = run(pairs, tmp_path / "m", 1, itf=0.5)
    assert res.status == "done"
    cfg = json.loads((tmp_path / "m" / "config.json").read_text(encoding="utf-8"))
    assert cfg["train"]["itf"] == 0.5
    with pytest.raises(UsageError, match="--itf 0.7 differs"):
        run(pairs, tmp_path / "m", 2, resume=True, itf=0.7)
    with pytest.raises(UsageError, match="autoregressive"):
        run(pairs, tmp_path / "s", 1, itf=0.5, arch="seed")
    with pytest.raises(UsageError, match="--itf"):
        run(pairs, tmp_path / "n", 1, itf=3.0)


# ---------------------------------------------------------------- who may train in a folder


def test_a_shipped_model_without_a_checkpoint_is_never_wiped(pairs, straight, tmp_path):
    import shutil

    shipped = tmp_path / "shipped"
    shutil.copytree(straight, shipped)
    for name in ("checkpoint.npz", "checkpoint.json", "log.txt"):  # as a model is shipped: no training state
        (shipped / name).unlink()
    before = {p.name: p.read_bytes() for p in shipped.iterdir()}
    with pytest.raises(UsageError, match=r"already holds a model \(config.json, .*model.keras.*\): --force"):
        run(pairs, shipped, 1)
    assert {p.name: p.read_bytes() for p in shipped.iterdir()} == before
    only_vocab = tmp_path / "vocab-only"
    only_vocab.mkdir()
    shutil.copy(straight / "vocab.json", only_vocab)
    with pytest.raises(UsageError, match="already holds a model"):
        run(pairs, only_vocab, 1)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(UsageError, match=r"files nocpipe did not write \(notes.txt\)"):
        run(pairs, theirs, 1)


def test_a_run_that_died_before_its_first_checkpoint_starts_again(pairs, tmp_path):
    class Poison(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            kernel = self.model.get_layer("reply").kernel
            kernel.assign(np.full(kernel.shape, np.nan, dtype="float32"))

    d = tmp_path / "m"
    with pytest.raises(ModelError, match="NaN"):
        train(TrainOptions(data_dir=pairs, model_dir=d, epochs=1, **TINY), log=lambda s: None, callbacks=(Poison(),))
    assert {"started.json", "config.json", "vocab.json"} <= {p.name for p in d.iterdir()}
    started = json.loads((d / "started.json").read_text(encoding="utf-8"))
    other = {**started, "fingerprint": "0" * 16}
    (d / "started.json").write_text(json.dumps(other), encoding="utf-8")
    with pytest.raises(UsageError, match="the start of a run on other train pairs"):
        run(pairs, d, 1)
    (d / "started.json").write_text(json.dumps(started), encoding="utf-8")
    logs: list[str] = []
    res = run(pairs, d, 1, logs, steps_per_epoch=1)
    assert res.status == "done" and any("stopped before its first checkpoint" in s for s in logs)
    assert not (d / "started.json").exists()  # the first checkpoint ends the claim


# ---------------------------------------------------------------- checks before any work


def _child(code: str, *args: str, env: dict | None = None):
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo), **(env or {})}
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_typo_answers_before_keras_is_imported(pairs, tmp_path):
    code = (
        "import sys\nfrom pipeline.cli import main\ncode = main(sys.argv[1:])\n"
        "print('KERAS' if 'keras' in sys.modules else 'NO-KERAS', code)\n"
    )
    cases = [
        (["--arch", "tranformer"], "unknown architecture 'tranformer'"),
        (["--data-dir", str(tmp_path / "pairz")], "no pair shards at"),
        (["--batch-size", "100000"], "--batch-size must be from 1 to 65,536"),
        (["--max-len", "100000000"], "--max-len must be from 1 to 1,024"),
        (["--early-stop", "-1"], "--early-stop"),
        (["--pad-loss", "some"], "--pad-loss takes end or all"),
    ]
    for extra, message in cases:
        args = ["train", "--data-dir", str(pairs), "--model-dir", str(tmp_path / "m"), *extra]
        proc = _child(code, *args)
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("Error:")]
        assert proc.stdout.split() == ["NO-KERAS", "1"], (extra, proc.stdout, proc.stderr[-2000:])
        assert len(errors) == 1 and message in errors[0], (extra, errors)
        imported = [ln.rsplit("|", 1)[-1].strip() for ln in proc.stderr.splitlines() if ln.startswith("import time:")]
        assert imported and not any(m.split(".")[0] in ("keras", "tensorflow", "jax") for m in imported)
    assert not (tmp_path / "m").exists() and not (tmp_path / ".m.lock").exists()  # nothing was made


def test_tensorboard_without_its_package_is_refused_in_one_line(pairs, tmp_path):
    code = (
        "import sys\nsys.modules['tensorboard'] = None  # as on the core install\n"
        "from pipeline.cli import main\ncode = main(sys.argv[1:])\n"
        "print('KERAS' if 'keras' in sys.modules else 'NO-KERAS', code)\n"
    )
    args = ["train", "--data-dir", str(pairs), "--model-dir", str(tmp_path / "m"), "--tensorboard", str(tmp_path)]
    proc = _child(code, *args)
    assert proc.stdout.split() == ["NO-KERAS", "1"], proc.stderr[-2000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and "pip install 'nocpipe[tensorboard]'" in errors[0]
    assert "Traceback" not in proc.stderr


def test_every_size_is_bounded_and_the_batch_by_memory(pairs, tmp_path):
    from pipeline.sizes import BOUNDS, check_memory, footprint

    for name, low, high in BOUNDS:
        with pytest.raises(UsageError, match=f"--{name.replace('_', '-')} must be from {low:,} to {high:,}"):
            TrainOptions(data_dir=pairs, model_dir=tmp_path / "m", **{name: high + 1}).validate()
    s = {"arch": "transformer", "units": 128, "layers": 2, "heads": 0, "max_len": 50, "vocab_size": 128}
    gb = 1024**3
    check_memory(s, 128, 5000, 16384, memory=8 * gb)  # the default run fits a small machine
    with pytest.raises(UsageError, match=r"needs about .* GB per training step \(estimated\); 8.0 GB are available"):
        check_memory(s, 65536, 5000, 16384, memory=8 * gb)
    fits = footprint(s, 5000, 16384).largest_batch(8 * gb)
    with pytest.raises(UsageError, match=f"use at most --batch-size {fits:,}"):
        check_memory(s, fits + 1, 5000, 16384, memory=8 * gb)
    check_memory(s, fits, 5000, 16384, memory=8 * gb)
    with pytest.raises(UsageError, match="even one pair does not fit"):
        check_memory({**s, "max_len": 1024, "units": 8192, "layers": 48}, 1, 0, 1, memory=gb)


def test_a_batch_above_the_train_pairs_is_cut_to_them(pairs, tmp_path):
    logs: list[str] = []
    res = run(pairs, tmp_path / "m", 1, logs, batch_size=400, steps_per_epoch=0)
    assert any("--batch-size 400 is more than the 160 train pairs: using 160" in s for s in logs)
    cfg = json.loads((tmp_path / "m" / "config.json").read_text(encoding="utf-8"))
    assert cfg["train"]["batch_size"] == 160 and res.history[0]["steps"] == 1


# ---------------------------------------------------------------- what a log says


def test_a_log_gets_nocpipe_lines_only_with_a_line_inside_each_epoch(pairs, tmp_path, capsys, monkeypatch):
    import pipeline.callbacks

    monkeypatch.setattr(pipeline.callbacks, "HEARTBEAT_S", 0.0)  # a line at every step, not every 30 s
    logs: list[str] = []
    res = run(pairs, tmp_path / "m", 2, logs, verbose=1)
    captured = capsys.readouterr()
    assert "Epoch 1/2" not in captured.out + captured.err and "━" not in captured.out + captured.err
    beats = [s for s in logs if s.startswith("epoch ") and ", step " in s]
    assert [b.split(":")[0] for b in beats] == [f"epoch {e}/2, step {s}/4" for e in (1, 2) for s in (1, 2, 3, 4)]
    assert all("pairs/s, running loss" in b for b in beats)
    assert sum(s.startswith("epoch 1/2: ") for s in logs) == 1  # one epoch line
    assert res.summary() == (
        f"{tmp_path / 'm'}: trained; 2 of 2 epochs; best validation bits/char {res.best_val_loss:.4f} "
        f"at epoch {res.best_epoch} -> {tmp_path / 'm' / 'model.keras'}"
    )


def test_the_resume_messages_say_what_is_true(pairs, straight, tmp_path):
    with pytest.raises(UsageError, match="--learning-rate 0.01 differs from the saved run, which") as exc:
        run(pairs, straight, 3, resume=True, learning_rate=0.01)
    assert "the optimizer's default rate" in str(exc.value) and "None" not in str(exc.value)


# ---------------------------------------------------------------- --arch retrieval


def test_arch_retrieval_is_dispatched_to_its_own_trainer(pairs, tmp_path, monkeypatch):
    import sys
    import types

    with pytest.raises(UsageError, match=r"--itf and --reply-dropout shape a generative network's training"):
        run(pairs, tmp_path / "r", 1, arch="retrieval", itf=0.5, reply_dropout=0.1)
    calls = []
    fake = types.ModuleType("pipeline.retrieval.train")
    fake.train_retrieval = lambda opts, model_dir, reporter: calls.append((opts, model_dir, reporter)) or "trained"
    monkeypatch.setitem(sys.modules, "pipeline.retrieval", types.ModuleType("pipeline.retrieval"))
    monkeypatch.setitem(sys.modules, "pipeline.retrieval.train", fake)
    assert run(pairs, tmp_path / "r", 1, arch="retrieval") == "trained"
    [(opts, folder, reporter)] = calls
    assert opts.arch == "retrieval" and folder == modeldir.ModelDir(tmp_path / "r")
