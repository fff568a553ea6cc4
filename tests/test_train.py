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

TINY = dict(units=8, max_len=16, vocab_size=64, batch_size=16, max_pairs=160, steps_per_epoch=4, seed=7, verbose=0)


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
    w, o, state = modeldir.load_checkpoint(model_dir)
    return w, o, state


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
    with pytest.raises(ModelError, match=r"NaN at epoch 1, step 3"):
        train(TrainOptions(data_dir=pairs, model_dir=d, epochs=1, **TINY), log=lambda s: None, callbacks=(Poison(),))
    assert not (d / "checkpoint.npz").exists()  # nothing poisoned was saved


def test_errors_a_user_can_cause(pairs, straight, tmp_path):
    with pytest.raises(UsageError, match="already holds a model"):
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
    # A folder with only config.json (a run killed in its first epoch) is no model: a new run may start there.
    assert not modeldir.holds_training(tmp_path / "empty") and modeldir.holds_training(straight)


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
    hist = modeldir.read_history(tmp_path / "m")
    assert [float(h["val_bpc"]) for h in hist] == pytest.approx([float(r["val_bpc"]) for r in rows], rel=1e-4)


@pytest.mark.slow
def test_max_time_stops_after_a_step_and_resume_continues_exactly(pairs, straight, tmp_path):
    d = tmp_path / "m"
    logs: list[str] = []
    res = run(pairs, d, 2, logs, max_time=1e-6)
    assert res.status == "time-up" and (res.epochs_done, res.step) == (0, 1)
    assert any("time budget reached at epoch 1, step 1/4" in s for s in logs)
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
    rates = [float(r["learning_rate"]) for r in modeldir.read_history(tmp_path / "m")]
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
