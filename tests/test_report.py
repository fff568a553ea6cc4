"""nocpipe report: one HTML file with its plots inside, the same as Markdown, figures as JSON."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from test_layout import corpus  # noqa: F401  (the module's small three-split corpus)


def test_report_holds_its_plots_tables_and_figures(corpus, tmp_path, cli):  # noqa: F811
    out = tmp_path / "r" / "report.html"
    r = cli("report", "--data-dir", corpus, "--out", out, "--json", tmp_path / "r" / "figures.json")
    assert r.code == 0, r.err
    assert "plots" in r.out and "pairs from" in r.out
    html = out.read_text(encoding="utf-8")
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"', html)
    assert len(images) >= 6, [a for a, _ in images]
    assert all(base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n" for _, b in images)
    alts = {a for a, _ in images}
    assert {
        "length histograms",
        "pairs per split",
        "drop reasons",
        "reading sources",
        "character frequencies and vocabulary coverage",
    } <= alts
    assert "http://" not in html and "https://" not in html  # one self-contained file
    for heading in (
        "Splits",
        "Pairs per source and per work",
        "Lengths",
        "Characters",
        "Drop reasons",
        "Near-copy works",
        "Where readings came from",
    ):
        assert f"<h2>{heading}</h2>" in html
    md = (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    assert md.count("](data:image/png;base64,") == len(images) and "| split | pairs | share | works |" in md
    figures = json.loads((tmp_path / "r" / "figures.json").read_text())
    stats = json.loads((corpus / "stats.json").read_text())
    assert {k: v["pairs"] for k, v in figures["splits"].items()} == stats["pairs_by_split"]
    assert set(figures["characters"]["vocabulary_coverage"]) == {"64", "128", "256"}
    assert figures["length_cut"] == 50 and figures["reader"] == "pykakasi"


def test_report_on_a_loose_parquet_file_and_errors(corpus, tmp_path, cli):  # noqa: F811
    one = sorted((corpus / "pairs").glob("train-*.parquet"))[0]
    loose = tmp_path / "loose.parquet"
    loose.write_bytes(one.read_bytes())
    r = cli("report", "--data-dir", loose, "--out", tmp_path / "loose.html")
    assert r.code == 0, r.err
    assert "No stats.json" in (tmp_path / "loose.html").read_text(encoding="utf-8")
    r = cli("report", "--data-dir", tmp_path / "missing", "--out", tmp_path / "x.html")
    assert r.code == 1 and r.err.startswith("Error: ") and len(r.err.strip().splitlines()) == 1


# ---------------------------------------------------------------- titles, samples, shares, fonts


@pytest.fixture(scope="module")
def aozora_corpus(tmp_path_factory) -> Path:
    """The four sample works (titles in their headers), extracted with --max-len 30."""
    from conftest import SAMPLES

    from pipeline.cli import main

    root = tmp_path_factory.mktemp("report")
    for args in (
        ["ingest", "-q", "--raw-dir", root / "raw", SAMPLES],
        ["extract-pairs", "-q", "--raw-dir", root / "raw", "--out-dir", root / "corpus", "--workers", "1",
         "--reader", "pykakasi", "--max-len", "30", "--examples", "0"],
    ):  # fmt: skip
        assert main([str(a) for a in args]) == 0
    return root / "corpus"


def test_plot_text_is_drawn_with_a_font_that_has_the_glyphs():
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    from stages.report import _plt

    plt = _plt()
    text = "虞美人草 走れメロス ヴァイオリン、ー！？…「」"
    path = font_manager.findfont(
        font_manager.FontProperties(family=plt.rcParams["font.family"]), fallback_to_default=False
    )
    charmap = FT2Font(path).get_charmap()
    assert [c for c in text if c != " " and ord(c) not in charmap] == [], path


def test_report_shows_titles_samples_shares_and_the_corpus_cut(aozora_corpus, tmp_path, cli):
    out = tmp_path / "report.html"
    r = cli("report", "--data-dir", aozora_corpus, "--out", out, "--json", tmp_path / "f.json")
    assert r.code == 0, r.err
    html = out.read_text(encoding="utf-8")
    f = json.loads((tmp_path / "f.json").read_text(encoding="utf-8"))
    stats = json.loads((aozora_corpus / "stats.json").read_text(encoding="utf-8"))
    # Titles, not only ids.
    assert {w["title"] for w in f["top_works"]} == {"走れメロス", "注文の多い料理店", "風の又三郎", "怪人二十面相"}
    assert "<td>走れメロス</td>" in html and "走れメロス (1567_ruby_4948)" in html
    # The cut is the corpus's own --max-len, not train's default.
    assert f["max_len"] == 30 and f["length_cut"] == 30 and "<th>over 30</th>" in html
    # Sample pairs of each split: the text as written and its reading.
    assert set(f["samples"]) == {k for k, v in f["splits"].items() if v["pairs"]}
    for rows in f["samples"].values():
        assert 1 <= len(rows) <= 3
        for row in rows:
            assert row["utterance"] and row["utterance_kana"] and f"<td>{row['reply_kana']}</td>" in html
    assert "<h2>Sample pairs</h2>" in html
    # Shares of the candidate pairs and of the kept pairs, as the counts give them.
    candidates = stats["candidate_pairs"]
    for reason, n in stats["dropped"].items():
        share = f["dropped_share_by_reason"][reason.removeprefix("dropped_")]
        assert share == pytest.approx(n / candidates)
        assert f"{share:.1%}" in html
    assert sum(f["split_share"].values()) == pytest.approx(1.0)
    assert f["split_share"]["train"] == pytest.approx(stats["pairs_by_split"]["train"] / f["pairs"])
    # Thousands separators in the tables and the text.
    from stages.report import _table

    assert _table([{"pairs": 12345, "works": 7, "share": "1.0%"}]).iloc[0].tolist() == ["12,345", "7", "1.0%"]
    assert f"{f['characters']['total']:,} in all" in html and f["characters"]["total"] >= 1000


def test_report_takes_the_shares_stats_json_gives(aozora_corpus, tmp_path, cli):
    import shutil

    copy = tmp_path / "corpus"
    shutil.copytree(aozora_corpus, copy)
    stats = json.loads((copy / "stats.json").read_text(encoding="utf-8"))
    stats["dropped_share_by_reason"] = {k.removeprefix("dropped_"): 0.125 for k in stats["dropped"]}
    stats["split_share"] = {"train": 0.5, "valid": 0.25, "test": 0.25}
    (copy / "stats.json").write_text(json.dumps(stats), encoding="utf-8")
    r = cli("report", "--data-dir", copy, "--out", tmp_path / "r.html", "--json", tmp_path / "f.json")
    assert r.code == 0, r.err
    f = json.loads((tmp_path / "f.json").read_text(encoding="utf-8"))
    assert set(f["dropped_share_by_reason"].values()) == {0.125} and f["split_share"]["valid"] == 0.25
    assert "<td>12.5%</td>" in (tmp_path / "r.html").read_text(encoding="utf-8")
