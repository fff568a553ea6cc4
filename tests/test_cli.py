"""The command line: help with an example for every command, one-line errors."""

import io
import subprocess
import sys

import pytest

from pipeline.cli import app


def command_names():
    import typer.main

    return sorted(typer.main.get_command(app).commands)


def test_core_commands_exist():
    assert {"ingest", "extract-pairs", "kana"} <= set(command_names())


@pytest.mark.parametrize("name", command_names())
def test_every_command_has_help_with_an_example(cli, name):
    r = cli(name, "--help")
    assert r.code == 0
    assert "Example" in r.out


def test_top_level_help_and_version(cli):
    r = cli("--help")
    assert r.code == 0 and "extract-pairs" in r.out
    r = cli("--version")
    assert r.code == 0 and r.out.startswith("nocpipe ")


@pytest.mark.parametrize(
    "args,needle",
    [
        (["no-such-command"], "No such command"),
        (["kana", "--reader", "mecab", "x"], "unknown reader"),
        (["extract-pairs", "--workers", "many"], "--workers"),
        (["ingest"], "Missing argument"),
    ],
)
def test_user_errors_are_one_line_with_status_1(cli, data_dir, args, needle):
    r = cli(*args)
    assert r.code == 1
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and needle in lines[0]
    assert "Traceback" not in r.err


def test_kana_from_arguments_and_stdin(cli, monkeypatch):
    out = cli("kana", "邪智暴虐《じゃちぼうぎゃく》の王", "3回")
    assert out.code == 0, out.err
    assert out.out.splitlines() == ["ジャチボウギャクノオウ", "サンカイ"]
    stdin = "今日は\n\n疲労｜困憊《こんぱい》\n".encode()  # kana reads stdin's bytes and decodes them itself
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    out = cli("kana", "--reader", "unidic")
    assert out.code == 0, out.err
    assert out.out.splitlines() == ["キョウハ", "", "ヒロウコンパイ"]


def test_help_is_fast_without_tensorflow():
    code = "import sys; from pipeline.cli import main; main(['--help']); print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip().endswith("False")
