"""nocpipe report: what a user wants to see of a corpus before training.

shards (+ stats.json when the corpus root has one)
  -> figures (one JSON-able dict: --json writes it)
  -> sections: pairs per source and per work (by title), splits and their shares, sample
     pairs of each split (original text and katakana), length histograms of both sides with
     the corpus's --max-len cut marked, characters and vocabulary coverage, drop reasons and
     their shares of the candidate pairs, near-copy groups, where readings came from
  -> report.html (one file: tables by pandas, matplotlib plots embedded as base64 PNG)
     and report.md beside it (the same, as Markdown, with the same embedded images)
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import __version__, atomic
from pipeline.corpus import (
    SPLITS,
    corpus_metadata,
    corpus_stats,
    find_shards,
    read_columns_with,
    stats_near,
    work_titles,
)
from pipeline.errors import StoreError
from pipeline.vocab import PAD_TOKEN, UNK_TOKEN

COLUMNS = ["source", "work_id", "utterance_kana", "reply_kana", "split"]
#: The original text of both sides, read when the shards have it (for the sample pairs).
TEXT_COLUMNS = ["utterance", "reply"]
SAMPLES_PER_SPLIT = 3
VOCAB_SIZES = (64, 128, 256)
#: Ids a vocabulary spends on something other than characters (padding, unknown).
RESERVED_IDS = len([PAD_TOKEN, UNK_TOKEN])
TOP_WORKS = 20
TOP_CHARS = 60


@dataclass(frozen=True)
class ReportOptions:
    data_dir: Path
    out: Path = Path("report.html")
    json_out: Path | None = None
    top_works: int = TOP_WORKS
    samples: int = SAMPLES_PER_SPLIT


@dataclass
class Section:
    title: str
    text: str = ""
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    images: list[tuple[str, bytes]] = field(default_factory=list)  # (alt text, PNG)


@dataclass
class ReportResult:
    html: Path
    markdown: Path | None  # None when the HTML went to a device or FIFO
    json: Path | None
    figures: dict
    plots: int


# ---------------------------------------------------------------- reading


def _stats_for(path: Path) -> dict:
    """stats.json of the corpus `path` belongs to ({} for a loose Parquet file elsewhere)."""
    return stats_near(path)


def _read(path: Path) -> pa.Table:
    shards = find_shards(path, COLUMNS)
    try:
        # The original lines too where the shards have them (the sample pairs show both).
        return read_columns_with(shards, COLUMNS, TEXT_COLUMNS)
    except (OSError, pa.ArrowException) as exc:
        raise StoreError(f"cannot read the corpus at {path}: {exc}") from None


def _samples(df: pd.DataFrame, per_split: int, titles: dict[str, str]) -> dict[str, list[dict]]:
    """A few pairs of each split, spread evenly over it (the same ones on every run)."""
    out = {}
    for split in SPLITS:
        part = df[df["split"] == split]
        if part.empty or per_split <= 0:
            continue
        step = max(1, len(part) // per_split)
        rows = part.iloc[::step].head(per_split)
        out[split] = [
            {
                "work": f"{r['source']}/{r['work_id']}",
                "title": titles.get(f"{r['source']}/{r['work_id']}", ""),
                "utterance": r.get("utterance") if isinstance(r.get("utterance"), str) else None,
                "reply": r.get("reply") if isinstance(r.get("reply"), str) else None,
                "utterance_kana": r["utterance_kana"],
                "reply_kana": r["reply_kana"],
            }
            for _, r in rows.iterrows()
        ]
    return out


def _shares(stats: dict, splits: dict, n: int) -> tuple[dict, dict]:
    """Drop reasons as shares of the candidate pairs, and the splits' shares of the pairs kept:
    stats.json's own figures when it has them, else worked out from its counts."""
    dropped = stats.get("dropped_share_by_reason")
    if not isinstance(dropped, dict):
        candidates = stats.get("candidate_pairs") or 0
        dropped = {
            k.removeprefix("dropped_"): (v / candidates if candidates else 0.0)
            for k, v in (stats.get("dropped") or {}).items()
        }
    split_share = stats.get("split_share")
    if not isinstance(split_share, dict):
        split_share = {k: (v["pairs"] / n if n else 0.0) for k, v in splits.items()}
    return {k.removeprefix("dropped_"): float(v) for k, v in dropped.items()}, {
        k: float(v) for k, v in split_share.items()
    }


def _lengths_of(table: pa.Table, n: int, cut: int | None) -> dict:
    lengths = {}
    for side in ("utterance_kana", "reply_kana"):
        lens = pc.utf8_length(table.column(side)).to_numpy(zero_copy_only=False) if n else []
        s = pd.Series(lens, dtype="int64")
        lengths[side] = {
            "histogram": {int(k): int(v) for k, v in s.value_counts().sort_index().items()},
            "mean": float(s.mean()) if n else 0.0,
            "median": float(s.median()) if n else 0.0,
            "max": int(s.max()) if n else 0,
            "over_cut": int((s > cut).sum()) if cut else 0,
        }
    return lengths


def _characters_of(table: pa.Table) -> tuple[Counter, int, list, dict]:
    chars: Counter = Counter()
    for side in ("utterance_kana", "reply_kana"):
        for text in table.column(side).to_pylist():
            chars.update(text)
    total_chars = sum(chars.values())
    ranked = chars.most_common()
    coverage = {
        str(v): (sum(c for _, c in ranked[: v - RESERVED_IDS]) / total_chars if total_chars else 0.0)
        for v in VOCAB_SIZES
    }
    return chars, total_chars, ranked, coverage


def figures_of(
    table: pa.Table,
    stats: dict,
    meta: dict,
    top_works: int = TOP_WORKS,
    titles: dict[str, str] | None = None,
    samples: int = SAMPLES_PER_SPLIT,
) -> dict:
    """Everything the report shows, as plain numbers (also what --json writes)."""
    df = table.to_pandas()
    n = len(df)
    titles = titles or {}
    # The corpus's own cut, from its shards' metadata (else its stats.json); 0: no limit.
    max_len = int(meta.get("max_len") or stats.get("max_len") or 0)
    cut = max_len or None
    lengths = _lengths_of(table, n, cut)
    chars, total_chars, ranked, coverage = _characters_of(table)
    per_work = (
        df.groupby(["source", "work_id", "split"])
        .size()
        .rename("pairs")
        .reset_index()
        .sort_values(["pairs", "work_id"], ascending=[False, True])
    )
    splits = {}
    for s in SPLITS:
        part = df[df["split"] == s]
        splits[s] = {"pairs": int(len(part)), "works": int(part["work_id"].nunique())}
    dropped_share, split_share = _shares(stats, splits, n)
    return {
        "nocpipe_version": __version__,
        "pairs": n,
        "works": int(df["work_id"].nunique()) if n else 0,
        "reader": meta.get("reader") or stats.get("reader"),
        "reader_version": meta.get("reader_version") or stats.get("reader_version"),
        "max_len": max_len,
        "length_cut": cut,
        "splits": splits,
        "sources": {str(k): int(v) for k, v in df.groupby("source").size().items()},
        "split_share": split_share,
        "top_works": [
            {
                "work": f"{r.source}/{r.work_id}",
                "title": titles.get(f"{r.source}/{r.work_id}", ""),
                "split": r.split,
                "pairs": int(r.pairs),
            }
            for r in per_work.head(top_works).itertuples()
        ],
        "samples": _samples(df, samples, titles),
        "lengths": lengths,
        "characters": {
            "distinct": len(chars),
            "total": total_chars,
            "top": [[c, k] for c, k in ranked[:TOP_CHARS]],
            "vocabulary_coverage": coverage,
            "counts_by_rank": [k for _, k in ranked],
        },
        "candidate_pairs": stats.get("candidate_pairs"),
        "dropped": stats.get("dropped", {}),
        "dropped_share_by_reason": dropped_share,
        "near_copy_groups": stats.get("near_copy_groups", []),
        "readings": stats.get("readings", {}),
        "from_stats": bool(stats),
    }


# ---------------------------------------------------------------- plots


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # IPAex Gothic, bundled with matplotlib-fontja: titles and katakana are drawn, not empty
    # boxes, on a machine without a Japanese font (importing it makes it the font family).
    import matplotlib_fontja  # noqa: F401

    return plt


def _bar(labels: list[str], values: list[float], title: str, xlabel: str = "", horizontal: bool = False) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.28 * len(labels)) if horizontal else 3.2))
    if horizontal:
        ax.barh(labels[::-1], values[::-1], color="#4c72b0")
    else:
        ax.bar(labels, values, color="#4c72b0")
        ax.tick_params(axis="x", labelrotation=30)
    ax.set_title(title)
    if xlabel:
        (ax.set_xlabel if horizontal else ax.set_ylabel)(xlabel)
    return _png(fig)


def _coverage_plot(f: dict) -> bytes:
    """Character frequency by rank (log) and the share covered by the top ranks, vocabulary
    sizes marked."""
    import numpy as np

    plt = _plt()
    counts = np.array(f["characters"]["counts_by_rank"], dtype=float)
    fig, ax = plt.subplots(figsize=(10, 3.2))
    ranks = np.arange(1, len(counts) + 1)
    ax.bar(ranks, counts, width=1.0, color="#4c72b0")
    ax.set_yscale("log")
    ax.set_xlabel("character rank")
    ax.set_ylabel("occurrences")
    cov = ax.twinx()
    cov.plot(ranks, np.cumsum(counts) / max(1.0, counts.sum()), color="#55a868")
    cov.set_ylim(0, 1.01)
    cov.set_ylabel("share covered")
    for v in VOCAB_SIZES:
        ax.axvline(v - RESERVED_IDS + 0.5, color="#c44e52", linestyle="--")
        cov.annotate(f"vocabulary {v}", (v - RESERVED_IDS + 1, 0.05), color="#c44e52", fontsize=8)
    ax.set_title("character frequencies and vocabulary coverage")
    return _png(fig)


def _length_plot(f: dict) -> bytes:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), sharey=True)
    cut = f["length_cut"]
    for ax, side, name in zip(axes, ("utterance_kana", "reply_kana"), ("utterance", "reply")):
        hist = f["lengths"][side]["histogram"]
        ax.bar([int(k) for k in hist], list(hist.values()), width=1.0, color="#4c72b0")
        if cut:
            ax.axvline(cut + 0.5, color="#c44e52", linestyle="--", label=f"the corpus's --max-len {cut}")
            ax.legend()
        ax.set_title(f"{name}: katakana characters")
        ax.set_xlabel("length")
    axes[0].set_ylabel("sides")
    return _png(fig)


# ---------------------------------------------------------------- sections


def _table(rows: list[dict]) -> pd.DataFrame:
    """Whole numbers with thousands separators (12,345), as everywhere else in the report."""
    return pd.DataFrame(
        [{k: f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else v for k, v in r.items()} for r in rows]
    )


def _work_label(w: dict) -> str:
    return f"{w['title']} ({w['work'].split('/', 1)[-1]})" if w.get("title") else w["work"]


def sections_of(f: dict) -> list[Section]:
    """The report's sections in order; drops, near-copies and readings only when stats.json says them."""
    parts = [_section_overview, _section_splits, _section_sources, _section_samples, _section_lengths]
    parts.append(_section_characters)
    if f["from_stats"]:
        parts += [_section_drops, _section_near_copies, _section_readings]
    return [part(f) for part in parts]


def _section_overview(f: dict) -> Section:
    intro = (
        f"{f['pairs']:,} pairs from {f['works']:,} works; reader {f['reader'] or 'unknown'} "
        f"({f['reader_version'] or '?'}); --max-len {f['max_len'] or 'none (no limit)'}."
    )
    if not f["from_stats"]:
        intro += " No stats.json beside these shards: drops, near-copies and readings are not known."
    return Section("Overview", intro)


def _section_splits(f: dict) -> Section:
    s = Section("Splits")
    s.tables.append(
        (
            "",
            _table(
                [
                    {
                        "split": k,
                        "pairs": v["pairs"],
                        "share": f"{f['split_share'].get(k, 0.0):.1%}",
                        "works": v["works"],
                    }
                    for k, v in f["splits"].items()
                ]
            ),
        )
    )
    s.images.append(
        ("pairs per split", _bar(list(f["splits"]), [v["pairs"] for v in f["splits"].values()], "pairs per split"))
    )
    return s


def _section_sources(f: dict) -> Section:
    s = Section("Pairs per source and per work")
    s.tables.append(("per source", _table([{"source": k, "pairs": v} for k, v in f["sources"].items()])))
    s.tables.append(
        (
            f"top {len(f['top_works'])} works",
            _table(
                [
                    {"title": w["title"], "work": w["work"], "split": w["split"], "pairs": w["pairs"]}
                    for w in f["top_works"]
                ]
            ),
        )
    )
    if f["top_works"]:
        s.images.append(
            (
                "pairs of the top works",
                _bar(
                    [_work_label(w) for w in f["top_works"]],
                    [w["pairs"] for w in f["top_works"]],
                    "pairs of the top works",
                    "pairs",
                    horizontal=True,
                ),
            )
        )
    return s


def _section_samples(f: dict) -> Section:
    s = Section("Sample pairs", "A few pairs of each split, spread over it: the text as written, then as read.")
    for split, rows in f["samples"].items():
        s.tables.append(
            (
                split,
                _table(
                    [
                        {
                            "work": _work_label(r),
                            "utterance": r["utterance"] or "",
                            "reply": r["reply"] or "",
                            "utterance (katakana)": r["utterance_kana"],
                            "reply (katakana)": r["reply_kana"],
                        }
                        for r in rows
                    ]
                ),
            )
        )
    return s


def _section_lengths(f: dict) -> Section:
    s = Section(
        "Lengths",
        "Histograms of the katakana length of both sides; the dashed line is the corpus's "
        "--max-len (extract-pairs dropped the pairs with a longer side)."
        if f["length_cut"]
        else "Histograms of the katakana length of both sides; the corpus was extracted with no --max-len.",
    )
    s.tables.append(
        (
            "",
            _table(
                [
                    {
                        "side": side.removesuffix("_kana"),
                        "mean": round(v["mean"], 1),
                        "median": v["median"],
                        "max": v["max"],
                        f"over {f['length_cut'] or 'the cut'}": v["over_cut"],
                    }
                    for side, v in f["lengths"].items()
                ]
            ),
        )
    )
    if f["pairs"]:
        s.images.append(("length histograms", _length_plot(f)))
    return s


def _section_characters(f: dict) -> Section:
    ch = f["characters"]
    s = Section(
        "Characters",
        f"{ch['distinct']:,} distinct characters, {ch['total']:,} in all. A vocabulary "
        f"of N ids holds the N−{RESERVED_IDS} most frequent characters (padding and "
        "unknown take the others); the rest become unknown.",
    )
    s.tables.append(
        (
            "vocabulary coverage",
            _table(
                [{"vocabulary": int(k), "characters covered": f"{v:.2%}"} for k, v in ch["vocabulary_coverage"].items()]
            ),
        )
    )
    top = ch["top"][:30]
    s.tables.append(
        (
            f"the {len(top)} most frequent characters",
            _table(
                [
                    {"rank": i + 1, "character": c, "count": k, "share": f"{k / ch['total']:.2%}"}
                    for i, (c, k) in enumerate(top)
                ]
            ),
        )
    )
    if ch["total"]:
        s.images.append(("character frequencies and vocabulary coverage", _coverage_plot(f)))
    return s


def _section_drops(f: dict) -> Section:
    candidates = f["candidate_pairs"] or 0
    kept = f"{f['pairs'] / candidates:.1%}" if candidates else "?"
    s = Section("Drop reasons", f"{candidates:,} candidate pairs, {f['pairs']:,} kept ({kept}).")
    drops = {k.removeprefix("dropped_"): v for k, v in f["dropped"].items()}
    shares = f["dropped_share_by_reason"]
    s.tables.append(
        (
            "",
            _table(
                [
                    {"reason": k, "pairs": v, "share of candidates": f"{shares.get(k, 0.0):.1%}"}
                    for k, v in drops.items()
                ]
            ),
        )
    )
    s.images.append(
        (
            "drop reasons",
            _bar(
                ["kept"] + list(drops),
                [f["pairs"]] + list(drops.values()),
                "candidate pairs: kept, and dropped by reason",
                "pairs",
                horizontal=True,
            ),
        )
    )
    return s


def _section_near_copies(f: dict) -> Section:
    groups = f["near_copy_groups"]
    s = Section(
        "Near-copy works",
        f"{len(groups)} group(s) of works that hold the same text; each group "
        "takes the split of its member whose work_id sorts first.",
    )
    if groups:
        s.tables.append(
            (
                "",
                _table(
                    [
                        {"group": i + 1, "work": m["work"], "split": m["split"], "pairs kept": m["pairs_kept"]}
                        for i, g in enumerate(groups)
                        for m in g
                    ]
                ),
            )
        )
    return s


def _section_readings(f: dict) -> Section:
    rd = f["readings"]
    s = Section(
        "Where readings came from",
        "Words read by the author's ruby on the line, by the work's "
        "ruby memory (ruby the author gave earlier), as numbers, or by "
        "the reader.",
    )
    total = sum(rd.values())
    if total:
        s.tables.append(("", _table([{"source": k, "words": v, "share": f"{v / total:.1%}"} for k, v in rd.items()])))
        s.images.append(("reading sources", _bar(list(rd), list(rd.values()), "words read by", "words")))
    return s


# ---------------------------------------------------------------- rendering


def _md_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "(none)"
    cells = [[str(c).replace("|", "\\|") for c in df.columns]]
    cells += [[str(v).replace("|", "\\|") for v in row] for row in df.itertuples(index=False)]
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(r) + " |" for r in cells[1:]]
    return "\n".join(lines)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_markdown(title: str, sections: list[Section]) -> str:
    parts = [f"# {title}", ""]
    for s in sections:
        parts += [f"## {s.title}", ""]
        if s.text:
            parts += [s.text, ""]
        for caption, df in s.tables:
            if caption:
                parts += [f"*{caption}*", ""]
            parts += [_md_table(df), ""]
        for alt, png in s.images:
            parts += [f"![{alt}]({_data_uri(png)})", ""]
    return "\n".join(parts)


def render_html(title: str, sections: list[Section]) -> str:
    css = (
        "body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:.2em .6em;"
        "text-align:right}th{background:#f3f3f3}img{max-width:100%;display:block;margin:.5em 0 1.5em}"
    )
    parts = [
        "<!doctype html>",
        '<html lang="ja"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{css}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        if s.text:
            parts.append(f"<p>{html.escape(s.text)}</p>")
        for caption, df in s.tables:
            if caption:
                parts.append(f"<p><em>{html.escape(caption)}</em></p>")
            parts.append(df.to_html(index=False, border=0) if not df.empty else "<p>(none)</p>")
        for alt, png in s.images:
            parts.append(f'<img alt="{html.escape(alt)}" src="{_data_uri(png)}">')
    parts.append("</body></html>")
    return "\n".join(parts)


# ---------------------------------------------------------------- the stage


def report(opts: ReportOptions) -> ReportResult:
    data = Path(opts.data_dir)
    table = _read(data)
    figures = figures_of(
        table, corpus_stats(data), corpus_metadata(data), opts.top_works, work_titles(data), opts.samples
    )
    sections = sections_of(figures)
    title = f"nocpipe corpus report: {data}"
    out = Path(opts.out)
    if out.suffix.lower() == ".md":  # asked for Markdown: the HTML goes beside it
        out = out.with_suffix(".html")
    # A device or FIFO (--out /dev/null) is written into, and gets no twin beside it.
    md = out.with_suffix(".md") if not out.exists() or Path(os.path.realpath(out)).is_file() else None
    # Leftovers of a report killed while writing (nothing else writes these names).
    for p in (out, md) if md else ():
        atomic.clean_temporaries(p.parent, patterns=(f".{p.name}.*.tmp",))
    atomic.write_text(out, render_html(title, sections))
    if md:
        atomic.write_text(md, render_markdown(title, sections))
    if opts.json_out:
        atomic.write_json(Path(opts.json_out), figures)
    return ReportResult(out, md, opts.json_out, figures, sum(len(s.images) for s in sections))
