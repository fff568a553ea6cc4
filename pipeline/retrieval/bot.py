"""A retrieval model folder as a chatbot: it answers with real lines of its corpus.

    load(folder)            config.json, vocab.json, model.keras (Keras layers only), the reply index
    reply(utts, decoding)   per input the `num` best indexed replies: score_i = cos(q, reply_i)
                            + β·cos(q, utterance_i), q the input through the utterance tower
    rank(utt, candidates)   cos(utterance, candidate) through the two towers + λ·TF-IDF cosine
                            (λ chosen on validation at training time; 0 means the encoder alone)

A reply depends only on its own input: inputs are encoded in one batch, but each is scored and
ranked against the index alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..decoding import Decoding
from ..errors import ModelError
from ..inference import Candidate, strip_quotes
from ..vocab import Vocab
from .config import RetrievalConfig
from .encoder import gram_weights, tower_vectors
from .features import NgramSpace
from .lexical import cosines, tfidf_rows

#: Index rows scored per matrix product, so a large index needs no float32 copy of itself.
CHUNK_ROWS = 1 << 17


class RetrievalBot:
    arch = "retrieval"

    def __init__(
        self,
        encoder,
        cfg: RetrievalConfig,
        vocab: Vocab,
        table,
        vectors: np.ndarray,
        name: str,
        saved: dict | None = None,
    ):
        self.encoder = encoder
        self.settings = cfg  # the retrieval model's own hyper-parameters
        self.config = saved or {"model": {}}  # config.json as written, as every bot has it
        self.vocab = vocab
        self.name = name
        self.max_len = vocab.max_len
        self.space = NgramSpace.for_vocab(vocab, cfg.trigram_buckets)
        self.table = table
        self._kana = table.column("reply_kana").to_pylist()
        self._index = _combine(vectors, cfg.utterance_weight)
        self._idf = gram_weights(encoder)

    @classmethod
    def load(cls, model_dir: Path) -> "RetrievalBot":
        from ..modeldir import ModelDir

        folder = ModelDir(Path(model_dir))
        saved = folder.read_config()
        cfg = RetrievalConfig.from_dict(saved["model"])
        vocab = folder.read_vocab()
        table, vectors = folder.read_reply_index()
        encoder = folder.load_model()
        width = NgramSpace.for_vocab(vocab, cfg.trigram_buckets).width
        if tuple(encoder.inputs[0].shape[1:]) != (width,) or vectors.shape[1] != 2 * encoder.outputs[0].shape[-1]:
            raise ModelError(
                f"{folder.path} does not fit its config (retrieval, {vocab.max_len} characters, units "
                f"{cfg.units}): was the folder changed by hand?"
            )
        return cls(encoder, cfg, vocab, table, vectors, folder.path.name, saved)

    # ------------------------------------------------------------ reading

    def to_kana(self, text: str) -> str:
        from ..kana import to_katakana

        return to_katakana(strip_quotes(text), self.vocab.reader)

    def encode(self, texts: list[str], side: int) -> np.ndarray:
        """Unit vectors (float32) of katakana texts through one tower: 0 utterance, 1 reply."""
        return tower_vectors(self.encoder, self.space, self.vocab, texts, side)

    # ------------------------------------------------------------ the interface every bot has

    def warm_up(self) -> None:
        self.encode(["ア"], 0)

    def reply(self, utterances_kana: list[str], decoding: Decoding | None = None, **kw) -> list[list[Candidate]]:
        dec = (decoding or Decoding(num=kw.get("num", 1))).validate_for(self.arch)
        if not utterances_kana:
            return []
        queries = self.encode(list(utterances_kana), 0)
        return [self._best(q, u, dec.num) for q, u in zip(queries, utterances_kana)]

    def rank(self, utterance_kana: str, candidates_kana: list[str]) -> np.ndarray:
        if not candidates_kana:
            return np.zeros(0)
        q = self.encode([utterance_kana], 0)[0]
        scores = self.encode(list(candidates_kana), 1) @ q
        if self.settings.lexical_weight:
            rows = tfidf_rows(self.space.encode(self.vocab, [utterance_kana, *candidates_kana]), self._idf)
            scores = scores + self.settings.lexical_weight * cosines(rows[0], rows[1:])
        return scores.astype(np.float64)

    # ------------------------------------------------------------ search

    def _scores(self, q: np.ndarray) -> np.ndarray:
        index = self._index
        if index.dtype == np.float32:
            return index @ q
        return np.concatenate(
            [index[i : i + CHUNK_ROWS].astype(np.float32) @ q for i in range(0, len(index), CHUNK_ROWS)]
        )

    def _best(self, q: np.ndarray, utterance: str, num: int) -> list[Candidate]:
        scores = self._scores(q)
        k = min(len(scores), num + 1)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        out = []
        for i in top:
            if self._kana[i] == utterance:  # an echo of the input is no answer
                continue
            out.append(self._candidate(int(i), float(scores[i])))
            if len(out) == num:
                break
        return out

    def _candidate(self, i: int, score: float) -> Candidate:
        row = {name: self.table.column(name)[i].as_py() for name in ("reply", "source", "work_id", "title", "author")}
        source = {
            "source": row["source"],
            "work_id": row["work_id"],
            "title": row["title"],
            "author": row["author"],
            "episode": self.table.column("episode")[i].as_py(),
            "line": self.table.column("line")[i].as_py(),
        }
        return Candidate(self._kana[i], score, surface=row["reply"], source=source)


def _combine(vectors: np.ndarray, beta: float) -> np.ndarray:
    """reply + β·utterance per row: float32 in memory up to 512 MB, float16 (scored in chunks) beyond."""
    units = vectors.shape[1] // 2
    dtype = np.float32 if vectors.shape[0] * units * 4 <= 512 << 20 else np.float16
    out = np.empty((vectors.shape[0], units), dtype=dtype)
    for i in range(0, len(out), CHUNK_ROWS):
        part = np.asarray(vectors[i : i + CHUNK_ROWS], dtype=np.float32)
        out[i : i + CHUNK_ROWS] = part[:, :units] + beta * part[:, units:]
    return out
