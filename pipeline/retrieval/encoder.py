"""The dual encoder: an utterance tower and a reply tower over character n-grams, Keras layers only.

    ids (batch, width) ──Embedding(size, units)──────────────┐
                       ──Embedding(size, 1), IDF-initialised─┴─Dot(axes=1): Σ weight·vector
        ──Flatten──UnitNormalization──> h                   (the towers share these: a gram means
                                                             the same on both sides)
    utterance tower  u = norm(h + Dense(units, zeros)(Dropout(h)))   (a linear map beside the identity)
    reply tower      r = the same with weights of its own
    beside it, per tower, a learned channel over 1- and 2-grams (trained vectors, averaged), and the
two joined at equal weight; score(u, r) = u·r, the mean of the two cosines; training multiplies it by a learned inverse temperature and takes a
    softmax over every reply of the batch (in-batch negatives), in both directions.

The gram vectors are random and stay fixed; with the heads starting at zero the first score is a
random projection of two IDF-weighted n-gram vectors: close to their TF-IDF cosine. Training learns
the weight of every gram and the two linear maps, i.e. what a fitting reply looks like beyond shared
words (a question and its answer, a work's way of speaking), with a third of the grams dropped at
every step so that no pair is learnt by heart. Grams never seen in training keep their vectors and
weights, so shared words still count in works the model never saw.

`model.keras` holds the inference model (two inputs, two outputs: u and r): only Keras's own
layers, so it loads with `keras.saving.load_model` alone on any backend.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EncoderShape:
    grams: int  # embedding rows (NgramSpace.size)
    width: int  # ids per text (NgramSpace.width)
    units: int = 256
    dropout: float = 0.1
    gram_dropout: float = 0.3
    style_units: int = 64  # the learned channel over 1- and 2-grams (0: none)
    style_rows: int = 0  # ids below this are 1- and 2-grams (NgramSpace.alphabet + alphabet²)


def _pool(ids, emb, weight, gram_dropout: float, name: str):
    from keras import layers

    vectors = emb(ids)  # (batch, width, units)
    weights = weight(ids)  # (batch, width, 1)
    if gram_dropout:  # training only: a pair cannot be recognised by a few rare grams of its own
        weights = layers.Dropout(gram_dropout, name=f"{name}_gram_dropout")(weights)
    pooled = layers.Dot(axes=1, name=f"{name}_pool")([weights, vectors])  # (batch, 1, units)
    return layers.UnitNormalization(name=f"{name}_norm")(layers.Flatten(name=f"{name}_flat")(pooled))


def _head(h, units: int, dropout: float, name: str):
    """A linear map added to the identity: a hidden layer memorised the train pairs and scored
    held-out works worse than the untrained encoder; a linear one generalises."""
    from keras import layers

    x = layers.Dropout(dropout, name=f"{name}_drop")(h)
    x = layers.Dense(units, kernel_initializer="zeros", name=f"{name}_map")(x)
    return layers.UnitNormalization(name=f"{name}_out")(layers.Add(name=f"{name}_res")([h, x]))


def _style(ids, emb, shape: EncoderShape, name: str):
    """The learned channel: mean of trained vectors of the text's 1- and 2-grams (trigrams, mostly
    words of one work, are left to the fixed channel), a linear map, unit length. This is where the
    way a work speaks is learnt: its particles, endings and spellings."""
    from keras import layers, ops

    short = ops.where(ops.less(ids, shape.style_rows), ids, ops.zeros_like(ids))
    x = layers.GlobalAveragePooling1D(name=f"{name}_style_pool")(emb(short))
    x = layers.Dropout(0.2, name=f"{name}_style_drop")(x)
    return layers.UnitNormalization(name=f"{name}_style_out")(layers.Dense(shape.style_units, name=f"{name}_style")(x))


def _join(lexical, style, name: str):
    """Both channels at equal weight: the score is the mean of their two cosines."""
    from keras import layers

    half = float(np.sqrt(0.5))
    return layers.Concatenate(name=f"{name}_vector")(
        [
            layers.Rescaling(half, name=f"{name}_lex_half")(lexical),
            layers.Rescaling(half, name=f"{name}_style_half")(style),
        ]
    )


def build_encoder(shape: EncoderShape, idf: np.ndarray | None = None, seed: int = 0):
    """The inference model: [utterance ids, reply ids] -> [u, r], unit vectors."""
    import keras
    from keras import layers

    emb = layers.Embedding(
        shape.grams,
        shape.units,
        embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0, seed=seed),
        trainable=False,  # random and fixed: a projection of the n-gram counts, the same for unseen grams
        name="grams",
    )
    init = "ones" if idf is None else keras.initializers.Constant(np.asarray(idf, dtype=np.float32)[:, None])
    weight = layers.Embedding(shape.grams, 1, embeddings_initializer=init, name="gram_weights")
    utt = keras.Input((shape.width,), dtype="int32", name="utterance")
    rep = keras.Input((shape.width,), dtype="int32", name="reply")
    u = _head(_pool(utt, emb, weight, shape.gram_dropout, "utterance"), shape.units, shape.dropout, "utterance")
    r = _head(_pool(rep, emb, weight, shape.gram_dropout, "reply"), shape.units, shape.dropout, "reply")
    if shape.style_units:
        style = layers.Embedding(
            shape.style_rows,
            shape.style_units,
            mask_zero=True,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=0.1, seed=seed + 1),
            name="style_grams",
        )
        u = _join(u, _style(utt, style, shape, "utterance"), "utterance")
        r = _join(r, _style(rep, style, shape, "reply"), "reply")
    return keras.Model([utt, rep], [u, r], name="retrieval")


def trainer(encoder, temperature: float = 20.0):
    """The training wrapper: the encoder plus a learned inverse temperature, with the in-batch loss.

    For a batch of n pairs the scores form an n x n matrix (utterance i against reply j); the
    loss is the cross-entropy of picking the diagonal, over rows (which reply fits utterance i)
    and over columns (which utterance reply j answers), as ConveRT and CLIP train theirs. The
    temperature is learned in log space and capped at 100 so the logits cannot run away.
    """
    import keras
    from keras import ops

    cap = np.float32(np.log(100.0))

    class InBatchTrainer(keras.Model):
        def __init__(self, enc):
            super().__init__(name="retrieval_trainer")
            self.enc = enc
            self.log_scale = self.add_weight(
                shape=(), initializer=keras.initializers.Constant(np.log(temperature)), name="log_scale"
            )

        def call(self, inputs, training=False):
            u, r = self.enc(inputs, training=training)
            return ops.concatenate([u, r], axis=-1)

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            d = y_pred.shape[-1] // 2
            u, r = y_pred[:, :d], y_pred[:, d:]
            logits = ops.matmul(u, ops.transpose(r)) * ops.exp(ops.minimum(self.log_scale, cap))
            labels = ops.arange(ops.shape(logits)[0])
            rows = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            cols = keras.losses.sparse_categorical_crossentropy(labels, ops.transpose(logits), from_logits=True)
            return ops.mean(rows + cols) / 2

    return InBatchTrainer(encoder)


def tower_vectors(encoder, space, vocab, texts: list[str], side: int, batch: int = 512) -> np.ndarray:
    """Unit vectors (float32) of katakana texts through one tower (0: utterance, 1: reply). Batches
    are padded to a power of two rows, so the compiled predict function sees few shapes."""
    out = []
    for start in range(0, len(texts), batch):
        ids = space.encode(vocab, texts[start : start + batch])
        rows = len(ids)
        size = max(8, 1 << (rows - 1).bit_length())
        padded = np.concatenate([ids, np.zeros((size - rows, ids.shape[1]), ids.dtype)]) if size > rows else ids
        both = encoder.predict_on_batch([padded, padded])
        out.append(np.asarray(both[side], dtype=np.float32)[:rows])
    return np.concatenate(out) if out else np.zeros((0, encoder.outputs[side].shape[-1]), np.float32)


def gram_weights(encoder) -> np.ndarray:
    """The learned weight of every n-gram id (IDF at the start): what the lexical score weighs by."""
    from ..errors import ModelError

    try:
        return np.asarray(encoder.get_layer("gram_weights").get_weights()[0][:, 0], dtype=np.float64)
    except (ValueError, IndexError) as exc:
        raise ModelError(f"the retrieval model has no gram_weights layer: {exc}") from None
