"""Shared fixtures: an isolated data folder, a CLI runner, the bundled corpus."""

from __future__ import annotations

import os
from contextlib import contextmanager
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


# The files that train or serve real models, longest first. `make test` hands whole files to
# its workers (pytest-xdist, --dist loadfile) in collection order; starting the long ones
# first keeps one of them from being the last thing running while the other workers idle.
LONGEST_FIRST = (
    "test_train.py",
    "test_models.py",
    "test_disk_full.py",
    "test_evaluate.py",
    "test_distribute.py",
    "test_inference.py",
    "test_serve.py",
    "test_predict.py",
    "test_bad_inputs.py",
    "test_cluster.py",
    "test_retrieval.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file keeps its order


def pytest_configure(config):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Property tests explore new random inputs on a developer's machine; under CI they draw
    # the same examples every run, so a result there never depends on the draw.
    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, database=None)
    if os.environ.get("CI"):
        settings.load_profile("ci")


# ---------------------------------------------------------------- a trained model, a running server


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny model trained through the real CLI on the bundled sample: ingest, extract-pairs,
    one short epoch of training (seconds). Shared by every test that needs a real model."""
    from pipeline.cli import main

    root = tmp_path_factory.mktemp("tiny_model")
    steps = [
        ["ingest", str(SAMPLES), "--raw-dir", root / "raw", "-q"],
        ["extract-pairs", "--raw-dir", root / "raw", "--out-dir", root / "pairs", "--workers", "1", "-q"],
        [
            "train",
            "--arch",
            "transformer",
            "--data-dir",
            root / "pairs",
            "--model-dir",
            root / "tiny",
            "--units",
            "8",
            "--epochs",
            "1",
            "--max-pairs",
            "300",
            "--batch-size",
            "32",
            "--valid-pairs",
            "32",
            "-q",
        ],
    ]
    for args in steps:
        code = main([str(a) for a in args])
        if code != 0:
            pytest.fail(f"nocpipe {args[0]} exited {code} while making the tiny model")
    return root / "tiny"


@dataclass
class Served:
    url: str  # http://127.0.0.1:PORT/
    proc: object  # the `nocpipe serve` process
    lines: list  # what it printed so far


@contextmanager
def serving(model_dir: Path, stop_with: int | None = None):
    """`nocpipe serve` on a model, started as a real process on a free port (--port 0); at
    the end stopped with `stop_with` (SIGINT, as Ctrl-C, when None), which must end it
    cleanly with its summary line and exit status 0."""
    import queue
    import signal
    import subprocess
    import sys
    import threading

    sig = signal.SIGINT if stop_with is None else stop_with
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "serve", "--model-dir", str(model_dir), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
        env=env,
    )
    lines: list[str] = []
    q: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            q.put(line)
        q.put(None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    url = None
    while url is None:
        try:
            line = q.get(timeout=300)
        except queue.Empty:
            line = None
        if line is None:
            proc.kill()
            pytest.fail("nocpipe serve did not print its URL:\n" + "\n".join(lines))
        if line.startswith("serving at "):
            url = line.split()[2]
    yield Served(url, proc, lines)
    name = signal.Signals(sig).name
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"nocpipe serve did not stop on {name} within 60 s")
    reader.join(timeout=10)
    tail = "\n".join(lines[-5:])
    if code != 0 or not any(ln.startswith("stopped: ") for ln in lines) or "Traceback" in "\n".join(lines):
        pytest.fail(f"nocpipe serve did not stop cleanly on {name} (exit {code}):\n{tail}")


@pytest.fixture(scope="session")
def served_model(tiny_model) -> Served:
    """`nocpipe serve` on the tiny model for the session's tests; Ctrl-C ends it (checked)."""
    with serving(tiny_model) as served:
        yield served
