"""nocpipe extract-pairs: raw store -> dialogue pairs -> katakana -> Parquet shards.

    list works (raw/<source>/<work_id>/meta.json) and fingerprint their files
      -> skip works whose fingerprint is in _state.json with a finished shard
      -> workers: parse episodes, find candidates (pipeline.pairs), read both sides
         (pipeline.kana), drop empty / unreadable / too long sides, counting reasons
      -> parent, in work order: drop duplicate pairs, buffer rows, and write a shard
         plus the state naming its works (each atomically) every SHARD_TARGET_PAIRS
         rows or FLUSH_SECONDS
A kill at any moment loses at most the unflushed buffer, whose works are redone.
A work that changed (re-ingested, re-scraped) invalidates the shard holding it: that
shard is deleted and its works are extracted again.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import atomic, rawstore
from pipeline.config import SHARD_TARGET_PAIRS, SplitConfig
from pipeline.errors import StoreError, UsageError
from pipeline.kana import KANJI_RE, get_reader, is_kana_text, reader_version as get_reader_version, to_katakana
from pipeline.pairs import find_candidates
from pipeline.parsers import parser_for
from pipeline.progress import progress
from pipeline.records import Counters, WorkRef
from pipeline.shards import (COLUMNS, STATE_FILE, STATS_FILE, list_shards, read_columns, shard_name,
                             split_of, write_shard)

STATE_VERSION = 1
FLUSH_SECONDS = 60.0


@dataclass(frozen=True)
class ExtractOptions:
    raw_dir: Path
    out_dir: Path
    max_len: int = 50
    reader: str = "pykakasi"
    workers: int = 0  # 0 = all cores
    split: SplitConfig = SplitConfig()
    show_progress: bool = True
    shard_target: int = SHARD_TARGET_PAIRS


@dataclass
class WorkOutput:
    """What a worker returns for one work: candidate rows that passed, and counters."""

    key: str
    source: str
    work_id: str
    rows: list[tuple] = field(default_factory=list)  # (episode, line, utt, rep, utt_kana, rep_kana)
    counters: Counters = field(default_factory=Counters)


@dataclass
class ExtractResult:
    processed: int = 0
    skipped: int = 0
    shards_written: int = 0
    counters: Counters = field(default_factory=Counters)  # this run
    totals: dict = field(default_factory=dict)            # stats.json


# ---------------------------------------------------------------- the raw store

def list_works(raw_dir: Path) -> list[WorkRef]:
    """Finished works of every source we can parse, sorted."""
    return [w for w in rawstore.list_works(raw_dir) if parser_for(w.source) is not None]


# ---------------------------------------------------------------- one work (in a worker)

def _check_side(kana: str, max_len: int) -> str | None:
    """None when the side is kept, else the reason it is dropped."""
    if not kana:
        return "dropped_empty"
    if not is_kana_text(kana):
        return "dropped_unread_kanji" if KANJI_RE.search(kana) else "dropped_bad_chars"
    if max_len and len(kana) > max_len:
        return "dropped_too_long"
    return None


def process_work(ref: WorkRef, reader: str, max_len: int) -> WorkOutput:
    out = WorkOutput(ref.key, ref.source, ref.work_id)
    c = out.counters
    parse = parser_for(ref.source)
    for episode in parse(ref.path, c):
        c.add("episodes")
        for cand in find_candidates(episode, c):
            c.add("candidate_pairs")
            if not cand.utterance.strip() or not cand.reply.strip():
                c.add("dropped_empty")
                continue
            u = to_katakana(cand.utterance_ruby, reader)
            r = to_katakana(cand.reply_ruby, reader)
            reason = _check_side(u, max_len) or _check_side(r, max_len)
            if reason:
                c.add(reason)
                continue
            out.rows.append((cand.episode, cand.line, cand.utterance, cand.reply, u, r))
    c.add("works")
    return out


def _work_task(args: tuple[WorkRef, str, int]) -> WorkOutput:
    return process_work(*args)


# ---------------------------------------------------------------- state

def _options_key(opts: ExtractOptions, reader_version: str) -> dict:
    return {"max_len": opts.max_len, "reader": opts.reader, "reader_version": reader_version,
            "split": opts.split.as_list(), "columns": COLUMNS, "state_version": STATE_VERSION}


def _load_state(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        # Only ever written atomically, so this is a hand edit: start again rather than guess.
        print(f"warning: {path} is unreadable; extracting everything again", file=sys.stderr)
        return {}


def _empty_state(options: dict) -> dict:
    return {"options": options, "works": {}, "shards": {}, "next_shard": 0}


def _pair_key(u: str, r: str) -> bytes:
    # 16 bytes per pair instead of two strings: the seen-set stays small for big corpora.
    return hashlib.blake2b(f"{u}\t{r}".encode(), digest_size=16).digest()


# ---------------------------------------------------------------- the stage

def extract_pairs(opts: ExtractOptions) -> ExtractResult:
    if opts.max_len < 0:
        raise UsageError("--max-len must be 0 (no limit) or more")
    workers = opts.workers or os.cpu_count() or 1
    if workers < 1:
        raise UsageError("--workers must be 1 or more")
    out_dir = opts.out_dir
    works = list_works(opts.raw_dir)
    if not works:
        raise StoreError(f"the raw store {opts.raw_dir} holds no works yet; run `nocpipe ingest` or `nocpipe scrape` first")
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic.clean_temporaries(out_dir)

    reader_version = get_reader_version(opts.reader)
    options = _options_key(opts, reader_version)
    state_path = out_dir / STATE_FILE
    state = _load_state(state_path)
    result = ExtractResult()

    if state and state.get("options") != options:
        old = state.get("options", {})
        changed = ", ".join(f"{k} {old.get(k)!r} -> {v!r}" for k, v in options.items() if old.get(k) != v)
        print(f"options changed since the last run ({changed}): extracting everything again", file=sys.stderr)
        state = {}
    if not state:
        for p in list_shards(out_dir):
            p.unlink()
        state = _empty_state(options)

    # Which works are finished: same fingerprint, and their shard is still on disk.
    current = {w.key: w for w in works}
    prints = {w.key: rawstore.fingerprint(w.path) for w in works}
    on_disk = {p.name for p in list_shards(out_dir)}
    bad_shards = set()
    for key, info in state["works"].items():
        shard = info.get("shard")
        if key not in current or info.get("fingerprint") != prints[key] or (shard and shard not in on_disk):
            if shard:
                bad_shards.add(shard)
    for shard in bad_shards:
        for key in state["shards"].pop(shard, []):
            state["works"].pop(key, None)
        (out_dir / shard).unlink(missing_ok=True)
    for key in [k for k in state["works"] if k not in current]:
        state["works"].pop(key)
    # Shards on disk that the state does not name are leftovers of a crash between
    # shard and state: their works are redone, so the shard must go.
    for name in on_disk - set(state["shards"]):
        (out_dir / name).unlink(missing_ok=True)

    pending = [w for w in works if w.key not in state["works"]]
    result.skipped = len(works) - len(pending)
    if not pending:
        result.totals = _write_stats(out_dir, state, opts, reader_version)
        return result

    seen: set[bytes] = set()
    shards = list_shards(out_dir)
    if shards:
        table = read_columns(shards, ["utterance_kana", "reply_kana"])
        seen.update(_pair_key(u, r) for u, r in zip(table.column(0).to_pylist(), table.column(1).to_pylist()))

    buffer: dict[str, list] = {c: [] for c in COLUMNS}
    buffered_works: list[tuple[str, dict]] = []
    last_flush = time.monotonic()

    def flush() -> None:
        nonlocal last_flush
        if not buffered_works:
            return
        name = None
        if buffer["source"]:
            name = shard_name(state["next_shard"])
            state["next_shard"] += 1
            write_shard(out_dir / name, buffer)
            state["shards"][name] = [k for k, _ in buffered_works]
            result.shards_written += 1
        for key, info in buffered_works:
            info["shard"] = name
            state["works"][key] = info
        atomic.write_json(state_path, state)
        for col in buffer.values():
            col.clear()
        buffered_works.clear()
        last_flush = time.monotonic()

    get_reader(opts.reader)  # built once here, before the workers fork
    tasks = [(w, opts.reader, opts.max_len) for w in pending]
    try:
        for out in progress(_run(tasks, min(workers, len(tasks))), desc="extract-pairs", unit="work",
                            enabled=opts.show_progress, total=len(tasks)):
            split = split_of(out.work_id, opts.split)
            kept = 0
            for ep, line, utt, rep, uk, rk in out.rows:
                key = _pair_key(uk, rk)
                if key in seen:
                    out.counters.add("dropped_duplicate")
                    continue
                seen.add(key)
                kept += 1
                for col, val in zip(COLUMNS, (out.source, out.work_id, ep, line, utt, rep, uk, rk, split)):
                    buffer[col].append(val)
            out.counters.add("pairs_kept", kept)
            result.counters.merge(out.counters)
            result.processed += 1
            buffered_works.append((out.key, {"fingerprint": prints[out.key], "split": split,
                                             "counters": out.counters.values}))
            if len(buffer["source"]) >= opts.shard_target or time.monotonic() - last_flush > FLUSH_SECONDS:
                flush()
        flush()
    finally:
        # On Ctrl-C the finished shards and the state naming them are kept; the rest is redone.
        result.totals = _write_stats(out_dir, state, opts, reader_version)
    return result


def _run(tasks: list[tuple], workers: int) -> Iterator[WorkOutput]:
    """Results in task order (so dedup is repeatable), from `workers` processes."""
    if workers <= 1:
        for t in tasks:
            yield _work_task(t)
        return
    # fork: the reader built in this process (dictionaries loaded) is shared copy-on-write.
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers) as pool:
        yield from pool.imap(_work_task, tasks, chunksize=1)


def _write_stats(out_dir: Path, state: dict, opts: ExtractOptions, reader_version: str) -> dict:
    totals = Counters()
    by_split = Counters()
    for info in state["works"].values():
        totals.merge(info.get("counters", {}))
        by_split.add(info.get("split", "train"), info.get("counters", {}).get("pairs_kept", 0))
    drops = {k: v for k, v in sorted(totals.values.items()) if k.startswith("dropped_")}
    stats = {
        "works": len(state["works"]),
        "shards": len(state["shards"]),
        "episodes": totals["episodes"],
        "lines": totals["lines"],
        "dialogue_lines": totals["dialogue_lines"],
        "candidate_pairs": totals["candidate_pairs"],
        "pairs_kept": totals["pairs_kept"],
        "dropped": drops,
        "gaiji_resolved": totals["gaiji_resolved"],
        "gaiji_dropped": totals["gaiji_dropped"],
        "pairs_by_split": dict(sorted(by_split.values.items())),
        "reader": opts.reader,
        "reader_version": reader_version,
        "max_len": opts.max_len,
        "split": opts.split.as_list(),
    }
    atomic.write_json(out_dir / STATS_FILE, stats)
    return stats
