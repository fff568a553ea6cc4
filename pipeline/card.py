"""The dataset card: <root>/README.md in the Hugging Face format.

A YAML header (language, licence per source, one `data_files` entry per split, so that
`datasets.load_dataset("<root>")` finds train/validation/test), then what a user needs
before opening the corpus: sources and works, the pair rule, the reader, figures from
stats.json, and how to load it with pandas, DuckDB and `datasets`.
"""

from __future__ import annotations

from pathlib import Path

from . import __version__, corpus
from .corpus import PAIRS_DIR, SPLIT_FILES

#: What each source's texts may be used for (the card's licence section).
LICENCES = {
    "aozora": ("other", "Aozora Bunko texts whose copyright has expired (public domain in Japan)"),
    "narou": ("other", "Shōsetsuka ni Narō novels: each author keeps the copyright; for research only"),
    "nocturne": ("other", "Nocturne Novels (syosetu.com, 18+): each author keeps the copyright; for research only"),
    "text": ("other", "texts the user ingested: as their own licence says"),
}
TOP_WORKS = 50
#: Where the card's licence link leads: its own table of sources and their licences.
LICENCE_LINK = "README.md#sources-and-works"


def _yaml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _cell(s: object) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M"


def _header(stats: dict, sources: list[str], present: list[str]) -> list[str]:
    """The YAML header Hugging Face reads: licence, the files of each split (`configs`), and
    `dataset_info`: the columns and their types, and the rows of each split."""
    details = "; ".join(f"{s}: {LICENCES.get(s, ('other', 'unknown'))[1]}" for s in sources)
    by_split = stats.get("pairs_by_split", {})
    # Hugging Face has no licence id for "public domain text"; the details name it per source,
    # and the link leads to the card's own table of sources and their licences.
    lines = [
        "---",
        "language:",
        "- ja",
        "license: other",
        "license_name: per-source",
        f"license_link: {_yaml_str(LICENCE_LINK)}",
        f"license_details: {_yaml_str(details or 'no works yet')}",
        "pretty_name: nocpipe katakana dialogue pairs",
        "task_categories:",
        "- text-generation",
        "size_categories:",
        f"- {_size_category(stats.get('pairs_kept', 0))}",
        "configs:",
        "- config_name: default",
        "  data_files:",
    ]
    for s in present:
        lines += [f"  - split: {SPLIT_FILES[s]}", f"    path: {_yaml_str(corpus.split_glob(s))}"]
    lines += ["dataset_info:", "  config_name: default", "  features:"]
    for f in corpus.SCHEMA:
        lines += [f"  - name: {f.name}", f"    dtype: {f.type}"]
    lines.append("  splits:")
    for s in present:
        lines += [f"  - name: {SPLIT_FILES[s]}", f"    num_examples: {by_split[s]}"]
    return lines + ["---"]


def render(stats: dict, per_work: dict[str, dict], metas: dict[str, dict]) -> str:
    by_split = stats.get("pairs_by_split", {})
    present = [s for s in SPLIT_FILES if by_split.get(s)]
    sources = sorted({w["source"] for w in per_work.values()})
    n = stats.get("pairs_kept", 0)
    lines = _header(stats, sources, present)
    lines += [
        "",
        "# nocpipe katakana dialogue pairs",
        "",
        "Pairs of consecutive dialogue lines (an utterance and its reply) from Japanese fiction, "
        "each side also read into katakana. Written by `nocpipe extract-pairs` "
        f"(nocpipe {__version__}).",
        "",
    ]

    # ---- figures
    share, nominal = stats.get("split_share", {}), stats.get("split_nominal", {})
    lines += [
        "## Figures",
        "",
        "| split | file prefix | pairs | share of pairs | share of works asked |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for s in SPLIT_FILES:
        lines.append(
            f"| {s} | `{corpus.split_glob(s)}` | {by_split.get(s, 0):,} | {share.get(s, 0):.1%} | {nominal.get(s, 0):.0%} |"
        )
    lines += [
        "",
        "A work goes whole to one split (a stable hash of its id), so the shares of pairs differ "
        "from the shares of works asked for: long works weigh more.",
        "",
        f"{stats.get('works', 0):,} works, {stats.get('episodes', 0):,} episodes, "
        f"{stats.get('candidate_pairs', 0):,} candidate pairs, {n:,} kept.",
        "",
    ]
    if stats.get("dropped"):
        drop_share = stats.get("dropped_share_by_reason", {})
        lines += ["| dropped because | pairs | share of candidate pairs |", "| --- | ---: | ---: |"]
        for k, v in stats["dropped"].items():
            reason = k.removeprefix("dropped_")
            label = reason.replace("_", " ") + (f" (over {stats['max_len']})" if reason == "too_long" else "")
            lines.append(f"| {label} | {v:,} | {drop_share.get(reason, 0):.1%} |")
        lines.append("")

    # ---- sources and works
    lines += ["## Sources and works", "", "| source | works | pairs | licence |", "| --- | ---: | ---: | --- |"]
    for s in sources:
        ws = [w for w in per_work.values() if w["source"] == s]
        kept = sum(w["counters"].get("pairs_kept", 0) for w in ws)
        lines.append(f"| {s} | {len(ws):,} | {kept:,} | {LICENCES.get(s, ('other', 'unknown'))[1]} |")
    top = sorted(per_work.items(), key=lambda kv: (-kv[1]["counters"].get("pairs_kept", 0), kv[0]))
    lines += [
        "",
        f"Works by pairs kept{' (the top ' + str(TOP_WORKS) + ')' if len(top) > TOP_WORKS else ''}:",
        "",
        "| work | title | author | split | pairs |",
        "| --- | --- | --- | --- | ---: |",
    ]
    for key, w in top[:TOP_WORKS]:
        m = metas.get(key, {})
        lines.append(
            f"| {_cell(key)} | {_cell(m.get('title', ''))} | {_cell(m.get('author', ''))} | "
            f"{w['split']} | {w['counters'].get('pairs_kept', 0):,} |"
        )
    if len(top) > TOP_WORKS:
        lines.append(f"\n…and {len(top) - TOP_WORKS:,} more works.")
    groups = stats.get("near_copy_groups", [])
    lines += [
        "",
        f"Near-copy works (the same text more than once; each group shares the split of its "
        f"first member): {len(groups)} group(s).",
    ]
    for g in groups[:TOP_WORKS]:
        lines.append("- " + ", ".join(f"{m['work']} ({m['split']})" for m in g))
    lines.append("")

    # ---- rule and reader
    lines += [
        "## The pair rule",
        "",
        "Body lines of an episode, markup removed (HTML, Aozora notes, ruby; the base text stays), "
        "prefaces and afterwords left out. A dialogue line starts with 「 and ends with the 」 that "
        "closes it; each pairs with the next non-blank line when that is a dialogue line too (a run "
        "of n lines gives n−1 pairs; narration breaks the run). A pair is kept when both katakana "
        f"sides are non-empty, readable and at most {stats.get('max_len', 0) or 'any number of'} "
        "characters long, and it is neither an exact nor a near duplicate (equal after removing "
        "punctuation and ー) of an earlier pair in work_id, episode, line order. A work's split comes "
        "from a stable hash of its work_id; near-copies of a work share its split.",
        "",
        "## Columns",
        "",
        "`source`, `work_id`, `episode`, `line`, `utterance`, `reply` (the text inside 「」), "
        "`utterance_kana`, `reply_kana` (the katakana reading: ァ–ヺ, ー and 、。！？…・「」『』～), "
        "`split` (`train`, `validation` or `test`).",
        "",
        "## Reading",
        "",
        f"Kanji are read by the author's ruby first, then the reader `{stats.get('reader', '?')}` "
        f"(version {stats.get('reader_version', '?')}); numbers are read out. Every shard carries "
        "this in its Parquet key-value metadata (`nocpipe.reader`, `nocpipe.reader_version`, "
        "`nocpipe.max_len`, `nocpipe.schema_version`, `nocpipe.nocpipe_version`).",
        "",
        "## Loading",
        "",
        "```python",
        "import pandas as pd",
        f'df = pd.read_parquet("{PAIRS_DIR}")                     # every split; filter on df.split',
        "",
        "import duckdb",
        f"duckdb.sql(\"SELECT split, count(*) FROM '{corpus.split_glob()}' GROUP BY split\")",
        "",
        "import datasets",
        'ds = datasets.load_dataset(".")                       # this folder: train / validation / test',
        "```",
        "",
        "`nocpipe train --data-dir .` trains on it; `nocpipe report --data-dir .` shows it in plots.",
        "",
    ]
    return "\n".join(lines)


def write_card(root: Path, stats: dict, per_work: dict[str, dict], metas: dict[str, dict]) -> None:
    corpus.write_card_text(root, render(stats, per_work, metas))
