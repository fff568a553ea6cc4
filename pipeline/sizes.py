"""Upper bounds of every size `nocpipe train` takes, and the memory estimate behind the batch bound.

Each size has a fixed ceiling far above any sensible run (the katakana alphabet has about
110 characters, the 2017 experiment used 50 steps and 512 units), so that a slip of the
keyboard (`--max-len 100000000`) is refused in one line before any work. The batch, the
sequence length and the width together decide the memory of one training step; that is
estimated here from the architecture and checked against the memory this machine has
available (/proc/meminfo, else os.sysconf), so that `--batch-size 100000` is refused with
the largest batch that fits rather than growing until the system kills it.

The estimate counts, in 4-byte floats: the weights four times (the weights, their
gradients and Adam's two slots), and per pair the activations a step keeps for the
backward pass and their gradients (two copies): one-hot inputs, every layer's outputs,
attention scores (heads × steps² per attention), and the softmax over the vocabulary at
every step. Plus the validation pairs and two data windows as int32 ids. It is a rough
upper estimate of the host memory; on a GPU the device memory is the tighter limit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import UsageError

MAX_EPOCHS = 100_000
MAX_BATCH = 65_536
MAX_LEN = 1_024
MAX_VOCAB = 4_096
MAX_UNITS = 8_192
MAX_LAYERS = 48
MAX_HEADS = 64
MAX_STEPS_PER_EPOCH = 10_000_000
MAX_VALID_PAIRS = 1_000_000
MAX_WINDOW_ROWS = 4_194_304
MAX_PAIRS = 10_000_000_000

#: (option, lowest, highest) of every size train takes; None (the default) is not checked.
BOUNDS = (
    ("batch_size", 1, MAX_BATCH),
    ("max_len", 1, MAX_LEN),
    ("vocab_size", 3, MAX_VOCAB),
    ("units", 1, MAX_UNITS),
    ("layers", 1, MAX_LAYERS),
    ("heads", 0, MAX_HEADS),
    ("steps_per_epoch", 0, MAX_STEPS_PER_EPOCH),
    ("valid_pairs", 0, MAX_VALID_PAIRS),
    ("window_rows", 1, MAX_WINDOW_ROWS),
    ("max_pairs", 0, MAX_PAIRS),
)

_FLOAT = 4
_GB = 1024**3


def check_bounds(values: dict) -> None:
    """UsageError naming the first size outside its bounds (values: option name -> value or None)."""
    for name, low, high in BOUNDS:
        value = values.get(name)
        if value is not None and not (low <= value <= high):
            raise UsageError(f"--{name.replace('_', '-')} must be from {low:,} to {high:,}, not {value:,}")


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now (MemAvailable), or None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


@dataclass(frozen=True)
class Footprint:
    """Floats a training run holds: `fixed` whatever the batch, `per_pair` for each pair of a step."""

    fixed: int
    per_pair: int

    def bytes(self, batch: int) -> int:
        return _FLOAT * (self.fixed + self.per_pair * batch)

    def largest_batch(self, memory: int) -> int:
        return max(0, (memory // _FLOAT - self.fixed) // self.per_pair)


def footprint(s: dict, valid_pairs: int, window_rows: int) -> Footprint:
    """The estimate for the settings `s` (arch, units, layers, heads, max_len, vocab_size)."""
    t, u, v = int(s["max_len"]), int(s["units"]), int(s["vocab_size"]) + 1
    heads = int(s.get("heads") or max(1, min(8, u // 32)))
    layers = int(s.get("layers") or 1)
    arch = s["arch"]
    out = 3 * t * v  # logits, softmax and their gradient at every step
    if arch == "transformer":
        weights = layers * 20 * u * u + 3 * v * u + 2 * t * u
        acts = layers * (2 * 14 * t * u + 4 * t * u + 3 * 2 * heads * t * t) + 2 * t * u + out
    elif arch == "attention":
        weights = 2 * 3 * u * (v + u) + 8 * u * u + 2 * u * v
        acts = 14 * t * u + 2 * 2 * heads * t * t + 2 * t * v + out
    else:  # seed, simple, dense-attention: LSTM encoder, bidirectional LSTM decoder
        weights = 4 * u * (v + u) + 16 * u * u + 2 * u * v + (t * v * u if arch == "seed" else 0)
        acts = 15 * t * u + 2 * t * v + out
    data = 2 * t * (valid_pairs + 2 * 2 * window_rows)  # int32 ids: validation, two windows (with copies)
    return Footprint(fixed=4 * weights + data, per_pair=2 * acts)


def check_memory(s: dict, batch: int, valid_pairs: int, window_rows: int, memory: int | None = None) -> None:
    """UsageError when one training step of `batch` pairs would not fit the available memory."""
    memory = available_memory() if memory is None else memory
    if memory is None:
        return
    fp = footprint(s, valid_pairs, window_rows)
    need = fp.bytes(batch)
    if need <= memory:
        return
    what = f"{s['arch']} with --units {s['units']}, --max-len {s['max_len']}, --vocab-size {s['vocab_size']}"
    fits = fp.largest_batch(memory)
    advice = (
        f"use at most --batch-size {fits:,}"
        if fits >= 1
        else "even one pair does not fit: lower --units, --max-len or --layers"
    )
    raise UsageError(
        f"--batch-size {batch:,} for {what} needs about {need / _GB:,.1f} GB per training step "
        f"(estimated); {memory / _GB:,.1f} GB are available: {advice}"
    )
