"""nocpipe train: pair shards -> a seq2seq model folder, checkpointed every epoch, resumable to the step.

A short chain of named steps over small dataclasses:

    plan     config.json of a resumed run (--resume), then TrainOptions.validate(): every
             check of the options and sizes, before any data is read or Keras imported
    data     scan the shards (split column only) -> train units, valid units, fingerprint;
             who may train in the folder (ModelDir.refusal); the vocabulary (built from the
             train split, or the saved one); the checkpoint a --resume continues
             ── `--arch retrieval` leaves here for pipeline.retrieval.train ──
    build    Keras: devices, precision, the network, validation arrays, config.json, the
             saved weights and optimizer state
    fit      per epoch: optimizer (fixed, or a seeded choice per epoch with --rotate-optimizers)
               -> model.fit(endless PairStream from the batch position, steps_per_epoch, verbose=0)
               -> pipeline.callbacks: progress lines, and at each epoch end atomically
                  model.keras (best validation bits/char so far), history.csv, curves.png,
                  and last checkpoint.npz (so a crash between files resumes consistently)
    result   TrainResult: how the run ended, and its one-line summary

Ctrl-C: stop after the running step, save a checkpoint at that step, exit (130).
NaN loss: stop, name epoch and step, keep the last good checkpoint (say when there is none).

Exact resume: the data order is a pure function of (seed, position) (pipeline.dataset),
the optimizer variables and its step counter are restored, and an epoch's optimizer
choice is a function of (seed, epoch); so 2 epochs straight and 1 epoch + --resume end
with the same weights.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline import __version__, config
from pipeline.config import DEFAULT_ARCH, DEFAULT_UNITS
from pipeline.dataset import (
    DEFAULT_WINDOW_ROWS,
    PairStream,
    Unit,
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
from pipeline.modeldir import TEMPORARIES, Checkpoint, ModelDir, check_weights
from pipeline.reporter import Reporter, as_reporter
from pipeline.shards import corpus_metadata, find_shards
from pipeline.sizes import BOUNDS, MAX_EPOCHS, check_bounds, check_memory
from pipeline.vocab import Vocab

if TYPE_CHECKING:  # Keras comes with these: imported when the run needs them
    from pipeline.callbacks import EpochWork, Progress
    from pipeline.distribute import Plan as DistPlan
    from pipeline.models.config import ModelConfig
    from pipeline.retrieval.train import RetrievalResult

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: Validation pairs when --valid-pairs is not given: 10 % of the train pairs, at least a batch, at most this.
DEFAULT_VALID_CAP = 5000


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
class Settings:
    """What a run trains with, once validated: given options over the defaults, or the saved run's."""

    arch: str
    model: dict  # the model section (MODEL_DEFAULTS' keys for a new run)
    tcfg: TrainConfig
    mcfg: ModelConfig | None = None  # of a generative network (None: retrieval)


@dataclass
class TrainOptions:
    """What the command line asks for. None means "default" (new run) or "as saved" (--resume)."""

    data_dir: Path
    model_dir: Path
    epochs: int = 10
    resume: bool = False
    force: bool = False
    verbose: int = 1  # progress inside an epoch: 0 none; 1 (or 2) a bar on a terminal, a line every 30 s in a log
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

    def validate(self, saved: dict | None = None) -> Settings:
        """Every check of the options, before any work; `saved` is config.json of the run a
        --resume continues. The checks that need nothing imported come first, the corpus's
        existence next, so that a typo answers at once; the network's own checks
        (ModelConfig.validate) come last."""
        self._check_run()
        check_bounds({name: getattr(self, name) for name, _, _ in BOUNDS})
        find_shards(Path(self.data_dir))  # a misspelt --data-dir: the corpus owner's one line
        settings = self._settings(saved)
        t = settings.tcfg
        if self.lr_decay and t.rotate_optimizers:
            raise UsageError("--lr-decay and --rotate-optimizers both set the learning rate: choose one")
        if self.early_stop and t.valid_pairs == 0:
            raise UsageError("--early-stop watches the validation bits/char: it needs validation pairs")
        if settings.arch == "retrieval":
            wrong = [f"--{n.replace('_', '-')}" for n in ("itf", "reply_dropout") if getattr(self, n)]
            if wrong:
                raise UsageError(
                    f"{' and '.join(wrong)} {'shapes' if len(wrong) == 1 else 'shape'} a generative network's training, "
                    "not --arch retrieval: leave it out"
                )
            return settings
        valid = t.valid_pairs if t.valid_pairs >= 0 else DEFAULT_VALID_CAP
        check_memory(settings.model, t.batch_size, valid, t.window_rows)
        settings.mcfg = _model_config(settings.model, saved is not None, self.model_dir)
        if t.itf and not settings.mcfg.autoregressive:
            raise UsageError(
                f"--itf weighs the reply characters of an autoregressive model (attention, transformer), "
                f"not {settings.arch}"
            )
        return settings

    def _check_run(self) -> None:
        """The options of this run alone (no file read, nothing imported)."""
        if not 1 <= self.epochs <= MAX_EPOCHS:
            raise UsageError(f"--epochs must be from 1 to {MAX_EPOCHS:,}, not {self.epochs}")
        if not 0 <= self.early_stop <= MAX_EPOCHS:
            raise UsageError(
                f"--early-stop must be 0 (off) or a number of epochs up to {MAX_EPOCHS:,}, not {self.early_stop}"
            )
        if self.arch is not None and self.arch not in config.ARCHES:
            raise UsageError(f"unknown architecture {self.arch!r}: use one of {', '.join(config.ARCHES)}")
        if self.pad_loss not in (None, "end", "all"):
            raise UsageError(f"--pad-loss takes end or all, not {self.pad_loss!r}")
        if self.itf is not None and not (0.0 <= self.itf <= 2.0):
            raise UsageError(f"--itf must be from 0 (off) to 2, not {self.itf}")
        if self.learning_rate is not None and not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise UsageError(f"--learning-rate must be a positive number, not {self.learning_rate}")
        if self.max_time is not None and not (self.max_time > 0 and math.isfinite(self.max_time)):
            raise UsageError(f"--max-time must be a positive duration, not {self.max_time}")
        if self.lr_decay and not self.max_time:
            raise UsageError("--lr-decay lowers the learning rate over the time budget: give --max-time too")
        if self.tensorboard is not None and importlib.util.find_spec("tensorboard") is None:
            raise UsageError(
                "--tensorboard needs the tensorboard package, which is not installed: "
                "pip install 'nocpipe[tensorboard]' (or leave --tensorboard out)"
            )

    def _settings(self, saved: dict | None) -> Settings:
        """The given options over the defaults (a new run), or the saved run's settings, which a
        resumed run may not change (only --precision, for another machine)."""
        if saved is None:
            model = {**MODEL_DEFAULTS, **self.given(MODEL_DEFAULTS)}
            return Settings(model["arch"], model, TrainConfig(**{**TRAIN_DEFAULTS, **self.given(TRAIN_DEFAULTS)}))
        try:
            model, tcfg = dict(saved["model"]), TrainConfig(**saved["train"])
        except (KeyError, TypeError) as exc:
            raise ModelError(f"{ModelDir(self.model_dir).config_path} is incomplete: {exc}") from None
        if self.precision is not None:
            tcfg.precision = self.precision
        for name, value in {**self.given(MODEL_DEFAULTS), **self.given(TRAIN_DEFAULTS)}.items():
            was = model.get(name) if name in MODEL_DEFAULTS else getattr(tcfg, name)
            if value != was:
                flag = f"--{name.replace('_', '-')} {value}"
                what = "the saved run, which used the optimizer's default rate" if was is None else f"the saved {was}"
                raise UsageError(
                    f"{flag} differs from {what}: --resume continues with the saved settings (leave the option out)"
                )
        return Settings(str(model.get("arch")), model, tcfg)


def _model_config(model: dict, saved: bool, model_dir: Path):
    """The network's ModelConfig, checked by its own validate()."""
    from pipeline.models import ModelConfig

    if not saved:
        return ModelConfig(**model).validate()
    try:
        return ModelConfig.from_dict(model)
    except (TypeError, UsageError) as exc:
        raise ModelError(f"{ModelDir(model_dir).config_path} is damaged: {exc}") from None


@dataclass
class TrainResult:
    model_dir: Path
    status: str  # "done", "time-up", "interrupted", "early-stopped", "already-done"
    epochs_done: int
    step: int = 0  # steps into the next epoch (stopped inside it)
    best_epoch: int | None = None
    best_val_loss: float | None = None  # the best bits/char (validation, else training: by_validation)
    history: list[dict] = field(default_factory=list)
    steps_per_epoch: int = 0
    epochs: int = 0  # --epochs: the run's goal
    by_validation: bool = True
    model_path: Path | None = None

    def summary(self) -> str:
        """One line that is true for every way a run ends."""
        how = {
            "done": "trained",
            "time-up": "stopped at the time budget",
            "interrupted": "interrupted",
            "early-stopped": "stopped early",
            "already-done": "nothing to train (raise --epochs to train more)",
        }.get(self.status, self.status)
        done = f"{self.epochs_done} of {self.epochs} epoch{'s' if self.epochs != 1 else ''}"
        if self.step:
            done += f" and {self.step} of {self.steps_per_epoch} steps of epoch {self.epochs_done + 1}"
        if self.best_epoch is None or self.best_val_loss is None:
            return f"{self.model_dir}: {how}; {done}; no model saved yet"
        partial = self.step and self.best_epoch == self.epochs_done + 1
        steps = "step" if self.step == 1 else f"{self.step} steps"
        at = f"epoch {self.best_epoch}" + (f" (its first {steps})" if partial else "")
        which = "validation" if self.by_validation else "training"
        return (
            f"{self.model_dir}: {how}; {done}; best {which} bits/char {self.best_val_loss:.4f} at {at} "
            f"-> {self.model_path}"
        )


# ---------------------------------------------------------------- the steps' values


@dataclass
class Plan:
    """What to train, checked: the folder, the corpus and the settings."""

    folder: ModelDir
    data_dir: Path
    settings: Settings
    saved: dict | None  # config.json of the run --resume continues

    @property
    def tcfg(self) -> TrainConfig:
        return self.settings.tcfg

    @property
    def mcfg(self):
        return self.settings.mcfg


@dataclass
class Data:
    """What the corpus gives the run, and where a resumed run stands."""

    train_units: list[Unit]
    valid_units: list[Unit]
    n_train: int
    fingerprint: str
    steps: int  # per epoch
    vocab: Vocab | None = None
    checkpoint: Checkpoint | None = None


@dataclass
class Session:
    """The built network and everything fit needs (Keras from here on)."""

    model: Any  # a keras.Model
    dist: DistPlan
    validation: tuple | None
    n_valid: int
    progress: Progress
    work: EpochWork
    current_opt: str | None  # the optimizer compiled in, None before the first
    stream: PairStream
    token_weights: np.ndarray | None


# ---------------------------------------------------------------- the stage


def train(
    opts: TrainOptions, log: Reporter | Callable[[str], None] | None = None, callbacks: tuple = ()
) -> TrainResult | RetrievalResult:
    """Train (or resume) into opts.model_dir; see the module docstring. Extra Keras `callbacks` go to fit."""
    reporter = as_reporter(log)
    plan = make_plan(opts)
    return _locked_run(opts, plan, reporter, tuple(callbacks))


def make_plan(opts: TrainOptions) -> Plan:
    """The saved config of a resumed run, then every check of the options (no Keras for a new run)."""
    folder = ModelDir(opts.model_dir)
    saved = folder.read_config() if opts.resume else None
    if opts.resume:
        folder.check_resumable()
    return Plan(folder, Path(opts.data_dir), opts.validate(saved), saved)


@locked("train", lambda a: a["opts"].model_dir, "model folder", beside=True, temporaries=TEMPORARIES)
def _locked_run(opts: TrainOptions, plan: Plan, reporter: Reporter, callbacks: tuple) -> TrainResult | RetrievalResult:
    data = scan_data(plan, opts, reporter)
    # ---- the retrieval chatbot trains on its own from here (pipeline/retrieval/train.py)
    if plan.settings.arch == "retrieval":
        from pipeline.retrieval.train import train_retrieval

        if not opts.resume:
            plan.folder.clear()
        return train_retrieval(opts, plan.folder, reporter)
    # ---- the generative networks
    data.vocab = _vocabulary(plan, data, opts, reporter)
    with build(plan, data, opts, reporter) as session:
        return fit(plan, data, session, opts, reporter, callbacks)


def scan_data(plan: Plan, opts: TrainOptions, reporter: Reporter) -> Data:
    """The train and valid units, the folder's consent to a new run, the checkpoint to resume."""
    t = plan.tcfg
    train_units = scan_units(plan.data_dir, "train", t.max_pairs)
    n_train = sum(u.take for u in train_units)
    if n_train == 0:
        raise UsageError(f"no train pairs in {plan.data_dir}")
    valid_units = scan_units(plan.data_dir, "valid", 0)
    fp = fingerprint(train_units)
    if not opts.resume:
        refusal = plan.folder.refusal(fp)
        if refusal and not opts.force:
            raise UsageError(refusal)
        if t.batch_size > n_train:
            reporter.info(
                f"note: --batch-size {t.batch_size} is more than the {n_train:,} train pairs: using {n_train}"
            )
            t.batch_size = n_train
    if opts.early_stop and not (_valid_limit(t, n_train) and any(u.take for u in valid_units)):
        raise UsageError("--early-stop watches the validation bits/char: it needs validation pairs")
    data = Data(train_units, valid_units, n_train, fp, t.steps_per_epoch or -(-n_train // t.batch_size))
    if opts.resume:
        data.checkpoint = _resume_point(plan, data, reporter)
    return data


def _resume_point(plan: Plan, data: Data, reporter: Reporter) -> Checkpoint:
    checkpoint = plan.folder.load_checkpoint()
    state = checkpoint.state
    if state.steps_per_epoch != data.steps:
        raise ModelError(
            f"the checkpoint counts {state.steps_per_epoch} steps per epoch, this data gives "
            f"{data.steps}: the train split changed (use the data it was trained on)"
        )
    if state.fingerprint != data.fingerprint:
        reporter.warn("the shards changed since the checkpoint; the data order will not be the one it left")
    trained_on = (plan.saved or {}).get("data", {}).get("data_dir")
    if trained_on and Path(trained_on).resolve() != plan.data_dir.resolve():
        reporter.info(f"note: resuming on {plan.data_dir}, trained so far on {trained_on}")
    return checkpoint


def _vocabulary(plan: Plan, data: Data, opts: TrainOptions, reporter: Reporter) -> Vocab:
    """The saved vocabulary (--resume), or one built from the train split, the folder claimed first."""
    if opts.resume:
        return plan.folder.read_vocab()
    if plan.folder.read_started():
        reporter.info(f"note: {plan.folder} holds a run that stopped before its first checkpoint: starting it again")
    plan.folder.start_run(data.fingerprint)
    mcfg = plan.mcfg
    reader, reader_version = _reader_of(plan.data_dir, reporter)
    cut, sides = count_too_long(data.train_units, "train", mcfg.max_len)
    if cut:
        reporter.warn(f"--max-len {mcfg.max_len} cuts {cut:,} of {sides:,} train sides ({cut / sides:.1%})")
    vocab = Vocab.build(
        _count_chars(data.train_units, "train"),
        mcfg.vocab_size,
        max_len=mcfg.max_len,
        reverse_input=mcfg.reverse_input,
        reader=reader,
        reader_version=reader_version,
    )
    plan.folder.write_vocab(vocab)
    return vocab


@contextlib.contextmanager
def build(plan: Plan, data: Data, opts: TrainOptions, reporter: Reporter) -> Iterator[Session]:
    """Keras: devices, precision, the network (in the strategy's scope), validation, config, saved state."""
    from pipeline.models import quiet_keras

    keras = quiet_keras()  # TensorFlow's native start-up lines dropped

    from pipeline import distribute
    from pipeline.callbacks import EpochWork, Plotter
    from pipeline.models import build_model, choose_precision, gpu_info, inference_copy

    t, mcfg = plan.tcfg, plan.mcfg
    assert data.vocab is not None  # _locked_run sets it before build
    dist = distribute.setup(t.batch_size, enabled=opts.distribute)  # a batch that does not split stops here
    gpu = gpu_info()
    policy = choose_precision(t.precision, gpu)
    old_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    plotter = Plotter(plan.folder, f"{plan.folder.name}: {mcfg.arch}, units {mcfg.units}", reporter)
    scope = contextlib.ExitStack()
    scope.callback(dist.close)
    scope.enter_context(dist.scope())
    try:
        keras.utils.set_random_seed(t.seed)
        model = build_model(mcfg)
        _describe(model, dist, t.batch_size, policy, gpu, reporter)
        validation, n_valid = _validation(plan, data, dist, reporter)
        reporter.info(
            f"{mcfg.arch}: {model.count_params():,} parameters, units {mcfg.units}, vocabulary {len(data.vocab)} of "
            f"{mcfg.vocab_size}, {mcfg.max_len} steps; {data.n_train:,} train pairs, {n_valid:,} valid pairs; "
            f"batch {t.batch_size}, {data.steps} steps per epoch"
        )
        if plan.saved is None:
            plan.folder.write_config(_config_record(plan, data, n_valid))
        progress, current_opt = _restore(plan, data, model, reporter)
        work = EpochWork(
            folder=plan.folder,
            inference_copy=lambda net: inference_copy(net, mcfg),
            batch_size=t.batch_size,
            steps_per_epoch=data.steps,
            epochs=opts.epochs,
            seed=t.seed,
            fingerprint=data.fingerprint,
            plotter=plotter,
            reporter=reporter,
        )
        stream = PairStream(data.train_units, data.vocab, t.batch_size, seed=t.seed, window_rows=t.window_rows)
        # Validation stays unweighted: its bits/char is the true figure, and picks the best model.
        weights = itf_weights(data.vocab, mcfg.vocab_size + 1, t.itf, 2 * data.n_train) if t.itf else None
        yield Session(model, dist, validation, n_valid, progress, work, current_opt, stream, weights)
    finally:
        scope.close()
        plotter.close()
        keras.config.set_dtype_policy(old_policy)


def _describe(model, dist, batch_size: int, policy: str, gpu: dict | None, reporter: Reporter) -> None:
    import keras

    from pipeline.models import cudnn_report

    reporter.info(
        f"nocpipe {__version__}, keras {keras.__version__} on {keras.backend.backend()}"
        f"{', ' + gpu['name'] if gpu else ', CPU'}; precision {policy}"
    )
    reporter.info(cudnn_report(model, gpu))
    if dist.enabled:
        reporter.info(f"--distribute: {dist.describe()}; {batch_size // dist.devices} pairs per device per step")


def _validation(plan: Plan, data: Data, dist, reporter: Reporter) -> tuple[tuple | None, int]:
    """The validation inputs, targets (and weights) fit evaluates each epoch, and their number."""
    t, mcfg = plan.tcfg, plan.mcfg
    assert data.vocab is not None  # _locked_run sets it before build
    limit = _valid_limit(t, data.n_train)
    if limit:
        x, y = load_arrays(data.valid_units, "valid", data.vocab, limit)
    else:
        x = y = np.zeros((0, mcfg.max_len), dtype=np.int32)
    x, y = dist.whole_batches(x, y)
    if len(x) == 0:
        why = "--valid-pairs 0" if not limit else "no valid pairs in the shards"
        reporter.warn(f"no validation ({why}): the best model is chosen by training bits/char")
        return None, 0
    weights: np.ndarray | None
    if mcfg.autoregressive:
        inputs, targets = teacher_forcing(x, y, mcfg.start_id)
        weights = end_weights(targets)
    else:
        inputs, targets = x, y.copy()
        targets[:, -1] = 0  # bits/char counts the end of every reply, as evaluate does
        weights = end_weights(targets) if t.pad_loss == "end" else None
    return ((inputs, targets) if weights is None else (inputs, targets, weights)), len(x)


def _config_record(plan: Plan, data: Data, n_valid: int) -> dict:
    import keras

    assert data.vocab is not None  # _locked_run sets it before build

    return {
        "nocpipe": __version__,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "model": plan.mcfg.to_dict(),
        "train": asdict(plan.tcfg),
        "data": {
            "data_dir": str(plan.data_dir),
            "train_pairs": data.n_train,
            "valid_pairs": n_valid,
            "fingerprint": data.fingerprint,
            "reader": data.vocab.reader,
            "reader_version": data.vocab.reader_version,
        },
    }


def _restore(plan: Plan, data: Data, model, reporter: Reporter):
    """(Progress, the optimizer compiled in): a fresh start, or the checkpoint's weights and optimizer."""
    from pipeline.callbacks import Progress
    from pipeline.models import compile_model

    checkpoint = data.checkpoint
    if checkpoint is None:
        return Progress(epoch=0, step=0, best_loss=None, best_epoch=None), None
    check_weights(plan.folder.checkpoint_path, checkpoint.weights, model.get_weights())
    model.set_weights(checkpoint.weights)
    state = checkpoint.state
    history = [r for r in plan.folder.read_history() if int(r["epoch"]) <= state.epoch]
    progress = Progress(state.epoch, state.step, state.best_loss, state.best_epoch, history, state.optimizer)
    current = None  # a new epoch under rotation starts a fresh optimizer anyway
    if not (plan.tcfg.rotate_optimizers and state.step == 0):
        current = state.optimizer
        compile_model(model, current, plan.mcfg.learning_rate, per_token=plan.mcfg.autoregressive)
        _restore_optimizer(model, checkpoint.optimizer)
    reporter.info(f"resuming at epoch {state.epoch + 1}, step {state.step} (batch {state.batch_position})")
    return progress, current


def fit(
    plan: Plan, data: Data, session: Session, opts: TrainOptions, reporter: Reporter, callbacks: tuple
) -> TrainResult:
    """model.fit until --epochs, the time budget, Ctrl-C, an early stop or a NaN loss."""
    import keras

    from pipeline.callbacks import BudgetDecay, Stop, Watch
    from pipeline.models import make_optimizer, quiet_native_logs, variable_value

    run = session.progress
    if run.epoch >= opts.epochs:
        reporter.info(f"{plan.folder} already has {run.epoch} epochs: raise --epochs to train more")
        return _result(plan, data, session, opts, "already-done")
    extra = list(callbacks)
    if opts.tensorboard is not None:
        extra.append(keras.callbacks.TensorBoard(log_dir=str(opts.tensorboard)))
    deadline = time.monotonic() + opts.max_time if opts.max_time else None
    if opts.lr_decay:
        assert deadline is not None and opts.max_time is not None  # validate(): --lr-decay needs --max-time
        base = plan.mcfg.learning_rate or float(variable_value(make_optimizer(plan.mcfg.optimizer).learning_rate))
        extra.append(BudgetDecay(base, deadline, opts.max_time, clock=time.monotonic))
    early = None
    if opts.early_stop:
        early = keras.callbacks.EarlyStopping(monitor="val_bpc", mode="min", patience=opts.early_stop, verbose=0)
        extra.append(early)
    with Stop(reporter) as stop, quiet_native_logs():
        while run.epoch < opts.epochs:
            watch = Watch(stop, deadline, clock=time.monotonic)
            _fit_once(plan, data, session, opts, reporter, [watch, *extra])
            status = _stopped(plan, data, session, watch, early, opts, reporter)
            if status:
                return _result(plan, data, session, opts, status)
    return _result(plan, data, session, opts, "done")


def _fit_once(plan: Plan, data: Data, s: Session, opts: TrainOptions, reporter: Reporter, callbacks: list) -> None:
    """One model.fit: every epoch left, or one epoch when a resumed partial epoch or optimizer
    rotation needs a fit of its own (so Keras callbacks see the real epoch numbers)."""
    from pipeline.callbacks import EpochEnd, StepReport
    from pipeline.models import compile_model

    t, mcfg, run = plan.tcfg, plan.mcfg, s.progress
    kind = _rotation(t.seed, run.epoch) if t.rotate_optimizers else mcfg.optimizer
    if s.current_opt is None or (t.rotate_optimizers and run.step == 0):
        # Fresh optimizer state: the first epoch, or every epoch under rotation (as the original did).
        compile_model(s.model, kind, mcfg.learning_rate, per_token=mcfg.autoregressive)
        s.current_opt = kind
    run.optimizer = kind
    watch = callbacks[0]
    ours = [watch, EpochEnd(s.model, s.work, run, watch)]
    if opts.verbose:
        ours.append(StepReport(reporter, opts.epochs, data.steps, t.batch_size, first_step=run.step))
    batches = keras_batches(
        s.stream,
        run.epoch * data.steps + run.step,
        weighted=t.pad_loss == "end",
        start_id=mcfg.start_id if mcfg.autoregressive else None,
        token_weights=s.token_weights,
    )
    s.model.fit(
        s.dist.local_batches(batches),
        initial_epoch=run.epoch,
        epochs=run.epoch + 1 if (run.step or t.rotate_optimizers) else opts.epochs,
        steps_per_epoch=data.steps - run.step,
        validation_data=s.dist.local_rows(s.validation),
        validation_batch_size=s.dist.local_batch(t.batch_size),
        verbose=0,  # nocpipe's own lines (pipeline.callbacks) say it once
        shuffle=False,
        callbacks=[*ours, *callbacks[1:]],
    )


def _stopped(plan: Plan, data: Data, s: Session, watch, early, opts: TrainOptions, reporter: Reporter) -> str | None:
    """How the last fit ended, said in one line: None when training goes on."""
    run = s.progress
    if watch.nan_step is not None:
        raise _nan_error(plan.folder, run)
    why = {"time": "time budget reached", "interrupt": "interrupted"}.get(watch.reason or "")
    status = {"time": "time-up", "interrupt": "interrupted"}.get(watch.reason or "")
    if run.step:  # stopped inside an epoch: Ctrl-C or the time budget
        reporter.info(
            f"{why} at epoch {run.epoch + 1}, step {run.step}/{data.steps}: checkpoint saved in {plan.folder}; "
            "run again with --resume to continue from this step"
        )
        return status
    if why:
        reporter.info(f"{why} after epoch {run.epoch}: checkpoint saved in {plan.folder}; --resume continues")
        return status
    if early is not None and early.stopped_epoch:
        from pipeline.callbacks import fmt_loss

        reporter.info(
            f"early stop after epoch {run.epoch}: validation bits/char did not improve for "
            f"{opts.early_stop} epochs (best {fmt_loss(run.best_loss)} at epoch {run.best_epoch})"
        )
        return "early-stopped"
    return None


def _nan_error(folder: ModelDir, run) -> ModelError:
    epoch, step = run.nan_at
    if folder.has_checkpoint():
        at = f"at step {run.step} of epoch {run.epoch + 1}" if run.step else f"after epoch {run.epoch}"
        kept = f"the last checkpoint ({at}) is kept; start over (--force) with a lower --learning-rate"
    else:
        kept = "no checkpoint had been saved yet; run again with a lower --learning-rate"
    return ModelError(f"the loss became NaN at epoch {epoch + 1}, step {step}: training stopped; {kept}")


def _result(plan: Plan, data: Data, s: Session, opts: TrainOptions, status: str) -> TrainResult:
    run = s.progress
    return TrainResult(
        model_dir=plan.folder.path,
        status=status,
        epochs_done=run.epoch,
        step=run.step,
        best_epoch=run.best_epoch,
        best_val_loss=run.best_loss,
        history=run.history,
        steps_per_epoch=data.steps,
        epochs=opts.epochs,
        by_validation=s.n_valid > 0,
        model_path=plan.folder.model_path,
    )


# ---------------------------------------------------------------- helpers


def _rotation(seed: int, epoch: int) -> str:
    from pipeline.models import OPTIMIZERS

    return OPTIMIZERS[int(np.random.default_rng([seed, epoch, 7]).integers(len(OPTIMIZERS)))]


def _valid_limit(cfg: TrainConfig, train_pairs: int) -> int:
    if cfg.valid_pairs >= 0:
        return cfg.valid_pairs
    return min(DEFAULT_VALID_CAP, max(cfg.batch_size, train_pairs // 10))


def _reader_of(data_dir: Path, reporter: Reporter) -> tuple[str, str]:
    """The reader the corpus was read with (shard metadata, else stats.json): predict must read
    input the same way. A corpus that does not say (a filtered copy whose tool dropped the
    metadata) gets the default reader, said out loud."""
    reporter = as_reporter(reporter)
    meta = corpus_metadata(data_dir)
    if not meta.get("reader"):
        reporter.warn(
            f"{data_dir} does not say which reader made its katakana (no nocpipe metadata in its "
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


def _restore_optimizer(model, arrays: list[np.ndarray]) -> None:
    opt = model.optimizer
    if not opt.built:
        opt.build(model.trainable_variables)
    variables = opt.variables
    if len(variables) != len(arrays) or any(tuple(v.shape) != a.shape for v, a in zip(variables, arrays)):
        raise ModelError("the checkpoint's optimizer state does not fit this model: was it changed by hand?")
    for v, a in zip(variables, arrays):
        v.assign(a)
