"""Keras builders for `--arch` (used by train AND predict), plain Keras 3 only.

    chars (batch, max_len) int32, utterance reversed ──OneHot──> (batch, max_len, vocab)
      seed:            LSTM(units) encoder  ×  Dense(units, softmax) over the flattened one-hot input
      simple:          LSTM(units) encoder  (no attention vector)
      dense-attention: LSTM(units) encoder  ×  Dense(units, softmax) over the encoding itself
    ──RepeatVector(max_len)──Bidirectional(LSTM(units, return_sequences))──TimeDistributed(Dense(vocab, softmax))
      -> (batch, max_len, vocab) character probabilities; id 0 (padding) ends the reply

`seed` is figure 3 of the 2017 post exactly (LSTM(512), Dense(512, softmax) on the
flattened input multiplied into the encoding, RepeatVector(50), a bidirectional LSTM(512)
decoder, a softmax over 128 characters), fed integer sequences instead of one-hot
arrays: the one-hot expansion happens inside the model (`OneHot`), so the corpus never
exists as a 25 GB float array. Loss: sparse categorical cross-entropy over every
position (padding included, so the model learns where a reply ends); metric: the
masked character accuracy (padding excluded).

Every layer is named; custom objects are registered under the package "nocpipe", so
a saved `.keras` file loads back in safe mode (no Lambda layers). All hyper-parameters
live in `ModelConfig`, which round-trips through JSON and is saved next to the model.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# TensorFlow's C++ start-up lines ("oneDNN custom operations are on", "Could not find cuda
# drivers", cuInit failures on a machine without a GPU) are written before its logging is
# configured, so TF_CPP_MIN_LOG_LEVEL does not hide them. They are caught at the file
# descriptor and dropped; anything else written meanwhile is passed on.
_NOISE = re.compile(r"^(WARNING: All log messages before absl|[IW]0000 "
                    r"|E0000 .*(cuInit|cuda_platform|cuda_dnn|cuda_fft|cuda_blas|oneDNN supports)"
                    r"|To enable the following instructions|.*cpu_feature_guard|.*TF_ENABLE_ONEDNN_OPTS)")


@contextmanager
def quiet_native_logs():
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            for line in tmp.read().decode("utf-8", "replace").splitlines():
                if line and not _NOISE.match(line):
                    print(line, file=sys.stderr)


with quiet_native_logs():
    import keras  # noqa: E402
    from keras import layers, ops  # noqa: E402

    if keras.backend.backend() == "tensorflow":  # device discovery prints the cuInit line: do it here
        import tensorflow as _tf

        _tf.config.list_physical_devices("GPU")

from .errors import ModelError, UsageError  # noqa: E402

ARCHS = ("seed", "simple", "dense-attention")
OPTIMIZERS = ("adam", "rmsprop", "sgd")
PACKAGE = "nocpipe"


# ---------------------------------------------------------------- config

@dataclass
class ModelConfig:
    """Every hyper-parameter of a model; saved as JSON in the model folder's config.json."""

    arch: str = "seed"
    units: int = 512
    max_len: int = 50
    vocab_size: int = 128
    reverse_input: bool = True
    optimizer: str = "adam"
    learning_rate: float | None = None  # None: the optimizer's Keras default

    def validate(self) -> "ModelConfig":
        if self.arch not in ARCHS:
            raise UsageError(f"unknown architecture {self.arch!r}: use one of {', '.join(ARCHS)}")
        if self.optimizer not in OPTIMIZERS:
            raise UsageError(f"unknown optimizer {self.optimizer!r}: use one of {', '.join(OPTIMIZERS)}")
        for name in ("units", "max_len"):
            if int(getattr(self, name)) < 1:
                raise UsageError(f"{name.replace('_', '-')} must be at least 1, not {getattr(self, name)}")
        if self.vocab_size < 3:
            raise UsageError(f"vocab-size must be at least 3 (padding, unknown, one character), not {self.vocab_size}")
        if self.learning_rate is not None and not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise UsageError(f"learning-rate must be a positive number, not {self.learning_rate}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, obj: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise ModelError(f"model config has unknown fields {unknown}: written by another version?")
        return cls(**obj).validate()

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        return cls.from_dict(json.loads(text))


# ---------------------------------------------------------------- custom objects

@keras.saving.register_keras_serializable(package=PACKAGE)
class OneHot(layers.Layer):
    """Integer ids (batch, time) -> one-hot vectors (batch, time, num_classes) in the compute dtype."""

    def __init__(self, num_classes: int, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)

    def call(self, inputs):
        return ops.one_hot(ops.cast(inputs, "int32"), self.num_classes, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.num_classes)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedAccuracy(keras.metrics.Metric):
    """Share of non-padding target characters predicted exactly (argmax), over the epoch."""

    def __init__(self, name: str = "acc", pad_id: int = 0, dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype or "float32", **kwargs)
        self.pad_id = int(pad_id)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct", dtype="float32")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total", dtype="float32")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        if len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, axis=-1)
        pred = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        mask = ops.cast(ops.not_equal(y_true, self.pad_id), "float32")
        if sample_weight is not None:
            sw = ops.cast(sample_weight, "float32")
            while len(sw.shape) < len(mask.shape):
                sw = ops.expand_dims(sw, -1)
            mask = mask * sw
        hits = ops.cast(ops.equal(pred, y_true), "float32") * mask
        self.correct.assign_add(ops.sum(hits))
        self.total.assign_add(ops.sum(mask))

    def result(self):
        return ops.divide_no_nan(self.correct, self.total)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)

    def get_config(self):
        return {"name": self.name, "pad_id": self.pad_id, "dtype": self.dtype}


CUSTOM_OBJECTS = {f"{PACKAGE}>OneHot": OneHot, f"{PACKAGE}>MaskedAccuracy": MaskedAccuracy}


# ---------------------------------------------------------------- builders

def _encoder(config: ModelConfig, dtype):
    chars = keras.Input(shape=(config.max_len,), dtype="int32", name="chars")
    one_hot = OneHot(config.vocab_size, name="one_hot", dtype=dtype)(chars)
    encoded = layers.LSTM(config.units, name="encoder", dtype=dtype)(one_hot)
    return chars, one_hot, encoded


def _decoder(config: ModelConfig, vector, dtype):
    x = layers.RepeatVector(config.max_len, name="repeat", dtype=dtype)(vector)
    x = layers.Bidirectional(layers.LSTM(config.units, return_sequences=True, name="decoder_lstm", dtype=dtype),
                             name="decoder", dtype=dtype)(x)
    # The softmax stays in float32 under mixed precision (numerically safe loss).
    return layers.TimeDistributed(layers.Dense(config.vocab_size, activation="softmax", name="char_softmax",
                                               dtype="float32"),
                                  name="reply", dtype="float32")(x)


def build_seed(config: ModelConfig, dtype=None) -> keras.Model:
    """Figure 3: the encoding times a softmax attention vector computed from the flattened input."""
    chars, one_hot, encoded = _encoder(config, dtype)
    flat = layers.Flatten(name="flatten", dtype=dtype)(one_hot)
    attention = layers.Dense(config.units, activation="softmax", name="attention", dtype=dtype)(flat)
    attended = layers.Multiply(name="attend", dtype=dtype)([encoded, attention])
    return keras.Model(chars, _decoder(config, attended, dtype), name="nocpipe_seed")


def build_simple(config: ModelConfig, dtype=None) -> keras.Model:
    """Figure 1: encoder and decoder with no attention vector."""
    chars, _, encoded = _encoder(config, dtype)
    return keras.Model(chars, _decoder(config, encoded, dtype), name="nocpipe_simple")


def build_dense_attention(config: ModelConfig, dtype=None) -> keras.Model:
    """Figure 2: the attention vector is a softmax dense layer on the encoding itself."""
    chars, _, encoded = _encoder(config, dtype)
    attention = layers.Dense(config.units, activation="softmax", name="attention", dtype=dtype)(encoded)
    attended = layers.Multiply(name="attend", dtype=dtype)([encoded, attention])
    return keras.Model(chars, _decoder(config, attended, dtype), name="nocpipe_dense_attention")


BUILDERS = {"seed": build_seed, "simple": build_simple, "dense-attention": build_dense_attention}


def build_model(config: ModelConfig, dtype=None) -> keras.Model:
    """The uncompiled network of `config.arch`; `dtype` overrides the global dtype policy."""
    config.validate()
    return BUILDERS[config.arch](config, dtype)


def make_optimizer(kind: str, learning_rate: float | None = None) -> keras.optimizers.Optimizer:
    if kind not in OPTIMIZERS:
        raise UsageError(f"unknown optimizer {kind!r}: use one of {', '.join(OPTIMIZERS)}")
    cls = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD}[kind]
    return cls(name=kind) if learning_rate is None else cls(learning_rate=learning_rate, name=kind)


def compile_model(model: keras.Model, optimizer: str = "adam", learning_rate: float | None = None,
                  jit_compile="auto") -> keras.Model:
    model.compile(optimizer=make_optimizer(optimizer, learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(name="loss"),
                  metrics=[MaskedAccuracy(name="acc")], jit_compile=jit_compile)
    # Optimizer variables made now, not inside the first traced step: TensorFlow then traces
    # the training step once instead of twice (seconds saved on every run).
    model.optimizer.build(model.trainable_variables)
    return model


def variable_value(v):
    """A Keras variable's value as a numpy array (any backend)."""
    import numpy as np

    return np.asarray(v.numpy())


def inference_copy(model: keras.Model, config: ModelConfig) -> keras.Model:
    """An uncompiled float32 twin of `model` (same weights): what model.keras holds for predict."""
    twin = build_model(config, dtype="float32")
    twin.set_weights([variable_value(w).astype("float32") for w in model.weights])
    return twin


def load_inference_model(path) -> keras.Model:
    """Load a `.keras` file in safe mode, uncompiled (predict needs no optimizer)."""
    return keras.saving.load_model(path, compile=False, safe_mode=True, custom_objects=CUSTOM_OBJECTS)


# ---------------------------------------------------------------- accelerators

def gpu_info() -> dict | None:
    """{'name': ..., 'capability': (major, minor)} of the first GPU the backend sees, or None."""
    with quiet_native_logs():
        return _gpu_info()


def _gpu_info() -> dict | None:
    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if not gpus:
                return None
            details = tf.config.experimental.get_device_details(gpus[0])
            return {"name": details.get("device_name", "GPU"), "capability": tuple(details.get("compute_capability", (0, 0)))}
        if backend == "jax":
            import jax

            devs = [d for d in jax.devices() if d.platform == "gpu"]
            if not devs:
                return None
            cap = getattr(devs[0], "compute_capability", "0.0")
            major, minor = (int(p) for p in str(cap).split(".")[:2])
            return {"name": devs[0].device_kind, "capability": (major, minor)}
        if backend == "torch":
            import torch

            if not torch.cuda.is_available():
                return None
            return {"name": torch.cuda.get_device_name(0), "capability": tuple(torch.cuda.get_device_capability(0))}
    except Exception:  # a broken driver is "no GPU" here; the backend says more when used
        return None
    return None


PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


def choose_precision(mode: str = "auto", gpu: dict | None = None) -> str:
    """The dtype policy for training: auto = mixed precision on a GPU (bfloat16 from Ampere on), float32 on CPU."""
    if mode not in PRECISIONS:
        raise UsageError(f"unknown precision {mode!r}: use one of {', '.join(PRECISIONS)}")
    if mode != "auto":
        return mode
    if gpu is None:
        return "float32"
    return "mixed_bfloat16" if gpu["capability"] >= (8, 0) else "mixed_float16"


def _lstm_layers(model: keras.Model) -> list:
    found = []
    for layer in model.layers:
        if isinstance(layer, layers.Bidirectional):
            found += [layer.forward_layer, layer.backward_layer]
        elif isinstance(layer, layers.LSTM):
            found.append(layer)
    return found


def cudnn_report(model: keras.Model, gpu: dict | None = None) -> str:
    """One line: is the fused cuDNN LSTM kernel usable for every LSTM of `model`, and if not, why."""
    backend = keras.backend.backend()
    lstms = _lstm_layers(model)
    problems = []
    for layer in lstms:
        cell = layer.cell
        if cell.activation is not keras.activations.tanh or cell.recurrent_activation is not keras.activations.sigmoid:
            problems.append(f"{layer.name}: activations not tanh/sigmoid")
        if cell.recurrent_dropout:
            problems.append(f"{layer.name}: recurrent dropout")
        if layer.unroll:
            problems.append(f"{layer.name}: unrolled")
        if not cell.use_bias:
            problems.append(f"{layer.name}: no bias")
        if getattr(layer, "use_cudnn", "auto") is False:
            problems.append(f"{layer.name}: use_cudnn=False")
    # OneHot produces no mask, so no LSTM here is masked (cuDNN cannot take one in Keras 3).
    where = f"{backend} on {gpu['name']}" if gpu else f"{backend} on CPU"
    if gpu is None:
        return f"LSTM: fused cuDNN kernel not in use ({where}: no GPU visible); {len(lstms)} LSTM layers run the generic loop"
    if problems:
        return f"LSTM: fused cuDNN kernel not in use ({where}): " + "; ".join(problems)
    if backend == "jax":
        try:
            import jax.experimental.rnn  # noqa: F401
        except ImportError:
            return f"LSTM: fused cuDNN kernel not in use ({where}: jax.experimental.rnn missing)"
    return (f"LSTM: fused cuDNN kernel in use ({where}; {len(lstms)} LSTM layers: tanh/sigmoid, "
            "no recurrent dropout, no mask, not unrolled)")
