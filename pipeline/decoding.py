"""How a chatbot chooses its replies: one `Decoding` value, checked once, and one function per
strategy over a model's next-character log-probabilities (as keras-hub has one sampler per strategy).

    Decoding(num=1)                     greedy (generative) / the best retrieved reply (retrieval)
    Decoding(temperature=0.8, top_p=.9) sampling
    Decoding(beam=8)                    beam search
    Decoding(mmi=0.5)                   an N-best list reranked by log p(r|u) - λ log p_ngram(r)

predict, evaluate, serve and the command line all build this one dataclass; `validate()`
says in one line what is wrong with it, before any model loads. `validate_for(arch)` adds
what a model of that architecture cannot do (a retrieval model returns real lines of the
corpus: it has no temperature, beam or MMI).

The strategies see a model only as `step(rows, tokens, t) -> log p (len(rows), width)`, the
log-probabilities of position t given tokens[:, :t], and a `Space` (positions, softmax width,
the ids the vocabulary filled):

    constrain(lp, tokens, t, space, n)  what may not come next removed: unknown, unfilled ids, the
                                        end at the first position, everything but the end at the
                                        last, and any character that would repeat an n-gram
    sample(step, rows, space, ...)      one reply per row, greedy at temperature 0, else drawn from
                                        softmax(lp / T) cut to the top-p nucleus (`nucleus_draw`)
    beam_search(step, n, width, ...)    finished replies per utterance, ranked by
                                        log p / ((5 + n) / 6) ** alpha (Wu et al. 2016)
    mmi_rerank(cands, lm_scores, λ)     an N-best list by log p(r|u) − λ·log p_LM(r) (Li et al. 2016)
    rank_candidates(cands, scores)      given candidates best first by a score (`bot.rank`)
    n_best(make_step, n, decoding, ...) `num` distinct Candidates per utterance under a Decoding:
                                        the strategies above put together, as Chatbot.reply uses them

A Candidate's `score` is what its list is ranked by, so the scores of a list always fall:
log p(reply + end | utterance) for greedy and sampled replies, divided by the length penalty
under beam search (also what `--num N` searches), minus λ·log p_LM(reply) under MMI. `log_p`
keeps the model's own log p(reply + end | utterance) whatever ranked the list.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from .errors import UsageError

if TYPE_CHECKING:  # numpy is imported by the strategies when they run: `nocpipe --help` never pays for it
    import numpy as np

#: The most replies one input may ask for, the same on the command line and the HTTP API.
MAX_NUM = 50
#: The widest beam: beams x max_len x vocabulary log-probabilities per input stay small.
MAX_BEAM = 64
#: The most candidates one input of `predict --jsonl` may give to be ranked.
MAX_CANDIDATES = 1000
#: N-best list reranked by MMI when no beam is given.
MMI_NBEST = 8
#: Decoding rows (inputs × beams or draws) per pass: a Transformer keeps max_len × units floats per
#: row and block, so 2048 rows of the default network hold about 100 MB; more inputs go in turns.
MAX_ROWS = 2048

GENERATIVE_ONLY = ("temperature", "top_p", "beam", "mmi", "length_penalty")
#: Padding: the end of a reply.
END = 0
#: The unknown character: never produced.
UNK = 1
_NEG = -math.inf  # a float, not numpy's: the command line imports this module before numpy


@dataclass(frozen=True)
class Candidate:
    text: str  # katakana reply, no 「」
    score: float  # what its list is ranked by (module docstring); higher is better
    surface: str | None = None  # a retrieved reply: the original line, as the author wrote it
    source: dict | None = None  # a retrieved reply: where it came from (work_id, title, author, episode, line)
    log_p: float | None = None  # a generated reply: the model's own log p(reply + end | utterance)


@dataclass(frozen=True)
class Decoding:
    num: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    beam: int = 0
    length_penalty: float = 1.0
    no_repeat_ngram: int = 4
    seed: int | None = None
    mmi: float = 0.0
    nbest: int = MMI_NBEST

    def validate(self) -> "Decoding":
        if not 1 <= self.num <= MAX_NUM:
            raise UsageError(f"--num must be from 1 to {MAX_NUM}, not {self.num}")
        if not math.isfinite(self.length_penalty):
            raise UsageError(f"--length-penalty must be a finite number, not {self.length_penalty}")
        if self.temperature < 0 or not math.isfinite(self.temperature):
            raise UsageError(f"--temperature must be 0 (greedy) or positive, not {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise UsageError(f"--top-p must be above 0 and at most 1, not {self.top_p}")
        if not 0 <= self.beam <= MAX_BEAM:
            raise UsageError(f"--beam must be from 0 (off) to {MAX_BEAM}, not {self.beam}")
        if self.beam and self.temperature:
            raise UsageError("--beam searches and --temperature samples: choose one")
        if self.no_repeat_ngram < 0 or self.no_repeat_ngram == 1:
            raise UsageError(f"no_repeat_ngram must be 0 (off) or at least 2, not {self.no_repeat_ngram}")
        if not math.isfinite(self.mmi):
            raise UsageError(f"--mmi must be a finite number, not {self.mmi}")
        if not 2 <= self.nbest <= MAX_BEAM:
            raise UsageError(f"the MMI N-best list must be from 2 to {MAX_BEAM}, not {self.nbest}")
        return self

    def rows_per_input(self) -> int:
        """The decoding rows one input takes: its beams, or its draws."""
        want = max(self.num, self.nbest) if self.mmi else self.num
        if self.temperature > 0:
            return 1 if want == 1 else 2 * want
        return max(self.beam, want, 1)

    def inputs_per_pass(self) -> int:
        return max(1, MAX_ROWS // self.rows_per_input())

    def changed_generative_options(self) -> list[str]:
        """The options set away from their defaults that only a generative model can use."""
        default = Decoding()
        return [name for name in GENERATIVE_ONLY if getattr(self, name) != getattr(default, name)]

    def validate_for(self, arch: str) -> "Decoding":
        self.validate()
        if arch == "retrieval":
            given = self.changed_generative_options()
            if given:
                flags = ", ".join("--" + g.replace("_", "-") for g in given)
                raise UsageError(
                    f"{flags} {'does' if len(given) == 1 else 'do'} not apply to a retrieval model: "
                    "it answers with real lines of the corpus (leave them out)"
                )
        return self

    def describe(self) -> str:
        if self.temperature > 0:
            how = f"sampling T={self.temperature} top-p={self.top_p}"
        elif self.beam or self.mmi:
            how = f"beam {self.beam or max(self.nbest, 2)}"
        else:
            how = "greedy"
        return how + (f", reranked by MMI λ={self.mmi}" if self.mmi else "")


# ---------------------------------------------------------------- strategies

Step = Callable  # (rows, tokens, t) -> log p (len(rows), width): numpy arrays


@dataclass(frozen=True)
class Space:
    """What a search may produce."""

    max_len: int  # positions of a reply; the end is forced at the last one
    width: int  # the softmax's width
    usable: int  # ids from this one on were never filled by the vocabulary (a corpus with fewer characters)


def constrain(lp: np.ndarray, tokens: np.ndarray, t: int, space: Space, no_repeat: int) -> np.ndarray:
    """log p (rows, width) of position t with what may not come next set to -inf."""
    import numpy as np

    lp = lp.copy()
    lp[:, UNK] = _NEG
    lp[:, space.usable :] = _NEG
    if t == 0:
        lp[:, END] = _NEG
    if t >= space.max_len - 1:
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


def nucleus_draw(lp: np.ndarray, temperature: float, top_p: float, rng) -> np.ndarray:
    """One id per row from softmax(lp / temperature), cut to the top-p nucleus."""
    import numpy as np

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


def sample(
    step: Step, rows: int, space: Space, no_repeat: int, temperature: float = 0.0, top_p: float = 1.0, rng=None
) -> list[tuple[np.ndarray, float]]:
    """One reply per row, (ids, log p of the reply and its end): greedy when temperature is 0."""
    import numpy as np

    T = space.max_len
    tokens = np.zeros((rows, T), dtype=np.int32)
    score = np.zeros(rows)
    length = np.full(rows, -1)
    alive = np.arange(rows)
    for t in range(T):
        if not len(alive):
            break
        raw = step(alive, tokens[alive], t)
        lp = constrain(raw, tokens[alive], t, space, no_repeat)
        choice = lp.argmax(axis=1) if temperature == 0 else nucleus_draw(lp, temperature, top_p, rng)
        tokens[alive, t] = choice
        score[alive] += raw[np.arange(len(alive)), choice]
        ended = choice == END
        length[alive[ended]] = t
        alive = alive[~ended]
    return [(tokens[r, : length[r]], float(score[r])) for r in range(rows)]


def greedy(step: Step, rows: int, space: Space, no_repeat: int) -> list[tuple[np.ndarray, float]]:
    """The most probable next character at every position, one reply per row."""
    return sample(step, rows, space, no_repeat)


def _length_penalty(n: int, alpha: float) -> float:
    return ((5 + n) / 6) ** alpha


def beam_search(
    step: Step, n: int, width: int, space: Space, alpha: float, no_repeat: int
) -> list[list[tuple[np.ndarray, float, float]]]:
    """Up to `width` finished replies per utterance, (ids, log p, log p / length penalty); row
    u * width + w is beam w of utterance u. `step.reorder(parent)`, when it has one, moves each
    row's decoder state to the beam that continues it."""
    import numpy as np

    T, W, V = space.max_len, width, space.width
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
        lp = constrain(step(rows, flat, t), flat, t, space, no_repeat)
        total = (scores[active].reshape(-1, 1) + lp).reshape(len(active), W * V)
        parent = np.arange(n * W)  # the row each beam continues (its decoder state follows it)
        still = [
            u
            for a, u in enumerate(active)
            if _advance(total[a], u, t, tokens, scores, parent, finished, W, V, alpha, T)
        ]
        active = np.asarray(still, dtype=np.int64)
        if hasattr(step, "reorder"):
            step.reorder(parent)
    return finished


def _advance(total, u, t, tokens, scores, parent, finished, W, V, alpha, T) -> bool:
    """One step of utterance u's beams: finished replies kept, the W best live ones carried on.
    False once none is left or none can still enter the W best finished ones."""
    import numpy as np

    new_tokens, new_scores, new_parents = [], [], []
    for idx in np.argsort(-total, kind="stable")[: 2 * W]:
        s = total[idx]
        if s == _NEG:
            break
        w, c = divmod(int(idx), V)
        if c == END:
            finished[u].append((tokens[u, w, :t].copy(), float(s), float(s) / _length_penalty(t + 1, alpha)))
        else:
            seq = tokens[u, w].copy()
            seq[t] = c
            new_tokens.append(seq)
            new_scores.append(s)
            new_parents.append(w)
        if len(new_tokens) >= W:
            break
    if not new_tokens or _beam_done(finished[u], max(new_scores), W, alpha, T):
        return False
    parent[u * W : u * W + len(new_parents)] = u * W + np.asarray(new_parents)
    tokens[u] = 0
    scores[u] = _NEG
    tokens[u, : len(new_tokens)] = np.stack(new_tokens)
    scores[u, : len(new_tokens)] = new_scores
    return True


def _beam_done(finished: list, best_alive: float, width: int, alpha: float, max_len: int) -> bool:
    """True once no live hypothesis can enter the `width` best finished ones: log p only falls
    as a reply grows, and the length penalty divides by at most ((5 + max_len) / 6) ** alpha."""
    if len(finished) < width:
        return False
    kth = sorted((f[2] for f in finished), reverse=True)[width - 1]
    return kth >= best_alive / _length_penalty(max_len, alpha)


def mmi_rerank(
    candidates: Sequence[Candidate], lm_scores: Sequence[float] | np.ndarray, weight: float
) -> list[Candidate]:
    """Best first by log p(reply | utterance) − weight · log p_LM(reply), that figure as the score."""
    keyed = [
        # generated candidates, which all carry log_p
        Candidate(c.text, float(cast(float, c.log_p) - weight * s), c.surface, c.source, c.log_p)
        for c, s in zip(candidates, lm_scores)
    ]
    return sorted(keyed, key=lambda c: -c.score)


def rank_candidates(candidates: Sequence[str], scores: Sequence[float]) -> list[tuple[str, float]]:
    """Given candidates best first by their scores (ties keep the given order), scores unrounded."""
    order = sorted(range(len(candidates)), key=lambda i: -float(scores[i]))
    return [(candidates[i], float(scores[i])) for i in order]


def n_best(
    make_step: Callable[[np.ndarray, int], Step],
    n: int,
    decoding: Decoding,
    space: Space,
    to_text: Callable[[np.ndarray], str],
    lm_score: Callable[[list[str]], np.ndarray] | None = None,
) -> list[list[Candidate]]:
    """`decoding.num` distinct Candidates for each of n utterances, best first (fewer only when the
    vocabulary cannot make that many). `make_step(utterances, k)` steps k rows per utterance of
    that index array; `lm_score` scores replies for MMI (needed when decoding.mmi)."""
    import numpy as np

    d = decoding.validate()
    found: list[dict[str, tuple[float, float]]] = [{} for _ in range(n)]  # text -> (key, log p)

    def add(u: int, ids, log_p: float, key: float) -> None:
        text = to_text(ids)
        if text and (text not in found[u] or key > found[u][text][0]):
            found[u][text] = (key, log_p)

    want = max(d.num, d.nbest) if d.mmi else d.num
    if d.temperature > 0:
        _sampled(make_step, n, d, space, want, add, found)
    elif d.beam or want > 1:
        step = make_step(np.arange(n), max(d.beam, want))
        for u, hyps in enumerate(beam_search(step, n, max(d.beam, want), space, d.length_penalty, d.no_repeat_ngram)):
            for ids, lp, key in hyps:
                add(u, ids, lp, key)
    else:
        for u, (ids, lp) in enumerate(greedy(make_step(np.arange(n), 1), n, space, d.no_repeat_ngram)):
            add(u, ids, lp, lp)
    out: list[list[Candidate]] = []
    for u in range(n):
        cands = [Candidate(t, key, log_p=lp) for t, (key, lp) in sorted(found[u].items(), key=lambda kv: -kv[1][0])]
        if d.mmi:
            if lm_score is None:
                raise UsageError("--mmi needs the reply n-gram model of the model folder")
            cands = mmi_rerank(cands, lm_score([c.text for c in cands]), d.mmi) if cands else []
        out.append(cands[: d.num])
    return out


def _sampled(make_step, n: int, d: Decoding, space: Space, want: int, add, found) -> None:
    """Repeated draws until each utterance has `want` distinct replies; a beam finds the rest
    when the draws keep repeating themselves."""
    import numpy as np

    rng = np.random.default_rng(d.seed)
    k = 1 if want == 1 else 2 * want
    todo = np.arange(n)
    for _ in range(4):
        got = sample(make_step(todo, k), len(todo) * k, space, d.no_repeat_ngram, d.temperature, d.top_p, rng)
        for r, (ids, lp) in enumerate(got):
            add(int(todo[r // k]), ids, lp, lp)
        todo = np.asarray([u for u in todo if len(found[u]) < want], dtype=np.int64)
        if not len(todo):
            return
    step = make_step(todo, want)
    for u, cands in zip(todo, beam_search(step, len(todo), want, space, d.length_penalty, d.no_repeat_ngram)):
        for ids, lp, _ in cands:
            if len(found[u]) < want:
                add(int(u), ids, lp, lp)
