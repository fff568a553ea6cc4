"""nocpipe train: pair shards -> a seq2seq model folder, checkpointed every epoch, resumable to the step.

    scan the shards (split column only) -> train units, valid units
    new run:   vocabulary from the train split (streamed) -> vocab.json, config.json
    --resume:  config.json + vocab.json + checkpoint.npz (weights, optimizer, epoch, step, position)
    per epoch: optimizer (fixed, or a seeded choice per epoch with --rotate-optimizers)
      -> model.fit(endless PairStream from batch position, steps_per_epoch)  Keras progress bar
      -> evaluate on the valid pairs -> one summary line
      -> atomically: model.keras (when the validation loss is the best so far), history.csv,
         curves.png, and last checkpoint.npz (so a crash between files resumes consistently)
    Ctrl-C: stop after the running step, save a checkpoint at that step, exit (130).
    NaN loss: stop, name epoch and step, keep the last good checkpoint.

Exact resume: the data order is a pure function of (seed, position) (pipeline.dataset),
the optimizer variables and its step counter are restored, and an epoch's optimizer
choice is a function of (seed, epoch); so 2 epochs straight and 1 epoch + --resume end
with the same weights.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from pipeline import __version__, modeldir
from pipeline.config import DEFAULT_ARCH, DEFAULT_UNITS
from pipeline.dataset import (
    DEFAULT_WINDOW_ROWS,
    PairStream,
    count_too_long,
    end_weights,
    fingerprint,
    itf_weights,
    keras_batches,
    load_arrays,
    read_unit,
    scan_units,
    teacher_forcing,
)
from pipeline.errors import ModelError, UsageError
from pipeline.kana import DEFAULT_READER
from pipeline.locks import locked
from pipeline.shards import corpus_metadata
from pipeline.vocab import Vocab

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@dataclass
class TrainConfig:
    """Training options saved in config.json["train"] (a resumed run takes them from there)."""

    batch_size: int = 128
    rotate_optimizers: bool = False
    max_pairs: int = 0  # 0: every train pair
    steps_per_epoch: int = 0  # 0: one pass over the train pairs
    valid_pairs: int = -1  # -1: 10% of the train pairs (at least one batch, at most 5000); 0: none
    seed: int = 0
    precision: str = "auto"
    window_rows: int = DEFAULT_WINDOW_ROWS
    pad_loss: str = "all"  # "all": every position counts (the original); "end": padding after the end adds no loss
    itf: float = 0.0  # autoregressive: reply characters weighted 1/frequency**itf in the loss (0: off)


MODEL_DEFAULTS = {
    "arch": DEFAULT_ARCH,
    "units": DEFAULT_UNITS,
    "layers": 2,
    "heads": 0,
    "positions": "learned",
    "reply_dropout": 0.0,
    "max_len": 50,
    "vocab_size": 128,
    "reverse_input": True,
    "optimizer": "adam",
    "learning_rate": None,
}
TRAIN_DEFAULTS = asdict(TrainConfig())


@dataclass
class TrainOptions:
    """What the command line asks for. None means "default" (new run) or "as saved" (--resume)."""

    data_dir: Path
    model_dir: Path
    epochs: int = 10
    resume: bool = False
    force: bool = False
    verbose: int = 1  # Keras progress bar: 1 bar, 2 one line per epoch, 0 none
    arch: str | None = None
    units: int | None = None
    layers: int | None = None
    heads: int | None = None
    positions: str | None = None
    reply_dropout: float | None = None
    max_len: int | None = None
    vocab_size: int | None = None
    reverse_input: bool | None = None
    optimizer: str | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    rotate_optimizers: bool | None = None
    max_pairs: int | None = None
    steps_per_epoch: int | None = None
    valid_pairs: int | None = None
    seed: int | None = None
    precision: str | None = None
    window_rows: int | None = None
    pad_loss: str | None = None
    itf: float | None = None
    max_time: float | None = None  # seconds of training in this run (None: no budget)
    lr_decay: bool = False  # with max_time: the learning rate falls linearly over the budget
    tensorboard: Path | None = None  # a TensorBoard log folder
    early_stop: int = 0  # patience in epochs on validation bits/char (0: off)
    distribute: bool = False  # data-parallel over every device (pipeline.distribute); not saved: a resume may change it

    def given(self, names) -> dict:
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


@dataclass
class TrainResult:
    model_dir: Path
    status: str  # "done", "interrupted", "already-done"
    epochs_done: int
    step: int = 0  # steps into the next epoch (interrupted mid-epoch)
    best_epoch: int | None = None
    best_val_loss: float | None = None
    history: list[dict] = field(default_factory=list)


# ---------------------------------------------------------------- helpers


class _Stop:
    """SIGINT once: finish the running step, checkpoint, exit. SIGINT twice: abort at once."""

    def __init__(self, log):
        self.requested = False
        self._log = log
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self._log("\nCtrl-C: stopping after this step and saving a checkpoint (Ctrl-C again to abort without saving)")

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


def _watch_callback(stop: _Stop, deadline: float | None = None):
    """A Keras callback: counts steps, stops on Ctrl-C or at the time budget (after the running step),
    finds the first NaN loss (one step late, no sync)."""
    import keras
    from keras import ops

    class Watch(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.steps = 0  # steps in this fit
            self.epoch_steps = 0  # steps in the running epoch
            self.nan_step: int | None = None
            self.reason: str | None = None  # "interrupt" or "time"
            self._pending = None

        def _check(self):
            if self._pending is not None and self.nan_step is None:
                step, loss = self._pending
                if not math.isfinite(float(ops.convert_to_numpy(loss))):
                    self.nan_step = step
                    self.model.stop_training = True
            self._pending = None

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_steps = 0

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            self.epoch_steps += 1
            self._check()  # the previous step's loss: finished by now, reading it costs no sync
            if logs and "loss" in logs:
                self._pending = (self.epoch_steps, logs["loss"])
            if stop.requested:
                self.reason = "interrupt"
                self.model.stop_training = True
            elif deadline is not None and time.monotonic() >= deadline:
                self.reason = "time"
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            self._check()

    return Watch()


def _budget_decay_callback(base: float, deadline: float, budget: float):
    """Budgeted training (Li, Yumer and Ramanan, ICLR 2020): with a fixed time budget, a learning
    rate that falls linearly to zero as the budget runs out ends at a lower loss than a constant
    one. Set at each epoch's start from the share of the budget left (Keras applies a rate set
    there on every backend); never below 2 % of the start value."""
    import keras

    class BudgetDecay(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            left = max(0.0, deadline - time.monotonic()) / budget
            self.model.optimizer.learning_rate = base * max(0.02, left)

    return BudgetDecay()


def _run_callback():
    import keras

    class Run(keras.callbacks.Callback):
        """At every epoch end (or a stop inside one): the history row, model.keras when the validation
        bits/char is the best so far, curves, and the checkpoint, all atomic."""

        def __init__(
            self, model, model_dir, mcfg, tcfg, steps, fp, plotter, log, epochs, best_loss, best_epoch, history
        ):
            super().__init__()
            self.net, self.model_dir, self.mcfg, self.tcfg = model, model_dir, mcfg, tcfg
            self.steps_per_epoch, self.fp, self.plotter, self.log, self.epochs = steps, fp, plotter, log, epochs
            self.best_loss, self.best_epoch, self.history = best_loss, best_epoch, history
            self.nan_at = (0, 0)

        def begin(self, epoch: int, step: int, kind: str, watch) -> None:
            self.epoch, self.step, self.kind, self.watch = epoch, step, kind, watch
            self.first_step = step
            self.t0 = time.perf_counter()

        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            from pipeline.models import inference_copy, variable_value

            logs = dict(logs or {})
            watch = self.watch
            if watch.nan_step is not None:
                self.nan_at = (epoch, self.first_step + watch.nan_step)
                return
            done = self.first_step + watch.epoch_steps
            seconds = time.perf_counter() - self.t0
            ran = done - self.first_step
            samples = ran * self.tcfg.batch_size
            row = {
                "epoch": epoch + 1,
                "optimizer": self.kind,
                "learning_rate": float(variable_value(self.net.optimizer.learning_rate)),
                "steps": ran,
                "samples": samples,
                "seconds": round(seconds, 3),
                "samples_per_s": round(samples / seconds, 1) if seconds > 0 else None,
                "loss": logs.get("loss"),
                "acc": logs.get("acc"),
                "bpc": logs.get("bpc"),
                "val_loss": logs.get("val_loss"),
                "val_acc": logs.get("val_acc"),
                "val_bpc": logs.get("val_bpc"),
                "resumed_at_step": self.first_step or "",
            }
            self.history.append(row)
            score = logs.get("val_bpc", logs.get("bpc"))
            is_best = score is not None and math.isfinite(score) and (self.best_loss is None or score < self.best_loss)
            if is_best:
                self.best_loss, self.best_epoch = float(score), epoch + 1
                modeldir.save_keras(inference_copy(self.net, self.mcfg), self.model_dir / modeldir.MODEL_FILE)
            modeldir.write_history(self.model_dir, self.history)
            self.plotter.submit(self.history)
            if done >= self.steps_per_epoch:
                self.epoch, self.step = epoch + 1, 0
            else:
                self.epoch, self.step = epoch, done
            self.first_step = 0
            _save(
                self.net,
                self.model_dir,
                self.epoch,
                self.step,
                self.steps_per_epoch,
                self.kind,
                self.tcfg,
                self.fp,
                self.best_loss,
                self.best_epoch,
            )
            part = f" (stopped at step {done}/{self.steps_per_epoch})" if self.step else ""
            self.log(
                f"epoch {epoch + 1}/{self.epochs}{part}: {samples:,} pairs in {seconds:.1f}s "
                f"({row['samples_per_s'] or 0:,.0f} pairs/s), loss {_fmt_loss(row['loss'])}, "
                f"bits/char {_fmt_loss(row['bpc'])}, val loss {_fmt_loss(row['val_loss'])}, "
                f"val bits/char {_fmt_loss(row['val_bpc'])}, val acc {_fmt_loss(row['val_acc'])}"
                + (" (best)" if is_best else "")
            )

    return Run


def _Run(*args):
    return _run_callback()(*args)


class _Plotter:
    """Draws curves.png on a worker thread (matplotlib imported there at start), so the
    picture costs the training loop nothing; close() waits for the last one."""

    def __init__(self, model_dir: Path, title: str, log):
        import queue

        self._queue: "queue.Queue" = queue.Queue()
        self._model_dir, self._title, self._log = model_dir, title, log
        self._thread = threading.Thread(target=self._run, name="nocpipe-curves", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            import matplotlib.backends.backend_agg  # noqa: F401  (the import is most of the cost)
            import matplotlib.figure  # noqa: F401
        except ImportError:
            pass
        while True:
            rows = self._queue.get()
            if rows is None:
                return
            if not self._queue.empty():  # a newer history is waiting: draw that one
                continue
            try:
                modeldir.plot_curves(self._model_dir, rows, title=self._title)
            except Exception as exc:  # a picture must never stop training
                self._log(f"warning: could not draw {modeldir.CURVES_FILE}: {exc}")

    def submit(self, rows: list[dict]) -> None:
        self._queue.put([dict(r) for r in rows])

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()


def _rotation(seed: int, epoch: int) -> str:
    from pipeline.models import OPTIMIZERS

    return OPTIMIZERS[int(np.random.default_rng([seed, epoch, 7]).integers(len(OPTIMIZERS)))]


def _valid_limit(cfg: TrainConfig, train_pairs: int) -> int:
    if cfg.valid_pairs >= 0:
        return cfg.valid_pairs
    return min(5000, max(cfg.batch_size, train_pairs // 10))


def _reader_of(data_dir: Path, log: Callable[[str], None] = print) -> tuple[str, str]:
    """The reader the corpus was read with (shard metadata, else stats.json): predict must read
    input the same way. A corpus that does not say (a filtered copy whose tool dropped the
    metadata) gets the default reader, said out loud."""
    meta = corpus_metadata(data_dir)
    if not meta.get("reader"):
        log(
            f"warning: {data_dir} does not say which reader made its katakana (no nocpipe metadata in its "
            f"Parquet files, no stats.json beside them); assuming {DEFAULT_READER}, the default"
        )
        return DEFAULT_READER, ""
    return meta["reader"], meta.get("reader_version", "")


def _count_chars(units, split: str) -> dict[str, int]:
    from collections import Counter

    counter: Counter = Counter()
    for unit in units:
        utt, rep = read_unit(unit, split)
        Vocab.count(utt, counter)
        Vocab.count(rep, counter)
    return counter


def _optimizer_arrays(model) -> list[np.ndarray]:
    from pipeline.models import variable_value

    return [variable_value(v) for v in model.optimizer.variables]


def _restore_optimizer(model, arrays: list[np.ndarray]) -> None:
    opt = model.optimizer
    if not opt.built:
        opt.build(model.trainable_variables)
    variables = opt.variables
    if len(variables) != len(arrays) or any(tuple(v.shape) != a.shape for v, a in zip(variables, arrays)):
        raise ModelError("the checkpoint's optimizer state does not fit this model: was it changed by hand?")
    for v, a in zip(variables, arrays):
        v.assign(a)


def _fmt_loss(v) -> str:
    return "n/a" if v is None or v != v else f"{v:.4f}"


# ---------------------------------------------------------------- the stage


@locked("train", lambda a: a["opts"].model_dir, "model folder", beside=True, temporaries=(".*.tmp", ".*.keras"))
def _is_retrieval(opts: TrainOptions) -> bool:
    if opts.resume:
        return modeldir.read_config(Path(opts.model_dir)).get("model", {}).get("arch") == "retrieval"
    return (opts.arch or DEFAULT_ARCH) == "retrieval"


def _train_retrieval(opts: TrainOptions, log) -> TrainResult:
    """The retrieval chatbot trains in its own loop (pipeline.retrieval.train): no decoder, no bits/char."""
    from pipeline.modeldir import ModelDir
    from pipeline.retrieval.train import train_retrieval

    reader = _reader_of(Path(opts.data_dir), log) if not opts.resume else ("", "")
    res = train_retrieval(opts, ModelDir(Path(opts.model_dir)), log, reader=reader)
    return TrainResult(res.model_dir, res.status, res.epochs_done, 0, res.best_epoch, res.best_val_loss, res.history)


def train(opts: TrainOptions, log: Callable[[str], None] = print, callbacks: tuple = ()) -> TrainResult:
    """Train (or resume) into opts.model_dir; see the module docstring. Extra Keras `callbacks` go to fit."""
    if opts.epochs < 1:
        raise UsageError(f"--epochs must be at least 1, not {opts.epochs}")
    model_dir = Path(opts.model_dir)
    data_dir = Path(opts.data_dir)
    if _is_retrieval(opts):
        return _train_retrieval(opts, log)

    # ---- resolve configuration (new run or resumed)
    from pipeline.models import ModelConfig

    checkpoint = None
    if opts.resume:
        saved = modeldir.read_config(model_dir)
        weights, opt_arrays, state = modeldir.load_checkpoint(model_dir)
        checkpoint = (weights, opt_arrays, state)
        try:
            mcfg = ModelConfig.from_dict(saved["model"])
            tcfg = TrainConfig(**saved["train"])
        except (KeyError, TypeError) as exc:
            raise ModelError(f"config.json in {model_dir} is incomplete: {exc}") from None
        if opts.precision is not None:  # a resumed run may move to another machine
            tcfg.precision = opts.precision
        for name, value in {**opts.given(MODEL_DEFAULTS), **opts.given(TRAIN_DEFAULTS)}.items():
            was = getattr(mcfg, name) if name in MODEL_DEFAULTS else getattr(tcfg, name)
            if value != was:
                raise UsageError(
                    f"--{name.replace('_', '-')} {value} differs from the saved {was}: "
                    "--resume continues with the saved settings (leave the option out)"
                )
        vocab = Vocab.load(model_dir / modeldir.VOCAB_FILE)
        if saved.get("data", {}).get("data_dir") and Path(saved["data"]["data_dir"]).resolve() != data_dir.resolve():
            log(f"note: resuming on {data_dir}, trained so far on {saved['data']['data_dir']}")
    else:
        if modeldir.holds_training(model_dir) and not opts.force:
            raise UsageError(
                f"{model_dir} already holds a model: --resume to continue it, "
                "--force to start over, or choose another --name/--model-dir"
            )
        mcfg = ModelConfig(**{**MODEL_DEFAULTS, **opts.given(MODEL_DEFAULTS)}).validate()
        tcfg = TrainConfig(**{**TRAIN_DEFAULTS, **opts.given(TRAIN_DEFAULTS)})
        saved = None
        vocab = None
    for name in ("batch_size", "window_rows"):
        if getattr(tcfg, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, not {getattr(tcfg, name)}")
    for name in ("max_pairs", "steps_per_epoch"):
        if getattr(tcfg, name) < 0:
            raise UsageError(f"--{name.replace('_', '-')} cannot be negative")
    if not (0.0 <= float(tcfg.itf) <= 2.0):
        raise UsageError(f"--itf must be from 0 (off) to 2, not {tcfg.itf}")
    if opts.lr_decay and not opts.max_time:
        raise UsageError("--lr-decay lowers the learning rate over the time budget: give --max-time too")
    if opts.lr_decay and tcfg.rotate_optimizers:
        raise UsageError("--lr-decay and --rotate-optimizers both set the learning rate: choose one")
    if tcfg.itf and not mcfg.autoregressive:
        raise UsageError(
            f"--itf weighs the reply characters of an autoregressive model (attention, transformer), not {mcfg.arch}"
        )

    # ---- data
    train_units = scan_units(data_dir, "train", tcfg.max_pairs)
    n_train = sum(u.take for u in train_units)
    if n_train == 0:
        raise UsageError(f"no train pairs in {data_dir}")
    valid_units = scan_units(data_dir, "valid", 0)
    fp = fingerprint(train_units)

    if vocab is None:
        modeldir.clear(model_dir)  # --force, or the leftovers of a run that died in its first epoch
        reader, reader_version = _reader_of(data_dir, log)
        cut, sides = count_too_long(train_units, "train", mcfg.max_len)
        if cut:
            log(f"warning: --max-len {mcfg.max_len} cuts {cut:,} of {sides:,} train sides ({cut / sides:.1%})")
        vocab = Vocab.build(
            _count_chars(train_units, "train"),
            mcfg.vocab_size,
            max_len=mcfg.max_len,
            reverse_input=mcfg.reverse_input,
            reader=reader,
            reader_version=reader_version,
        )
        model_dir.mkdir(parents=True, exist_ok=True)
        vocab.save(model_dir / modeldir.VOCAB_FILE)
    steps = tcfg.steps_per_epoch or -(-n_train // tcfg.batch_size)
    if checkpoint is not None:
        state = checkpoint[2]
        if state["steps_per_epoch"] != steps:
            raise ModelError(
                f"the checkpoint counts {state['steps_per_epoch']} steps per epoch, this data gives "
                f"{steps}: the train split changed (use the data it was trained on)"
            )
        if state.get("fingerprint") != fp:
            log("warning: the shards changed since the checkpoint; the data order will not be the one it left")

    from pipeline.models import quiet_keras

    keras = quiet_keras()  # TensorFlow's native start-up lines dropped

    from pipeline import distribute
    from pipeline.models import (
        build_model,
        choose_precision,
        compile_model,
        cudnn_report,
        gpu_info,
        make_optimizer,
        quiet_native_logs,
        variable_value,
    )

    plan = distribute.setup(tcfg.batch_size, enabled=opts.distribute)  # a batch that does not split stops here
    gpu = gpu_info()
    policy = choose_precision(tcfg.precision, gpu)
    old_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    plotter = _Plotter(model_dir, f"{model_dir.name}: {mcfg.arch}, units {mcfg.units}", log)
    # Build, compile and restore inside the strategy's scope (MirroredStrategy's variables).
    scope = contextlib.ExitStack()
    scope.callback(plan.close)
    scope.enter_context(plan.scope())
    try:
        keras.utils.set_random_seed(tcfg.seed)
        model = build_model(mcfg)
        backend = keras.backend.backend()
        log(
            f"nocpipe {__version__}, keras {keras.__version__} on {backend}"
            f"{', ' + gpu['name'] if gpu else ', CPU'}; precision {policy}"
        )
        log(cudnn_report(model, gpu))
        if plan.enabled:
            log(f"--distribute: {plan.describe()}; {tcfg.batch_size // plan.devices} pairs per device per step")

        valid_limit = _valid_limit(tcfg, n_train)
        if valid_limit:
            x_val, y_val = load_arrays(valid_units, "valid", vocab, valid_limit)
        else:
            x_val = y_val = np.zeros((0, mcfg.max_len), dtype=np.int32)
        x_val, y_val = plan.whole_batches(x_val, y_val)
        if mcfg.autoregressive:
            val_inputs, val_y = teacher_forcing(x_val, y_val, mcfg.start_id)
            val_w = end_weights(val_y)
        else:
            val_inputs, val_y = x_val, y_val.copy()
            val_y[:, -1] = 0  # bits/char counts the end of every reply, as evaluate does
            val_w = end_weights(val_y) if tcfg.pad_loss == "end" else None
        if len(x_val) == 0:
            log(
                "warning: no validation ("
                + ("--valid-pairs 0" if not valid_limit else "no valid pairs in the shards")
                + "): the best model is chosen by training loss"
            )
        log(
            f"{mcfg.arch}: {model.count_params():,} parameters, units {mcfg.units}, vocabulary {len(vocab)} of "
            f"{mcfg.vocab_size}, {mcfg.max_len} steps; {n_train:,} train pairs, {len(x_val):,} valid pairs; "
            f"batch {tcfg.batch_size}, {steps} steps per epoch"
        )

        config_obj = {
            "nocpipe": __version__,
            "keras": keras.__version__,
            "backend": backend,
            "model": mcfg.to_dict(),
            "train": asdict(tcfg),
            "data": {
                "data_dir": str(data_dir),
                "train_pairs": n_train,
                "valid_pairs": int(len(x_val)),
                "fingerprint": fp,
                "reader": vocab.reader,
                "reader_version": vocab.reader_version,
            },
        }
        if saved is None:
            modeldir.write_config(model_dir, config_obj)

        # ---- state
        if checkpoint is not None:
            weights, opt_arrays, state = checkpoint
            modeldir.check_weights(model_dir / modeldir.CHECKPOINT_FILE, weights, model.get_weights())
            model.set_weights(weights)
            epoch, step = int(state["epoch"]), int(state["step"])
            best_loss = state.get("best_loss")
            best_epoch = state.get("best_epoch")
            history = [r for r in modeldir.read_history(model_dir) if int(r["epoch"]) <= epoch]
            if tcfg.rotate_optimizers and step == 0:
                current_opt = None  # a new epoch under rotation starts a fresh optimizer anyway
            else:
                current_opt = state["optimizer"]
                compile_model(model, current_opt, mcfg.learning_rate, per_token=mcfg.autoregressive)
                _restore_optimizer(model, opt_arrays)
            log(f"resuming at epoch {epoch + 1}, step {step} (batch {epoch * steps + step})")
        else:
            epoch, step, best_loss, best_epoch, history = 0, 0, None, None, []
            current_opt = None

        if epoch >= opts.epochs:
            log(f"{model_dir} already has {epoch} epochs: raise --epochs to train more")
            return TrainResult(model_dir, "already-done", epoch, 0, best_epoch, best_loss, history)

        stream = PairStream(train_units, vocab, tcfg.batch_size, seed=tcfg.seed, window_rows=tcfg.window_rows)
        # Validation stays unweighted: its bits/char is the true figure, and picks the best model.
        token_weights = itf_weights(vocab, mcfg.vocab_size + 1, tcfg.itf, 2 * n_train) if tcfg.itf else None
        start_id = mcfg.start_id if mcfg.autoregressive else None
        validation = None
        if len(x_val):
            validation = (val_inputs, val_y) if val_w is None else (val_inputs, val_y, val_w)
        if opts.early_stop and validation is None:
            raise UsageError("--early-stop watches the validation bits/char: it needs validation pairs")
        extra = list(callbacks)
        if opts.tensorboard is not None:
            extra.append(keras.callbacks.TensorBoard(log_dir=str(opts.tensorboard)))
        deadline = time.monotonic() + opts.max_time if opts.max_time else None
        if opts.lr_decay:
            base = mcfg.learning_rate or float(variable_value(make_optimizer(mcfg.optimizer).learning_rate))
            extra.append(_budget_decay_callback(base, deadline, opts.max_time))
        if opts.early_stop:
            extra.append(
                keras.callbacks.EarlyStopping(monitor="val_bpc", mode="min", patience=opts.early_stop, verbose=1)
            )
        run = _Run(model, model_dir, mcfg, tcfg, steps, fp, plotter, log, opts.epochs, best_loss, best_epoch, history)
        with _Stop(log) as stop, quiet_native_logs():
            while epoch < opts.epochs:
                kind = _rotation(tcfg.seed, epoch) if tcfg.rotate_optimizers else mcfg.optimizer
                if current_opt is None or (tcfg.rotate_optimizers and step == 0):
                    # Fresh optimizer state: the first epoch, or every epoch under rotation (as the original did).
                    compile_model(model, kind, mcfg.learning_rate, per_token=mcfg.autoregressive)
                    current_opt = kind
                # One fit over every epoch left, so Keras callbacks see the real epoch numbers; a
                # resumed partial epoch, and each epoch under optimizer rotation, get a fit of their own.
                last = epoch + 1 if (step or tcfg.rotate_optimizers) else opts.epochs
                watch = _watch_callback(stop, deadline)
                run.begin(epoch, step, kind, watch)
                position = epoch * steps + step
                model.fit(
                    plan.local_batches(
                        keras_batches(
                            stream,
                            position,
                            weighted=tcfg.pad_loss == "end",
                            start_id=start_id,
                            token_weights=token_weights,
                        )
                    ),
                    initial_epoch=epoch,
                    epochs=last,
                    steps_per_epoch=steps - step,
                    validation_data=plan.local_rows(validation),
                    validation_batch_size=plan.local_batch(tcfg.batch_size),
                    verbose=opts.verbose,
                    shuffle=False,
                    callbacks=[watch, run, *extra],
                )
                if watch.nan_step is not None:
                    e, st = run.nan_at
                    raise ModelError(
                        f"the loss became NaN at epoch {e + 1}, step {st}: training stopped; the "
                        f"last checkpoint (epoch {run.epoch}{f', step {run.step}' if run.step else ''}) "
                        "is kept. Try a lower --learning-rate"
                    )
                epoch, step = run.epoch, run.step
                if step:  # stopped inside an epoch: Ctrl-C or the time budget
                    why = "time budget reached" if watch.reason == "time" else "interrupted"
                    log(
                        f"{why} at epoch {epoch + 1}, step {step}/{steps}: checkpoint saved in {model_dir}; "
                        "run again with --resume to continue from this step"
                    )
                    status = "time-up" if watch.reason == "time" else "interrupted"
                    return TrainResult(model_dir, status, epoch, step, run.best_epoch, run.best_loss, run.history)
                if watch.reason or model.stop_training:
                    if watch.reason == "time":
                        log(
                            f"time budget reached after epoch {epoch}: checkpoint saved in {model_dir}; "
                            "--resume continues"
                        )
                        return TrainResult(model_dir, "time-up", epoch, 0, run.best_epoch, run.best_loss, run.history)
                    if watch.reason == "interrupt":
                        log(
                            f"interrupted after epoch {epoch}: checkpoint saved in {model_dir}; "
                            "run again with --resume to continue"
                        )
                        return TrainResult(
                            model_dir, "interrupted", epoch, 0, run.best_epoch, run.best_loss, run.history
                        )
                    if any(
                        getattr(c, "stopped_epoch", 0) for c in extra if isinstance(c, keras.callbacks.EarlyStopping)
                    ):
                        log(
                            f"early stop after epoch {epoch}: validation bits/char did not improve for "
                            f"{opts.early_stop} epochs (best {_fmt_loss(run.best_loss)} at epoch {run.best_epoch})"
                        )
                        return TrainResult(
                            model_dir, "early-stopped", epoch, 0, run.best_epoch, run.best_loss, run.history
                        )
        return TrainResult(model_dir, "done", epoch, 0, run.best_epoch, run.best_loss, run.history)
    finally:
        scope.close()
        plotter.close()
        keras.config.set_dtype_policy(old_policy)


def _save(
    model,
    model_dir: Path,
    epoch: int,
    step: int,
    steps: int,
    kind: str,
    tcfg: TrainConfig,
    fp: str,
    best_loss,
    best_epoch,
) -> None:
    from pipeline.models import variable_value

    state = {
        "format": modeldir.MODEL_FORMAT,
        "nocpipe": __version__,
        "epoch": epoch,
        "step": step,
        "steps_per_epoch": steps,
        "batch_position": epoch * steps + step,
        "batch_size": tcfg.batch_size,
        "optimizer": kind,
        "optimizer_iterations": int(variable_value(model.optimizer.iterations)),
        # Every random choice is a function of the seed and the position (data order, optimizer
        # rotation); the networks have no dropout, so this is the whole random state.
        "seed": tcfg.seed,
        "rng": "counter-based: data order = f(seed, pass, window); optimizer = f(seed, epoch)",
        "fingerprint": fp,
        "best_loss": best_loss,
        "best_epoch": best_epoch,
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    modeldir.save_checkpoint(model_dir, [variable_value(w) for w in model.weights], _optimizer_arrays(model), state)
