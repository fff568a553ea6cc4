"""The small dataclasses that flow between stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Episode:
    """One episode's body lines, markup removed except ruby (kept as ｜base《reading》
    or kanji《reading》, so that readings can use it). Prefaces and afterwords are not here."""

    number: int
    lines: list[str]


@dataclass(frozen=True)
class WorkRef:
    """A work in the raw store: data/raw/<source>/<work_id>/."""

    source: str
    work_id: str
    path: Path

    @property
    def key(self) -> str:
        return f"{self.source}/{self.work_id}"


@dataclass(frozen=True)
class Candidate:
    """Two consecutive dialogue lines, before reading. `*_ruby` keep the author's ruby."""

    episode: int
    line: int
    utterance: str
    reply: str
    utterance_ruby: str
    reply_ruby: str


@dataclass
class Counters:
    """Named counters; `dropped_*` say why something was left out (datatrove style)."""

    values: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, n: int = 1) -> None:
        self.values[name] = self.values.get(name, 0) + n

    def merge(self, other: "Counters | dict[str, int]") -> None:
        for k, v in (other.values if isinstance(other, Counters) else other).items():
            self.add(k, v)

    def __getitem__(self, name: str) -> int:
        return self.values.get(name, 0)
