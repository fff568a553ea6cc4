"""The one way stages speak: messages, warnings, skipped items and progress.

    Reporter(quiet=False)
      .info(msg)            a progress or status line on stderr (dropped when quiet)
      .warn(msg)            "warning: msg" on stderr (never dropped)
      .skipped(what, why)   "skipped: what: why" on stderr (a batch's left-out item)
      .result(msg)          what the command produced, on stdout (summaries, replies)
      .progress(items, ...) a bar on a terminal; in a log, a line at least every 30 s
      reporter(msg)         the same as .info, so a Reporter goes wherever a log callback did

Stages take a Reporter (or any callable of one string) and never print themselves; the
CLI makes one per command. Tests pass `Reporter(out=buf, err=buf)` to read what was said.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Callable, TypeVar

T = TypeVar("T")

#: Longest silence of a long job in a log (not a terminal), in seconds.
HEARTBEAT_S = 30.0


class Reporter:
    def __init__(self, quiet: bool = False, out: IO[str] | None = None, err: IO[str] | None = None):
        self.quiet = quiet
        self._out = out
        self._err = err

    @property
    def out(self) -> IO[str]:
        return self._out if self._out is not None else sys.stdout

    @property
    def err(self) -> IO[str]:
        return self._err if self._err is not None else sys.stderr

    def __call__(self, msg: str) -> None:
        self.info(msg)

    def info(self, msg: str) -> None:
        if not self.quiet:
            print(msg, file=self.err, flush=True)

    def warn(self, msg: str) -> None:
        print(f"warning: {msg}", file=self.err, flush=True)

    def skipped(self, what: object, why: str) -> None:
        print(f"skipped: {what}: {why}", file=self.err, flush=True)

    def result(self, msg: str) -> None:
        print(msg, file=self.out, flush=True)

    def is_terminal(self) -> bool:
        isatty = getattr(self.err, "isatty", None)
        return bool(isatty and isatty())

    def progress(
        self, items: Iterable[T], desc: str, unit: str = "it", total: int | None = None, enabled: bool = True
    ) -> Iterator[T]:
        """A tqdm bar on a terminal; in a log, `desc: N/total unit` at least every HEARTBEAT_S seconds."""
        if not enabled or self.quiet:
            yield from items
            return
        if self.is_terminal():
            from tqdm import tqdm

            yield from tqdm(items, desc=desc, unit=unit, total=total, file=self.err, dynamic_ncols=True, leave=False)
            return
        yield from _heartbeat(items, desc, unit, total, self.info)


def _heartbeat(items: Iterable[T], desc: str, unit: str, total: int | None, say: Callable[[str], None]) -> Iterator[T]:
    last = time.monotonic()
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= HEARTBEAT_S:
            last = now
            say(f"{desc}: {done:,}" + (f"/{total:,}" if total else "") + f" {unit}")


def as_reporter(log: Reporter | Callable[[str], None] | None) -> Reporter:
    """A Reporter for whatever a caller passed as `log` (None: the default one on stderr)."""
    if isinstance(log, Reporter):
        return log
    if log is None:
        return Reporter()
    return _CallbackReporter(log)


class _CallbackReporter(Reporter):
    """Every message through one callback: what a library caller's `log=` function gets."""

    def __init__(self, log: Callable[[str], None]):
        super().__init__()
        self._log = log

    def info(self, msg: str) -> None:
        self._log(msg)

    def warn(self, msg: str) -> None:
        self._log(f"warning: {msg}")

    def skipped(self, what: object, why: str) -> None:
        self._log(f"skipped: {what}: {why}")

    def result(self, msg: str) -> None:
        self._log(msg)
