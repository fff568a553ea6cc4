"""The networks of `--arch`, one builder each, from Keras layers and ops only (graph 2; graph 1, in
folders written before it, used nocpipe's own PaddingMask and PositionEmbedding layers instead).

    chars (batch, max_len) int32, the utterance (reversed by default)
    parallel (every reply position at once, from one vector of the utterance):
      one-hot (CategoryEncoding) ──LSTM(units)──> encoding
        seed:            × Dense(units, softmax) over the flattened one-hot input
        simple:          (no attention vector)
        dense-attention: × Dense(units, softmax) over the encoding itself
      ──RepeatVector(max_len)──Bidirectional(LSTM(units, return_sequences))──TimeDistributed(Dense(vocab, softmax))
    autoregressive (reply_in: the reply so far after a start token, teacher forcing):
      attention:   Embedding ──Bidirectional(GRU)──> states; GRU decoder from the encoder's last states,
                   multi-head cross-attention over every state (padding masked), concatenate, tanh
      transformer: Embedding + positions ──`layers` pre-norm blocks──> encoded; decoder blocks with
                   causal self-attention and cross-attention over the encoded utterance
    -> (batch, max_len, vocab) character probabilities; id 0 (padding) ends the reply

`seed` is figure 3 of the 2017 post exactly (LSTM(512), Dense(512, softmax) on the flattened input
multiplied into the encoding, RepeatVector(50), a bidirectional LSTM(512) decoder, a softmax over 128
characters), fed integer sequences: the one-hot expansion happens inside the model, so the corpus
never exists as a 25 GB float array.

Every layer is named (the decoding split and the tests find them by name); no Lambda layer, so a
saved `.keras` file loads in safe mode, with plain `keras.saving.load_model`.
"""

from __future__ import annotations

import keras
from keras import layers

from .config import ModelConfig
from .layers import PaddingMask, PositionEmbedding, add_positions, padding_mask, position_ids


def _encoder(config: ModelConfig, dtype):
    chars = keras.Input(shape=(config.max_len,), dtype="int32", name="chars")
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


def _mask(config: ModelConfig, chars):
    return PaddingMask(name="padding_mask")(chars) if config.graph == 1 else padding_mask(chars)


def _positions(config: ModelConfig, x, ids, name: str, dtype):
    if config.graph == 1:
        return PositionEmbedding(config.max_len, config.positions, name=name, dtype=dtype)(x)
    return add_positions(config, x, position_ids(ids), name, dtype)


def _dropout(config: ModelConfig, x, name: str, dtype):
    """`--dropout`: active in training only, so decoding (which skips these layers) is unchanged."""
    return layers.Dropout(config.dropout, name=name, dtype=dtype)(x) if config.dropout else x


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
    mask = _mask(config, chars)
    x = layers.Embedding(config.vocab_size, u, name="utterance_embedding", dtype=dtype)(chars)
    x = _dropout(config, x, "utterance_dropout", dtype)
    states, forward, backward = layers.Bidirectional(
        layers.GRU(u, return_sequences=True, return_state=True, name="encoder_gru", dtype=dtype),
        name="encoder",
        dtype=dtype,
    )(x)
    both = layers.Concatenate(name="encoder_last", dtype=dtype)([forward, backward])
    start = layers.Dense(u, activation="tanh", name="bridge", dtype=dtype)(both)
    y = layers.Embedding(config.vocab_size + 1, u, name="reply_embedding", dtype=dtype)(reply_in)
    y = _reply_dropout(config, y, dtype)
    # return_state: the same layer then steps one character at a time when decoding (steps.py).
    y, _ = layers.GRU(u, return_sequences=True, return_state=True, name="decoder", dtype=dtype)(y, initial_state=start)
    heads = config.num_heads()
    context = layers.MultiHeadAttention(heads, u // heads, dropout=config.dropout, name="cross_attention", dtype=dtype)(
        y, states, attention_mask=mask
    )
    h = layers.Concatenate(name="attend", dtype=dtype)([y, context])
    h = layers.Dense(u, activation="tanh", name="attentional", dtype=dtype)(h)
    h = _dropout(config, h, "attentional_dropout", dtype)
    return keras.Model([chars, reply_in], _softmax(config, h), name="nocpipe_attention")


def _block(x, config: ModelConfig, name: str, dtype, *, causal=False, self_mask=None, context=None, context_mask=None):
    """A pre-norm Transformer block: self-attention, cross-attention (decoder), feed-forward."""
    u, heads, rate = config.units, config.num_heads(), config.dropout
    h = layers.LayerNormalization(name=f"{name}_norm1", dtype=dtype)(x)
    h = layers.MultiHeadAttention(heads, u // heads, dropout=rate, name=f"{name}_self_attention", dtype=dtype)(
        h, h, attention_mask=self_mask, use_causal_mask=causal
    )
    x = layers.Add(name=f"{name}_add1", dtype=dtype)([x, _dropout(config, h, f"{name}_drop1", dtype)])
    if context is not None:
        h = layers.LayerNormalization(name=f"{name}_norm2", dtype=dtype)(x)
        h = layers.MultiHeadAttention(heads, u // heads, dropout=rate, name=f"{name}_cross_attention", dtype=dtype)(
            h, context, attention_mask=context_mask
        )
        x = layers.Add(name=f"{name}_add2", dtype=dtype)([x, _dropout(config, h, f"{name}_drop2", dtype)])
    h = layers.LayerNormalization(name=f"{name}_norm3", dtype=dtype)(x)
    h = layers.Dense(4 * u, activation="relu", name=f"{name}_ff1", dtype=dtype)(h)
    h = layers.Dense(u, name=f"{name}_ff2", dtype=dtype)(h)
    return layers.Add(name=f"{name}_add3", dtype=dtype)([x, _dropout(config, h, f"{name}_drop3", dtype)])


def build_transformer(config: ModelConfig, dtype=None) -> keras.Model:
    """A small encoder-decoder Transformer: `layers` blocks each side, model width `units`,
    causal self-attention in the decoder, cross-attention over the encoded utterance."""
    u = config.units
    chars, reply_in = _inputs(config)
    mask = _mask(config, chars)
    x = layers.Embedding(config.vocab_size, u, name="utterance_embedding", dtype=dtype)(chars)
    x = _positions(config, x, chars, "utterance_positions", dtype)
    x = _dropout(config, x, "utterance_dropout", dtype)
    for i in range(config.layers):
        x = _block(x, config, f"encoder{i}", dtype, self_mask=mask)
    encoded = layers.LayerNormalization(name="encoder_norm", dtype=dtype)(x)
    y = layers.Embedding(config.vocab_size + 1, u, name="reply_embedding", dtype=dtype)(reply_in)
    y = _reply_dropout(config, y, dtype)
    y = _positions(config, y, reply_in, "reply_positions", dtype)
    y = _dropout(config, y, "reply_in_dropout", dtype)
    for i in range(config.layers):
        y = _block(y, config, f"decoder{i}", dtype, causal=True, context=encoded, context_mask=mask)
    y = layers.LayerNormalization(name="decoder_norm", dtype=dtype)(y)
    return keras.Model([chars, reply_in], _softmax(config, y), name="nocpipe_transformer")


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
