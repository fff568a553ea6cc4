"""One run per folder: a second run stops at once with one line (who, pid, since); a lock whose
process is gone is taken over; temporaries left by a killed run are removed by the next one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from conftest import write_aozora

from pipeline.errors import BusyError
from pipeline.locks import folder_lock, locked

HOLD = (
    "import sys, time; from pipeline.locks import folder_lock\n"
    "with folder_lock(sys.argv[1], sys.argv[2], beside=sys.argv[3] == '1'):\n"
    "    print('held', flush=True); time.sleep(60)\n"
)


def _holder(folder, command, beside=False):
    """Another process holding `folder`'s lock (started, and holding, when this returns)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder), command, "1" if beside else "0"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_holder_is_refused_with_pid_and_since(tmp_path):
    with folder_lock(tmp_path / "out", "extract-pairs"):
        with pytest.raises(BusyError) as info:
            with folder_lock(tmp_path / "out", "extract-pairs"):
                pass
    msg = str(info.value)
    assert f"pid {os.getpid()}" in msg and "since" in msg and "extract-pairs" in msg and "\n" not in msg
    with folder_lock(tmp_path / "out", "extract-pairs"):  # released: free again
        pass


def test_a_dead_holder_is_taken_over(tmp_path):
    proc = _holder(tmp_path / "raw", "scrape")
    with pytest.raises(BusyError, match=f"pid {proc.pid}"):
        with folder_lock(tmp_path / "raw", "ingest"):
            pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert str(proc.pid) in (tmp_path / "raw" / ".lock").read_text()  # the file stays behind...
    with folder_lock(tmp_path / "raw", "ingest"):  # ...and is taken over
        assert str(os.getpid()) in (tmp_path / "raw" / ".lock").read_text()


def test_every_writing_stage_stops_on_a_held_folder(tmp_path, cli):
    src = write_aozora(tmp_path / "src" / "a.txt", "「はい」\n「いいえ」")
    raw = tmp_path / "raw"
    assert cli("ingest", "-q", "--raw-dir", raw, src).code == 0
    # train checks its corpus before it takes its folder's lock: give it one
    assert cli("extract-pairs", "-q", "--raw-dir", raw, "--out-dir", tmp_path / "made").code == 0
    cases = [
        (raw, False, ["ingest", "-q", "--raw-dir", raw, src]),
        (raw / "nocturne", False, ["scrape", "--raw-dir", raw, "n0001aa"]),  # scrape: per site
        (tmp_path / "corpus", False, ["extract-pairs", "-q", "--raw-dir", raw, "--out-dir", tmp_path / "corpus"]),
        (tmp_path / "model", True, ["train", "--data-dir", tmp_path / "made", "--model-dir", tmp_path / "model"]),
    ]
    for folder, beside, args in cases:
        proc = _holder(folder, "other-run", beside)
        try:
            r = cli(*args)
        finally:
            proc.kill()
            proc.wait()
        assert r.code == 1, (args, r.out, r.err)
        lines = r.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ") and f"pid {proc.pid}" in lines[0], (args, r.err)


def test_temporaries_of_a_killed_run_are_removed_by_the_next(tmp_path):
    from stages.ingest import ingest

    src = write_aozora(tmp_path / "src" / "a.txt", "「はい」\n「いいえ」")
    raw = tmp_path / "raw"
    ingest([src], raw, show_progress=False)
    left = [raw / "aozora" / "a" / ".text.txt.x1.tmp", raw / ".stray.y2.tmp"]
    for p in left:
        p.write_text("half")
    ingest([src], raw, show_progress=False)
    assert not any(p.exists() for p in left)

    model = tmp_path / "model"
    model.mkdir()
    (model / ".model.z3.keras").write_text("half")
    (model / "model.keras").write_text("kept")

    @locked("train", lambda a: a["folder"], "model folder", beside=True, temporaries=(".*.tmp", ".*.keras"))
    def stage(folder):
        return sorted(p.name for p in folder.iterdir())

    assert stage(model) == ["model.keras"]


def test_a_read_only_folder_is_one_clear_error(tmp_path):
    if os.geteuid() == 0:
        folder = tmp_path / "file-not-folder"
        folder.write_text("x")  # root ignores permissions; a file in the way fails alike
    else:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
    from pipeline.errors import StoreError

    with pytest.raises(StoreError, match="raw store"):
        with folder_lock(folder, "ingest", "raw store"):
            pass
