"""The settings file and the environment: command line > environment > nocpipe.toml > defaults."""

from __future__ import annotations

import typer.main
from harness import assert_one_error, run_nocpipe

from pipeline.cli import app


def _parsed(command: str, *args: str) -> dict:
    """The values `nocpipe COMMAND ARGS` would run with, parsed by the real command line."""
    cmd = typer.main.get_command(app).commands[command]
    return cmd.make_context(command, list(args)).params


def test_defaults_then_file_then_environment_then_command_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for var in ("NOCPIPE_DELAY", "NOCPIPE_CONTACT", "NOCPIPE_CONFIG", "NOCPIPE_MODEL", "NOCPIPE_RETRIES"):
        monkeypatch.delenv(var, raising=False)
    p = _parsed("scrape")
    assert (p["delay"], p["timeout"], p["retries"], p["backoff"], p["contact"]) == (1.0, 30.0, 5, 2.0, None)
    (tmp_path / "nocpipe.toml").write_text(
        'delay = 3\ntimeout = 12.5\nretries = 2\nbackoff = 0.5\ncontact = "file@example.com"\nmodel = "small"\n'
    )
    p = _parsed("scrape")
    assert (p["delay"], p["timeout"], p["retries"], p["backoff"], p["contact"]) == (
        3.0,
        12.5,
        2,
        0.5,
        "file@example.com",
    )
    assert _parsed("train")["name"] == "small"
    monkeypatch.setenv("NOCPIPE_DELAY", "4.5")
    monkeypatch.setenv("NOCPIPE_CONTACT", "env@example.com")
    monkeypatch.setenv("NOCPIPE_RETRIES", "")  # empty: unset, the file's value stays
    p = _parsed("scrape")
    assert (p["delay"], p["contact"], p["retries"]) == (4.5, "env@example.com", 2)
    p = _parsed("scrape", "--delay", "7", "--contact", "cli@example.com", "--retries", "0")
    assert (p["delay"], p["contact"], p["retries"]) == (7.0, "cli@example.com", 0)
    assert _parsed("train", "--name", "big")["name"] == "big"


def test_config_shows_each_value_and_where_it_came_from(tmp_path):
    (tmp_path / "nocpipe.toml").write_text('# politeness\ndelay = 2.5\n\ndata = "corpus-data"\n')
    r = run_nocpipe("config", cwd=tmp_path, env={"NOCPIPE_CONTACT": "me@example.com", "NOCPIPE_DATA": ""})
    assert r.code == 0, r.err
    rows = {ln.split()[0]: ln for ln in r.out.splitlines()[1:]}
    assert r.out.splitlines()[0] == "settings file: nocpipe.toml"
    assert "2.5" in rows["delay"] and "file (nocpipe.toml, line 2)" in rows["delay"]
    assert "'corpus-data'" in rows["data"] and "line 4" in rows["data"]
    assert "'me@example.com'" in rows["contact"] and "env (NOCPIPE_CONTACT)" in rows["contact"]
    assert "30.0" in rows["timeout"] and rows["timeout"].endswith("default")


def test_the_data_folder_from_the_file_and_from_nocpipe_config(tmp_path):
    sample = tmp_path / "a.txt"
    sample.write_text("「おはよう」\n「おはよう、早いね」\n", encoding="utf-8")
    (tmp_path / "nocpipe.toml").write_text('data = "mine"\n')
    assert run_nocpipe("ingest", "-q", sample, cwd=tmp_path, env={"NOCPIPE_DATA": ""}).code == 0
    assert (tmp_path / "mine" / "raw" / "text").is_dir() and not (tmp_path / "raw").exists()
    elsewhere = tmp_path / "conf" / "settings.toml"
    elsewhere.parent.mkdir()
    elsewhere.write_text('data = "d"\n')  # relative to the file's folder
    r = run_nocpipe("ingest", "-q", sample, cwd=tmp_path, env={"NOCPIPE_CONFIG": str(elsewhere), "NOCPIPE_DATA": ""})
    assert r.code == 0, r.err
    assert (tmp_path / "conf" / "d" / "raw" / "text").is_dir()
    r = run_nocpipe("ingest", "-q", sample, cwd=tmp_path, env={"NOCPIPE_CONFIG": str(tmp_path / "missing.toml")})
    assert_one_error(r, "NOCPIPE_CONFIG names", "missing.toml")


def test_empty_nocpipe_data_means_the_default_data_folder(tmp_path):
    sample = tmp_path / "a.txt"
    sample.write_text("「おはよう」\n「おはよう、早いね」\n", encoding="utf-8")
    r = run_nocpipe("ingest", "-q", sample, cwd=tmp_path, env={"NOCPIPE_DATA": ""})
    assert r.code == 0, r.err
    assert (tmp_path / "data" / "raw" / "text").is_dir() and not (tmp_path / "raw").exists()


def test_a_bad_settings_file_is_one_error_line_naming_file_line_and_key(tmp_path):
    cases = {
        'delay = 2\ncontact = "me@example.com\n': ("nocpipe.toml, line 2", "not valid TOML"),
        "delay = 2\n\ndealy = 3\n": ("nocpipe.toml, line 3", "unknown key 'dealy'", "the keys are data"),
        'retries = 5\ndelay = "slow"\n': ("nocpipe.toml, line 2", "delay must be a number", "'slow'"),
        "retries = 2.5\n": ("nocpipe.toml, line 1", "retries must be a whole number"),
        "\n[scrape]\ndelay = 1\n": ("nocpipe.toml, line 2", "unknown key 'scrape'"),
        "retries = 5000\n": ("nocpipe.toml, line 1", "retries must be 0 to 100"),
        'model = "../x"\n': ("nocpipe.toml, line 1", "model must be a plain folder name"),
    }
    for text, fragments in cases.items():
        (tmp_path / "nocpipe.toml").write_text(text)
        for command in (["config"], ["list"]):
            assert_one_error(run_nocpipe(*command, cwd=tmp_path), *fragments)
    (tmp_path / "nocpipe.toml").write_text("delay = 1\n")
    r = run_nocpipe("config", cwd=tmp_path, env={"NOCPIPE_DELAY": "soon"})
    assert_one_error(r, "NOCPIPE_DELAY='soon'", "delay must be a number")
    r = run_nocpipe("config", cwd=tmp_path, env={"NOCPIPE_TIMEOUT": "0"})
    assert_one_error(r, "NOCPIPE_TIMEOUT in the environment", "timeout must be more than 0")
