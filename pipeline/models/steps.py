"""An autoregressive network split for fast decoding: the encoder once per utterance, then one
decoder position per step, sharing the trained model's layers (and weights)."""

from __future__ import annotations

import keras
from keras import ops

from .config import ModelConfig
from .layers import padding_mask, position_ids


def decoding_parts(model: keras.Model, config: ModelConfig):
    """`model` (attention or transformer) as

        encoder(chars) -> context arrays, computed once per utterance
        step(*context, token, position, *state) -> (probs (batch, 1, vocab), *new_state)

    attention: state = the decoder GRU's hidden vector (batch, units).
    transformer: state = per decoder block, the normalised inputs of every position so far
    (batch, max_len, units), zero from `position` on; the step returns each block's vector at
    `position` (batch, 1, units) to be written there. The step runs one position of the
    decoder against that cache: the same numbers as the full model, without its quadratic cost.
    Dropout layers are left out (they pass their input on when not training).
    Returns (encoder, step, state_shapes)."""
    T = config.max_len
    get = model.get_layer
    chars = keras.Input((T,), dtype="int32", name="chars")
    token = keras.Input((1,), dtype="int32", name="token")
    position = keras.Input((1,), dtype="int32", name="position")
    mask = get("padding_mask")(chars) if config.graph == 1 else padding_mask(chars)
    x = get("utterance_embedding")(chars)
    if config.arch == "attention":
        return _attention_parts(get, config, chars, token, position, mask, x)
    x = _positions(get, config, x, "utterance_positions", position_ids(chars), None)
    for i in range(config.layers):
        x = _encoder_block(x, get, f"encoder{i}", self_mask=mask)
    encoded = get("encoder_norm")(x)
    encoder = keras.Model(chars, [encoded, mask], name="encoder")
    u = config.units
    enc_in = keras.Input((T, u), name="encoded")
    mask_in = keras.Input((1, T), dtype="bool", name="mask")
    caches = [keras.Input((T, u), name=f"cache{i}") for i in range(config.layers)]
    here = ops.expand_dims(ops.one_hot(position[:, 0], T), -1)  # (batch, T, 1)
    seen = ops.expand_dims(ops.less_equal(ops.arange(T)[None, :], position), 1)  # (batch, 1, T)
    y = _positions(get, config, get("reply_embedding")(token), "reply_positions", position, position)
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


def _attention_parts(get, config: ModelConfig, chars, token, position, mask, x):
    T, u = config.max_len, config.units
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


def _positions(get, config: ModelConfig, x, name: str, ids, step_positions):
    """x plus its position vectors, by the trained layers of either graph; `step_positions` (batch, 1)
    when x is one decoding step (graph 1's layer takes them as an argument)."""
    if config.graph == 1:
        return get(name)(x) if step_positions is None else get(name)(x, positions=step_positions)
    return get(f"{name}_add")([x, get(name)(ids)])


def _encoder_block(x, get, name: str, self_mask):
    """An encoder block of a built model, re-applied."""
    h = get(f"{name}_norm1")(x)
    x = get(f"{name}_add1")([x, get(f"{name}_self_attention")(h, h, attention_mask=self_mask)])
    h = get(f"{name}_ff2")(get(f"{name}_ff1")(get(f"{name}_norm3")(x)))
    return get(f"{name}_add3")([x, h])
