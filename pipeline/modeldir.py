"""The model folder (`data/models/<name>/`): `ModelDir(path)` names, writes and reads every file in it.

    config.json         format, versions, the model section ("model"), training options ("train"), data facts
    vocab.json          pipeline.vocab.Vocab (JSON, never pickle)
    model.keras         the best model by validation bits/char (float32, uncompiled: what predict loads)
    history.csv         one row per epoch (optimizer, steps, samples/s, loss, acc, bpc, val_loss, val_acc, val_bpc)
    curves.png          loss, bits/char and accuracy per epoch
    checkpoint.npz      everything --resume needs, in ONE file written atomically: model weights,
                        optimizer variables, and the JSON state (CheckpointState)
    checkpoint.json     a readable copy of that state (never read back)
    started.json        a new run's claim on the folder until its first checkpoint (the data's fingerprint)
    evaluate.json       the figures of `nocpipe evaluate`
    ngram.npz           the reply n-gram model (pipeline.ngram) evaluate and predict --mmi use
    replies.parquet     the retrieval chatbot's indexed replies, one row each
                        (text, kana, work_id, title, episode, line)
    reply_vectors.npy   their vectors, float16, one row per reply (memory-mapped on read)

No Keras here: predict and evaluate check a folder before paying for TensorFlow.

Everything read back is checked here, types included (`check_types`), so that a damaged
or hand-edited file is named with what to do, never a traceback or a silent misreading
(`"reverse_input": "false"` is not true).

Who may start a new run in a folder (`ModelDir.refusal`): an empty or missing folder, or
one holding only the leftovers of a run that died before its first checkpoint (its
started.json says so, for the same train pairs). Anything else (a checkpoint, a model, a
vocabulary, a config, evaluation figures, a reply index, files nocpipe does not write) is
refused without --force, so that a shipped model (model.keras, vocab.json, config.json
and no checkpoint) is never wiped by `nocpipe train` into the same folder. --force
removes nocpipe's files only.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import stat
import tempfile
import time
import types
import typing
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from . import __version__
from .atomic import file_mode, naming, write_json, write_text, write_with
from .errors import ModelError
from .regularfile import read_regular

MODEL_FORMAT = 1
CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.json"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.csv"
CURVES_FILE = "curves.png"
CHECKPOINT_FILE = "checkpoint.npz"
CHECKPOINT_STATE_FILE = "checkpoint.json"
STARTED_FILE = "started.json"
EVALUATE_FILE = "evaluate.json"
NGRAM_FILE = "ngram.npz"
REPLIES_FILE = "replies.parquet"
REPLY_VECTORS_FILE = "reply_vectors.npy"
#: evaluate.json holds a few hundred bytes: anything much larger is not what evaluate wrote.
MAX_EVALUATE_BYTES = 1 << 20
TRAINING_FILES = (
    STARTED_FILE,
    CONFIG_FILE,
    VOCAB_FILE,
    MODEL_FILE,
    HISTORY_FILE,
    CURVES_FILE,
    CHECKPOINT_FILE,
    CHECKPOINT_STATE_FILE,
)
ALL_FILES = (*TRAINING_FILES, EVALUATE_FILE, NGRAM_FILE, REPLIES_FILE, REPLY_VECTORS_FILE)
#: Leftovers of interrupted atomic writes in a model folder (removed when a run takes its lock).
TEMPORARIES = (".*.tmp", ".*.keras")

HISTORY_COLUMNS = [
    "epoch",
    "optimizer",
    "learning_rate",
    "steps",
    "samples",
    "seconds",
    "samples_per_s",
    "loss",
    "acc",
    "bpc",
    "val_loss",
    "val_acc",
    "val_bpc",
    "resumed_at_step",
    "val_select_at_1",
]


# ---------------------------------------------------------------- checks of what is read back


def damaged(path: Path, problem: str, fix: str | None = None) -> ModelError:
    """The error for a file of the model folder that is not what nocpipe wrote."""
    return ModelError(
        f"{path} is damaged ({problem}); {fix or 'delete it and train with --force to start over, or restore it'}"
    )


def _type_name(t: object) -> str:
    names: dict[object, str] = {
        bool: "true or false",
        int: "a whole number",
        float: "a number",
        str: "a string",
        type(None): "null",
        list: "a list",
        dict: "an object",
    }
    args = typing.get_args(t)
    if typing.get_origin(t) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    return names.get(typing.get_origin(t) or t, getattr(t, "__name__", str(t)))


def _matches(value: object, t: object) -> bool:
    origin, args = typing.get_origin(t), typing.get_args(t)
    if t is typing.Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if t is type(None) or t is None:
        return value is None
    if t is bool:
        return isinstance(value, bool)
    if t is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if t is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if origin in (list, tuple):
        return isinstance(value, list) and (not args or all(_matches(v, args[0]) for v in value))
    if origin is dict:
        return isinstance(value, dict) and (
            not args or all(_matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items())
        )
    return isinstance(value, cast(type, origin or t)) if isinstance(origin or t, type) else True


def check_types(obj: object, cls: type, path: Path, fix: str | None = None) -> dict:
    """`obj` as read from `path` must be a JSON object whose keys that name fields of the
    dataclass `cls` hold values of the field's declared type; DamagedError-style
    ModelError otherwise. Returns `obj`."""
    if not isinstance(obj, dict):
        raise damaged(path, "not a JSON object", fix)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in obj and f.init and not _matches(obj[f.name], hints[f.name]):
            raise damaged(
                path, f"{f.name} is {json.dumps(obj[f.name], ensure_ascii=False)}, not {_type_name(hints[f.name])}", fix
            )
    return obj


def check_weights(path: Path, saved: list, expected: list) -> None:
    """Weights read from a checkpoint must have the shapes of the model being built."""
    got = [tuple(getattr(a, "shape", ())) for a in saved]
    want = [tuple(getattr(a, "shape", ())) for a in expected]
    if got != want:
        first = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), min(len(got), len(want)))
        detail = (
            f"{len(got)} weight arrays, the model has {len(want)}"
            if len(got) != len(want)
            else f"weight {first} has shape {got[first]}, the model's is {want[first]}"
        )
        raise damaged(path, f"it holds a model of another size: {detail}")


# ---------------------------------------------------------------- the checkpoint's state


@dataclass
class CheckpointState:
    """What --resume needs besides the arrays: where the run stands and how it got there."""

    epoch: int  # whole epochs done
    step: int  # steps into the next epoch (a stop inside one)
    steps_per_epoch: int
    batch_size: int
    optimizer: str  # the optimizer the saved variables belong to
    optimizer_iterations: int
    seed: int
    fingerprint: str  # of the train pairs (pipeline.dataset.fingerprint)
    best_loss: float | None = None  # the best bits/char so far (validation, else training)
    best_epoch: int | None = None
    format: int = MODEL_FORMAT
    nocpipe: str = __version__
    # Every random choice is a function of the seed and the position (data order, optimizer
    # rotation); the networks have no dropout, so this is the whole random state.
    rng: str = "counter-based: data order = f(seed, pass, window); optimizer = f(seed, epoch)"
    saved_at: str = ""

    @property
    def batch_position(self) -> int:
        """The index of the next batch of the endless data stream."""
        return self.epoch * self.steps_per_epoch + self.step

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "batch_position": self.batch_position}

    @classmethod
    def from_json(cls, obj: object, path: Path) -> "CheckpointState":
        if not isinstance(obj, dict):
            raise damaged(path, "its state is not a JSON object")
        for key, low in (("epoch", 0), ("step", 0), ("steps_per_epoch", 1)):
            value = obj.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise damaged(path, f"its state's {key} is {json.dumps(value)}, not a whole number of at least {low}")
        if obj.get("format") != MODEL_FORMAT:
            raise ModelError(
                f"the checkpoint in {path.parent} is of format {obj.get('format')!r}, "
                f"not {MODEL_FORMAT}: it cannot be resumed by this nocpipe"
            )
        check_types(obj, cls, path)
        known = {f.name for f in dataclasses.fields(cls)}
        missing = sorted(
            f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING and f.name not in obj
        )
        if missing:
            raise damaged(path, f"its state has no {', '.join(missing)}")
        return cls(**{k: v for k, v in obj.items() if k in known})


@dataclass
class Checkpoint:
    weights: list[np.ndarray]
    optimizer: list[np.ndarray]
    state: CheckpointState


# ---------------------------------------------------------------- the folder


class ModelDir:
    """One model folder: the only code that names, writes or reads a file inside it."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"ModelDir({str(self.path)!r})"

    def __str__(self) -> str:
        return str(self.path)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelDir) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    # ------------------------------------------------------------ names

    config_path = property(lambda self: self.path / CONFIG_FILE)
    vocab_path = property(lambda self: self.path / VOCAB_FILE)
    model_path = property(lambda self: self.path / MODEL_FILE)
    history_path = property(lambda self: self.path / HISTORY_FILE)
    curves_path = property(lambda self: self.path / CURVES_FILE)
    checkpoint_path = property(lambda self: self.path / CHECKPOINT_FILE)
    checkpoint_state_path = property(lambda self: self.path / CHECKPOINT_STATE_FILE)
    started_path = property(lambda self: self.path / STARTED_FILE)
    evaluate_path = property(lambda self: self.path / EVALUATE_FILE)
    ngram_path = property(lambda self: self.path / NGRAM_FILE)
    replies_path = property(lambda self: self.path / REPLIES_FILE)
    reply_vectors_path = property(lambda self: self.path / REPLY_VECTORS_FILE)

    def has_model(self) -> bool:
        return self.model_path.is_file()

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.exists()

    # ------------------------------------------------------------ config and vocabulary

    def read_config(self) -> dict:
        """config.json, checked for presence and format (ModelError otherwise)."""
        if not self.path.is_dir():
            raise ModelError(f"no model folder at {self.path}: train one with `nocpipe train` (or give --model-dir)")
        path = self.config_path
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"{self.path} is not a model folder (no {CONFIG_FILE})") from None
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read {path}: {exc}") from None
        fmt = obj.get("format") if isinstance(obj, dict) else None
        if fmt != MODEL_FORMAT:
            made_by = obj.get("nocpipe", "an unknown version") if isinstance(obj, dict) else "an unknown version"
            raise ModelError(
                f"{self.path} holds a model of format {fmt!r} (written by nocpipe {made_by}); "
                f"this nocpipe reads format {MODEL_FORMAT}: train it again"
            )
        if not isinstance(obj.get("model"), dict):
            raise ModelError(f"{path} has no model section")
        _check_model_section(obj["model"], path)
        return obj

    def write_config(self, obj: dict) -> None:
        write_json(self.config_path, {"format": MODEL_FORMAT, **obj})

    def read_vocab(self):
        from .vocab import Vocab

        return Vocab.load(self.vocab_path)

    def write_vocab(self, vocab) -> None:
        vocab.save(self.vocab_path)

    # ------------------------------------------------------------ model, evaluation

    def save_model(self, model) -> None:
        """model.keras, atomically (see save_keras)."""
        save_keras(model, self.model_path)

    def read_evaluate(self) -> dict | None:
        """The object `nocpipe evaluate` wrote, or None when there is none or it cannot be used
        (not a regular file, too large, not a JSON object): figures are optional to a reader."""
        try:
            obj = json.loads(read_regular(self.evaluate_path, MAX_EVALUATE_BYTES).decode("utf-8"))
        except (OSError, ValueError, RecursionError):
            return None
        return obj if isinstance(obj, dict) else None

    def check_regular_files(self) -> None:
        """Each file a model is loaded from, where it exists, is a regular file: a FIFO in its
        place would block the loader for ever, and a device would never end (ModelError).
        evaluate.json is optional: read_evaluate passes over one that is not a regular file."""
        for path in (self.config_path, self.vocab_path, self.model_path, self.replies_path, self.reply_vectors_path):
            try:
                st = os.stat(path)
            except OSError:
                continue  # missing or unreadable: the reader of that file names it
            if not stat.S_ISREG(st.st_mode):
                raise ModelError(f"{path} is not a regular file: put back the file nocpipe wrote, or delete it")

    def load_model(self):
        """model.keras as saved (uncompiled, safe mode): the retrieval encoder, which holds Keras
        layers only. One line when it is missing or damaged."""
        if not self.model_path.is_file():
            raise ModelError(f"{self.path} has no {MODEL_FILE} yet: train at least one epoch (--resume continues)")
        from .models import quiet_keras

        quiet_keras()  # TensorFlow's start-up lines dropped
        import keras

        try:
            return keras.saving.load_model(self.model_path, compile=False, safe_mode=True)
        except Exception as exc:  # a damaged or foreign file: one line
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise damaged(self.model_path, first, "train it again with --force, or restore it") from None

    def write_evaluate(self, record: dict) -> None:
        write_json(self.evaluate_path, record)

    # ------------------------------------------------------------ the retrieval chatbot's reply index

    def write_reply_index(self, table, vectors: np.ndarray) -> None:
        """replies.parquet (one row per reply) and reply_vectors.npy (float16, one row each), each
        atomically, the vectors first: a reader finds the table only once its vectors are there."""
        import pyarrow.parquet as pq

        vectors = np.ascontiguousarray(vectors, dtype=np.float16)
        if vectors.ndim != 2 or len(vectors) != table.num_rows:
            raise ValueError(f"{table.num_rows} replies need a matrix of as many rows, not shape {vectors.shape}")

        def write_vectors(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.save(fh, vectors, allow_pickle=False)

        write_with(self.reply_vectors_path, write_vectors)
        write_with(self.replies_path, lambda tmp: pq.write_table(table, tmp))

    def has_reply_index(self) -> bool:
        return self.replies_path.is_file() and self.reply_vectors_path.is_file()

    def read_reply_index(self):
        """(the replies as a pyarrow.Table, their vectors as a read-only numpy memmap)."""
        import pyarrow.parquet as pq

        if not self.has_reply_index():
            raise ModelError(
                f"{self.path} has no reply index ({REPLIES_FILE}) yet: run `nocpipe train --resume` there to finish it"
            )
        try:
            table = pq.read_table(self.replies_path)
            vectors = np.load(self.reply_vectors_path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise damaged(self.replies_path, f"{type(exc).__name__}: {exc}", "train it again with --force") from None
        if vectors.ndim != 2 or len(vectors) != table.num_rows or vectors.dtype != np.float16:
            raise damaged(
                self.reply_vectors_path,
                f"{vectors.dtype} of shape {vectors.shape} for {table.num_rows} replies",
                "train it again with --force",
            )
        return table, vectors

    # ------------------------------------------------------------ checkpoint

    def save_checkpoint(self, weights: list[np.ndarray], optimizer: list[np.ndarray], state: CheckpointState) -> None:
        """One .npz: model weights w0..., optimizer variables o0..., and the state as JSON bytes;
        then its readable copy. The first checkpoint ends the run's started.json claim."""
        state.saved_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        obj = state.to_json()
        # ndarrays; Any so that ** does not look like savez's allow_pickle
        arrays: dict[str, Any] = {f"w{i}": np.asarray(a) for i, a in enumerate(weights)}
        arrays.update({f"o{i}": np.asarray(a) for i, a in enumerate(optimizer)})
        arrays["state"] = np.frombuffer(json.dumps(obj, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)

        write_with(self.checkpoint_path, write)
        write_json(self.checkpoint_state_path, obj)
        self.started_path.unlink(missing_ok=True)

    def check_resumable(self) -> None:
        """ModelError unless a checkpoint is there to resume (its contents are checked on loading)."""
        if not self.checkpoint_path.exists():
            raise ModelError(f"nothing to resume in {self.path}: no {CHECKPOINT_FILE} (train without --resume first)")

    def load_checkpoint(self) -> Checkpoint:
        path = self.checkpoint_path
        self.check_resumable()
        try:
            with np.load(path, allow_pickle=False) as data:
                obj = json.loads(bytes(data["state"]).decode("utf-8"))
                weights = [data[f"w{i}"] for i in range(sum(1 for k in data.files if k.startswith("w")))]
                opt = [data[f"o{i}"] for i in range(sum(1 for k in data.files if k.startswith("o")))]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            # A truncated or emptied file: np.load raises whatever its reader met first.
            raise damaged(path, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
        return Checkpoint(weights, opt, CheckpointState.from_json(obj, path))

    # ------------------------------------------------------------ history and curves

    def read_history(self) -> list[dict]:
        if not self.history_path.exists():
            return []
        with open(self.history_path, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))

    def write_history(self, rows: list[dict]) -> None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=HISTORY_COLUMNS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for row in rows:
            w.writerow({k: _fmt(row.get(k)) for k in HISTORY_COLUMNS})
        write_text(self.history_path, buf.getvalue())

    def plot_curves(self, rows: list[dict], title: str = "") -> None:
        """curves.png: loss, bits/char and accuracy per epoch, train and valid (matplotlib, Agg, no pyplot)."""
        write_with(self.curves_path, lambda tmp: _draw_curves(rows, title).savefig(tmp, format="png"))

    # ------------------------------------------------------------ who may start a run here

    def refusal(self, fingerprint: str) -> str | None:
        """Why a new run on train pairs of this `fingerprint` may not start here without --force
        (None: it may). See the module docstring for the rule."""
        if self.path.exists() and not self.path.is_dir():
            return f"{self.path} is a file, not a model folder: choose another --name/--model-dir"
        names = sorted(p.name for p in self.path.iterdir()) if self.path.is_dir() else []
        names = [n for n in names if not _is_temporary(n)]
        if not names:
            return None
        ours = [n for n in names if n in ALL_FILES]
        theirs = [n for n in names if n not in ALL_FILES]
        redo = "--force to start over (nocpipe's files only are replaced), or choose another --name/--model-dir"
        if CHECKPOINT_FILE in ours:
            return f"{self.path} already holds a model in training: --resume to continue it, {redo}"
        if theirs:
            shown = ", ".join(theirs[:3]) + (f" and {len(theirs) - 3} more" if len(theirs) > 3 else "")
            return f"{self.path} holds files nocpipe did not write ({shown}): {redo}"
        started = self.read_started()
        if started is None:
            return f"{self.path} already holds a model ({', '.join(ours)}): {redo}"
        if started.get("fingerprint") != fingerprint:
            return f"{self.path} holds the start of a run on other train pairs: {redo}"
        return None

    def read_started(self) -> dict | None:
        """started.json when it is one nocpipe wrote, else None."""
        try:
            obj = json.loads(self.started_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return obj if isinstance(obj, dict) and obj.get("format") == MODEL_FORMAT else None

    def start_run(self, fingerprint: str) -> None:
        """Clear what an earlier run wrote, then claim the folder for a new run until its first checkpoint."""
        self.clear()
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(
            self.started_path,
            {
                "format": MODEL_FORMAT,
                "nocpipe": __version__,
                "fingerprint": fingerprint,
                "pid": os.getpid(),
                "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        )

    def clear(self) -> None:
        """Remove every file nocpipe writes here (for --force), and nothing else. The reply
        index goes vectors last, so that no moment shows a table without its vectors."""
        for name in (*(n for n in ALL_FILES if n != REPLY_VECTORS_FILE), REPLY_VECTORS_FILE):
            (self.path / name).unlink(missing_ok=True)


def _is_temporary(name: str) -> bool:
    import fnmatch

    return any(fnmatch.fnmatch(name, pattern) for pattern in TEMPORARIES)


# ---------------------------------------------------------------- cheap aliases


def read_config(model_dir: Path) -> dict:
    """ModelDir(model_dir).read_config(): what predict, serve and evaluate check first."""
    return ModelDir(model_dir).read_config()


def _check_model_section(section: dict, path: Path) -> None:
    from .errors import UsageError

    if section.get("arch") == "retrieval":
        from .retrieval.config import RetrievalConfig as ModelConfig
    else:
        from .models import ModelConfig  # type: ignore[no-redef]  # the other config class, same use

    fix = "restore it, or train the model again with --force"
    check_types(section, ModelConfig, path, fix)
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    try:
        ModelConfig(**{k: v for k, v in section.items() if k in known}).validate()
    except UsageError as exc:
        raise damaged(path, str(exc), fix) from None


# ---------------------------------------------------------------- atomic .keras


def save_keras(model, path: Path) -> None:
    """model.save() to a temporary `.keras` name beside `path`, then rename (Keras wants the suffix)."""
    path = Path(path)
    with naming(path):  # a full disk names model.keras, not the temporary file or nothing
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".keras", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        with naming(path, tmp_path):
            tmp_path.unlink()
            model.save(tmp_path)
            with open(tmp_path, "rb+") as fh:
                os.fsync(fh.fileno())
            os.chmod(tmp_path, file_mode(path))  # a replaced model keeps its mode; a new one follows the umask
            os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


# ---------------------------------------------------------------- history and curves


def _fmt(v) -> str:
    if v is None or v == "":
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _draw_curves(rows: list[dict], title: str):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs = [int(r["epoch"]) for r in rows]
    fig = Figure(figsize=(12, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    panels = (("loss", "loss (cross-entropy)"), ("bpc", "bits per character"), ("acc", "character accuracy"))
    for i, (metric, label) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        ax.plot(epochs, [_num(r.get(metric)) for r in rows], "o-", label=f"train {metric}")
        val = [_num(r.get(f"val_{metric}")) for r in rows]
        if any(v == v for v in val):
            ax.plot(epochs, val, "s--", label=f"valid {metric}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
        if epochs:
            ax.set_xticks(epochs if len(epochs) <= 12 else epochs[:: max(1, len(epochs) // 12)])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def check_regular_files(model_dir: Path) -> None:
    """ModelDir(model_dir).check_regular_files(): what serve checks before loading."""
    ModelDir(model_dir).check_regular_files()


def read_evaluate(model_dir: Path) -> dict | None:
    """ModelDir(model_dir).read_evaluate()."""
    return ModelDir(model_dir).read_evaluate()
