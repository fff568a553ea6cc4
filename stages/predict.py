"""nocpipe predict: text -> katakana (the reading extract-pairs uses) -> model -> a katakana reply.

    model folder: config.json (format checked), vocab.json, model.keras (safe mode, no optimizer)
    text -> strip one outer 「」 -> pipeline.kana.to_katakana(text, reader of the training data)
         -> cut to max_len (with a warning) -> ids, reversed as in training
    model -> (max_len, vocab) character probabilities per position
         greedy (argmax; default) or sampled at --temperature T; --num N candidates,
         best first by the model's log-probability; a reply ends at the first padding id

The decoder of these networks is not autoregressive (every position is predicted from
the same encoding), so N candidates cost one forward pass.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline import modeldir
from pipeline.errors import InputError, ModelError, UsageError
from pipeline.vocab import PAD, UNK, Vocab

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@dataclass
class Reply:
    text: str                 # the input as given
    kana: str                 # its katakana reading, as the model saw it (after cutting)
    replies: list[str]        # candidates, best first
    scores: list[float]       # mean log-probability per position of each candidate
    truncated: bool = False
    unknown: list[str] = field(default_factory=list)  # characters outside the vocabulary


def strip_quotes(text: str) -> str:
    text = text.strip().strip("\u3000")
    if len(text) >= 2 and text[0] == "「" and text[-1] == "」":
        text = text[1:-1].strip()
    return text


class Predictor:
    """A loaded model folder. `reply(texts)` answers a batch of texts."""

    def __init__(self, model_dir: Path):
        self.model_dir = Path(model_dir)
        self.config = modeldir.read_config(self.model_dir)
        self.vocab = Vocab.load(self.model_dir / modeldir.VOCAB_FILE)
        model_path = self.model_dir / modeldir.MODEL_FILE
        if not model_path.exists():
            raise ModelError(f"{self.model_dir} has no {modeldir.MODEL_FILE} yet: "
                             "train at least one epoch (nocpipe train --resume continues)")
        from pipeline.models import ModelConfig, load_inference_model

        self.model_config = ModelConfig.from_dict(self.config["model"])
        try:
            self.model = load_inference_model(model_path)
        except Exception as exc:  # a damaged or foreign .keras file: say so in one line
            raise ModelError(f"cannot load {model_path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        shape = tuple(self.model.input_shape)
        if shape[1:] != (self.vocab.max_len,):
            raise ModelError(f"{model_path} reads {shape[1:]} but the vocabulary says {self.vocab.max_len} steps")
        self.reader = self.vocab.reader

    def to_kana(self, text: str) -> str:
        from pipeline.kana import to_katakana

        return to_katakana(strip_quotes(text), self.reader)

    def reply(self, texts: list[str], temperature: float = 0.0, num: int = 1,
              seed: int | None = None) -> list[Reply]:
        if num < 1:
            raise UsageError(f"--num must be at least 1, not {num}")
        if temperature < 0 or not math.isfinite(temperature):
            raise UsageError(f"--temperature must be 0 (greedy) or positive, not {temperature}")
        if num > 1 and temperature == 0:
            temperature = 1.0  # N greedy candidates would be N copies of one
        kanas, cut = [], []
        for t in texts:
            k = self.to_kana(t)
            if not k:
                raise InputError(f"empty input: {t!r} has nothing to read")
            cut.append(len(k) > self.vocab.max_len)
            kanas.append(k[: self.vocab.max_len])
        if not kanas:
            return []
        x = self.vocab.encode_utterances(kanas)
        probs = np.asarray(self.model.predict_on_batch(x), dtype=np.float64)  # (n, T, V)
        rng = np.random.default_rng(seed)
        out = []
        for i, (t, k) in enumerate(zip(texts, kanas)):
            cands = self._candidates(probs[i], temperature, num, rng)
            out.append(Reply(t, k, [c[0] for c in cands], [c[1] for c in cands], cut[i],
                             self.vocab.unknown_chars(k)))
        return out

    def _candidates(self, p: np.ndarray, temperature: float, num: int, rng) -> list[tuple[str, float]]:
        p = p.copy()
        p[:, UNK] = 0.0  # never answer "unknown"
        p[0, PAD] = 0.0  # nor with nothing: a reply has at least one character
        p /= p.sum(axis=1, keepdims=True)
        logp = np.log(np.maximum(p, 1e-12))
        if temperature == 0:
            ids = [p.argmax(axis=1)]
        else:
            q = np.exp((logp - logp.max(axis=1, keepdims=True)) / temperature)
            q /= q.sum(axis=1, keepdims=True)
            cum = q.cumsum(axis=1)
            draws = rng.random((max(num * 4, num), p.shape[0], 1))
            ids = list((draws > cum[None, :, :]).sum(axis=2).clip(0, p.shape[1] - 1))
        seen: dict[str, float] = {}
        for seq in ids:
            text, n = self._decode(seq)
            score = float(logp[np.arange(n), seq[:n]].mean()) if n else float(logp[0, PAD])
            if text not in seen or score > seen[text]:
                seen[text] = score
        ranked = sorted(seen.items(), key=lambda kv: -kv[1])
        return ranked[:num]

    def _decode(self, seq) -> tuple[str, int]:
        """Reply text and the number of positions it used (its end marker included)."""
        chars = []
        for n, i in enumerate(seq):
            i = int(i)
            if i == PAD:
                return "".join(chars), n + 1
            if 2 <= i < len(self.vocab.tokens):
                chars.append(self.vocab.tokens[i])
        return "".join(chars), len(seq)


# ---------------------------------------------------------------- inputs and outputs

def read_input_file(path: Path) -> list[str]:
    """Text lines (blank ones skipped) or the `utterance` column of a Parquet file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such input file: {path}")
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            schema = pq.read_schema(path)
            if "utterance" not in schema.names:
                raise InputError(f"{path} has no `utterance` column (it has: {', '.join(schema.names)})")
            texts = [t for t in pq.read_table(path, columns=["utterance"]).column(0).to_pylist()]
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

    rows: dict[str, list] = {"utterance": [], "utterance_kana": [], "candidate": [], "reply": [],
                             "score": [], "truncated": []}
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
