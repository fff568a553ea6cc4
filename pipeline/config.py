"""The one place for defaults. Paths honour NOCPIPE_DATA, which moves every
data folder at once (data/raw, data/processed, data/models)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: The original experiment's limit on a side's length, in katakana characters.
DEFAULT_MAX_LEN = 50
#: `nocpipe train --arch` when none is given: the best validation bits/char at equal time and
#: width on the bundled corpus (docs/models.md); `seed` stays the 2017 network.
DEFAULT_ARCH = "transformer"
#: `nocpipe train --arch` names: the generative networks (pipeline.models builds them) and the
#: retrieval chatbot (pipeline.retrieval), which ranks the corpus's own replies.
ARCHES = ("transformer", "attention", "seed", "simple", "dense-attention", "retrieval")
#: `--units` when none is given: the width of every architecture.
DEFAULT_UNITS = 128
#: train/valid/test shares of works, by a stable hash of work_id.
DEFAULT_SPLIT = (0.8, 0.1, 0.1)
#: Pairs per Parquet shard before a new shard is started.
SHARD_TARGET_PAIRS = 50_000
#: Katakana readers, the default first: UniDic reads better (README, "Readings").
READERS = ("unidic", "pykakasi")
#: Largest input file ingest reads (MB): a bigger one is skipped, so memory stays bounded.
MAX_INPUT_MB = 64
SOURCES = ("nocturne", "narou", "aozora", "text")


def data_root() -> Path:
    return Path(os.environ.get("NOCPIPE_DATA", "data"))


def default_raw_dir() -> Path:
    return data_root() / "raw"


def default_processed_dir() -> Path:
    return data_root() / "processed"


def default_pairs_dir() -> Path:
    return default_processed_dir() / "pairs"


def default_models_dir() -> Path:
    return data_root() / "models"


@dataclass(frozen=True)
class SplitConfig:
    """Shares of works in train/valid/test; parsed from '80,10,10'."""

    train: float = DEFAULT_SPLIT[0]
    valid: float = DEFAULT_SPLIT[1]
    test: float = DEFAULT_SPLIT[2]

    @classmethod
    def parse(cls, text: str) -> "SplitConfig":
        from .errors import UsageError

        try:
            parts = [float(p) for p in text.replace("/", ",").split(",")]
        except ValueError:
            parts = []
        if len(parts) != 3 or any(p < 0 for p in parts) or sum(parts) <= 0:
            raise UsageError(f"--split takes three shares like 80,10,10, not {text!r}")
        total = sum(parts)
        return cls(*(p / total for p in parts))

    def as_list(self) -> list[float]:
        return [round(self.train, 6), round(self.valid, 6), round(self.test, 6)]


@dataclass(frozen=True)
class NearDupConfig:
    """Near-copy works: MinHash over character shingles of a work's katakana dialogue.

    Chosen on the bundled 61 Aozora works (`benchmarks/extract.py --neardup-only`; the table
    is in docs/corpus.md): at 5-character shingles the most similar unrelated works have a
    Jaccard similarity of 0.069 (MinHash estimate 0.094), while copies with 10 % of their
    lines changed and 5 % removed score at least 0.817 (estimate 0.797), and copies with
    half their lines changed still 0.564. A threshold of 0.5 sits in that gap.
    """

    shingle: int = 5  # characters per shingle
    num_perm: int = 128  # MinHash permutations (signature length)
    threshold: float = 0.5  # estimated Jaccard similarity that makes two works near-copies
    min_shingles: int = 50  # works with fewer shingles are never grouped (too little text)
    seed: int = 1


@dataclass(frozen=True)
class ServeLimits:
    """What `nocpipe serve` accepts in one request, and how it batches model calls."""

    #: Characters of input text (the model reads at most max_len katakana of it anyway).
    max_text: int = 200
    #: Bytes of a request body: anything longer is refused before it is parsed.
    max_body: int = 8192
    max_num: int = 10
    max_beam: int = 16
    max_temperature: float = 5.0
    #: Replies answered by one model call at most.
    max_batch: int = 32
    #: After a batch of several, how long the next waits for the rest of its round (seconds).
    batch_window: float = 0.002
    #: Requests waiting for the model before new ones are turned away with 503.
    max_pending: int = 256


SERVE_HOST = "127.0.0.1"
SERVE_PORT = 8000
