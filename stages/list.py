"""nocpipe list: the raw store as a table (one row per work), or JSON lines.

Everything comes from the raw store's own files (pipeline.rawstore) and, when a corpus
exists, the pairs each work contributed (counted in its shards, through pipeline.corpus).

    status   current             every episode listed is stored
             N failed episodes   the last run could not store them (a rerun tries again)
             gone                the site answers 404 for the work
             incomplete          a run stopped before the work's meta.json was written
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from pipeline import rawstore
from pipeline.config import SOURCES
from pipeline.errors import UsageError

COLUMNS = ("source", "work_id", "title", "author", "episodes", "fetched_at", "status", "pairs")
HEADERS = ("source", "work id", "title", "author", "episodes", "last fetched", "status", "pairs")


def _status(meta: dict, has_progress: bool) -> str:
    if not meta:
        return "incomplete"
    if meta.get("gone"):
        return "gone"
    missing = meta.get("missing_episodes") or []
    if missing:
        return f"{len(missing)} failed episode{'s' if len(missing) != 1 else ''}"
    if has_progress:
        return "incomplete"
    return "current"


def pairs_by_work(out_dir: Path | None) -> Counter | None:
    """Pairs per (source, work_id) in the corpus at `out_dir`; None when there is none."""
    if out_dir is None or not Path(out_dir).is_dir():
        return None
    from pipeline.corpus import list_shards, read_columns

    shards = list_shards(Path(out_dir))
    if not shards:
        return None
    table = read_columns(shards, ["source", "work_id"])
    return Counter(zip(table.column(0).to_pylist(), table.column(1).to_pylist()))


def list_store(raw_dir: Path, site: str | None = None, out_dir: Path | None = None) -> list[dict]:
    """One dict per work (keys: COLUMNS), sorted by source and work id."""
    if site is not None and site not in SOURCES:
        raise UsageError(f"unknown --site {site!r}: use one of {', '.join(SOURCES)}")
    works = rawstore.work_dirs(raw_dir, [site] if site else None, finished_only=False)
    pairs = pairs_by_work(out_dir)
    rows = []
    for w in works:
        meta = rawstore.read_meta_or_empty(w.path)
        if w.source in rawstore.SITE_SOURCES:
            stored = rawstore.stored_episodes(w.path, meta, with_progress=not meta)
            episodes = len(stored)
        else:
            episodes = 1 if meta else 0
        rows.append(
            {
                "source": w.source,
                "work_id": w.work_id,
                "title": meta.get("title") or "",
                "author": meta.get("author") or "",
                "episodes": episodes,
                "fetched_at": meta.get("fetched_at") or "",
                "status": _status(meta, rawstore.has_progress(w.path)),
                "pairs": None if pairs is None else pairs.get((w.source, w.work_id), 0),
            }
        )
    return rows


def _width(text: str) -> int:
    """Columns a string takes on a terminal (East Asian wide characters take two)."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _fit(text: str, width: int) -> str:
    out, used = [], 0
    for c in text:
        w = _width(c)
        if used + w > width - 1 and _width(text) > width:
            out.append("…")
            used += 1
            break
        out.append(c)
        used += w
    return "".join(out) + " " * max(0, width - used)


def render_table(rows: list[dict]) -> str:
    """The rows as an aligned table; titles and authors are cut to fit."""
    if not rows:
        return "the raw store holds no works"
    has_pairs = any(r["pairs"] is not None for r in rows)
    cols = [c for c in COLUMNS if c != "pairs" or has_pairs]
    heads = [h for c, h in zip(COLUMNS, HEADERS) if c in cols]
    cells = [
        [
            ("" if r[c] is None else str(r[c]))[:19] if c == "fetched_at" else ("" if r[c] is None else str(r[c]))
            for c in cols
        ]
        for r in rows
    ]
    limits = {"title": 30, "author": 16}
    widths = [
        min(max([_width(h)] + [_width(row[i]) for row in cells]), limits.get(c, 1000))
        for i, (c, h) in enumerate(zip(cols, heads))
    ]
    lines = ["  ".join(_fit(h, w) for h, w in zip(heads, widths)).rstrip()]
    for row in cells:
        lines.append("  ".join(_fit(v, w) for v, w in zip(row, widths)).rstrip())
    totals = Counter(r["status"] if r["status"] in ("current", "gone", "incomplete") else "failed" for r in rows)
    lines.append(
        f"{len(rows)} works: "
        + ", ".join(f"{n} {k}" for k, n in sorted(totals.items()))
        + (f"; {sum(r['pairs'] or 0 for r in rows)} pairs" if has_pairs else "")
    )
    return "\n".join(lines)
