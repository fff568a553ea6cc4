"""What training adds to a network: the optimizer, the loss and the two metrics of every epoch.

    MaskedAccuracy   share of the non-padding target characters predicted exactly (argmax)
    BitsPerChar      -log2 p of every reply character plus its end, the figure the best model is chosen by
    compile_model    sparse categorical cross-entropy, over every position or per reply token

The metrics live only in the compiled training model: the uncompiled inference copy saved as
model.keras holds none, so a saved model never needs them to load.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from ..errors import UsageError
from .config import OPTIMIZERS
from .layers import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedAccuracy(keras.metrics.Metric):
    """Share of non-padding target characters predicted exactly (argmax), over the epoch."""

    def __init__(self, name: str = "acc", pad_id: int = 0, dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype or "float32", **kwargs)
        self._direction = "up"
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


def _reply_mask(y_true):
    """1 for every reply character and the first padding after it (the end of the reply), else 0."""
    is_pad = ops.cast(ops.equal(y_true, 0), "int32")
    first_pad = ops.cast(ops.equal(ops.cumsum(is_pad, axis=-1), 1), "int32") * is_pad
    return ops.cast((1 - is_pad) + first_pad, "float32")


@keras.saving.register_keras_serializable(package=PACKAGE)
class BitsPerChar(keras.metrics.Metric):
    """-log2 p of every reply character plus its end (the first padding), averaged over those
    tokens; the padding after the end never counts. The same figure for every architecture."""

    def __init__(self, name: str = "bpc", dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype or "float32", **kwargs)
        self._direction = "down"  # lower is better: EarlyStopping(monitor="val_bpc") needs no mode
        self.bits = self.add_variable(shape=(), initializer="zeros", name="bits", dtype="float32")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total", dtype="float32")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        if len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, axis=-1)
        p = ops.take_along_axis(ops.cast(y_pred, "float32"), ops.expand_dims(y_true, -1), axis=-1)[..., 0]
        mask = _reply_mask(y_true)
        bits = -ops.log(ops.maximum(p, 1e-30)) / math.log(2.0)
        self.bits.assign_add(ops.sum(bits * mask))
        self.total.assign_add(ops.sum(mask))

    def result(self):
        return ops.divide_no_nan(self.bits, self.total)

    def reset_state(self):
        self.bits.assign(0.0)
        self.total.assign(0.0)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


def make_optimizer(kind: str, learning_rate: float | None = None) -> keras.optimizers.Optimizer:
    if kind not in OPTIMIZERS:
        raise UsageError(f"unknown optimizer {kind!r}: use one of {', '.join(OPTIMIZERS)}")
    cls = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD}[kind]
    return cls(name=kind) if learning_rate is None else cls(learning_rate=learning_rate, name=kind)


def compile_model(
    model: keras.Model,
    optimizer: str = "adam",
    learning_rate: float | None = None,
    jit_compile="auto",
    per_token: bool = False,
) -> keras.Model:
    """`per_token`: the loss is averaged over the weighted tokens (reply characters and the end)
    rather than over every position, so it reads in nats per character (autoregressive models)."""
    reduction = "mean_with_sample_weight" if per_token else "sum_over_batch_size"
    model.compile(
        optimizer=make_optimizer(optimizer, learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(name="loss", reduction=reduction),
        metrics=[MaskedAccuracy(name="acc"), BitsPerChar(name="bpc")],
        jit_compile=jit_compile,
    )
    # Optimizer variables made now, not inside the first traced step: TensorFlow then traces
    # the training step once instead of twice (seconds saved on every run).
    model.optimizer.build(model.trainable_variables)
    return model


def variable_value(v):
    """A Keras variable's value as a numpy array (any backend)."""
    import numpy as np

    return np.asarray(v.numpy())


METRIC_OBJECTS = {f"{PACKAGE}>{cls.__name__}": cls for cls in (MaskedAccuracy, BitsPerChar)}
