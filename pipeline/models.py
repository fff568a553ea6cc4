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
_NOISE = re.compile(
    r"^(WARNING: All log messages before absl|[IW]0000 "
    r"|E0000 .*(cuInit|cuda_platform|cuda_dnn|cuda_fft|cuda_blas|oneDNN supports)"
    r"|To enable the following instructions|.*cpu_feature_guard|.*TF_ENABLE_ONEDNN_OPTS)"
)


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
        # Decoding calls the compiled predict function on a few batch shapes (powers of two) on
        # purpose; TensorFlow's "triggered tf.function retracing" warning about that is noise.
        _tf.get_logger().setLevel("ERROR")

from .errors import ModelError, UsageError  # noqa: E402

PARALLEL_ARCHS = ("seed", "simple", "dense-attention")
AUTOREGRESSIVE_ARCHS = ("attention", "transformer")
ARCHS = PARALLEL_ARCHS + AUTOREGRESSIVE_ARCHS
OPTIMIZERS = ("adam", "rmsprop", "sgd")
PACKAGE = "nocpipe"


# ---------------------------------------------------------------- config


@dataclass
class ModelConfig:
    """Every hyper-parameter of a model; saved as JSON in the model folder's config.json."""

    arch: str = "seed"
    units: int = 512
    layers: int = 2  # transformer: encoder and decoder blocks (each)
    heads: int = 0  # transformer and attention: attention heads (0: units // 32, 1 to 8)
    positions: str = "learned"  # transformer: learned or sinusoidal position vectors
    reply_dropout: float = 0.0  # attention and transformer: share of the reply-so-far characters hidden in training
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
        if self.positions not in ("learned", "sinusoidal"):
            raise UsageError(f"positions must be learned or sinusoidal, not {self.positions!r}")
        if self.arch in AUTOREGRESSIVE_ARCHS and self.max_len < 2:
            raise UsageError(
                f"max-len must be at least 2 for {self.arch} (a character and the end), not {self.max_len}"
            )
        if not (0.0 <= float(self.reply_dropout) < 1.0):
            raise UsageError(f"reply-dropout must be from 0 up to (not including) 1, not {self.reply_dropout}")
        if self.heads < 0 or (self.heads and self.units % self.heads):
            raise UsageError(f"heads must divide units ({self.units}), not {self.heads}")
        for name in ("units", "max_len", "layers"):
            if int(getattr(self, name)) < 1:
                raise UsageError(f"{name.replace('_', '-')} must be at least 1, not {getattr(self, name)}")
        if self.vocab_size < 3:
            raise UsageError(f"vocab-size must be at least 3 (padding, unknown, one character), not {self.vocab_size}")
        if self.learning_rate is not None and not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise UsageError(f"learning-rate must be a positive number, not {self.learning_rate}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def autoregressive(self) -> bool:
        return self.arch in AUTOREGRESSIVE_ARCHS

    @property
    def start_id(self) -> int:
        """The decoder's start token: one id past the vocabulary (an input only, never predicted)."""
        return self.vocab_size

    def num_heads(self) -> int:
        if self.heads:
            return self.heads
        h = max(1, min(8, self.units // 32))
        while self.units % h:
            h -= 1
        return h

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


@keras.saving.register_keras_serializable(package=PACKAGE)
class PaddingMask(layers.Layer):
    """Utterance ids (batch, time) -> (batch, 1, time) booleans, True where a character is (not padding):
    the attention mask that keeps every query off the padding keys."""

    def call(self, inputs):
        return ops.expand_dims(ops.not_equal(ops.cast(inputs, "int32"), 0), axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1, input_shape[1])

    def compute_output_spec(self, inputs):
        return keras.KerasTensor((inputs.shape[0], 1, inputs.shape[1]), dtype="bool")


@keras.saving.register_keras_serializable(package=PACKAGE)
class PositionEmbedding(layers.Layer):
    """Adds a vector per position to (batch, time, dim): learned, or the fixed sinusoids of Vaswani et al."""

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
            import numpy as np

            pos = np.arange(self.max_len)[:, None]
            rate = 1.0 / np.power(10000.0, (2 * (np.arange(dim) // 2)) / dim)
            table = np.where(np.arange(dim) % 2 == 0, np.sin(pos * rate), np.cos(pos * rate))
            self.table = table.astype("float32")

    def call(self, inputs, positions=None):
        """`positions` (batch, time) ints: the vectors of those positions (one step of decoding);
        without it, positions 0, 1, ... of the input."""
        table = self.positions if self.kind == "learned" else ops.convert_to_tensor(self.table)
        if positions is not None:
            return inputs + ops.cast(ops.take(table, ops.cast(positions, "int32"), axis=0), inputs.dtype)
        return inputs + ops.cast(table[: inputs.shape[1]], inputs.dtype)[None, :, :]

    def get_config(self):
        return {**super().get_config(), "max_len": self.max_len, "kind": self.kind}


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


CUSTOM_OBJECTS = {
    f"{PACKAGE}>OneHot": OneHot,
    f"{PACKAGE}>MaskedAccuracy": MaskedAccuracy,
    f"{PACKAGE}>PaddingMask": PaddingMask,
    f"{PACKAGE}>PositionEmbedding": PositionEmbedding,
    f"{PACKAGE}>BitsPerChar": BitsPerChar,
}


# ---------------------------------------------------------------- builders


def _encoder(config: ModelConfig, dtype):
    chars = keras.Input(shape=(config.max_len,), dtype="int32", name="chars")
    # Keras' own one-hot layer: a parallel network's .keras file loads without nocpipe.
    one_hot = layers.CategoryEncoding(config.vocab_size, output_mode="one_hot", name="one_hot", dtype=dtype)(chars)
    encoded = layers.LSTM(config.units, name="encoder", dtype=dtype)(one_hot)
    return chars, one_hot, encoded


def _decoder(config: ModelConfig, vector, dtype):
    x = layers.RepeatVector(config.max_len, name="repeat", dtype=dtype)(vector)
    x = layers.Bidirectional(
        layers.LSTM(config.units, return_sequences=True, name="decoder_lstm", dtype=dtype), name="decoder", dtype=dtype
    )(x)
    # The softmax stays in float32 under mixed precision (numerically safe loss).
    return layers.TimeDistributed(
        layers.Dense(config.vocab_size, activation="softmax", name="char_softmax", dtype="float32"),
        name="reply",
        dtype="float32",
    )(x)


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


def _inputs(config: ModelConfig):
    chars = keras.Input(shape=(config.max_len,), dtype="int32", name="chars")
    reply_in = keras.Input(shape=(config.max_len,), dtype="int32", name="reply_in")
    return chars, reply_in


def _reply_dropout(config: ModelConfig, y, dtype):
    """Hide whole characters of the reply so far during training (word dropout, Bowman et al. 2016):
    a character-level decoder otherwise learns to continue replies from their own first characters
    and ignores the utterance, so every input gets the same few replies. Inactive when decoding."""
    if not config.reply_dropout:
        return y
    return layers.Dropout(
        config.reply_dropout, noise_shape=(None, config.max_len, 1), name="reply_dropout", dtype=dtype
    )(y)


def _softmax(config: ModelConfig, x):
    return layers.Dense(config.vocab_size, activation="softmax", name="reply", dtype="float32")(x)


def build_attention(config: ModelConfig, dtype=None) -> keras.Model:
    """A bidirectional GRU encoder; a GRU decoder fed the reply so far (teacher forcing), started from
    the encoder's last states, attending over every encoder state (Luong: attend, concatenate, tanh)."""
    u = config.units
    chars, reply_in = _inputs(config)
    mask = PaddingMask(name="padding_mask")(chars)
    x = layers.Embedding(config.vocab_size, u, name="utterance_embedding", dtype=dtype)(chars)
    states, forward, backward = layers.Bidirectional(
        layers.GRU(u, return_sequences=True, return_state=True, name="encoder_gru", dtype=dtype),
        name="encoder",
        dtype=dtype,
    )(x)
    both = layers.Concatenate(name="encoder_last", dtype=dtype)([forward, backward])
    start = layers.Dense(u, activation="tanh", name="bridge", dtype=dtype)(both)
    y = layers.Embedding(config.vocab_size + 1, u, name="reply_embedding", dtype=dtype)(reply_in)
    y = _reply_dropout(config, y, dtype)
    # return_state: the same layer then steps one character at a time when decoding (decoding_parts).
    y, _ = layers.GRU(u, return_sequences=True, return_state=True, name="decoder", dtype=dtype)(y, initial_state=start)
    heads = config.num_heads()
    context = layers.MultiHeadAttention(heads, u // heads, name="cross_attention", dtype=dtype)(
        y, states, attention_mask=mask
    )
    h = layers.Concatenate(name="attend", dtype=dtype)([y, context])
    h = layers.Dense(u, activation="tanh", name="attentional", dtype=dtype)(h)
    return keras.Model([chars, reply_in], _softmax(config, h), name="nocpipe_attention")


def _block(x, config: ModelConfig, name: str, dtype, *, causal=False, self_mask=None, context=None, context_mask=None):
    """A pre-norm Transformer block: self-attention, cross-attention (decoder), feed-forward."""
    u, heads = config.units, config.num_heads()
    h = layers.LayerNormalization(name=f"{name}_norm1", dtype=dtype)(x)
    h = layers.MultiHeadAttention(heads, u // heads, name=f"{name}_self_attention", dtype=dtype)(
        h, h, attention_mask=self_mask, use_causal_mask=causal
    )
    x = layers.Add(name=f"{name}_add1", dtype=dtype)([x, h])
    if context is not None:
        h = layers.LayerNormalization(name=f"{name}_norm2", dtype=dtype)(x)
        h = layers.MultiHeadAttention(heads, u // heads, name=f"{name}_cross_attention", dtype=dtype)(
            h, context, attention_mask=context_mask
        )
        x = layers.Add(name=f"{name}_add2", dtype=dtype)([x, h])
    h = layers.LayerNormalization(name=f"{name}_norm3", dtype=dtype)(x)
    h = layers.Dense(4 * u, activation="relu", name=f"{name}_ff1", dtype=dtype)(h)
    h = layers.Dense(u, name=f"{name}_ff2", dtype=dtype)(h)
    return layers.Add(name=f"{name}_add3", dtype=dtype)([x, h])


def build_transformer(config: ModelConfig, dtype=None) -> keras.Model:
    """A small encoder-decoder Transformer: `layers` blocks each side, model width `units`,
    causal self-attention in the decoder, cross-attention over the encoded utterance."""
    u = config.units
    chars, reply_in = _inputs(config)
    mask = PaddingMask(name="padding_mask")(chars)
    x = layers.Embedding(config.vocab_size, u, name="utterance_embedding", dtype=dtype)(chars)
    x = PositionEmbedding(config.max_len, config.positions, name="utterance_positions", dtype=dtype)(x)
    for i in range(config.layers):
        x = _block(x, config, f"encoder{i}", dtype, self_mask=mask)
    encoded = layers.LayerNormalization(name="encoder_norm", dtype=dtype)(x)
    y = layers.Embedding(config.vocab_size + 1, u, name="reply_embedding", dtype=dtype)(reply_in)
    y = _reply_dropout(config, y, dtype)
    y = PositionEmbedding(config.max_len, config.positions, name="reply_positions", dtype=dtype)(y)
    for i in range(config.layers):
        y = _block(y, config, f"decoder{i}", dtype, causal=True, context=encoded, context_mask=mask)
    y = layers.LayerNormalization(name="decoder_norm", dtype=dtype)(y)
    return keras.Model([chars, reply_in], _softmax(config, y), name="nocpipe_transformer")


def decoding_parts(model: keras.Model, config: ModelConfig):
    """An autoregressive `model` split for fast decoding, sharing its layers (and weights):

        encoder(chars) -> context arrays, computed once per utterance
        step(*context, token, position, *state) -> (probs (batch, 1, vocab), *new_state)

    attention: state = the decoder GRU's hidden vector (batch, units).
    transformer: state = per decoder block, the normalised inputs of every position so far
    (batch, max_len, units), zero from `position` on; the step returns each block's vector at
    `position` (batch, 1, units) to be written there. The step runs one position of the
    decoder against that cache: the same numbers as the full model, without its quadratic cost.
    Returns (encoder, step, state_shapes)."""
    T, u = config.max_len, config.units
    get = model.get_layer
    chars = keras.Input((T,), dtype="int32", name="chars")
    token = keras.Input((1,), dtype="int32", name="token")
    position = keras.Input((1,), dtype="int32", name="position")
    mask = get("padding_mask")(chars)
    x = get("utterance_embedding")(chars)
    if config.arch == "attention":
        states, forward, backward = get("encoder")(x)
        start = get("bridge")(get("encoder_last")([forward, backward]))
        encoder = keras.Model(chars, [states, mask, start], name="encoder")
        states_in = keras.Input((T, 2 * u), name="states")
        mask_in = keras.Input((1, T), dtype="bool", name="mask")
        h_in = keras.Input((u,), name="hidden")
        y = get("reply_embedding")(token)
        y, h = get("decoder")(y, initial_state=h_in)
        context = get("cross_attention")(y, states_in, attention_mask=mask_in)
        out = get("reply")(get("attentional")(get("attend")([y, context])))
        step = keras.Model([states_in, mask_in, token, position, h_in], [out, h], name="step")
        return encoder, step, [(u,)]
    x = get("utterance_positions")(x)
    for i in range(config.layers):
        x = _block_by_name(x, get, f"encoder{i}", self_mask=mask)
    encoded = get("encoder_norm")(x)
    encoder = keras.Model(chars, [encoded, mask], name="encoder")
    enc_in = keras.Input((T, u), name="encoded")
    mask_in = keras.Input((1, T), dtype="bool", name="mask")
    caches = [keras.Input((T, u), name=f"cache{i}") for i in range(config.layers)]
    here = ops.expand_dims(ops.one_hot(position[:, 0], T), -1)  # (batch, T, 1)
    seen = ops.expand_dims(ops.less_equal(ops.arange(T)[None, :], position), 1)  # (batch, 1, T)
    y = get("reply_positions")(get("reply_embedding")(token), positions=position)
    news = []
    for i in range(config.layers):
        name = f"decoder{i}"
        h = get(f"{name}_norm1")(y)
        news.append(h)
        full = caches[i] * (1.0 - here) + h * here
        y = get(f"{name}_add1")([y, get(f"{name}_self_attention")(h, full, attention_mask=seen)])
        h = get(f"{name}_norm2")(y)
        y = get(f"{name}_add2")([y, get(f"{name}_cross_attention")(h, enc_in, attention_mask=mask_in)])
        h = get(f"{name}_ff2")(get(f"{name}_ff1")(get(f"{name}_norm3")(y)))
        y = get(f"{name}_add3")([y, h])
    out = get("reply")(get("decoder_norm")(y))
    step = keras.Model([enc_in, mask_in, token, position, *caches], [out, *news], name="step")
    return encoder, step, [(T, u)] * config.layers


def _block_by_name(x, get, name: str, self_mask):
    """An encoder block of a built model, re-applied (decoding_parts)."""
    h = get(f"{name}_norm1")(x)
    x = get(f"{name}_add1")([x, get(f"{name}_self_attention")(h, h, attention_mask=self_mask)])
    h = get(f"{name}_ff2")(get(f"{name}_ff1")(get(f"{name}_norm3")(x)))
    return get(f"{name}_add3")([x, h])


BUILDERS = {
    "seed": build_seed,
    "simple": build_simple,
    "dense-attention": build_dense_attention,
    "attention": build_attention,
    "transformer": build_transformer,
}


def build_model(config: ModelConfig, dtype=None) -> keras.Model:
    """The uncompiled network of `config.arch`; `dtype` overrides the global dtype policy."""
    config.validate()
    return BUILDERS[config.arch](config, dtype)


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
            return {
                "name": details.get("device_name", "GPU"),
                "capability": tuple(details.get("compute_capability", (0, 0))),
            }
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
        elif isinstance(layer, (layers.LSTM, layers.GRU)):
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
        if isinstance(layer, layers.GRU) and not cell.reset_after:
            problems.append(f"{layer.name}: reset_after=False")
    # No layer here makes a Keras mask (padding is handled by attention masks and loss weights),
    # so no recurrent layer is masked (cuDNN cannot take one in Keras 3).
    where = f"{backend} on {gpu['name']}" if gpu else f"{backend} on CPU"
    if not lstms:
        return f"RNN: no recurrent layers in this network ({where})"
    if gpu is None:
        return f"RNN: fused cuDNN kernel not in use ({where}: no GPU visible); {len(lstms)} recurrent layers run the generic loop"
    if problems:
        return f"RNN: fused cuDNN kernel not in use ({where}): " + "; ".join(problems)
    if backend == "jax":
        try:
            import jax.experimental.rnn  # noqa: F401
        except ImportError:
            return f"RNN: fused cuDNN kernel not in use ({where}: jax.experimental.rnn missing)"
    return (
        f"RNN: fused cuDNN kernel in use ({where}; {len(lstms)} recurrent layers: tanh/sigmoid, "
        "no recurrent dropout, no mask, not unrolled)"
    )
