"""The character vocabulary of a model: JSON on disk (never pickle), encode and decode.

    id 0  padding (also "end of reply": decoding stops at the first 0)
    id 1  unknown (any character outside the vocabulary)
    id 2… the most frequent characters of the train split, most frequent first
          (ties in code-point order), so that the whole vocabulary is `size` ids

Sequences have a fixed length (`max_len`, the model's time steps): a longer text is
cut to its first `max_len` characters, a shorter one is padded with 0 at the end.
With `reverse=True` (the utterance side, as in the original experiment) the whole
padded row is reversed: 「アイウ」 becomes [0, …, 0, ウ, イ, ア], so the encoder reads
the utterance backwards and ends on its first character.

Encoding is vectorised (numpy fixed-width unicode arrays and a code-point lookup
table), because the trainer encodes every pair it streams.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import write_json
from .errors import ModelError

PAD = 0
UNK = 1
PAD_TOKEN = ""
UNK_TOKEN = "<unk>"
VOCAB_FORMAT = 1
_MAX_CODEPOINT = 0x110000


@dataclass
class Vocab:
    """Characters by id (tokens[0] is padding, tokens[1] unknown) and how sequences are cut."""

    tokens: list[str]
    max_len: int = 50
    reverse_input: bool = True
    reader: str = "pykakasi"
    reader_version: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    _table: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    _chars: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.tokens) < 2 or self.tokens[PAD] != PAD_TOKEN or self.tokens[UNK] != UNK_TOKEN:
            raise ModelError("vocabulary must start with padding and unknown")
        chars = self.tokens[2:]
        if any(len(c) != 1 for c in chars) or len(set(chars)) != len(chars):
            raise ModelError("vocabulary entries must be distinct single characters")
        if self.max_len < 1:
            raise ModelError(f"max_len must be at least 1, not {self.max_len}")

    # ------------------------------------------------------------ building

    @classmethod
    def build(cls, counts: Counter | dict[str, int], size: int, **kw) -> "Vocab":
        """The `size - 2` most frequent characters (ties by code point) plus padding and unknown."""
        if size < 3:
            raise ModelError(f"vocabulary size must be at least 3, not {size}")
        ranked = sorted(
            ((c, n) for c, n in counts.items() if len(c) == 1 and c != "\x00"), key=lambda cn: (-cn[1], cn[0])
        )[: size - 2]
        return cls([PAD_TOKEN, UNK_TOKEN] + [c for c, _ in ranked], counts={c: int(n) for c, n in ranked}, **kw)

    @staticmethod
    def count(texts: Iterable[str], counter: Counter | None = None) -> Counter:
        """Add the characters of `texts` to `counter` (one C-level pass per call)."""
        counter = Counter() if counter is None else counter
        counter.update("".join(texts))
        return counter

    def __len__(self) -> int:
        return len(self.tokens)

    # ------------------------------------------------------------ encode / decode

    def _lookup(self) -> np.ndarray:
        if self._table is None:
            table = np.full(_MAX_CODEPOINT, UNK, dtype=np.int32)
            table[0] = PAD
            for i, c in enumerate(self.tokens[2:], start=2):
                table[ord(c)] = i
            self._table = table
        return self._table

    def encode_batch(
        self, texts: Sequence[str] | np.ndarray, reverse: bool = False, max_len: int | None = None
    ) -> np.ndarray:
        """int32 array (len(texts), max_len): ids, padded with 0, cut at max_len, optionally reversed."""
        n = max_len or self.max_len
        if len(texts) == 0:
            return np.zeros((0, n), dtype=np.int32)
        # Fixed-width UCS-4: numpy pads with NUL and cuts longer strings at n characters.
        arr = np.asarray(texts, dtype=object).astype(f"U{n}")
        codes = arr.view(np.uint32).reshape(len(arr), n)
        ids = self._lookup()[codes]
        if reverse:
            ids = ids[:, ::-1]
        return np.ascontiguousarray(ids, dtype=np.int32)

    def encode(self, text: str, reverse: bool = False) -> np.ndarray:
        return self.encode_batch([text], reverse=reverse)[0]

    def encode_utterances(self, texts: Sequence[str]) -> np.ndarray:
        """The model's input: utterances, reversed when the model was trained so."""
        return self.encode_batch(texts, reverse=self.reverse_input)

    def encode_replies(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode_batch(texts, reverse=False)

    def decode(self, ids: Iterable[int], reverse: bool = False) -> str:
        """Characters up to the first padding id; unknown and out-of-range ids are left out."""
        seq = [int(i) for i in ids]
        if reverse:
            seq = seq[::-1]
            # A reversed row starts with its padding.
            while seq and seq[0] == PAD:
                seq.pop(0)
        out = []
        for i in seq:
            if i == PAD:
                break
            if 2 <= i < len(self.tokens):
                out.append(self.tokens[i])
        return "".join(out)

    def unknown_chars(self, text: str) -> list[str]:
        known = set(self.tokens[2:])
        return sorted({c for c in text if c not in known})

    # ------------------------------------------------------------ JSON

    def to_json(self) -> dict:
        return {
            "format": VOCAB_FORMAT,
            "pad_id": PAD,
            "unk_id": UNK,
            "max_len": self.max_len,
            "reverse_input": self.reverse_input,
            "reader": self.reader,
            "reader_version": self.reader_version,
            "tokens": self.tokens,
            "counts": self.counts,
        }

    @classmethod
    def from_json(cls, obj: dict, path: Path | None = None, fix: str | None = None) -> "Vocab":
        if not isinstance(obj, dict) or obj.get("format") != VOCAB_FORMAT:
            fmt = obj.get("format") if isinstance(obj, dict) else None
            raise ModelError(f"vocabulary format {fmt!r} is not the one this nocpipe reads ({VOCAB_FORMAT})")
        from .modeldir import VOCAB_FILE, check_types

        missing = [k for k in ("tokens", "max_len", "reverse_input") if k not in obj]
        if missing:
            raise ModelError(f"vocabulary is incomplete: no {', '.join(missing)}")
        # Types checked, not coerced: bool("false") is True, int("abc") a traceback.
        check_types(obj, cls, Path(path) if path else Path(VOCAB_FILE), fix)
        if len(obj["tokens"]) < 3 or obj["max_len"] < 1:
            raise ModelError(
                f"{path or VOCAB_FILE} is damaged (fewer than 3 tokens, or max_len below 1); {fix or 'restore it'}"
            )
        return cls(
            tokens=list(obj["tokens"]),
            max_len=obj["max_len"],
            reverse_input=obj["reverse_input"],
            reader=obj.get("reader", "pykakasi"),
            reader_version=obj.get("reader_version", ""),
            counts=dict(obj.get("counts", {})),
        )

    def save(self, path: Path) -> None:
        write_json(Path(path), self.to_json())

    @classmethod
    def load(cls, path: Path) -> "Vocab":
        path = Path(path)
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"no vocabulary at {path}") from None
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read the vocabulary {path}: {exc}") from None
        return cls.from_json(obj, path, "restore it, or train the model again with --force")
