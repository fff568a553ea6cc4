"""ModelConfig: every hyper-parameter of a network, saved as the "model" section of config.json.

No Keras here: the model folder's checks (pipeline/modeldir.py) and the fast errors of predict,
evaluate and serve read a config before anything heavy is imported.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields

from ..errors import ModelError, UsageError

PARALLEL_ARCHS = ("seed", "simple", "dense-attention")
AUTOREGRESSIVE_ARCHS = ("attention", "transformer")
ARCHS = PARALLEL_ARCHS + AUTOREGRESSIVE_ARCHS
OPTIMIZERS = ("adam", "rmsprop", "sgd")
POSITIONS = ("learned", "sinusoidal")

#: How the network is put together in model.keras. 1: the autoregressive networks hold nocpipe's
#: own PaddingMask and PositionEmbedding layers (they load only with pipeline.models imported);
#: 2: Keras layers and ops only (any Keras 3 loads the file). A config without the field is 1.
GRAPH_VERSION = 2
GRAPH_VERSIONS = (1, 2)


@dataclass
class ModelConfig:
    """Every hyper-parameter of a model; saved as JSON in the model folder's config.json."""

    arch: str = "seed"
    units: int = 512
    layers: int = 2  # transformer: encoder and decoder blocks (each)
    heads: int = 0  # transformer and attention: attention heads (0: units // 32, 1 to 8)
    positions: str = "learned"  # transformer: learned or sinusoidal position vectors
    reply_dropout: float = 0.0  # attention and transformer: share of the reply-so-far characters hidden in training
    dropout: float = 0.0  # attention and transformer: dropout inside the network, in training only
    max_len: int = 50
    vocab_size: int = 128
    reverse_input: bool = True
    optimizer: str = "adam"
    learning_rate: float | None = None  # None: the optimizer's Keras default
    graph: int = GRAPH_VERSION  # see GRAPH_VERSION

    def validate(self) -> "ModelConfig":
        if self.arch not in ARCHS:
            raise UsageError(f"unknown architecture {self.arch!r}: use one of {', '.join(ARCHS)}")
        if self.optimizer not in OPTIMIZERS:
            raise UsageError(f"unknown optimizer {self.optimizer!r}: use one of {', '.join(OPTIMIZERS)}")
        if self.positions not in POSITIONS:
            raise UsageError(f"positions must be learned or sinusoidal, not {self.positions!r}")
        if self.arch in AUTOREGRESSIVE_ARCHS and self.max_len < 2:
            raise UsageError(
                f"max-len must be at least 2 for {self.arch} (a character and the end), not {self.max_len}"
            )
        for name in ("reply_dropout", "dropout"):
            if not (0.0 <= float(getattr(self, name)) < 1.0):
                flag = name.replace("_", "-")
                raise UsageError(f"{flag} must be from 0 up to (not including) 1, not {getattr(self, name)}")
        if self.dropout and self.arch not in AUTOREGRESSIVE_ARCHS:
            raise UsageError(f"dropout applies to attention and transformer, not {self.arch}: leave it out")
        if self.heads < 0 or (self.heads and self.units % self.heads):
            raise UsageError(f"heads must divide units ({self.units}), not {self.heads}")
        for name in ("units", "max_len", "layers"):
            if int(getattr(self, name)) < 1:
                raise UsageError(f"{name.replace('_', '-')} must be at least 1, not {getattr(self, name)}")
        if self.vocab_size < 3:
            raise UsageError(f"vocab-size must be at least 3 (padding, unknown, one character), not {self.vocab_size}")
        if self.learning_rate is not None and not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise UsageError(f"learning-rate must be a positive number, not {self.learning_rate}")
        if self.graph not in GRAPH_VERSIONS:
            raise UsageError(f"graph must be one of {GRAPH_VERSIONS} (written by a newer nocpipe?), not {self.graph}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def autoregressive(self) -> bool:
        return self.arch in AUTOREGRESSIVE_ARCHS

    @property
    def start_id(self) -> int:
        """The decoder's start token: one id past the vocabulary (an input only, never predicted)."""
        return self.vocab_size

    def num_heads(self) -> int:
        if self.heads:
            return self.heads
        h = max(1, min(8, self.units // 32))
        while self.units % h:
            h -= 1
        return h

    @classmethod
    def from_dict(cls, obj: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise ModelError(f"model config has unknown fields {unknown}: written by another version?")
        return cls(**{"graph": 1, **obj}).validate()  # a folder written before the field: custom layers

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        return cls.from_dict(json.loads(text))
