"""nocpipe extract-pairs: raw store -> dialogue pairs -> katakana -> Parquet shards.

Two phases, so that a rerun after any change equals a clean run by construction:

    phase 1, per work (in worker processes; only works whose files or options changed):
      parse episodes, find candidates (pipeline.pairs), read both sides (pipeline.kana),
      drop empty / unreadable / too long sides, counting reasons; write the work's rows
      with each pair's exact and near-duplicate keys, its counters and MinHash signature
      to <out>/.works/<source>/<work_id>.parquet
    phase 2, over all works in work_id order (in this process, from those files):
      group near-copy works (a group takes the split of its member whose work_id sorts
      first), drop exact and near-duplicate pairs (the first occurrence is kept), and
      write the split shards <out>/pairs/{train,validation,test}-NNNNN.parquet (a shard
      whose content did not change is left as it is), stats.json, the dataset card
      (README.md) and _state.json

A kill in phase 1 loses only the works in flight; phase 2 is rebuilt from the per-work
files each time anything changed, so no dedup decision outlives the works it depended on.

The raw store and the corpus folder may be URLs of an object store (s3://, gs://, any
fsspec file system; pipeline.location). Workers then copy a work's folder from the raw
store before reading it and put their per-work file straight into the corpus folder (one
PUT: whole or absent); the driver works on a local copy of the corpus folder
(pipeline.mirror) and uploads what phase 2 changed, _state.json last. An object store has
no locks: one extract-pairs per corpus folder at a time is the user's rule there.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline import card, corpus, neardup, rawstore
from pipeline.arrowprobe import skip_pandas_probe
from pipeline.config import READERS, SHARD_TARGET_PAIRS, NearDupConfig, SplitConfig
from pipeline.corpus import COLUMNS, SCHEMA, SPLITS, WORK_COLUMNS, CorpusWriter, WorkSink, split_of
from pipeline.errors import NocpipeError, StoreError, UsageError, describe_os_error
from pipeline.kana import (
    DEFAULT_READER,
    KANJI_RE,
    READING_SOURCES,
    READINGS_VERSION,
    SideReader,
    get_reader,
    is_kana_text,
)
from pipeline.kana import reader_version as get_reader_version
from pipeline.pairs import find_candidates
from pipeline.parsers import parser_for
from pipeline.records import Counters, WorkRef
from pipeline.reporter import Reporter, as_reporter
from pipeline.rubymemory import RubyMemory

STATE_VERSION = 3
#: Bounds of the sizes a user chooses (the --help text states them).
MAX_WORKERS = 1024
MAX_SHARD_PAIRS = 10_000_000
MAX_EXAMPLES = 1000


@dataclass(frozen=True)
class ExtractOptions:
    raw_dir: Path | str  # a local path, or the URL of a raw store on another file system
    out_dir: Path | str  # likewise for the corpus folder
    max_len: int = 50
    reader: str = DEFAULT_READER
    workers: int = 0  # 0 = all cores
    scheduler: str | None = None  # a Dask scheduler address or local:N (pipeline.cluster); None: local processes
    split: SplitConfig = SplitConfig()
    show_progress: bool = True
    shard_target: int = SHARD_TARGET_PAIRS
    neardup: NearDupConfig = NearDupConfig()
    examples: int = 0  # rows of the first shard to return in the result

    def validate(self) -> None:
        """Every option checked, one UsageError line each, before any work is done."""
        if self.reader not in READERS:
            raise UsageError(f"unknown reader {self.reader!r}: use {' or '.join(READERS)}")
        if self.max_len < 0:
            raise UsageError("--max-len must be 0 (no limit) or more")
        if not 0 <= self.workers <= MAX_WORKERS:
            raise UsageError(f"--workers must be 0 (all cores) to {MAX_WORKERS}, not {self.workers}")
        if not 1 <= self.shard_target <= MAX_SHARD_PAIRS:
            raise UsageError(f"--shard-size must be 1 to {MAX_SHARD_PAIRS:,} pairs, not {self.shard_target}")
        if not 0 <= self.examples <= MAX_EXAMPLES:
            raise UsageError(f"--examples must be 0 to {MAX_EXAMPLES}, not {self.examples}")
        shares = self.split.as_list()
        if not all(math.isfinite(x) and x >= 0 for x in shares) or not 0.999 < sum(shares) < 1.001:
            raise UsageError(f"the split shares {shares} are not finite, non-negative shares of one")
        if self.scheduler:  # a bad address or a missing extra stops before any work is done
            from pipeline import cluster

            cluster.parse_scheduler(self.scheduler, self.worker_count())
            cluster.require_dask()

    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1


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
    removed: int = 0
    failed: list[str] = field(default_factory=list)  # works that could not be read, one line each
    counters: Counters = field(default_factory=Counters)  # this run
    totals: dict = field(default_factory=dict)  # stats.json
    examples: list[dict] = field(default_factory=list)  # the first rows of the first shard
    transfers: dict[str, int] | None = None  # a corpus folder at a URL: files copied in, uploaded, removed


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
    assert parse is not None  # the store lists works of known sources only (rawstore.SOURCES)
    # The whole work first: its ruby, from every episode, reads the bare words.
    episodes = list(parse(ref.path, c))
    sides = SideReader(reader, RubyMemory.from_lines(line for episode in episodes for line in episode.lines))
    for episode in episodes:
        c.add("episodes")
        for cand in find_candidates(episode, c):
            c.add("candidate_pairs")
            if not cand.utterance.strip() or not cand.reply.strip():
                c.add("dropped_empty")
                continue
            u = sides.read(cand.utterance_ruby)
            r = sides.read(cand.reply_ruby)
            reason = _check_side(u, max_len) or _check_side(r, max_len)
            if reason:
                c.add(reason)
                continue
            out.rows.append((cand.episode, cand.line, cand.utterance, cand.reply, u, r))
    for source, n in sides.counts.items():
        c.add(f"reading_{source}", n)
    c.add("works")
    return out


def _work_task(args: tuple[WorkRef, str, int]) -> WorkOutput:
    return process_work(*args)


# ---------------------------------------------------------------- phase 1: one work


def _phase1_options(opts: ExtractOptions, reader_version: str) -> dict:
    """Everything a work's phase-1 file depends on besides the work's own files."""
    nd = opts.neardup
    return {
        "reader": opts.reader,
        "reader_version": reader_version,
        "readings": READINGS_VERSION,
        "max_len": opts.max_len,
        "shingle": nd.shingle,
        "num_perm": nd.num_perm,
        "min_shingles": nd.min_shingles,
        "seed": nd.seed,
        "minhash": neardup.engine_version(),
        "state_version": STATE_VERSION,
    }


def _digest(obj: object) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@dataclass(frozen=True)
class WorkTask:
    """Phase 1 of one work: a pure function of the work's files and the options; writes the
    work's per-work file through `sink`, reading the work through `store`."""

    ref: WorkRef
    reader: str
    max_len: int
    fingerprint: str
    options_digest: str
    neardup: NearDupConfig
    store: rawstore.Store
    sink: WorkSink


def _work_failure(exc: Exception) -> str:
    """Why a work cannot be read, and what to do."""
    if isinstance(exc, UnicodeDecodeError):
        return f"a file is not valid UTF-8 (cut short or damaged at byte {exc.start}); ingest or scrape the work again"
    if isinstance(exc, OSError):
        return f"{describe_os_error(exc)}; ingest or scrape the work again"
    return str(exc)


def run_work(task: WorkTask) -> tuple[str, dict]:
    skip_pandas_probe()  # a worker that did not fork from the driver (a Dask cluster's)
    try:
        with task.store.opened(task.ref) as ref:
            out = process_work(ref, task.reader, task.max_len)
    except (OSError, ValueError, NocpipeError) as exc:
        # One damaged work is skipped and named; it never stops the others.
        return task.ref.key, {"failed": _work_failure(exc)}
    cols: list[Sequence[Any]] = list(zip(*out.rows)) if out.rows else [[] for _ in WORK_COLUMNS]
    cols += [[neardup.exact_key(r[4], r[5]) for r in out.rows], [neardup.near_key(r[4], r[5]) for r in out.rows]]
    sides = dict.fromkeys(side for row in out.rows for side in (row[4], row[5]))
    sig = neardup.signature(sides, task.neardup)
    info = {
        "fingerprint": task.fingerprint,
        "options": task.options_digest,
        "counters": out.counters.values,
        "rows": len(out.rows),
        "signature": None if sig is None else [int(v) for v in sig],
    }
    task.sink.write(task.ref, corpus.work_table(cols, info))
    return task.ref.key, info


def _run(tasks: list[WorkTask], workers: int, scheduler: str | None = None) -> Iterator[tuple[str, dict]]:
    """Phase 1 of `tasks` on local processes or a Dask cluster (pipeline.cluster); results as
    they finish. Each task writes its own file under a name given by its work, so a task run
    twice (a lost worker) rewrites the same file."""
    from pipeline import cluster

    with cluster.open_executor(scheduler, workers) as ex:
        keys = [f"extract-{t.ref.source}-{t.ref.work_id}-{t.fingerprint[:10]}-{t.options_digest[:10]}" for t in tasks]
        for _, result in ex.map(run_work, tasks, keys=keys, ordered=False):
            yield result


# ---------------------------------------------------------------- the stage


def _work_order(ref: WorkRef) -> tuple[str, str]:
    return (ref.work_id, ref.source)


@dataclass
class _Run:
    """One run's inputs, worked out before anything is read: the works in work order,
    their identities (fingerprint, size), the works that could not even be listed, and
    the digests that say whether a file of an earlier run still holds."""

    opts: ExtractOptions
    store: rawstore.Store
    folder: CorpusWriter
    report: Reporter
    works: list[WorkRef]
    identities: dict[str, tuple[str, int]]
    failed: dict[str, str]
    reader_version: str
    p1: dict
    p1_digest: str
    inputs: str


def extract_pairs(opts: ExtractOptions, log: Reporter | Callable[[str], None] | None = None) -> ExtractResult:
    skip_pandas_probe()  # before the workers fork, so that none of them imports pandas either
    opts.validate()
    report = as_reporter(log)
    store = rawstore.Store(opts.raw_dir)
    listed = [(ref, ident) for ref, ident in store.finished_works() if parser_for(ref.source) is not None]
    if not listed:
        raise StoreError(
            f"the raw store {opts.raw_dir} holds no works yet; run `nocpipe ingest` or `nocpipe scrape` first"
        )
    with corpus.writing(opts.out_dir) as folder:
        result = _extract(_plan_run(opts, store, folder, report, listed))
    result.transfers = folder.transfers
    return result


def _plan_run(
    opts: ExtractOptions,
    store: rawstore.Store,
    folder: CorpusWriter,
    report: Reporter,
    listed: list[tuple[WorkRef, tuple[str, int] | OSError]],
) -> _Run:
    works = sorted((ref for ref, _ in listed), key=_work_order)
    failed = {ref.key: _work_failure(ident) for ref, ident in listed if isinstance(ident, Exception)}
    identities = {ref.key: ident for ref, ident in listed if not isinstance(ident, Exception)}
    reader_version = get_reader_version(opts.reader)
    p1 = _phase1_options(opts, reader_version)
    inputs = _digest(
        {
            "phase1": p1,
            "schema": corpus.SCHEMA_VERSION,  # a new layout of the shards rewrites them all
            "split": opts.split.as_list(),
            "threshold": opts.neardup.threshold,
            "shard_target": opts.shard_target,
            "works": [[w.key, identities[w.key][0] if w.key in identities else None] for w in works],
        }
    )
    return _Run(opts, store, folder, report, works, identities, failed, reader_version, p1, _digest(p1), inputs)


def _extract(run: _Run) -> ExtractResult:
    """The stage on the corpus folder's local form (the folder, or the copy of one at a URL)."""
    root, opts = run.folder.root, run.opts
    state = corpus.load_state(root, run.report)
    old = state.get("phase1") or {}
    if old and old != run.p1:
        changed = ", ".join(f"{k} {old.get(k)!r} -> {v!r}" for k, v in run.p1.items() if old.get(k) != v)
        run.report.info(f"options changed since the last run ({changed}): extracting everything again")
    result = ExtractResult()
    stats = corpus.read_stats(root) if state.get("inputs") == run.inputs and not run.failed else None
    if stats is not None and corpus.shards_intact(root, state.get("shards", [])):
        result.skipped, result.totals = len(run.works), stats
        result.examples = _examples(root, opts.examples)
        return result
    infos = _phase1(run, result)
    works = [w for w in run.works if w.key not in run.failed]
    if not works:
        raise StoreError(f"none of the {len(run.failed)} works in {opts.raw_dir} could be read (reasons above)")
    result.removed = corpus.remove_stale_works(root, works)

    # ---- phase 2: the corpus from the per-work files
    written, groups, per_work = _build_shards(opts, root, works, infos, run.reader_version, result)
    metas = run.store.metas(works)
    result.totals = _stats(opts, run.reader_version, works, per_work, groups, written)
    # The works' titles and authors: the report, the card and a retrieval model's index show them.
    result.totals["work_titles"] = {k: m["title"] for k, m in sorted(metas.items()) if m.get("title")}
    result.totals["work_authors"] = {k: m["author"] for k, m in sorted(metas.items()) if m.get("author")}
    corpus.write_stats(root, result.totals)
    card.write_card(root, result.totals, per_work, metas)
    # With a work skipped, the next run must try it again (and name it again).
    corpus.write_state(root, {"phase1": run.p1, "inputs": "" if run.failed else run.inputs, "shards": written})
    result.examples = _examples(root, opts.examples)
    return result


def _phase1(run: _Run, result: ExtractResult) -> dict[str, dict]:
    """Per-work files of the works whose file is missing or stale, made; every readable
    work's header, by key. Works that fail are added to `run.failed` and named."""
    infos: dict[str, dict] = {}
    tasks = []
    for w in run.works:
        if w.key in run.failed:
            continue
        fingerprint = run.identities[w.key][0]
        info = corpus.read_work_info(run.folder.root, w)
        if info and info.get("fingerprint") == fingerprint and info.get("options") == run.p1_digest:
            infos[w.key] = info
        else:
            o = run.opts
            tasks.append(
                WorkTask(w, o.reader, o.max_len, fingerprint, run.p1_digest, o.neardup, run.store, run.folder.sink)
            )
    result.skipped = len(run.works) - len(tasks) - len(run.failed)
    # Longest works first: a long work started last would leave the other workers idle
    # at the end (results are gathered by work, so the order changes nothing else).
    tasks.sort(key=lambda t: run.identities[t.ref.key][1], reverse=True)
    if tasks:
        get_reader(run.opts.reader)  # built once here, before the workers fork
        done = _run(tasks, min(run.opts.worker_count(), len(tasks)), run.opts.scheduler)
        bar = run.report.progress(done, "extract-pairs", "work", len(tasks), enabled=run.opts.show_progress)
        for key, info in bar:
            if "failed" in info:
                run.failed[key] = info["failed"]
                continue
            infos[key] = info
            result.processed += 1
            result.counters.merge(info["counters"])
    run.folder.gather(t.ref for t in tasks if t.ref.key in infos)
    paths = {w.key: w.path for w in run.works}
    for key in sorted(run.failed):
        run.report.skipped(paths[key], run.failed[key])
    result.failed = [f"{paths[k]}: {run.failed[k]}" for k in sorted(run.failed)]
    return infos


def _examples(root: Path, n: int) -> list[dict]:
    shards = corpus.list_shards(root)
    return corpus.read_table(shards[0]).slice(0, n).to_pylist() if n and shards else []


def _split_plan(
    works: list[WorkRef], infos: dict[str, dict], opts: ExtractOptions
) -> tuple[dict[str, str], list[list[str]]]:
    """The split of every work, and the near-copy groups (keys in work order)."""
    sigs = {
        w.key: (None if infos[w.key]["signature"] is None else np.array(infos[w.key]["signature"], dtype=np.uint64))
        for w in works
    }
    order = {w.key: _work_order(w) for w in works}
    ids = {w.key: w.work_id for w in works}
    groups = [sorted(g, key=order.__getitem__) for g in neardup.group_works(sigs, opts.neardup)]
    groups.sort(key=lambda g: order[g[0]])
    splits = {w.key: split_of(w.work_id, opts.split) for w in works}
    for g in groups:
        for k in g:
            splits[k] = split_of(ids[g[0]], opts.split)
    return splits, groups


class _Shards:
    """Kept rows of whole works, per split, cut into shards of about `target` pairs."""

    def __init__(self, root: Path, target: int, meta: dict[str, str], result: ExtractResult):
        self.root, self.target, self.meta, self.result = root, target, meta, result
        self.parts: dict[str, list[pa.Table]] = {s: [] for s in SPLITS}
        self.rows = dict.fromkeys(SPLITS, 0)
        self.next_index = dict.fromkeys(SPLITS, 0)
        self.written: list[str] = []

    def add(self, split: str, table: pa.Table) -> None:
        self.parts[split].append(table)
        self.rows[split] += table.num_rows
        if self.rows[split] >= self.target:
            self.flush(split)

    def flush(self, split: str) -> None:
        if not self.rows[split]:
            return
        table = pa.concat_tables(self.parts[split]).combine_chunks()
        name, written = corpus.write_split_shard(self.root, self.next_index[split], split, table, self.meta)
        self.next_index[split] += 1
        self.result.shards_written += written
        self.written.append(name)
        self.parts[split].clear()
        self.rows[split] = 0

    def close(self) -> list[str]:
        for s in SPLITS:
            self.flush(s)
        corpus.remove_shards_except(self.root, self.written)
        return self.written


def _dedup(table: pa.Table, seen: set[bytes], seen_near: set[bytes], counters: Counters) -> list[int]:
    """Positions of the rows that are neither an exact nor a near duplicate of a row seen
    before (`seen` and `seen_near` grow by the rows kept)."""
    keep = []
    for i, (key, nkey) in enumerate(zip(table.column("exact_key").to_pylist(), table.column("near_key").to_pylist())):
        if key in seen:
            counters.add("dropped_duplicate")
            continue
        seen.add(key)
        if nkey in seen_near:
            counters.add("dropped_near_duplicate")
            continue
        seen_near.add(nkey)
        keep.append(i)
    return keep


def _build_shards(
    opts: ExtractOptions,
    root: Path,
    works: list[WorkRef],
    infos: dict[str, dict],
    reader_version: str,
    result: ExtractResult,
) -> tuple[list[str], list[list[str]], dict[str, dict]]:
    """Phase 2: dedup in work order, rows into split shards. Returns the shard names (relative
    to the root), the near-copy groups, and per-work figures."""
    splits, groups = _split_plan(works, infos, opts)
    group_of = {k: g[0] for g in groups for k in g}
    shards = _Shards(root, opts.shard_target, corpus.shard_metadata(opts.reader, reader_version, opts.max_len), result)
    seen: set[bytes] = set()
    seen_near: set[bytes] = set()
    per_work: dict[str, dict] = {}
    for w in works:
        counters = Counters(dict(infos[w.key]["counters"]))
        split = splits[w.key]
        table = corpus.read_work(root, w)
        keep = _dedup(table, seen, seen_near, counters)
        if keep:
            part = table if len(keep) == table.num_rows else _rows(table, keep)
            fixed = {"source": w.source, "work_id": w.work_id, "split": split}
            columns = [
                pa.repeat(pa.scalar(fixed[c], pa.string()), len(keep)) if c in fixed else part.column(c)
                for c in COLUMNS
            ]
            shards.add(split, pa.Table.from_arrays(columns, schema=SCHEMA))
        counters.add("pairs_kept", len(keep))
        per_work[w.key] = {
            "source": w.source,
            "work_id": w.work_id,
            "split": split,
            "group": group_of.get(w.key),
            "counters": counters.values,
        }
    return shards.close(), groups, per_work


def _rows(table: pa.Table, index: list[int]) -> pa.Table:
    """The rows of `table` at the ascending positions `index`, as zero-copy slices of each
    run of consecutive positions (dropped rows are few; Table.filter needs pyarrow.compute)."""
    runs, start = [], index[0]
    for prev, i in zip(index, index[1:]):
        if i != prev + 1:
            runs.append(table.slice(start, prev + 1 - start))
            start = i
    runs.append(table.slice(start, index[-1] + 1 - start))
    return pa.concat_tables(runs)


def _share(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def _stats(
    opts: ExtractOptions,
    reader_version: str,
    works: list[WorkRef],
    per_work: dict[str, dict],
    groups: list[list[str]],
    shards: list[str],
) -> dict:
    """The figures of stats.json."""
    totals = Counters()
    by_split = Counters()
    for info in per_work.values():
        totals.merge(info["counters"])
        by_split.add(info["split"], info["counters"].get("pairs_kept", 0))
    drops = {k: v for k, v in sorted(totals.values.items()) if k.startswith("dropped_")}
    candidates, kept = totals["candidate_pairs"], totals["pairs_kept"]
    return {
        "works": len(works),
        "shards": len(shards),
        "episodes": totals["episodes"],
        "lines": totals["lines"],
        "dialogue_lines": totals["dialogue_lines"],
        "candidate_pairs": totals["candidate_pairs"],
        "pairs_kept": totals["pairs_kept"],
        "dropped": drops,
        "gaiji_resolved": totals["gaiji_resolved"],
        "gaiji_dropped": totals["gaiji_dropped"],
        "readings": {s: totals[f"reading_{s}"] for s in READING_SOURCES},
        "pairs_by_split": dict(sorted(by_split.values.items())),
        # Shares, so that what the defaults leave out is plain: of the candidate pairs, by
        # the reason they were dropped; of the kept pairs, by split (the split is by work, so
        # the shares of pairs drift from the shares of works asked for, `split_nominal`).
        "dropped_share_by_reason": {k.removeprefix("dropped_"): _share(v, candidates) for k, v in drops.items()},
        "dropped_share": _share(sum(drops.values()), candidates),
        "split_share": {s: _share(by_split[s], kept) for s in SPLITS},
        "split_nominal": dict(zip(SPLITS, opts.split.as_list())),
        "near_copy_groups": [
            [
                {"work": k, "split": per_work[k]["split"], "pairs_kept": per_work[k]["counters"].get("pairs_kept", 0)}
                for k in g
            ]
            for g in groups
        ],
        "reader": opts.reader,
        "reader_version": reader_version,
        "max_len": opts.max_len,
        "split": opts.split.as_list(),
        "near_duplicate_threshold": opts.neardup.threshold,
    }


# ---------------------------------------------------------------- the summary


def summary(res: ExtractResult, out_dir: Path | str) -> list[str]:
    """What extract-pairs says at the end, one line each."""
    t = res.totals
    if res.processed == 0 and res.shards_written == 0 and res.removed == 0:
        lines = [f"nothing new: {res.skipped} works already extracted into {out_dir}"]
    else:
        removed = f", {res.removed} removed" if res.removed else ""
        lines = [
            f"extracted {res.processed} works ({res.skipped} already done{removed}) -> "
            f"{res.shards_written} shard(s) written in {corpus.pairs_where(out_dir)}"
        ]
    lines.append(
        f"totals: {t['works']} works, {t['lines']} lines, {t['dialogue_lines']} dialogue lines, "
        f"{t['candidate_pairs']} candidate pairs, {t['pairs_kept']} kept "
        f"({', '.join(f'{k} {v}' for k, v in t['pairs_by_split'].items())})"
    )
    shares = t.get("dropped_share_by_reason", {})
    if t["dropped"]:
        lines.append(
            "dropped: "
            + ", ".join(
                f"{k.removeprefix('dropped_')} {v} ({shares.get(k.removeprefix('dropped_'), 0):.1%})"
                for k, v in t["dropped"].items()
            )
            + f" of {t['candidate_pairs']} candidate pairs"
            + (f" (too_long: over --max-len {t['max_len']})" if "dropped_too_long" in t["dropped"] else "")
        )
    if t.get("split_share"):
        nominal = t.get("split_nominal", {})
        lines.append(
            "split of the kept pairs: "
            + ", ".join(f"{s} {v:.1%}" for s, v in t["split_share"].items())
            + " (asked: "
            + ", ".join(f"{s} {v:.0%}" for s, v in nominal.items())
            + " of works; each work goes whole to one split)"
        )
    if res.transfers is not None:
        x = res.transfers
        lines.append(
            f"{out_dir}: {x['copied_in']} file(s) copied in to work on, {x['uploaded']} uploaded, {x['removed']} removed"
        )
    if res.failed:
        lines.append(f"works skipped: {len(res.failed)} could not be read (named above); fix them and run again")
    if t.get("near_copy_groups"):
        groups = t["near_copy_groups"]
        lines.append(
            f"near-copy works: {len(groups)} group(s), {sum(len(g) for g in groups)} works (each group shares one split)"
        )
    for row in res.examples:
        lines.append(f"  「{row['utterance']}」 -> 「{row['reply']}」")
        lines.append(f"  「{row['utterance_kana']}」 -> 「{row['reply_kana']}」")
    return lines
