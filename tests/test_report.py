"""nocpipe report: one HTML file with its plots inside, the same as Markdown, figures as JSON."""

from __future__ import annotations

import base64
import json
import re

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
    assert md.count("](data:image/png;base64,") == len(images) and "| split | pairs | works |" in md
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
