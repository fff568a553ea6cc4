"""nocpipe predict: text -> katakana (the reading extract-pairs uses) -> model -> katakana replies.

model folder -> pipeline.inference.Chatbot (config.json checked, vocab.json, model.keras in safe mode)
text -> strip one outer 「」 -> katakana with the reader of the training data
     -> cut to max_len (with a warning) -> Chatbot.reply (batched): greedy by default,
        --temperature/--top-p sampling, --beam search; --num distinct candidates, best first,
        each with the model's log p(reply + end | utterance)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import InputError, UsageError
from pipeline.inference import MAX_NUM, Candidate, Chatbot, strip_quotes
from pipeline.inference import check_decoding as check_model_decoding

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__all__ = ["Reply", "Predictor", "strip_quotes", "read_input_file", "write_output_file", "batched", "MAX_NUM"]


@dataclass
class Reply:
    text: str  # the input as given
    kana: str  # its katakana reading, as the model saw it (after cutting)
    candidates: list[Candidate]  # best first
    truncated: bool = False
    unknown: list[str] = field(default_factory=list)  # characters outside the vocabulary

    @property
    def replies(self) -> list[str]:
        return [c.text for c in self.candidates]

    @property
    def scores(self) -> list[float]:
        return [c.score for c in self.candidates]


class Predictor:
    """A loaded model folder. `reply(texts, ...)` answers a batch of texts in any Japanese."""

    def __init__(self, model_dir: Path):
        self.bot = Chatbot.load(Path(model_dir))
        self.model_dir = Path(model_dir)
        self.vocab = self.bot.vocab
        self.reader = self.vocab.reader

    def to_kana(self, text: str) -> str:
        return self.bot.to_kana(text)

    def reply(self, texts: list[str], **decoding) -> list[Reply]:
        """`decoding`: Chatbot.reply's options (num, temperature, top_p, beam, seed, rerank, ...)."""
        kanas, cut = [], []
        for t in texts:
            k = self.to_kana(t)
            if not k:
                raise InputError(f"empty input: {t!r} has nothing to read")
            cut.append(len(k) > self.vocab.max_len)
            kanas.append(k[: self.vocab.max_len])
        if not kanas:
            return []
        lists = self.bot.reply(kanas, **decoding)
        return [Reply(t, k, c, cu, self.vocab.unknown_chars(k)) for t, k, c, cu in zip(texts, kanas, lists, cut)]


def check_decoding(
    num: int, temperature: float, top_p: float, beam: int, mmi: float = 0.0, length_penalty: float = 1.0
) -> None:
    """The decoding options' own limits (before any model loads); --num above MAX_NUM is capped by the CLI."""
    import math

    if num < 1:
        raise UsageError(f"--num must be at least 1, not {num}")
    if not math.isfinite(mmi):
        raise UsageError(f"--mmi must be a finite number, not {mmi}")
    check_model_decoding(temperature=temperature, top_p=top_p, beam=beam, length_penalty=length_penalty)


# ---------------------------------------------------------------- inputs and outputs


def read_input_file(path: Path) -> list[str]:
    """Text lines (blank ones skipped) or the `utterance` column of a Parquet file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such input file: {path}")
    if path.is_dir():
        raise InputError(f"--input {path} is a folder; name a text or Parquet file")
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        from pipeline.corpus import read_checked

        try:
            schema = pq.read_schema(path)
            if "utterance" not in schema.names:
                raise InputError(f"{path} has no `utterance` column (it has: {', '.join(schema.names)})")
            texts = [t for t in read_checked(path, ["utterance"]).column(0).to_pylist()]
        except pa.ArrowException as exc:
            raise InputError(f"cannot read {path} as Parquet: {exc}") from None
        return [t for t in texts if t and strip_quotes(t)]
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text (or give a .parquet file)") from None
    return [ln.strip() for ln in text.splitlines() if strip_quotes(ln)]


def write_output_file(path: Path, replies: list[Reply]) -> int:
    """CSV (UTF-8) or Parquet by suffix: utterance, utterance_kana, candidate, reply, score, truncated."""
    import pyarrow as pa

    from pipeline.atomic import write_output as write_with

    rows: dict[str, list] = {
        "utterance": [],
        "utterance_kana": [],
        "candidate": [],
        "reply": [],
        "score": [],
        "truncated": [],
    }
    for r in replies:
        for j, (rep, sc) in enumerate(zip(r.replies, r.scores), start=1):
            rows["utterance"].append(r.text)
            rows["utterance_kana"].append(r.kana)
            rows["candidate"].append(j)
            rows["reply"].append(rep)
            rows["score"].append(round(sc, 5))
            rows["truncated"].append(r.truncated)
    table = pa.table(rows)
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        write_with(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
    elif suffix in (".csv", ".txt", ""):
        import pyarrow.csv as pacsv

        write_with(path, lambda tmp: pacsv.write_csv(table, tmp))
    else:
        raise UsageError(f"--output must end in .csv or .parquet, not {path.name}")
    return table.num_rows


def batched(items: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for it in items:
        batch.append(it)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
