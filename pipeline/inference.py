"""A trained model folder as a chatbot: load once, score replies, decode replies. Used by predict,
evaluate and serve.

    Chatbot.load(folder)        config.json (format checked), vocab.json, model.keras (safe mode)
    to_kana(text)               the reading the corpus used (the reader saved with the model)
    log_probs(utts, replies)    natural-log p of each reply character and of the end token
    reply(utts, ...)            `num` distinct candidates per utterance, best first, with scores

Tokens. The model predicts ids of the vocabulary; id 0 (padding) is the end of the reply, id 1
(unknown) is never produced. A reply has at most max_len - 1 characters, so its end always has
a position. The autoregressive networks (attention, transformer) read the reply so far after a
start token (id vocab_size); the parallel ones (seed, simple, dense-attention) predict every
position at once from the utterance, so for them position t's softmax is the distribution of
character t whatever came before, and the end is padding at the position after the reply.
Either way p(reply + end | utterance) is the product over positions, and one decoder serves both.

Decoding (batched over utterances, and over beams or samples):
    greedy          the most probable next character (the default)
    sampling        temperature T, then nucleus (top-p) cut; `num` distinct replies from repeated
                    draws, topped up by beam search when the draws repeat themselves
    beam search     width max(beam, num); finished replies ranked by log p / ((5 + n) / 6) ** alpha
                    (Wu et al. 2016's length penalty, alpha = length_penalty)
    in every mode   no character n-gram repeated (no_repeat_ngram, 4 by default; 0 = off), unknown
                    never produced, the end not at the first position, forced at the last.
Scores are the model's own log p(reply + end | utterance), whatever ranked the candidates.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import modeldir
from .errors import ModelError, UsageError
from .vocab import PAD, UNK, Vocab

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: The most candidates one utterance may ask for (predict says so when it caps --num).
MAX_NUM = 50
#: Rows per forward pass when scoring or decoding.
BATCH_ROWS = 256
END = PAD
_NEG = -np.inf


@dataclass(frozen=True)
class Candidate:
    text: str  # katakana reply, no 「」
    score: float  # the model's own score (log p(reply + end | utterance) for a generative one; higher is better)
    surface: str | None = None  # a retrieved reply: the original line, as the author wrote it
    source: dict | None = None  # a retrieved reply: where it came from (work_id, title, episode, line)


Reranker = Callable[[str, list[Candidate]], list[Candidate]]


def strip_quotes(text: str) -> str:
    """The text inside one outer 「」 pair, without surrounding blanks."""
    text = text.strip().strip("\u3000")
    if len(text) >= 2 and text[0] == "「" and text[-1] == "」":
        text = text[1:-1].strip()
    return text


def _log(p: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(np.asarray(p, dtype=np.float64), 1e-30))


def check_decoding(
    *,
    temperature: float = 0.0,
    top_p: float = 1.0,
    beam: int = 0,
    length_penalty: float = 1.0,
    no_repeat_ngram: int = 4,
) -> None:
    """The decoding options' own limits, checked before any model loads (the command line) and
    again by `Chatbot.reply` (library callers)."""
    if not math.isfinite(length_penalty):
        raise UsageError(f"--length-penalty must be a finite number, not {length_penalty}")
    if temperature < 0 or not math.isfinite(temperature):
        raise UsageError(f"--temperature must be 0 (greedy) or positive, not {temperature}")
    if not 0 < top_p <= 1:
        raise UsageError(f"--top-p must be above 0 and at most 1, not {top_p}")
    if beam < 0:
        raise UsageError(f"--beam must be 0 (off) or positive, not {beam}")
    if beam and temperature:
        raise UsageError("--beam searches and --temperature samples: choose one")
    if no_repeat_ngram < 0 or no_repeat_ngram == 1:
        raise UsageError(f"no_repeat_ngram must be 0 (off) or at least 2, not {no_repeat_ngram}")


class Chatbot:
    """A loaded model folder; see the module docstring."""

    def __init__(self, model, config: dict, vocab: Vocab, name: str = "model"):
        from .models import ModelConfig

        self.model = model
        self.config = config
        self.model_config = ModelConfig.from_dict(config["model"])
        self.vocab = vocab
        self.name = name
        self.arch = self.model_config.arch
        self.max_len = vocab.max_len
        self.autoregressive = self.model_config.autoregressive
        self._decoding = None

    # ------------------------------------------------------------ loading

    @classmethod
    def load(cls, model_dir: Path) -> "Chatbot":
        model_dir = Path(model_dir)
        config = modeldir.read_config(model_dir)
        vocab = modeldir.ModelDir(model_dir).read_vocab()
        path = modeldir.ModelDir(model_dir).model_path
        if not path.exists():
            raise ModelError(
                f"{model_dir} has no {modeldir.MODEL_FILE} yet: "
                "train at least one epoch (nocpipe train --resume continues)"
            )
        from .models import ModelConfig, load_inference_model

        try:
            mcfg = ModelConfig.from_dict(config["model"])
        except (TypeError, UsageError) as exc:
            raise ModelError(f"config.json in {model_dir} is damaged: {exc}") from None
        try:
            model = load_inference_model(path)
        except Exception as exc:  # a damaged or foreign .keras file: say so in one line
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelError(f"cannot load {path}: {first}") from None
        inputs = model.inputs
        if len(inputs) != (2 if mcfg.autoregressive else 1) or tuple(inputs[0].shape[1:]) != (vocab.max_len,):
            raise ModelError(
                f"{path} does not fit its config ({mcfg.arch}, {vocab.max_len} steps): was the folder changed by hand?"
            )
        return cls(model, config, vocab, name=model_dir.name)

    def to_kana(self, text: str) -> str:
        """`text` (any Japanese, one outer 「」 dropped) read into katakana as the corpus was."""
        from .kana import to_katakana

        return to_katakana(strip_quotes(text), self.vocab.reader)

    def warm_up(self) -> None:
        """One small decode, so the first real request does not pay for tracing."""
        self.reply(["ア"] * 2)

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

    # ------------------------------------------------------------ decoding

    def _stepper(self, x: np.ndarray, k: int):
        """next(rows, tokens, t) -> log p (len(rows), vocab) of position t, given tokens[:, :t];
        row r answers utterance r // k."""
        if not self.autoregressive:
            logp = _log(self._forward(x))  # one pass: positions do not depend on each other

            def step(rows, tokens, t):
                return logp[rows // k, t]

            return step
        return _Incremental(self, x, k)

    def _masked(self, lp: np.ndarray, tokens: np.ndarray, t: int, no_repeat: int) -> np.ndarray:
        """log p with what may not come next removed (-inf)."""
        lp = lp.copy()
        lp[:, UNK] = _NEG
        lp[:, len(self.vocab) :] = _NEG  # ids the vocabulary never filled (a corpus with fewer characters)
        if t == 0:
            lp[:, END] = _NEG
        if t >= self.max_len - 1:
            keep = lp[:, END].copy()
            lp[:] = _NEG
            lp[:, END] = keep
            return lp
        if no_repeat and t >= no_repeat:
            from numpy.lib.stride_tricks import sliding_window_view

            win = sliding_window_view(tokens[:, :t], no_repeat, axis=1)  # every n-gram so far
            last = tokens[:, t - no_repeat + 1 : t]
            hit = (win[:, :, :-1] == last[:, None, :]).all(axis=2)
            rows, pos = np.nonzero(hit)
            lp[rows, win[rows, pos, -1]] = _NEG
        return lp

    def _sample(
        self, x: np.ndarray, k: int, temperature: float, top_p: float, no_repeat: int, rng
    ) -> list[list[tuple[np.ndarray, float]]]:
        """k replies per utterance (greedy when temperature is 0): (ids, log p) each."""
        n, T = len(x), self.max_len
        step = self._stepper(x, k)
        R = n * k
        tokens = np.zeros((R, T), dtype=np.int32)
        score = np.zeros(R)
        length = np.full(R, -1)
        alive = np.arange(R)
        for t in range(T):
            if not len(alive):
                break
            raw = step(alive, tokens[alive], t)
            lp = self._masked(raw, tokens[alive], t, no_repeat)
            if temperature == 0:
                choice = lp.argmax(axis=1)
            else:
                choice = _draw(lp, temperature, top_p, rng)
            tokens[alive, t] = choice
            score[alive] += raw[np.arange(len(alive)), choice]
            ended = choice == END
            length[alive[ended]] = t
            alive = alive[~ended]
        out: list[list[tuple[np.ndarray, float]]] = [[] for _ in range(n)]
        for r in range(R):
            out[r // k].append((tokens[r, : length[r]], float(score[r])))
        return out

    def _beam(
        self, x: np.ndarray, width: int, alpha: float, no_repeat: int
    ) -> list[list[tuple[np.ndarray, float, float]]]:
        """Beam search: up to `width` finished replies per utterance, (ids, log p, ranking score)."""
        n, T, W = len(x), self.max_len, width
        step = self._stepper(x, W)
        V = self.model_config.vocab_size  # the softmax's width (the vocabulary may have fewer characters)
        tokens = np.zeros((n, W, T), dtype=np.int32)
        scores = np.full((n, W), _NEG)
        scores[:, 0] = 0.0
        finished: list[list[tuple[np.ndarray, float, float]]] = [[] for _ in range(n)]
        active = np.arange(n)
        for t in range(T):
            if not len(active):
                break
            rows = (active[:, None] * W + np.arange(W)[None, :]).reshape(-1)
            flat = tokens[active].reshape(-1, T)
            raw = step(rows, flat, t)
            lp = self._masked(raw, flat, t, no_repeat)
            total = (scores[active].reshape(-1, 1) + lp).reshape(len(active), W * V)
            still = []
            parent = np.arange(n * W)  # the row each beam continues (its decoder state follows it)
            for a, u in enumerate(active):
                order = np.argsort(-total[a], kind="stable")[: 2 * W]
                new_tokens, new_scores, new_parents = [], [], []
                for idx in order:
                    s = total[a, idx]
                    if s == _NEG:
                        break
                    w, c = divmod(int(idx), V)
                    if c == END:
                        ids = tokens[u, w, :t].copy()
                        finished[u].append((ids, float(s), float(s) / ((5 + t + 1) / 6) ** alpha))
                    else:
                        seq = tokens[u, w].copy()
                        seq[t] = c
                        new_tokens.append(seq)
                        new_scores.append(s)
                        new_parents.append(w)
                    if len(new_tokens) >= W:
                        break
                if not new_tokens or self._beam_done(finished[u], max(new_scores), W, alpha):
                    continue
                parent[u * W : u * W + len(new_parents)] = u * W + np.asarray(new_parents)
                tokens[u] = 0
                scores[u] = _NEG
                tokens[u, : len(new_tokens)] = np.stack(new_tokens)
                scores[u, : len(new_tokens)] = new_scores
                still.append(u)
            active = np.asarray(still, dtype=np.int64)
            if hasattr(step, "reorder"):
                step.reorder(parent)
        return finished

    def _beam_done(self, finished: list, best_alive: float, width: int, alpha: float) -> bool:
        """True once no live hypothesis can enter the `width` best finished ones: log p only falls
        as a reply grows, and the length penalty divides by at most ((5 + max_len) / 6) ** alpha."""
        if len(finished) < width:
            return False
        kth = sorted((f[2] for f in finished), reverse=True)[width - 1]
        return kth >= best_alive / ((5 + self.max_len) / 6) ** alpha

    def reply(
        self,
        utterances_kana: list[str],
        *,
        num: int = 1,
        temperature: float = 0.0,
        top_p: float = 1.0,
        beam: int = 0,
        length_penalty: float = 1.0,
        no_repeat_ngram: int = 4,
        seed: int | None = None,
        rerank: Reranker | None = None,
    ) -> list[list[Candidate]]:
        """One list per utterance, best first, of `num` distinct candidates (fewer only when the
        vocabulary cannot make that many); see the module docstring for the modes."""
        if not 1 <= num <= MAX_NUM:
            raise UsageError(f"--num must be between 1 and {MAX_NUM}, not {num}")
        check_decoding(
            temperature=temperature,
            top_p=top_p,
            beam=beam,
            length_penalty=length_penalty,
            no_repeat_ngram=no_repeat_ngram,
        )
        if not utterances_kana:
            return []
        x = self.vocab.encode_utterances(list(utterances_kana))
        found: list[dict[str, float]] = [{} for _ in utterances_kana]
        rank: list[dict[str, float]] = [{} for _ in utterances_kana]

        def add(u: int, ids, logp: float, key: float) -> None:
            text = self.vocab.decode(ids)
            if text and (text not in found[u] or key > rank[u][text]):
                found[u][text], rank[u][text] = logp, key

        want = num if rerank is None else max(num, 2 * num)
        if temperature > 0:
            rng = np.random.default_rng(seed)
            k = 1 if num == 1 and rerank is None else 2 * want
            todo = np.arange(len(x))
            for _ in range(4):
                got = self._sample(x[todo], k, temperature, top_p, no_repeat_ngram, rng)
                for u, cands in zip(todo, got):
                    for ids, lp in cands:
                        add(u, ids, lp, lp)
                todo = np.asarray([u for u in todo if len(found[u]) < want], dtype=np.int64)
                if not len(todo):
                    break
            if len(todo):  # the draws keep repeating themselves: the beam finds the rest
                for u, cands in zip(todo, self._beam(x[todo], want, length_penalty, no_repeat_ngram)):
                    for ids, lp, _ in cands:
                        if len(found[u]) < want:
                            add(u, ids, lp, lp)
        elif beam or num > 1 or rerank is not None:
            for u, cands in enumerate(self._beam(x, max(beam, want), length_penalty, no_repeat_ngram)):
                for ids, lp, key in cands:
                    add(u, ids, lp, key)
        else:
            for u, cands in enumerate(self._sample(x, 1, 0.0, 1.0, no_repeat_ngram, None)):
                for ids, lp in cands:
                    add(u, ids, lp, lp)
        out = []
        for u, utt in enumerate(utterances_kana):
            cands = [Candidate(t, found[u][t]) for t in sorted(found[u], key=lambda t: -rank[u][t])]
            if rerank is not None:
                cands = list(rerank(utt, cands))
            out.append(cands[:num])
        return out


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


def _draw(lp: np.ndarray, temperature: float, top_p: float, rng) -> np.ndarray:
    """One id per row from softmax(lp / temperature), cut to the top-p nucleus."""
    z = lp / temperature
    z = z - z.max(axis=1, keepdims=True)
    q = np.exp(z)
    q /= q.sum(axis=1, keepdims=True)
    if top_p < 1:
        order = np.argsort(-q, axis=1)
        sq = np.take_along_axis(q, order, axis=1)
        before = np.cumsum(sq, axis=1) - sq
        sq[before >= top_p] = 0.0  # the most probable id always stays (before = 0)
        q = np.zeros_like(q)
        np.put_along_axis(q, order, sq, axis=1)
        q /= q.sum(axis=1, keepdims=True)
    cum = q.cumsum(axis=1)
    u = rng.random((len(q), 1)) * cum[:, -1:]
    return np.minimum((u > cum).sum(axis=1), q.shape[1] - 1)
