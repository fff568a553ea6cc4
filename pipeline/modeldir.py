"""The model folder (`data/models/<name>/`): file names, config checks, checkpoint, history, curves.

    config.json      format, versions, ModelConfig ("model"), training options ("train"), data facts
    vocab.json       pipeline.vocab.Vocab (JSON, never pickle)
    model.keras      the best model by validation loss (float32, uncompiled: what predict loads)
    history.csv      one row per epoch (optimizer, steps, samples/s, loss, acc, val_loss, val_acc)
    curves.png       loss and accuracy per epoch
    checkpoint.npz   everything --resume needs, in ONE file written atomically: model weights,
                     optimizer variables, and the JSON state (epoch, step, data position, seed, best)
    checkpoint.json  a readable copy of that state (never read back)
    evaluate.json    the held-out figures of `nocpipe evaluate` (read by serve while it runs)

No Keras here: predict and evaluate check a folder before paying for TensorFlow.

Everything read back is checked here, types included (`check_types`), so that a damaged
or hand-edited file is named with what to do, never a traceback or a silent misreading
(`"reverse_input": "false"` is not true).
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
import types
import typing
import zipfile
from pathlib import Path

import numpy as np

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
REPLY_INDEX_FILE = "replies.parquet"
REPLY_VECTORS_FILE = "reply_vectors.npy"
EVALUATE_FILE = "evaluate.json"
#: evaluate.json holds a few hundred bytes: anything much larger is not what evaluate wrote.
MAX_EVALUATE_BYTES = 1 << 20
ALL_FILES = (
    CONFIG_FILE,
    VOCAB_FILE,
    MODEL_FILE,
    HISTORY_FILE,
    CURVES_FILE,
    CHECKPOINT_FILE,
    CHECKPOINT_STATE_FILE,
    REPLY_INDEX_FILE,
    REPLY_VECTORS_FILE,
    EVALUATE_FILE,
)

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
    names = {
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
    return isinstance(value, origin or t) if isinstance(origin or t, type) else True


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


# ---------------------------------------------------------------- config


def read_config(model_dir: Path) -> dict:
    """config.json of a model folder, checked for presence and format (ModelError otherwise)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelError(f"no model folder at {model_dir}: train one with `nocpipe train` (or give --model-dir)")
    path = model_dir / CONFIG_FILE
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{model_dir} is not a model folder (no {CONFIG_FILE})") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from None
    fmt = obj.get("format") if isinstance(obj, dict) else None
    if fmt != MODEL_FORMAT:
        made_by = obj.get("nocpipe", "an unknown version") if isinstance(obj, dict) else "an unknown version"
        raise ModelError(
            f"{model_dir} holds a model of format {fmt!r} (written by nocpipe {made_by}); "
            f"this nocpipe reads format {MODEL_FORMAT}: train it again"
        )
    if not isinstance(obj.get("model"), dict):
        raise ModelError(f"{path} has no model section")
    _check_model_section(obj["model"], path)
    return obj


def _check_model_section(section: dict, path: Path) -> None:
    from .errors import UsageError

    if section.get("arch") == "retrieval":
        from .retrieval.config import RetrievalConfig as ModelConfig
    else:
        from .models import ModelConfig  # type: ignore[assignment]

    fix = "restore it, or train the model again with --force"
    check_types(section, ModelConfig, path, fix)
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    try:
        ModelConfig(**{k: v for k, v in section.items() if k in known}).validate()
    except UsageError as exc:
        raise damaged(path, str(exc), fix) from None


def write_config(model_dir: Path, obj: dict) -> None:
    write_json(Path(model_dir) / CONFIG_FILE, {"format": MODEL_FORMAT, **obj})


def clear(model_dir: Path) -> None:
    """Remove what a training run writes (for --force), and nothing else."""
    for name in ALL_FILES:
        (Path(model_dir) / name).unlink(missing_ok=True)


def holds_training(model_dir: Path) -> bool:
    """True once a run has saved a checkpoint. The checkpoint is each epoch's commit point,
    written after model.keras and history.csv: a folder without one is a run that died
    (killed, or its disk full) before its first checkpoint, which the same command starts
    again, even when that epoch's model.keras made it to disk."""
    return (Path(model_dir) / CHECKPOINT_FILE).exists()


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


# ---------------------------------------------------------------- checkpoint


def save_checkpoint(
    model_dir: Path, weights: list[np.ndarray], optimizer_weights: list[np.ndarray], state: dict
) -> None:
    """One .npz: model weights w0..., optimizer variables o0..., and the state as JSON bytes."""
    arrays = {f"w{i}": np.asarray(a) for i, a in enumerate(weights)}
    arrays.update({f"o{i}": np.asarray(a) for i, a in enumerate(optimizer_weights)})
    arrays["state"] = np.frombuffer(json.dumps(state, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    write_with(Path(model_dir) / CHECKPOINT_FILE, write)
    write_json(Path(model_dir) / CHECKPOINT_STATE_FILE, state)


def load_checkpoint(model_dir: Path) -> tuple[list[np.ndarray], list[np.ndarray], dict]:
    path = Path(model_dir) / CHECKPOINT_FILE
    if not path.exists():
        raise ModelError(f"nothing to resume in {model_dir}: no {CHECKPOINT_FILE} (train without --resume first)")
    try:
        with np.load(path, allow_pickle=False) as data:
            state = json.loads(bytes(data["state"]).decode("utf-8"))
            weights = [data[f"w{i}"] for i in range(sum(1 for k in data.files if k.startswith("w")))]
            opt = [data[f"o{i}"] for i in range(sum(1 for k in data.files if k.startswith("o")))]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        # A truncated or emptied file: np.load raises whatever its reader met first.
        raise damaged(path, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
    if not isinstance(state, dict):
        raise damaged(path, "its state is not a JSON object")
    for key, low in (("epoch", 0), ("step", 0), ("steps_per_epoch", 1)):
        value = state.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise damaged(path, f"its state's {key} is {json.dumps(value)}, not a whole number of at least {low}")
    if state.get("format") != MODEL_FORMAT:
        raise ModelError(
            f"the checkpoint in {model_dir} is of format {state.get('format')!r}, "
            f"not {MODEL_FORMAT}: it cannot be resumed by this nocpipe"
        )
    return weights, opt, state


# ---------------------------------------------------------------- history and curves


def read_history(model_dir: Path) -> list[dict]:
    path = Path(model_dir) / HISTORY_FILE
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write_history(model_dir: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=HISTORY_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: _fmt(row.get(k)) for k in HISTORY_COLUMNS})
    write_text(Path(model_dir) / HISTORY_FILE, buf.getvalue())


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


def plot_curves(model_dir: Path, rows: list[dict], title: str = "") -> None:
    """curves.png: loss and val_loss, acc and val_acc per epoch (matplotlib, Agg, no pyplot)."""
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
    write_with(Path(model_dir) / CURVES_FILE, lambda tmp: fig.savefig(tmp, format="png"))


# ---------------------------------------------------------------- what a server reads


def check_regular_files(model_dir: Path) -> None:
    """Each file a model is loaded from, where it exists, is a regular file: a FIFO in its
    place would block the loader for ever, and a device would never end (ModelError).
    evaluate.json is optional: read_evaluate passes over one that is not a regular file."""
    for name in (CONFIG_FILE, VOCAB_FILE, MODEL_FILE):
        path = Path(model_dir) / name
        try:
            st = os.stat(path)
        except OSError:
            continue  # missing or unreadable: the reader of that file names it
        if not stat.S_ISREG(st.st_mode):
            raise ModelError(f"{path} is not a regular file: put back the file nocpipe wrote, or delete it")


def read_evaluate(model_dir: Path) -> dict | None:
    """The object `nocpipe evaluate` wrote, or None when there is none or it cannot be used
    (not a regular file, too large, not a JSON object): figures are optional to a reader."""
    try:
        obj = json.loads(read_regular(Path(model_dir) / EVALUATE_FILE, MAX_EVALUATE_BYTES).decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


# ---------------------------------------------------------------- the folder as an object


class ModelDir:
    """One model folder: every file in it is named, written and read here."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def read_config(self) -> dict:
        return read_config(self.path)

    def write_config(self, obj: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_config(self.path, obj)

    def read_vocab(self):
        from .vocab import Vocab

        return Vocab.load(self.path / VOCAB_FILE)

    def write_vocab(self, vocab) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        vocab.save(self.path / VOCAB_FILE)

    def holds_anything(self) -> bool:
        return any((self.path / name).exists() for name in ALL_FILES)

    def prepare_new(self, force: bool = False) -> None:
        """A new run starts here: refused where a model, vocabulary or config lies, unless `force`."""
        from .errors import UsageError

        if self.holds_anything() and not force:
            raise UsageError(
                f"{self.path} already holds a model: --resume to continue it, "
                "--force to start over, or choose another --name/--model-dir"
            )
        clear(self.path)
        self.path.mkdir(parents=True, exist_ok=True)

    def save_keras(self, model) -> None:
        save_keras(model, self.path / MODEL_FILE)

    def has_keras(self) -> bool:
        return (self.path / MODEL_FILE).is_file()

    def load_keras(self):
        """model.keras, uncompiled, in safe mode (one line when it is missing or damaged)."""
        path = self.path / MODEL_FILE
        if not path.is_file():
            raise ModelError(f"{self.path} has no {MODEL_FILE} yet: train at least one epoch (--resume continues)")
        import keras

        try:
            return keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as exc:  # a damaged or foreign file: one line
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise damaged(path, first) from None

    def write_history(self, rows: list[dict]) -> None:
        write_history(self.path, rows)

    def read_history(self) -> list[dict]:
        return read_history(self.path)

    # ---- the retrieval model's checkpoint: trainer weights, optimizer, fit state

    def save_retrieval_checkpoint(self, model, state: dict) -> None:
        # Trainable weights only: the fixed gram vectors are a function of the seed, rebuilt on resume.
        weights = [np.asarray(w.numpy() if hasattr(w, "numpy") else w) for w in model.trainable_weights]
        opt = [np.asarray(v.numpy() if hasattr(v, "numpy") else v) for v in model.optimizer.variables]
        save_checkpoint(self.path, weights, opt, {**state, "step": 0, "steps_per_epoch": 1, "format": MODEL_FORMAT})

    def read_retrieval_state(self) -> dict:
        return load_checkpoint(self.path)[2]

    def load_retrieval_checkpoint(self, model, state_cls):
        weights, opt, state = load_checkpoint(self.path)
        check_weights(self.path / CHECKPOINT_FILE, weights, [w.numpy() for w in model.trainable_weights])
        for var, value in zip(model.trainable_weights, weights):
            var.assign(value)
        if opt and len(opt) == len(model.optimizer.variables):
            for var, value in zip(model.optimizer.variables, opt):
                var.assign(value)
        known = {f.name for f in dataclasses.fields(state_cls)}
        return state_cls(**{k: v for k, v in state.items() if k in known})

    # ---- the reply index of a retrieval model

    def has_reply_index(self) -> bool:
        return (self.path / REPLY_INDEX_FILE).is_file() and (self.path / REPLY_VECTORS_FILE).is_file()

    def write_reply_index(self, table, vectors: np.ndarray) -> None:
        """Vectors first, then the table: a folder whose table is there has its vectors too."""
        import pyarrow.parquet as pq

        def write_vectors(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.save(fh, np.ascontiguousarray(vectors, dtype=np.float16), allow_pickle=False)

        write_with(self.path / REPLY_VECTORS_FILE, write_vectors)
        write_with(self.path / REPLY_INDEX_FILE, lambda tmp: pq.write_table(table, tmp, compression="zstd"))

    def read_reply_index(self):
        """(pyarrow.Table of the replies, float16 vectors memory-mapped (rows, 2, units))."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table_path, vec_path = self.path / REPLY_INDEX_FILE, self.path / REPLY_VECTORS_FILE
        if not self.has_reply_index():
            raise ModelError(f"{self.path} has no reply index yet: run `nocpipe train --resume` there to finish it")
        for p in (table_path, vec_path):
            if not p.is_file():
                raise damaged(p, "not a regular file")
        try:
            table = pq.read_table(table_path)
            vectors = np.load(vec_path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise damaged(table_path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
        if vectors.ndim != 3 or vectors.shape[0] != table.num_rows or vectors.shape[1] != 2:
            raise damaged(vec_path, f"{vectors.shape} vectors for {table.num_rows} replies")
        return table, vectors
