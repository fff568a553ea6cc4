"""The pieces the builders share: padding masks and position vectors, made of Keras layers and ops
only (graph 2, what every new model.keras holds), and nocpipe's own layers that older files hold.

    padding_mask(chars)            (batch, 1, time) booleans, True where a character is: the attention
                                   mask that keeps every query off the utterance's padding keys
    add_positions(config, x, ...)  x + a vector per position: a keras Embedding over the positions
                                   0, 1, ... (learned, or frozen to the sinusoids of Vaswani et al.)

The legacy layers below stay registered under the package "nocpipe" so that model folders
written before graph 2 keep loading and resuming: `PaddingMask` and `PositionEmbedding` (the
attention and transformer networks of graph 1) and `OneHot` (the parallel networks' one-hot input
before Keras's CategoryEncoding took its place). No builder of graph 2 uses them.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from .config import ModelConfig

PACKAGE = "nocpipe"


def padding_mask(chars):
    """Utterance ids (batch, time) -> (batch, 1, time), True where a character is (not padding)."""
    return ops.expand_dims(ops.not_equal(chars, 0), axis=1)


def position_ids(chars):
    """0, 1, ... time − 1 for every row of (batch, time) ids, made from the ids themselves so that
    the positions are a node of the graph (a constant would not be saved with it)."""
    return ops.cumsum(ops.ones_like(chars), axis=1) - 1


def sinusoids(max_len: int, dim: int) -> np.ndarray:
    """The fixed position vectors of Vaswani et al. (sin on even features, cos on odd)."""
    pos = np.arange(max_len)[:, None]
    rate = 1.0 / np.power(10000.0, (2 * (np.arange(dim) // 2)) / dim)
    return np.where(np.arange(dim) % 2 == 0, np.sin(pos * rate), np.cos(pos * rate)).astype("float32")


def position_layer(config: ModelConfig, name: str, dtype) -> layers.Embedding:
    """The table of position vectors: learned, or frozen sinusoids (written in by `fill_positions`)."""
    return layers.Embedding(
        config.max_len,
        config.units,
        embeddings_initializer=keras.initializers.RandomNormal(stddev=0.02),
        trainable=config.positions == "learned",
        name=name,
        dtype=dtype,
    )


def fill_positions(config: ModelConfig, layer: layers.Embedding) -> None:
    if config.positions == "sinusoidal":
        layer.embeddings.assign(sinusoids(config.max_len, config.units))


def add_positions(config: ModelConfig, x, ids, name: str, dtype):
    """x (batch, time, units) plus the vectors of positions `ids` (batch, time), graph 2; the
    layers are `name` (the table) and `name`_add."""
    table = position_layer(config, name, dtype)
    out = layers.Add(name=f"{name}_add", dtype=dtype)([x, table(ids)])
    fill_positions(config, table)
    return out


# ---------------------------------------------------------------- graph 1 (older model folders)


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
class PaddingMask(layers.Layer):
    """Graph 1's padding_mask as a layer."""

    def call(self, inputs):
        return ops.expand_dims(ops.not_equal(ops.cast(inputs, "int32"), 0), axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1, input_shape[1])

    def compute_output_spec(self, inputs):
        return keras.KerasTensor((inputs.shape[0], 1, inputs.shape[1]), dtype="bool")


@keras.saving.register_keras_serializable(package=PACKAGE)
class PositionEmbedding(layers.Layer):
    """Graph 1's add_positions as a layer: learned vectors, or the fixed sinusoids (no weights)."""

    def __init__(self, max_len: int, kind: str = "learned", **kwargs):
        super().__init__(**kwargs)
        self.max_len = int(max_len)
        self.kind = kind

    def build(self, input_shape):
        dim = int(input_shape[-1])
        if self.kind == "learned":
            self.positions = self.add_weight(
                name="positions", shape=(self.max_len, dim), initializer=keras.initializers.RandomNormal(stddev=0.02)
            )
        else:
            self.table = sinusoids(self.max_len, dim)

    def call(self, inputs, positions=None):
        """`positions` (batch, time) ints: the vectors of those positions (one step of decoding);
        without it, positions 0, 1, ... of the input."""
        table = self.positions if self.kind == "learned" else ops.convert_to_tensor(self.table)
        if positions is not None:
            return inputs + ops.cast(ops.take(table, ops.cast(positions, "int32"), axis=0), inputs.dtype)
        return inputs + ops.cast(table[: inputs.shape[1]], inputs.dtype)[None, :, :]

    def get_config(self):
        return {**super().get_config(), "max_len": self.max_len, "kind": self.kind}


LEGACY_OBJECTS = {f"{PACKAGE}>{cls.__name__}": cls for cls in (OneHot, PaddingMask, PositionEmbedding)}
