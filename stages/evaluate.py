"""nocpipe evaluate: held-out figures of a trained model, beside a reply n-gram model.

    model folder ──Chatbot.load──> log p of each reference reply (+ end), char accuracy,
                                   the model's own replies (greedy, or the decoding asked for)
    corpus, train split ──> n-gram model of replies (ngram.npz in the model folder, refitted
                            only when the train pairs or the vocabulary changed)
    corpus, --split (test) ──batches──> both models' log p, the replies
        ──> bits_per_char, ngram_bits_per_char, char_accuracy, chrf, distinct_1/2,
            generic_rate, mean_length, n  ──> evaluate.json in the model folder (and --json)

The pairs are read only through pipeline.dataset, so evaluate follows the corpus layout
that train reads. Nothing here depends on the architecture: every model answers the same
two questions (log p of a given reply; a reply of its own).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from pipeline import metrics, modeldir
from pipeline.atomic import write_json
from pipeline.dataset import read_unit, scan_units
from pipeline.decoding import Decoding
from pipeline.errors import StoreError, UsageError
from pipeline.ngram import DEFAULT_ORDER, NgramLM, ngram_for_model, reply_ids
from pipeline.progress import progress
from pipeline.selection import DEFAULT_DRAWS, MAX_DRAWS, TfidfBaseline, draw, select_at_1
from pipeline.shards import SPLITS

#: The most pairs in one batch: its teacher-forced probabilities (batch × max_len × vocabulary floats)
#: stay around 100 MB at the default sizes.
MAX_BATCH = 4096


@dataclass
class EvaluateOptions:
    model_dir: Path
    data_dir: Path | None = None  # None: the corpus the model was trained on
    split: str = "test"
    max_pairs: int = 0  # 0: every pair of the split
    examples: int = 5
    batch_size: int = 64
    decoding: Decoding = field(default_factory=Decoding)
    ngram_order: int = DEFAULT_ORDER
    json_path: Path | None = None
    show_progress: bool = True
    select_pairs: int = DEFAULT_DRAWS  # pairs drawn for select@1 (0: skip it)

    def validate(self) -> str:
        """Every check of the options; returns the split's name in the corpus (`valid` is its older name)."""
        split = {"valid": "validation"}.get(self.split, self.split)
        if split not in SPLITS:
            raise UsageError(f"--split takes train, valid (validation) or test, not {self.split!r}")
        if self.max_pairs < 0 or self.examples < 0 or not 1 <= self.batch_size <= MAX_BATCH:
            raise UsageError(f"--max-pairs and --examples must be 0 or more, the batch size from 1 to {MAX_BATCH}")
        if not 0 <= self.select_pairs <= MAX_DRAWS:
            raise UsageError(f"select@1 draws must be from 0 to {MAX_DRAWS:,}, not {self.select_pairs}")
        return split


@dataclass
class EvaluateResult:
    figures: dict
    examples: list[tuple[str, str, str]]  # (utterance, reference, reply), katakana
    model_dir: Path
    data_dir: Path
    ngram_fitted: bool
    seconds: float


def corpus_of(model_dir: Path, data_dir: Path | None, default: Path) -> Path:
    """--data-dir, else the corpus the model was trained on, else the default corpus."""
    if data_dir is not None:
        return Path(data_dir)
    saved = modeldir.read_config(model_dir).get("data", {}).get("data_dir")
    return Path(saved) if saved and Path(saved).exists() else default


def decode(chatbot, utterances: list[str], dec: Decoding, lm: NgramLM | None = None) -> list[str]:
    """The model's best reply to each utterance under `dec` (MMI-reranked by `lm` when dec.mmi)."""
    if dec.mmi:
        if lm is None:
            raise UsageError("--mmi needs the reply n-gram model")
        chatbot.ngram = lm
    out = chatbot.reply(utterances, replace(dec, num=1))
    return [cands[0].text if cands else "" for cands in out]


@dataclass
class _Scored:
    """What the split's pairs gave: both models' log p, the char hits, the model's own replies."""

    model_lp: list[np.ndarray] = field(default_factory=list)
    ngram_lp: list[np.ndarray] = field(default_factory=list)
    correct: list[np.ndarray] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    utts: list[str] = field(default_factory=list)


def evaluate(
    opts: EvaluateOptions, log: Callable[[str], None] = print, default_data_dir: Path | None = None
) -> EvaluateResult:
    t0 = time.perf_counter()
    model_dir = Path(opts.model_dir)
    modeldir.read_config(model_dir)  # a missing or foreign folder fails before Keras loads
    split = opts.validate()
    data_dir = corpus_of(model_dir, opts.data_dir, default_data_dir or Path("data/processed"))
    units = scan_units(data_dir, split, opts.max_pairs)
    if not sum(u.take for u in units):
        raise StoreError(f"no {split} pairs in {data_dir}")

    from pipeline.inference import load_bot

    chatbot = load_bot(model_dir)
    trained_on = modeldir.read_config(model_dir).get("data", {}).get("data_dir")
    lm, fitted = ngram_for_model(model_dir, chatbot.vocab, _train_corpus(data_dir, trained_on), opts.ngram_order, log)
    got = _score(chatbot, lm, units, split, opts)
    select, tfidf_select = _select_figures(chatbot, [data_dir, trained_on], got.utts, got.refs, opts.select_pairs)
    generative = chatbot.arch != "retrieval"
    figures = {
        "bits_per_char": metrics.bits_per_char(got.model_lp) if generative else None,
        "ngram_bits_per_char": metrics.bits_per_char(got.ngram_lp),
        "char_accuracy": metrics.char_accuracy(got.correct) if generative else None,
        "select_at_1": select,
        "tfidf_select_at_1": tfidf_select,
        **metrics.reply_figures(got.replies, got.refs),
        "n": len(got.refs),
    }
    figures = {k: figures[k] for k in metrics.FIGURES}
    record = _record(figures, split, data_dir, got, opts, lm, chatbot.arch)
    modeldir.ModelDir(model_dir).write_evaluate(record)
    if opts.json_path is not None:
        write_json(Path(opts.json_path), record)
    rng = np.random.default_rng(0)
    pick = sorted(rng.choice(len(got.refs), size=min(opts.examples, len(got.refs)), replace=False).tolist())
    examples = [(got.utts[i], got.refs[i], got.replies[i]) for i in pick]
    return EvaluateResult(figures, examples, model_dir, data_dir, fitted, time.perf_counter() - t0)


def _score(chatbot, lm: NgramLM, units, split: str, opts: EvaluateOptions) -> _Scored:
    """Every pair of the split, a batch at a time: log p (generative models), the n-gram's, replies."""
    got = _Scored()
    generative = chatbot.arch != "retrieval"

    def batches():
        for unit in units:
            u, r = read_unit(unit, split)
            for i in range(0, len(u), opts.batch_size):
                yield u[i : i + opts.batch_size], r[i : i + opts.batch_size]

    total = sum(-(-u.take // opts.batch_size) for u in units)
    for u, r in progress(batches(), desc=f"evaluate ({split})", unit="batch", enabled=opts.show_progress, total=total):
        if generative:
            lps, hits = chatbot.teacher_forced(u, r)
            got.model_lp += lps
            got.correct += hits
        got.ngram_lp += lm.token_log_probs(reply_ids(chatbot.vocab, r))
        got.replies += decode(chatbot, u, opts.decoding, lm)
        got.refs += r
        got.utts += u
    return got


def _record(figures: dict, split: str, data_dir: Path, got: _Scored, opts: EvaluateOptions, lm, arch: str) -> dict:
    """evaluate.json: the figures (rounded), and what they were measured on."""
    return {
        **{k: (round(v, 6) if isinstance(v, float) and math.isfinite(v) else v) for k, v in figures.items()},
        "split": split,
        "data_dir": str(data_dir),
        "tokens": int(sum(len(x) for x in got.model_lp)),
        "decoding": opts.decoding.describe(),
        "ngram": {"order": lm.order, "train_replies": lm.pairs, "smoothing": "interpolated modified Kneser-Ney"},
        "arch": arch,
        "evaluated_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _train_corpus(data_dir: Path, trained_on: str | None) -> Path:
    """The corpus whose train split fits the baselines: the evaluated one, else (a corpus of held-out
    works only) the one the model was trained on."""
    if scan_units(data_dir, "train", 1) or not trained_on or not Path(trained_on).exists():
        return data_dir
    return Path(trained_on)


def _idf_texts(corpora: list) -> list[str]:
    """The baseline's IDF comes from a train split: the evaluated corpus's, else the model's own corpus's
    (a corpus of held-out works may have no train split at all)."""
    from pipeline.retrieval.pairs import read_pairs

    for folder in corpora:
        if folder is not None and Path(folder).exists():
            train = read_pairs(Path(folder), "train")
            if len(train):
                return train.utterances + train.replies
    return []


def _select_figures(chatbot, corpora: list, utts: list[str], refs: list[str], pairs: int) -> tuple:
    """select@1 of the model and of the TF-IDF baseline on the same draws (None when skipped)."""
    if not pairs:
        return None, None
    draws = draw(refs, pairs)
    if not draws:
        return None, None
    baseline = TfidfBaseline(_idf_texts(corpora) or utts + refs)
    return select_at_1(draws, utts, refs, chatbot.rank), select_at_1(draws, utts, refs, baseline.score)
