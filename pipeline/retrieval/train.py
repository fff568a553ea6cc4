"""`nocpipe train --arch retrieval`: the dual encoder on the corpus, then the reply index.

    plan      RetrievalConfig from the options (a resumed run takes the saved one)
    data      train and validation pairs (katakana) -> vocabulary -> n-gram space -> IDF
    build     the encoder (IDF-weighted n-gram vectors, two heads) and its in-batch trainer
    fit       epoch by epoch (shuffled by seed and epoch), time budget and Ctrl-C checked every step;
              after each epoch the validation select@1 of the encoder alone: model.keras keeps the
              best (epoch 0, the untrained encoder, counts too, so training never makes it worse),
              then the checkpoint
    weigh     the lexical weight λ that the validation select@1 of cos + λ·TF-IDF likes best
    index     every distinct train reply: original line, katakana, source, title; its vector and its
              utterance's vector (float16), in the model folder

A run killed at any point resumes with `--resume` from the last finished epoch; the index is
written last, so a folder without one is a run that has not finished.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import UsageError
from ..reporter import as_reporter
from ..selection import draw
from ..vocab import Vocab
from . import index as reply_index
from .config import RetrievalConfig
from .encoder import EncoderShape, build_encoder, gram_weights, tower_vectors, trainer
from .features import NgramSpace, document_frequencies, idf_weights
from .pairs import read_pairs

#: Validation pairs scored after every epoch (select@1 on their draws).
VALID_DRAWS = 500
#: Lexical weights tried on the validation draws.
LEXICAL_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0)


@dataclass
class RetrievalResult:
    model_dir: Path
    status: str  # "done", "time-up", "interrupted", "already-done"
    epochs_done: int
    best_epoch: int | None = None
    best_val_loss: float | None = None  # the best validation select@1 (named as train's result is)
    history: list[dict] = field(default_factory=list)
    indexed: int = 0
    epochs: int = 0
    model_path: Path | None = None

    def summary(self) -> str:
        how = {"done": "trained", "time-up": "stopped at the time budget", "interrupted": "interrupted",
               "already-done": "nothing to train (raise --epochs to train more)"}.get(self.status, self.status)  # fmt: skip
        done = f"{self.epochs_done} of {self.epochs} epoch{'s' if self.epochs != 1 else ''}"
        best = (
            f"best validation select@1 {self.best_val_loss:.3f} at epoch {self.best_epoch}"
            if self.best_val_loss is not None and math.isfinite(self.best_val_loss)
            else "no validation pairs: the last epoch is kept"
        )
        index = f"; {self.indexed:,} replies indexed" if self.indexed else ""
        return f"{self.model_dir}: {how}; {done}; {best}{index} -> {self.model_path}"


# ---------------------------------------------------------------- plan


def plan(opts, folder) -> tuple[RetrievalConfig, dict | None]:
    """The config of this run, and the checkpoint state when resuming."""
    for name in ("itf", "reply_dropout", "rotate_optimizers"):
        if getattr(opts, name, None):
            raise UsageError(f"--{name.replace('_', '-')} applies to the generative models, not to --arch retrieval")
    if getattr(opts, "resume", False):
        saved = folder.read_config()
        cfg = RetrievalConfig.from_dict(saved["model"]).validate()
        return cfg, folder.load_checkpoint()
    given = {
        name: getattr(opts, name, None)
        for name in ("units", "max_len", "vocab_size", "batch_size", "learning_rate", "seed", "dropout")
    }
    return RetrievalConfig(**{k: v for k, v in given.items() if v is not None}).validate(), None


# ---------------------------------------------------------------- data


@dataclass
class Data:
    vocab: Vocab
    space: NgramSpace
    train: tuple[np.ndarray, np.ndarray]  # character ids of utterances and replies
    valid_u: list[str]
    valid_r: list[str]
    idf: np.ndarray
    valid_draws: list = field(default_factory=list)  # fixed for the run: every epoch is scored on the same


def load_data(opts, cfg: RetrievalConfig, vocab: Vocab | None, reader: tuple[str, str]) -> Data:
    train = read_pairs(opts.data_dir, "train", getattr(opts, "max_pairs", 0) or 0)
    if len(train) < 2:
        raise UsageError(f"a retrieval model needs at least 2 train pairs; {opts.data_dir} has {len(train)}")
    valid = read_pairs(opts.data_dir, "validation")
    if vocab is None:
        counts = Vocab.count(train.utterances)
        Vocab.count(train.replies, counts)
        vocab = Vocab.build(
            counts, cfg.vocab_size, max_len=cfg.max_len, reverse_input=False, reader=reader[0], reader_version=reader[1]
        )
    space = NgramSpace.for_vocab(vocab, cfg.trigram_buckets)
    chars_u = vocab.encode_batch(train.utterances)
    chars_r = vocab.encode_batch(train.replies)
    df = document_frequencies(space, np.concatenate([space.ids(chars_u), space.ids(chars_r)]))
    draws = draw(valid.replies, VALID_DRAWS) if len(valid) >= 10 else []
    idf = idf_weights(df, 2 * len(train))
    return Data(vocab, space, (chars_u, chars_r), valid.utterances, valid.replies, idf, draws)


# ---------------------------------------------------------------- fit


def _batches(data: Data, cfg: RetrievalConfig, epoch: int):
    """One epoch of shuffled batches (a pure function of seed and epoch); n-gram ids made per batch."""
    import keras

    # Both directions: a line answers the one before it, and the one before it leads to it; twice
    # the pairs for a corpus of a few thousand.
    chars_u = np.concatenate(data.train)
    chars_r = np.concatenate(data.train[::-1])
    order = np.random.default_rng([cfg.seed, epoch]).permutation(len(chars_u))
    size = min(cfg.batch_size, len(order))
    steps = len(order) // size  # whole batches only: every step has the same number of negatives

    class Epoch(keras.utils.PyDataset):
        def __len__(self) -> int:
            return steps

        def __getitem__(self, i: int):
            rows = order[i * size : (i + 1) * size]
            x = (data.space.ids(chars_u[rows]), data.space.ids(chars_r[rows]))
            return x, np.zeros(len(rows), dtype=np.float32)

    return Epoch(), steps


def _watch(stop, deadline: float | None):
    import keras

    class Watch(keras.callbacks.Callback):
        reason: str | None = None

        def on_train_batch_end(self, batch, logs=None):
            if stop.requested:
                self.reason = "interrupt"
            elif deadline is not None and time.monotonic() >= deadline:
                self.reason = "time"
            if self.reason:
                self.model.stop_training = True

    return Watch()


def _valid_vectors(encoder, data: Data) -> tuple[np.ndarray, np.ndarray, list]:
    """The validation sides through their towers, and their TF-IDF rows over the encoder's gram weights."""
    from .lexical import tfidf_rows

    u = tower_vectors(encoder, data.space, data.vocab, data.valid_u, 0)
    r = tower_vectors(encoder, data.space, data.vocab, data.valid_r, 1)
    ids = data.space.encode(data.vocab, data.valid_u + data.valid_r)
    return u, r, tfidf_rows(ids, gram_weights(encoder))


def _select(data: Data, vectors: tuple[np.ndarray, np.ndarray, list], lexical: float) -> float:
    """select@1 of cos + λ·TF-IDF on the validation draws."""
    from .lexical import cosines

    u, r, lex = vectors
    n = len(data.valid_u)
    hits = 0
    for d in data.valid_draws:
        s = r[list(d.candidates)] @ u[d.pair]
        if lexical:
            s = s + lexical * cosines(lex[d.pair], [lex[n + c] for c in d.candidates])
        hits += bool((np.delete(s, d.truth) < s[d.truth]).all())
    return hits / len(data.valid_draws)


def valid_select(encoder, data: Data) -> float:
    """select@1 of the encoder alone on the validation draws; nan without validation."""
    if not data.valid_draws:
        return float("nan")
    return _select(data, _valid_vectors(encoder, data), 0.0)


@dataclass
class FitState:
    epoch: int = 0
    best: float | None = None
    best_epoch: int | None = None
    history: list[dict] = field(default_factory=list)


def fit(folder, cfg, data, model, epochs, deadline, reporter, state: FitState) -> str:
    """Epochs until `epochs`, the deadline or Ctrl-C; returns how it ended."""
    if state.best is None:  # the untrained encoder is epoch 0: training must beat it
        state.best, state.best_epoch = valid_select(model.enc, data), 0
        folder.save_model(model.enc)
        reporter.info(f"epoch 0 (untrained): validation select@1 {_fmt(state.best)}")
    from ..callbacks import Stop

    with Stop(reporter) as stop:
        while state.epoch < epochs:
            batches, steps = _batches(data, cfg, state.epoch)
            watch = _watch(stop, deadline)
            t0 = time.perf_counter()
            model.fit(batches, epochs=1, verbose=0, callbacks=[watch], shuffle=False)
            if watch.reason:  # a part epoch is thrown away: the checkpoint is the last whole one
                return "time-up" if watch.reason == "time" else "interrupted"
            state.epoch += 1
            _end_epoch(folder, cfg, data, model, state, time.perf_counter() - t0, steps, reporter)
    return "done"


def _end_epoch(folder, cfg, data, model, state: FitState, seconds: float, steps: int, reporter) -> None:
    score = valid_select(model.enc, data)
    loss = float(model.history.history["loss"][-1]) if model.history and model.history.history else float("nan")
    better = math.isfinite(score) and (state.best is None or not math.isfinite(state.best) or score > state.best)
    if better or not math.isfinite(score):
        state.best, state.best_epoch = score, state.epoch
        folder.save_model(model.enc)
    pairs = steps * cfg.batch_size
    state.history.append(
        {"epoch": state.epoch, "steps": steps, "samples": pairs, "seconds": round(seconds, 3),
         "samples_per_s": round(pairs / seconds, 1) if seconds > 0 else None, "loss": loss, "val_select_at_1": score}
    )  # fmt: skip
    folder.write_history(state.history)
    # The train stage checks a resumed run's steps per epoch as one pass over the pairs in batches.
    _save_checkpoint(folder, model, cfg, state, -(-len(data.train[0]) // min(cfg.batch_size, len(data.train[0]))))
    reporter.info(
        f"epoch {state.epoch}: {pairs:,} pairs in {seconds:.1f}s ({pairs / max(seconds, 1e-9):,.0f} pairs/s), "
        f"loss {loss:.3f}, validation select@1 {_fmt(score)}" + (" (best)" if better else "")
    )


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.3f}"


# ---------------------------------------------------------------- the whole run


def train_retrieval(opts, folder, log=None, reader: tuple[str, str] | None = None) -> RetrievalResult:
    """Train (or resume) a retrieval model in `folder` (a pipeline.modeldir.ModelDir whose owner
    checked it may be written: stages/train.py)."""
    reporter = as_reporter(log)
    cfg, checkpoint = plan(opts, folder)
    vocab = folder.read_vocab() if checkpoint is not None else None
    data = load_data(opts, cfg, vocab, reader or _reader_of(opts.data_dir))
    if checkpoint is None:
        folder.path.mkdir(parents=True, exist_ok=True)
        folder.write_vocab(data.vocab)
        _write_config(folder, cfg, opts)
    model = _build(cfg, data)
    state = FitState()
    if checkpoint is not None:
        state = _restore(folder, model, checkpoint)
    epochs = getattr(opts, "epochs", 10)
    reporter.info(
        f"retrieval: {model.enc.count_params():,} parameters, units {cfg.units}, {data.space.size:,} n-gram rows; "
        f"{len(data.train[0]):,} train pairs, {len(data.valid_r):,} validation pairs; batch {cfg.batch_size}"
    )
    result = RetrievalResult(folder.path, "already-done", state.epoch, epochs=epochs, model_path=folder.model_path)
    if state.epoch < epochs or not folder.has_reply_index():
        max_time = getattr(opts, "max_time", None)
        deadline = time.monotonic() + max_time if max_time else None
        result.status = (
            fit(folder, cfg, data, model, epochs, deadline, reporter, state) if state.epoch < epochs else "done"
        )
        if result.status != "interrupted":
            best = folder.load_model()
            cfg.lexical_weight = _choose_lexical(best, data, reporter)
            _write_config(folder, cfg, opts)
            result.indexed = reply_index.build_index(folder, best, data.space, data.vocab, opts, reporter)
        else:
            reporter.info(f"interrupted after epoch {state.epoch}: run again with --resume to continue")
    result.epochs_done, result.best_epoch, result.best_val_loss = state.epoch, state.best_epoch, state.best
    result.history = state.history
    return result


def _reader_of(data_dir) -> tuple[str, str]:
    from ..corpus import corpus_metadata
    from ..kana import DEFAULT_READER

    meta = corpus_metadata(Path(data_dir))
    return meta.get("reader") or DEFAULT_READER, meta.get("reader_version", "")


def _write_config(folder, cfg: RetrievalConfig, opts) -> None:
    # "train" holds what a resumed run compares its options with, as for the generative networks.
    train = {"batch_size": cfg.batch_size, "seed": cfg.seed, "max_pairs": getattr(opts, "max_pairs", None) or 0}
    data = {"data_dir": str(opts.data_dir)}
    folder.write_config({"nocpipe": __version__, "model": asdict(cfg), "train": train, "data": data})


def _build(cfg: RetrievalConfig, data: Data):
    from ..models import quiet_keras

    quiet_keras()
    import keras

    keras.utils.set_random_seed(cfg.seed)
    shape = EncoderShape(
        data.space.size, data.space.width, cfg.units, cfg.dropout,
        style_units=cfg.style_units, style_rows=data.space.alphabet + data.space.alphabet**2,
    )  # fmt: skip
    model = trainer(build_encoder(shape, data.idf, cfg.seed))
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay))
    model.predict_on_batch([np.zeros((2, data.space.width), np.int32)] * 2)  # builds every variable
    return model


def _arrays(variables) -> list[np.ndarray]:
    return [np.asarray(v.numpy() if hasattr(v, "numpy") else v) for v in variables]


def _save_checkpoint(folder, model, cfg: RetrievalConfig, state: "FitState", steps: int) -> None:
    """Trainable weights only: the fixed gram vectors are a function of the seed, rebuilt on resume."""
    from ..modeldir import CheckpointState

    ckpt = CheckpointState(
        epoch=state.epoch, step=0, steps_per_epoch=max(1, steps), batch_size=cfg.batch_size, optimizer="adamw",
        optimizer_iterations=int(_arrays([model.optimizer.iterations])[0]), seed=cfg.seed, fingerprint="",
        best_loss=state.best, best_epoch=state.best_epoch,
    )  # fmt: skip
    folder.save_checkpoint(_arrays(model.trainable_weights), _arrays(model.optimizer.variables), ckpt)


def _restore(folder, model, checkpoint) -> "FitState":
    from ..modeldir import check_weights

    check_weights(folder.checkpoint_path, checkpoint.weights, _arrays(model.trainable_weights))
    for var, value in zip(model.trainable_weights, checkpoint.weights):
        var.assign(value)
    if len(checkpoint.optimizer) == len(model.optimizer.variables):
        for var, value in zip(model.optimizer.variables, checkpoint.optimizer):
            var.assign(value)
    st = checkpoint.state
    history = [r for r in folder.read_history() if int(r["epoch"]) <= st.epoch]
    return FitState(st.epoch, st.best_loss, st.best_epoch, history)


def _choose_lexical(encoder, data: Data, reporter) -> float:
    if not data.valid_draws:
        return 0.0
    vectors = _valid_vectors(encoder, data)  # once: only the weight changes between the tries
    scores = {w: _select(data, vectors, w) for w in LEXICAL_WEIGHTS}
    best = max(LEXICAL_WEIGHTS, key=lambda w: (scores[w], -w))
    reporter.info(
        "lexical weight on validation: "
        + ", ".join(f"λ={w:g}: {_fmt(s)}" for w, s in scores.items())
        + f" -> λ={best:g}"
    )
    return best
