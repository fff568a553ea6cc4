"""The retrieval model's hyper-parameters: config.json["model"] of a retrieval model folder (Keras-free)."""

from __future__ import annotations

from dataclasses import dataclass

from .. import config
from ..errors import UsageError
from .features import TRIGRAM_BUCKETS

#: The widest encoder: 1M replies x 2 vectors x units x 2 bytes must stay within memory.
MAX_UNITS = 512
#: In-batch negatives: the score matrix is batch x batch.
MAX_BATCH = 4096


@dataclass
class RetrievalConfig:
    """Saved as config.json["model"]; a resumed run continues with it."""

    arch: str = "retrieval"
    units: int = 256
    max_len: int = config.DEFAULT_MAX_LEN
    vocab_size: int = 128
    trigram_buckets: int = TRIGRAM_BUCKETS
    dropout: float = 0.1
    style_units: int = 64
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    lexical_weight: float = 0.0  # chosen on validation at the end of training
    utterance_weight: float = 1.0  # answering: how much a train utterance like the input counts

    def validate(self) -> "RetrievalConfig":
        if not 8 <= self.units <= MAX_UNITS:
            raise UsageError(f"--units must be from 8 to {MAX_UNITS} for a retrieval model, not {self.units}")
        if not 0 <= self.style_units <= MAX_UNITS:
            raise UsageError(f"the style channel must have 0 to {MAX_UNITS} units, not {self.style_units}")
        if not 2 <= self.max_len <= 200:
            raise UsageError(f"--max-len must be from 2 to 200, not {self.max_len}")
        if not 8 <= self.vocab_size <= 1000:
            raise UsageError(f"--vocab-size must be from 8 to 1000, not {self.vocab_size}")
        if not 2 <= self.batch_size <= MAX_BATCH:
            raise UsageError(
                f"--batch-size must be from 2 to {MAX_BATCH} for a retrieval model (in-batch negatives), "
                f"not {self.batch_size}"
            )
        if not (0 < self.learning_rate < 1):
            raise UsageError(f"--learning-rate must be above 0 and below 1, not {self.learning_rate}")
        if not 0 <= self.dropout < 1:
            raise UsageError(f"--dropout must be from 0 to below 1, not {self.dropout}")
        return self

    @classmethod
    def from_dict(cls, obj: dict) -> "RetrievalConfig":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in obj.items() if k in known})
