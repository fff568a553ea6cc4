"""Shared fixtures: an isolated data folder, a CLI runner, the bundled corpus."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The 61 public-domain Aozora works bundled with the project (data/aozora, manifest included).
SHARED_CORPUS = REPO / "data" / "aozora"
SAMPLES = REPO / "data" / "samples" / "aozora"


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """NOCPIPE_DATA pointed at an empty folder, so defaults never touch ./data."""
    d = tmp_path / "data"
    monkeypatch.setenv("NOCPIPE_DATA", str(d))
    return d


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys):
    """Run `nocpipe ARGS...` in-process through the real entry point."""
    from pipeline.cli import main

    def run(*args: str) -> CliResult:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def aozora_text(body: str, title: str = "試験の話", author: str = "作者太郎") -> str:
    """A minimal Aozora-format text around `body`."""
    return (
        f"{title}\n{author}\n\n"
        "-------------------------------------------------------\n"
        "【テキスト中に現れる記号について】\n\n《》：ルビ\n（例）試験《しけん》\n"
        "-------------------------------------------------------\n\n"
        f"{body}\n\n\n"
        "底本：「試験全集」試験社\n　　　2000（平成12）年1月1日第1刷発行\n入力：誰か\n"
    )


def write_aozora(path: Path, body: str, encoding: str = "cp932", newline: str = "\r\n", **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(aozora_text(body, **kw).replace("\n", newline).encode(encoding))
    return path


@pytest.fixture
def shared_corpus() -> Path:
    if not SHARED_CORPUS.is_dir():  # part of the repository: a missing one is a broken checkout
        pytest.fail(f"bundled corpus not found at {SHARED_CORPUS}")
    return SHARED_CORPUS


def pytest_configure(config):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
