"""Stages and their commands stay small: no function body over 60 lines in the corpus and raw
store stages and commands, and every option check in one `validate()` per options dataclass,
none in the commands themselves."""

import ast
from pathlib import Path

import pytest

from pipeline.config import SplitConfig
from pipeline.errors import UsageError
from pipeline.http import Politeness
from stages.extract_pairs import ExtractOptions
from stages.ingest import IngestOptions
from stages.scrape import ScrapeOptions

ROOT = Path(__file__).resolve().parent.parent
FILES = [
    "stages/scrape.py",
    "stages/extract_pairs.py",
    "stages/ingest.py",
    "stages/list.py",
    "pipeline/cli/scrape.py",
    "pipeline/cli/corpus.py",
]
COMMANDS = {"pipeline/cli/scrape.py": ("scrape", "list_works"), "pipeline/cli/corpus.py": ("ingest", "extract_pairs")}
LIMIT = 60


def _functions(path: str):
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def body_lines(fn: ast.FunctionDef) -> int:
    """Lines from the first statement (the docstring included) to the last: a Typer command's
    option declarations sit in its signature and do not count."""
    return fn.body[-1].end_lineno - fn.body[0].lineno + 1


@pytest.mark.parametrize("path", FILES)
def test_no_function_body_is_over_60_lines(path):
    assert {f.name: body_lines(f) for f in _functions(path) if body_lines(f) > LIMIT} == {}


def test_the_measure_counts_a_long_body():
    fn = ast.parse("def f():\n" + "    x = 1\n" * 61).body[0]
    assert body_lines(fn) == 61 > LIMIT


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_commands_check_no_option_themselves(path):
    for fn in _functions(path):
        if fn.name in COMMANDS[path]:
            assert not [n for n in ast.walk(fn) if isinstance(n, ast.Raise)], fn.name


@pytest.mark.parametrize(
    "change,flag",
    [
        ({"max_len": -1}, "--max-len"),
        ({"workers": -1}, "--workers"),
        ({"workers": 5000}, "--workers"),
        ({"shard_target": 0}, "--shard-size"),
        ({"examples": -1}, "--examples"),
        ({"examples": 10**6}, "--examples"),
        ({"reader": "mecab"}, "reader"),
        ({"split": SplitConfig(float("nan"), 0.5, 0.5)}, "split"),
        ({"scheduler": " "}, "--scheduler"),
    ],
)
def test_extract_options_validate_refuses(tmp_path, change, flag):
    opts = ExtractOptions(raw_dir=tmp_path, out_dir=tmp_path, **change)
    with pytest.raises(UsageError, match=flag):
        opts.validate()


@pytest.mark.parametrize(
    "change,fragment",
    [
        ({"site": "kakuyomu"}, "unknown site"),
        ({"targets": ["https://novel18.syosetu.com/n0001aa/", "https://ncode.syosetu.com/n0002bb/"]}, "one site"),
        ({"site": "narou", "targets": ["https://novel18.syosetu.com/n0001aa/"]}, "one site"),
        ({"targets": ["n12"]}, "n12"),
        ({"limit": -1}, "--limit"),
        ({"limit": 10**9}, "--limit"),
        ({"targets": ["n0001aa"], "politeness": Politeness(retries=1000)}, "--retries"),
        ({}, "choose the works"),
        ({"targets": ["n0001aa"], "base_url": "ftp://example.com/"}, "--base-url"),
    ],
)
def test_scrape_options_validate_refuses(tmp_path, change, fragment):
    with pytest.raises(UsageError, match=fragment):
        ScrapeOptions(raw_dir=tmp_path, **change).validate()


def test_scrape_options_take_the_site_of_the_urls_given(tmp_path):
    opts = ScrapeOptions(raw_dir=tmp_path, targets=["https://ncode.syosetu.com/n0002bb/"])
    opts.validate()
    assert opts.site_name() == "narou" and ScrapeOptions(raw_dir=tmp_path).site_name() == "nocturne"


@pytest.mark.parametrize("mb", [0, 5000])
def test_ingest_options_bound_the_size_read(tmp_path, mb):
    with pytest.raises(UsageError, match="--max-size"):
        IngestOptions([tmp_path], tmp_path, max_bytes=mb * 1024 * 1024).validate()
