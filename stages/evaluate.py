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
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from pipeline import metrics, modeldir
from pipeline.atomic import write_json
from pipeline.dataset import read_unit, scan_units
from pipeline.errors import StoreError, UsageError
from pipeline.ngram import DEFAULT_ORDER, MMI_NBEST, NgramLM, mmi_rerank, ngram_for_model, reply_ids
from pipeline.progress import progress
from pipeline.shards import SPLITS


@dataclass
class Decoding:
    """How the model's own replies are decoded (greedy by default)."""

    temperature: float = 0.0
    top_p: float = 1.0
    beam: int = 0
    length_penalty: float = 1.0
    no_repeat_ngram: int = 4
    seed: int | None = None
    mmi: float = 0.0
    nbest: int = MMI_NBEST

    def describe(self) -> str:
        if self.temperature > 0:
            how = f"sampling T={self.temperature} top-p={self.top_p}"
        elif self.beam or self.mmi:
            how = f"beam {self.beam or max(self.nbest, 2)}"
        else:
            how = "greedy"
        return how + (f", reranked by MMI λ={self.mmi}" if self.mmi else "")


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
    """The model's best reply to each utterance under `dec` (MMI-reranked when dec.mmi)."""
    rerank = None
    beam = dec.beam
    if dec.mmi:
        if lm is None:
            raise UsageError("--mmi needs the reply n-gram model")
        rerank = mmi_rerank(lm, dec.mmi)
        if not beam and dec.temperature == 0:
            beam = max(dec.nbest, 2)  # the N-best list to rerank
    out = chatbot.reply(
        utterances,
        num=1,
        temperature=dec.temperature,
        top_p=dec.top_p,
        beam=beam,
        length_penalty=dec.length_penalty,
        no_repeat_ngram=dec.no_repeat_ngram,
        seed=dec.seed,
        rerank=rerank,
    )
    return [cands[0].text if cands else "" for cands in out]


def evaluate(
    opts: EvaluateOptions, log: Callable[[str], None] = print, default_data_dir: Path | None = None
) -> EvaluateResult:
    from pipeline.inference import Chatbot

    t0 = time.perf_counter()
    model_dir = Path(opts.model_dir)
    modeldir.read_config(model_dir)  # a missing or foreign folder fails before Keras loads
    split = {"validation": "valid"}.get(opts.split, opts.split)  # the shard files' name for it
    if split not in SPLITS:
        raise UsageError(f"--split takes train, valid (validation) or test, not {opts.split!r}")
    if opts.max_pairs < 0 or opts.examples < 0 or opts.batch_size < 1:
        raise UsageError("--max-pairs and --examples must be 0 or more, the batch size at least 1")
    data_dir = corpus_of(model_dir, opts.data_dir, default_data_dir or Path("data/processed"))
    units = scan_units(data_dir, split, opts.max_pairs)
    total = sum(u.take for u in units)
    if not total:
        raise StoreError(f"no {split} pairs in {data_dir}")

    chatbot = Chatbot.load(model_dir)
    lm, fitted = ngram_for_model(model_dir, chatbot.vocab, data_dir, opts.ngram_order, log)

    model_lp: list[np.ndarray] = []
    ngram_lp: list[np.ndarray] = []
    correct: list[np.ndarray] = []
    replies: list[str] = []
    refs: list[str] = []
    utts: list[str] = []

    def batches():
        for unit in units:
            u, r = read_unit(unit, split)
            for i in range(0, len(u), opts.batch_size):
                yield u[i : i + opts.batch_size], r[i : i + opts.batch_size]

    bar = progress(
        batches(),
        desc=f"evaluate ({split})",
        unit="batch",
        enabled=opts.show_progress,
        total=sum(-(-u.take // opts.batch_size) for u in units),
    )
    for u, r in bar:
        lps, hits = chatbot.teacher_forced(u, r)
        model_lp += lps
        correct += hits
        ngram_lp += lm.token_log_probs(reply_ids(chatbot.vocab, r))
        replies += decode(chatbot, u, opts.decoding, lm)
        refs += r
        utts += u

    figures = {
        "bits_per_char": metrics.bits_per_char(model_lp),
        "ngram_bits_per_char": metrics.bits_per_char(ngram_lp),
        "char_accuracy": metrics.char_accuracy(correct),
        **metrics.reply_figures(replies, refs),
        "n": len(refs),
    }
    figures = {k: figures[k] for k in metrics.FIGURES}
    record = {
        **{k: (round(v, 6) if isinstance(v, float) and math.isfinite(v) else v) for k, v in figures.items()},
        "split": split,
        "data_dir": str(data_dir),
        "tokens": int(sum(len(x) for x in model_lp)),
        "decoding": opts.decoding.describe(),
        "ngram": {"order": lm.order, "train_replies": lm.pairs, "smoothing": "interpolated modified Kneser-Ney"},
        "arch": chatbot.arch,
        "evaluated_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    modeldir.ModelDir(model_dir).write_evaluate(record)
    if opts.json_path is not None:
        write_json(Path(opts.json_path), record)
    rng = np.random.default_rng(0)
    pick = sorted(rng.choice(len(refs), size=min(opts.examples, len(refs)), replace=False).tolist())
    examples = [(utts[i], refs[i], replies[i]) for i in pick]
    return EvaluateResult(figures, examples, model_dir, data_dir, fitted, time.perf_counter() - t0)
