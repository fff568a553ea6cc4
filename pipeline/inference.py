"""A trained model folder as a chatbot: load once, score replies, decode replies. Used by predict,
evaluate and serve.

    load_bot(folder)            the bot of a model folder: a RetrievalBot for arch "retrieval",
                                else a Chatbot (both answer the same calls, below)
    Chatbot.load(folder)        config.json (format checked), vocab.json, model.keras (safe mode,
                                checked against its config)
    to_kana(text)               the reading the corpus used (the reader saved with the model)
    log_probs(utts, replies)    natural-log p of each reply character and of the end token
    rank(utt, candidates)       Σ log p(candidate + end | utt) of each candidate (higher is better)
    reply(utts, decoding)       `decoding.num` distinct Candidates per utterance, best first

Tokens. The model predicts ids of the vocabulary; id 0 (padding) is the end of the reply, id 1
(unknown) is never produced. A reply has at most max_len - 1 characters, so its end always has
a position. The autoregressive networks (attention, transformer) read the reply so far after a
start token (id vocab_size); the parallel ones (seed, simple, dense-attention) predict every
position at once from the utterance, so for them position t's softmax is the distribution of
character t whatever came before, and the end is padding at the position after the reply.
Either way p(reply + end | utterance) is the product over positions, and the strategies of
pipeline/decoding.py serve both through one `step(rows, tokens, t)`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

import numpy as np

from . import modeldir
from .decoding import Candidate, Decoding, Space, Step, n_best
from .errors import ModelError, UsageError
from .vocab import PAD, Vocab

#: Rows per forward pass when scoring or decoding.
BATCH_ROWS = 256

__all__ = ["Candidate", "Chatbot", "load_bot", "strip_quotes", "BATCH_ROWS"]


def load_bot(model_dir: Path, log=None):
    """The bot of a model folder, by config.json's architecture: `retrieval` is a RetrievalBot,
    every other one a Chatbot. Both have arch, name, max_len, vocab, to_kana, reply, rank, warm_up."""
    config = modeldir.read_config(Path(model_dir))
    if config["model"].get("arch") == "retrieval":
        from .retrieval.bot import RetrievalBot

        return RetrievalBot.load(Path(model_dir))
    return Chatbot.load(Path(model_dir), log=log)


def strip_quotes(text: str) -> str:
    """The text inside one outer 「」 pair, without surrounding blanks."""
    text = text.strip().strip("\u3000")
    if len(text) >= 2 and text[0] == "「" and text[-1] == "」":
        text = text[1:-1].strip()
    return text


def _log(p: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(np.asarray(p, dtype=np.float64), 1e-30))


class Chatbot:
    """A loaded generative model folder; see the module docstring."""

    def __init__(self, model, config: dict, vocab: Vocab, name: str = "model", model_dir: Path | None = None, log=None):
        from .models import ModelConfig

        self.model = model
        self.config = config
        self.model_config = ModelConfig.from_dict(config["model"])
        self.vocab = vocab
        self.name = name
        self.model_dir = model_dir
        self.arch = self.model_config.arch
        self.max_len = vocab.max_len
        self.autoregressive = self.model_config.autoregressive
        self.ngram = None  # the reply n-gram model for --mmi: loaded on first use, or set by the caller
        self._log = log or (lambda s: None)
        self._decoding = None
        self.space = Space(vocab.max_len, self.model_config.vocab_size, len(vocab))

    # ------------------------------------------------------------ loading

    @classmethod
    def load(cls, model_dir: Path, log=None) -> "Chatbot":
        model_dir = Path(model_dir)
        config = modeldir.read_config(model_dir)
        vocab = modeldir.ModelDir(model_dir).read_vocab()
        path = modeldir.ModelDir(model_dir).model_path
        if not path.exists():
            raise ModelError(
                f"{model_dir} has no {modeldir.MODEL_FILE} yet: "
                "train at least one epoch (nocpipe train --resume continues)"
            )
        from .models import ModelConfig

        try:
            mcfg = ModelConfig.from_dict(config["model"])
        except (TypeError, UsageError) as exc:
            raise ModelError(f"config.json in {model_dir} is damaged: {exc}") from None
        if mcfg.max_len != vocab.max_len:
            raise ModelError(
                f"{model_dir}: config.json says {mcfg.max_len} steps, vocab.json {vocab.max_len}: "
                "was the folder changed by hand? restore it, or train the model again with --force"
            )
        from .models import quiet_keras

        quiet_keras()  # before anything imports Keras: TensorFlow's start-up lines dropped
        from .models import load_for_config

        return cls(load_for_config(path, mcfg), config, vocab, name=model_dir.name, model_dir=model_dir, log=log)

    def to_kana(self, text: str) -> str:
        """`text` (any Japanese, one outer 「」 dropped) read into katakana as the corpus was."""
        from .kana import to_katakana

        return to_katakana(strip_quotes(text), self.vocab.reader)

    def warm_up(self) -> None:
        """One small decode, so the first real request does not pay for tracing."""
        self.reply(["ア"] * 2, Decoding())

    # ------------------------------------------------------------ the network

    def _forward(self, inputs) -> np.ndarray:
        """Probabilities (rows, max_len, vocab) of the whole network for int32 inputs."""
        return _predict(self.model, inputs if isinstance(inputs, tuple) else (inputs,))[0]

    def _parts(self):
        if self._decoding is None:
            from .models import decoding_parts

            self._decoding = decoding_parts(self.model, self.model_config)
        return self._decoding

    def _encode_replies(self, replies: Sequence[str]) -> np.ndarray:
        y = self.vocab.encode_replies(list(replies))
        y[:, -1] = PAD  # at most max_len - 1 characters: the end always has a position
        return y

    def _decoder_input(self, y: np.ndarray) -> np.ndarray:
        d = np.empty_like(y)
        d[:, 0] = self.model_config.start_id
        d[:, 1:] = y[:, :-1]
        return d

    # ------------------------------------------------------------ scoring

    def log_probs(self, utterances_kana: list[str], replies_kana: list[str]) -> list[np.ndarray]:
        """Per reply: natural-log p of each of its characters (cut to max_len - 1, unknown ones as the
        unknown token) and of the end token after them: len(reply) + 1 values."""
        return self.teacher_forced(utterances_kana, replies_kana)[0]

    def teacher_forced(
        self, utterances_kana: list[str], replies_kana: list[str]
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """log_probs(), and for the same tokens whether the model ranks the true one first (given
        the true reply so far): what evaluate's char accuracy counts."""
        if len(utterances_kana) != len(replies_kana):
            raise UsageError("log_probs needs one reply per utterance")
        if not utterances_kana:
            return [], []
        x = self.vocab.encode_utterances(list(utterances_kana))
        y = self._encode_replies(replies_kana)
        probs = self._forward((x, self._decoder_input(y)) if self.autoregressive else x)
        picked = np.take_along_axis(probs, y[:, :, None], axis=2)[:, :, 0]
        hits = probs.argmax(axis=2) == y
        lps, correct = [], []
        for i, r in enumerate(replies_kana):
            n = min(len(r), self.max_len - 1) + 1
            lps.append(_log(picked[i, :n]))
            correct.append(hits[i, :n])
        return lps, correct

    def rank(self, utterance_kana: str, candidates_kana: list[str]) -> np.ndarray:
        """Σ log p(candidate + end | utterance) of each candidate (natural log; cut to max_len − 1
        characters, unknown ones as the unknown token), float64, higher is better."""
        lps = self.log_probs([utterance_kana] * len(candidates_kana), list(candidates_kana))
        return np.asarray([float(lp.sum()) for lp in lps], dtype=np.float64)

    # ------------------------------------------------------------ decoding

    def _stepper(self, x: np.ndarray, k: int):
        """step(rows, tokens, t) -> log p (len(rows), vocab) of position t, given tokens[:, :t];
        row r answers utterance r // k of x."""
        if not self.autoregressive:
            logp = _log(self._forward(x))  # one pass: positions do not depend on each other

            def step(rows, tokens, t):
                return logp[rows // k, t]

            return step
        return _Incremental(self, x, k)

    def reply(self, utterances_kana: list[str], decoding: Decoding | None = None, **options) -> list[list[Candidate]]:
        """One list per utterance, best first, of `decoding.num` distinct Candidates (fewer only when
        the vocabulary cannot make that many); pipeline/decoding.py says how each mode chooses.
        `options`: a Decoding's fields, for callers that have none built."""
        decoding = (decoding or Decoding(**options)).validate_for(self.arch)
        if not utterances_kana:
            return []
        lm_score = self._ngram().score if decoding.mmi else None
        out: list[list[Candidate]] = []
        size = decoding.inputs_per_pass()  # memory stays bounded whatever the number of inputs
        for i in range(0, len(utterances_kana), size):
            x = self.vocab.encode_utterances(list(utterances_kana[i : i + size]))
            # cast: mypy cannot infer a lambda with a default argument from the parameter's type
            make_step = cast(Callable[[np.ndarray, int], Step], lambda idx, k, x=x: self._stepper(x[idx], k))
            out += n_best(make_step, len(x), decoding, self.space, self.vocab.decode, lm_score)
        return out

    def _ngram(self):
        """The reply n-gram model MMI reranks by: the one set by the caller, else the model folder's."""
        if self.ngram is None:
            if self.model_dir is None:
                raise UsageError("--mmi needs the reply n-gram model: load the bot from its folder or set .ngram")
            from .ngram import ngram_for_model

            self.ngram, _ = ngram_for_model(self.model_dir, self.vocab, log=self._log)
        return self.ngram


def _predict(model, arrays: tuple) -> list[np.ndarray]:
    """model.predict_on_batch over `arrays` (same first dimension) in batches of BATCH_ROWS, each padded
    to a power of two rows, so the compiled predict function sees few shapes; every output as numpy."""
    n = len(arrays[0])
    outs: list[list[np.ndarray]] = []
    for i in range(0, n, BATCH_ROWS):
        part = [a[i : i + BATCH_ROWS] for a in arrays]
        rows = len(part[0])
        size = max(8, 1 << (rows - 1).bit_length())
        if size != rows:
            part = [np.concatenate([a, np.zeros((size - rows, *a.shape[1:]), dtype=a.dtype)]) for a in part]
        got = model.predict_on_batch(tuple(part) if len(part) > 1 else part[0])
        got = got if isinstance(got, (list, tuple)) else [got]
        outs.append([np.asarray(g)[:rows] for g in got])
    if len(outs) == 1:
        return outs[0]
    return [np.concatenate(col) for col in zip(*outs)]


class _Incremental:
    """The decoder of an autoregressive network, one position at a time, with its state kept per row
    (row r answers utterance r // k): the encoder runs once, each step costs one position."""

    def __init__(self, bot: Chatbot, x: np.ndarray, k: int):
        encoder, self.step_model, shapes = bot._parts()
        context = _predict(encoder, (x,))
        self.attention = bot.arch == "attention"
        if self.attention:
            states, mask, start = context
            self.context = [np.repeat(states, k, axis=0), np.repeat(mask, k, axis=0)]
            self.state = [np.repeat(start, k, axis=0)]
        else:
            self.context = [np.repeat(c, k, axis=0) for c in context]
            self.state = [np.zeros((len(x) * k, *shape), dtype=np.float32) for shape in shapes]
        self.start_id = bot.model_config.start_id

    def __call__(self, rows: np.ndarray, tokens: np.ndarray, t: int) -> np.ndarray:
        token = (
            np.full((len(rows), 1), self.start_id, dtype=np.int32) if t == 0 else tokens[:, t - 1 : t].astype(np.int32)
        )
        position = np.full((len(rows), 1), t, dtype=np.int32)
        outs = _predict(
            self.step_model, (*(c[rows] for c in self.context), token, position, *(s[rows] for s in self.state))
        )
        if self.attention:
            self.state[0][rows] = outs[1]
        else:
            for cache, new in zip(self.state, outs[1:]):
                cache[rows, t] = new[:, 0]
        return _log(outs[0][:, 0])

    def reorder(self, parent: np.ndarray) -> None:
        self.state = [s[parent] for s in self.state]
