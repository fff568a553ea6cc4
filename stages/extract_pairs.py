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
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import atomic, card, neardup, rawstore
from pipeline.arrowprobe import skip_pandas_probe
from pipeline.config import SHARD_TARGET_PAIRS, NearDupConfig, SplitConfig
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
from pipeline.location import Location, is_url
from pipeline.locks import folder_lock
from pipeline.mirror import Mirror
from pipeline.pairs import find_candidates
from pipeline.parsers import parser_for
from pipeline.progress import progress
from pipeline.records import Counters, WorkRef
from pipeline.rubymemory import RubyMemory
from pipeline.shards import (
    COLUMNS,
    SCHEMA,
    SPLITS,
    STATE_FILE,
    STATS_FILE,
    WORKS_DIR,
    list_shards,
    pairs_dir,
    read_metadata,
    read_table,
    shard_metadata,
    shard_name,
    split_of,
    write_table,
)

STATE_VERSION = 3
#: The per-work file's columns (source, work_id and split are added in phase 2), and each
#: pair's exact and near-duplicate keys: computed by the workers, so that phase 2 in the
#: driver is a set lookup per pair and Arrow column operations, never Python per row.
WORK_COLUMNS = ["episode", "line", "utterance", "reply", "utterance_kana", "reply_kana"]
KEY_COLUMNS = ["exact_key", "near_key"]
WORK_SCHEMA = pa.schema(
    [SCHEMA.field(c) for c in WORK_COLUMNS] + [pa.field(c, pa.binary(neardup.KEY_BYTES)) for c in KEY_COLUMNS]
)
WORK_META_KEY = b"nocpipe.work"


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


def work_name(ref: WorkRef) -> str:
    """A work's phase-1 file, relative to the corpus folder."""
    return f"{WORKS_DIR}/{ref.source}/{ref.work_id}.parquet"


def work_file(out_dir: Path, ref: WorkRef) -> Path:
    return out_dir / work_name(ref)


def read_work_info(path: Path) -> dict | None:
    """A phase-1 file's header: fingerprint, options digest, counters, signature (None: no file)."""
    try:
        meta = pq.read_schema(path).metadata or {}
        return json.loads(meta[WORK_META_KEY])
    except (OSError, pa.ArrowException, KeyError, ValueError):
        return None


@dataclass(frozen=True)
class WorkTask:
    """Phase 1 of one work: a pure function of the work's files and the options; writes one
    file: `path`, or with `sink` (a corpus folder at a URL) its `work_name` there."""

    ref: WorkRef
    reader: str
    max_len: int
    fingerprint: str
    options_digest: str
    path: Path
    neardup: NearDupConfig
    raw: Location | None = None  # the raw store at a URL: the work's folder is copied first
    sink: Location | None = None


def _work_failure(ref: WorkRef, exc: Exception) -> str:
    """One line naming a work that cannot be read, and what to do."""
    if isinstance(exc, UnicodeDecodeError):
        return (
            f"{ref.path}: a file is not valid UTF-8 (cut short or damaged at byte {exc.start}); "
            "ingest or scrape the work again"
        )
    if isinstance(exc, OSError):
        return f"{ref.path}: {describe_os_error(exc)}; ingest or scrape the work again"
    return f"{ref.path}: {exc}"


def run_work(task: WorkTask) -> tuple[str, dict]:
    skip_pandas_probe()  # a worker that did not fork from the driver (a Dask cluster's)
    try:
        if task.raw is None:
            out = process_work(task.ref, task.reader, task.max_len)
        else:
            with task.raw.fetch(task.ref.key) as local:
                out = process_work(replace(task.ref, path=local), task.reader, task.max_len)
    except (OSError, ValueError, NocpipeError) as exc:
        # One damaged work is skipped and named; it never stops the others.
        return task.ref.key, {"failed": _work_failure(task.ref, exc)}
    cols = list(zip(*out.rows)) if out.rows else [[] for _ in WORK_COLUMNS]
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
    table = pa.Table.from_arrays(
        [pa.array(list(c), type=f.type) for c, f in zip(cols, WORK_SCHEMA)],
        schema=WORK_SCHEMA.with_metadata({WORK_META_KEY: json.dumps(info)}),
    )
    if task.sink is None:
        write_table(task.path, table)
    else:
        with tempfile.TemporaryDirectory(prefix="nocpipe-work-") as tmp:
            write_table(Path(tmp) / "work.parquet", table)
            task.sink.commit_file(Path(tmp) / "work.parquet", work_name(task.ref))
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


def _load_state(path: Path) -> dict:
    """_state.json, checked: {} (everything is rebuilt) when it is missing or damaged."""
    if not path.exists():
        return {}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        state = None
    if not (
        isinstance(state, dict)
        and isinstance(state.get("phase1", {}), dict)
        and isinstance(state.get("inputs", ""), str)
        and isinstance(state.get("shards", []), list)
        and all(isinstance(n, str) for n in state.get("shards", []))
    ):
        # Only ever written atomically, so this is a hand edit: rebuild rather than guess.
        print(f"warning: {path} is damaged; rebuilding the shards (delete it to silence this)", file=sys.stderr)
        return {}
    return state


def _intact(path: Path) -> bool:
    """Whether a finished Parquet file is still whole (its footer reads)."""
    try:
        pq.read_metadata(path)
        return True
    except (OSError, pa.ArrowException):
        return False


def _read_stats(path: Path) -> dict | None:
    try:
        stats = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return stats if isinstance(stats, dict) else None


def extract_pairs(opts: ExtractOptions) -> ExtractResult:
    skip_pandas_probe()  # before the workers fork, so that none of them imports pandas either
    if opts.max_len < 0:
        raise UsageError("--max-len must be 0 (no limit) or more")
    workers = opts.workers or os.cpu_count() or 1
    if workers < 1:
        raise UsageError("--workers must be 1 or more")
    if opts.scheduler:  # a bad address or a missing extra stops before any work is done
        from pipeline import cluster

        cluster.parse_scheduler(opts.scheduler, workers)
        cluster.require_dask()
    raw = Location(opts.raw_dir) if is_url(opts.raw_dir) else None
    identities = None
    if raw is None:
        works = list_works(Path(opts.raw_dir))
    else:
        listed = rawstore.remote_works(raw)
        works = [ref for ref, _, _ in listed]
        identities = {ref.key: (fp, n) for ref, fp, n in listed}
    if not works:
        raise StoreError(
            f"the raw store {opts.raw_dir} holds no works yet; run `nocpipe ingest` or `nocpipe scrape` first"
        )
    if not is_url(opts.out_dir):
        with folder_lock(Path(opts.out_dir), "extract-pairs", "corpus folder"):
            atomic.clean_temporaries(Path(opts.out_dir), recursive=True)
            return _extract(opts, works, workers, identities, raw)
    # A corpus folder at a URL: phase 2 and the state on a local copy, uploaded at the end.
    with tempfile.TemporaryDirectory(prefix="nocpipe-corpus-") as tmp:
        mirror = Mirror(Location(opts.out_dir), Path(tmp))
        mirror.pull(remove_temporaries=True)
        result = _extract(replace(opts, out_dir=Path(tmp)), works, workers, identities, raw, mirror)
        pushed = mirror.push(last=STATE_FILE)
    result.transfers = {"copied_in": mirror.pulled, "uploaded": len(pushed.uploaded), "removed": len(pushed.removed)}
    return result


def _extract(
    opts: ExtractOptions,
    works: list[WorkRef],
    workers: int,
    identities: dict[str, tuple[str, int]] | None = None,
    raw: Location | None = None,
    mirror: Mirror | None = None,
) -> ExtractResult:
    """The stage on a local corpus folder (with `mirror`, the local copy of one at a URL),
    reading the raw store in place (with `raw`, through copies; `identities` from its listing)."""
    out_dir = Path(opts.out_dir)
    works = sorted(works, key=_work_order)
    reader_version = get_reader_version(opts.reader)
    p1 = _phase1_options(opts, reader_version)
    p1_digest = _digest(p1)
    failed: dict[str, str] = {}
    prints, sizes = {}, {}
    for w in works:
        try:
            prints[w.key], sizes[w.key] = identities[w.key] if identities else rawstore.identity(w.path)
        except OSError as exc:
            failed[w.key] = _work_failure(w, exc)
    inputs = _digest(
        {
            "phase1": p1,
            "split": opts.split.as_list(),
            "threshold": opts.neardup.threshold,
            "shard_target": opts.shard_target,
            "works": [[w.key, prints.get(w.key)] for w in works],
        }
    )
    state_path = out_dir / STATE_FILE
    state = _load_state(state_path)
    result = ExtractResult()

    old = state.get("phase1") or {}
    if old and old != p1:
        changed = ", ".join(f"{k} {old.get(k)!r} -> {v!r}" for k, v in p1.items() if old.get(k) != v)
        print(f"options changed since the last run ({changed}): extracting everything again", file=sys.stderr)
    stats = _read_stats(out_dir / STATS_FILE) if state.get("inputs") == inputs and not failed else None
    if stats is not None and all(_intact(out_dir / n) for n in state.get("shards", [])):
        result.skipped = len(works)
        result.totals = stats
        result.examples = _examples(out_dir, opts.examples)
        return result

    # ---- phase 1: works whose file is missing or stale
    infos: dict[str, dict] = {}
    tasks = []
    for w in works:
        if w.key in failed:
            continue
        path = work_file(out_dir, w)
        info = read_work_info(path)
        if info and info.get("fingerprint") == prints[w.key] and info.get("options") == p1_digest:
            infos[w.key] = info
        else:
            tasks.append(
                WorkTask(
                    w,
                    opts.reader,
                    opts.max_len,
                    prints[w.key],
                    p1_digest,
                    path,
                    opts.neardup,
                    raw=raw,
                    sink=mirror.remote if mirror else None,
                )
            )
    result.skipped = len(works) - len(tasks) - len(failed)
    # Longest works first: a long work started last would leave the other workers idle
    # at the end (results are gathered by work, so the order changes nothing else).
    tasks.sort(key=lambda t: sizes[t.ref.key], reverse=True)
    if tasks:
        get_reader(opts.reader)  # built once here, before the workers fork
        for key, info in progress(
            _run(tasks, min(workers, len(tasks)), opts.scheduler),
            desc="extract-pairs",
            unit="work",
            enabled=opts.show_progress,
            total=len(tasks),
        ):
            if "failed" in info:
                failed[key] = info["failed"]
                continue
            infos[key] = info
            result.processed += 1
            result.counters.merge(info["counters"])
    if mirror is not None:  # workers put their files in the corpus folder; phase 2 reads them here
        mirror.pull_files([work_name(t.ref) for t in tasks if t.ref.key in infos])
    for key in sorted(failed):
        print(f"skipped: {failed[key]}", file=sys.stderr)
    result.failed = [failed[k] for k in sorted(failed)]
    works = [w for w in works if w.key not in failed]
    if not works:
        raise StoreError(f"none of the {len(failed)} works in {opts.raw_dir} could be read (reasons above)")
    result.removed = _remove_stale_work_files(out_dir, works)

    # ---- phase 2: the corpus from the per-work files
    # With a work skipped, the next run must try it again (and name it again).
    state = {"phase1": p1, "inputs": "" if failed else inputs}
    written, groups, per_work = _build_shards(opts, works, infos, reader_version, result)
    state["shards"] = written
    metas = _work_metas(works, raw)
    result.totals = _write_stats(out_dir, opts, reader_version, works, per_work, groups, written, metas)
    card.write_card(out_dir, result.totals, per_work, metas)
    atomic.write_json(state_path, state)
    result.examples = _examples(out_dir, opts.examples)
    return result


def _examples(out_dir: Path, n: int) -> list[dict]:
    shards = list_shards(out_dir)
    return read_table(shards[0]).slice(0, n).to_pylist() if n and shards else []


def _remove_stale_work_files(out_dir: Path, works: list[WorkRef]) -> int:
    """Per-work files of works no longer in the raw store."""
    keep = {work_file(out_dir, w) for w in works}
    n = 0
    for p in (out_dir / WORKS_DIR).glob("*/*.parquet"):
        if p not in keep:
            p.unlink(missing_ok=True)
            n += 1
    return n


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


def _build_shards(
    opts: ExtractOptions, works: list[WorkRef], infos: dict[str, dict], reader_version: str, result: ExtractResult
) -> tuple[list[str], list[list[str]], dict[str, dict]]:
    """Phase 2: dedup in work order, rows into split shards. Returns the shard names (relative
    to the root), the near-copy groups, and per-work figures."""
    out_dir = opts.out_dir
    splits, groups = _split_plan(works, infos, opts)
    group_of = {k: g[0] for g in groups for k in g}
    meta = shard_metadata(opts.reader, reader_version, opts.max_len)
    seen: set[bytes] = set()
    seen_near: set[bytes] = set()
    parts: dict[str, list[pa.Table]] = {s: [] for s in SPLITS}  # kept rows of whole works, in order
    rows = dict.fromkeys(SPLITS, 0)
    next_index = dict.fromkeys(SPLITS, 0)
    written: list[str] = []
    per_work: dict[str, dict] = {}

    def flush(split: str) -> None:
        if not rows[split]:
            return
        name = shard_name(next_index[split], split)
        next_index[split] += 1
        path = pairs_dir(out_dir) / name
        table = pa.concat_tables(parts[split]).combine_chunks()
        content = _table_digest(table, meta)
        if read_metadata(path).get("content") != content:
            write_table(path, table.replace_schema_metadata({**meta, "nocpipe.content": content}))
            result.shards_written += 1
        written.append(f"{pairs_dir(out_dir).name}/{name}")
        parts[split].clear()
        rows[split] = 0

    for w in works:
        counters = Counters(dict(infos[w.key]["counters"]))
        split = splits[w.key]
        table = read_table(work_file(out_dir, w))
        keep = []
        for i, (key, nkey) in enumerate(
            zip(table.column("exact_key").to_pylist(), table.column("near_key").to_pylist())
        ):
            if key in seen:
                counters.add("dropped_duplicate")
                continue
            seen.add(key)
            if nkey in seen_near:
                counters.add("dropped_near_duplicate")
                continue
            seen_near.add(nkey)
            keep.append(i)
        kept = len(keep)
        if kept:
            part = table if kept == table.num_rows else _rows(table, keep)
            fixed = {"source": w.source, "work_id": w.work_id, "split": split}
            parts[split].append(
                pa.Table.from_arrays(
                    [
                        pa.repeat(pa.scalar(fixed[c], pa.string()), kept) if c in fixed else part.column(c)
                        for c in COLUMNS
                    ],
                    schema=SCHEMA,
                )
            )
            rows[split] += kept
        counters.add("pairs_kept", kept)
        per_work[w.key] = {
            "source": w.source,
            "work_id": w.work_id,
            "split": split,
            "group": group_of.get(w.key),
            "counters": counters.values,
        }
        if rows[split] >= opts.shard_target:
            flush(split)
    for s in SPLITS:
        flush(s)
    keep_names = {out_dir / n for n in written}
    for p in list_shards(pairs_dir(out_dir)):
        if p not in keep_names:  # shards of an earlier, larger corpus; old layouts
            p.unlink(missing_ok=True)
    return written, groups, per_work


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


def _table_digest(table: pa.Table, meta: dict[str, str]) -> str:
    """What a shard holds, to leave an unchanged shard untouched (its mtime too): a hash of
    its metadata and of the table in Arrow's stream format (one chunk per column)."""
    h = hashlib.blake2b(json.dumps(meta, sort_keys=True).encode(), digest_size=16)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema.remove_metadata()) as writer:
        writer.write_table(table)
    h.update(memoryview(sink.getvalue()))
    return h.hexdigest()


def _work_metas(works: list[WorkRef], raw: Location | None = None) -> dict[str, dict]:
    if raw is not None:
        return rawstore.read_remote_metas(raw, works)
    return {w.key: rawstore.read_meta_or_empty(w.path) for w in works}


def _write_stats(
    out_dir: Path,
    opts: ExtractOptions,
    reader_version: str,
    works: list[WorkRef],
    per_work: dict[str, dict],
    groups: list[list[str]],
    shards: list[str],
    metas: dict[str, dict] | None = None,
) -> dict:
    totals = Counters()
    by_split = Counters()
    for info in per_work.values():
        totals.merge(info["counters"])
        by_split.add(info["split"], info["counters"].get("pairs_kept", 0))
    drops = {k: v for k, v in sorted(totals.values.items()) if k.startswith("dropped_")}
    stats = {
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
        # The works' titles (the report and the card show titles, not ids).
        "work_titles": {k: m["title"] for k, m in sorted((metas or {}).items()) if m.get("title")},
    }
    atomic.write_json(out_dir / STATS_FILE, stats)
    return stats
