"""docs/cli.md is the commands' own --help: regenerated in memory and compared."""

from __future__ import annotations

import importlib.util

import pytest
from conftest import REPO

_spec = importlib.util.spec_from_file_location("cli_reference", REPO / "scripts" / "cli_reference.py")
assert _spec is not None and _spec.loader is not None
cli_reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cli_reference)


@pytest.fixture(scope="module")
def page() -> str:
    return cli_reference.render()


def test_reference_matches_the_commands_help(page):
    problem = cli_reference.drift(page, REPO / "docs" / "cli.md")
    if problem:
        pytest.fail(problem)


def test_reference_has_a_section_for_every_command_the_app_lists(page, cli):
    out = cli("--help").out
    names = [line.split()[0] for line in out.split("Commands:\n", 1)[1].splitlines() if line.startswith("  ")]
    assert {"ingest", "extract-pairs", "train", "predict", "serve"} <= set(names)
    for name in names:
        assert f"\n## nocpipe {name}\n" in page
        assert f"Usage: nocpipe {name} [OPTIONS]" in page


def test_a_stale_page_names_the_first_difference_and_the_fix(page, tmp_path):
    stale = tmp_path / "cli.md"
    lines = page.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("## nocpipe train"))
    stale.write_text("".join(lines[:at] + ["## nocpipe trian\n"] + lines[at + 1 :]), encoding="utf-8")
    problem = cli_reference.drift(page, stale)
    assert problem is not None
    assert f"line {at + 1}" in problem and "make cli-docs" in problem
    assert "missing" in cli_reference.drift(page, tmp_path / "absent.md")
    stale.write_text(page, encoding="utf-8")
    assert cli_reference.drift(page, stale) is None
