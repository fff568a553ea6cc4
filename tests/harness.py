"""Running nocpipe the way a user's shell does, in a child process, under the
conditions the tests need: a full disk, an unprivileged user. And the one check
every failure must pass: one `Error:` line, exit status 1, no traceback.

- `fsize=N` lowers RLIMIT_FSIZE to N bytes in the child and ignores SIGXFSZ, so
  any write past N bytes fails with EFBIG the way a full disk fails with ENOSPC,
  without root or a loop device.
- `as_nobody=True` takes root's privileges away when the tests run as root (CI does,
  and root passes every permission check): the child becomes `nobody` after fork
  when `nobody` can reach this Python and checkout, else it stays uid 0 with every
  capability dropped (setpriv), where mode bits bind even their owner. Tests deny
  access with modes that exclude the owner too (0o000, 0o555), so both ways agree;
  as another user the child keeps that user. Paths it must reach go through
  `shared_tmp()`.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOBODY = 65534


@dataclass
class ChildResult:
    code: int
    out: str
    err: str


def _reachable_by_others(path: str) -> bool:
    p = Path(os.path.realpath(path))
    return all(os.stat(d).st_mode & 0o001 for d in [p, *p.parents] if d.is_dir()) and (
        p.is_dir() or bool(os.stat(p).st_mode & 0o005)
    )


def _nobody_can_run() -> bool:
    return all(_reachable_by_others(p) for p in (sys.executable, sys.prefix, sys.base_prefix, str(REPO)))


def _preexec(fsize: int | None, setuid_nobody: bool):
    def setup() -> None:
        if fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # stays ignored across exec
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        if setuid_nobody:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)

    return setup


def run_nocpipe(
    *args: object,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    fsize: int | None = None,
    as_nobody: bool = False,
    stdin: str | None = None,
    timeout: float = 300,
) -> ChildResult:
    """`nocpipe ARGS...` in a child process (python -m pipeline.cli) on this checkout."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    child_env["PYTHONPATH"] = str(REPO)
    child_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    child_env["PYTHONDONTWRITEBYTECODE"] = "1"
    command = [sys.executable, "-m", "pipeline.cli", *map(str, args)]
    setuid_nobody = False
    if as_nobody and os.geteuid() == 0:
        child_env["HOME"] = tempfile.gettempdir()
        if _nobody_can_run():
            setuid_nobody = True
        else:
            command = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", *command]
    child_env.update(env or {})
    proc = subprocess.run(
        command,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        cwd=cwd or REPO,
        env=child_env,
        timeout=timeout,
        preexec_fn=_preexec(fsize, setuid_nobody),
    )
    return ChildResult(proc.returncode, proc.stdout, proc.stderr)


def shared_tmp() -> Path:
    """A fresh folder under the system temporary folder that `nobody` can enter
    (pytest's tmp_path sits inside a 0700 folder). The caller removes it."""
    d = Path(tempfile.mkdtemp(prefix="nocpipe-test-"))
    d.chmod(0o777)
    return d


def remove_tree(path: Path) -> None:
    """Remove a tree even where a test took write permission away."""
    for dirpath, dirnames, _ in os.walk(path):
        for name in dirnames:
            try:
                os.chmod(os.path.join(dirpath, name), 0o700)
            except OSError:
                pass
    shutil.rmtree(path, ignore_errors=True)


def error_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("Error:")]


def assert_one_error(result, *fragments: str, allowed: tuple[str, ...] = ("skipped:",)) -> str:
    """Exit status 1; stderr holds exactly one line starting with `Error:` and, besides it,
    only lines starting with an `allowed` prefix (no traceback, no library log).
    Each of `fragments` must appear in the Error line. Returns that line."""
    lines = [ln for ln in result.err.splitlines() if ln.strip()]
    errors = error_lines(result.err)
    detail = f"exit {result.code}\nstdout:\n{result.out}\nstderr:\n{result.err}"
    assert "Traceback" not in result.err, detail
    assert len(errors) == 1, detail
    assert result.code == 1, detail
    others = [ln for ln in lines if not ln.startswith("Error:") and not ln.startswith(allowed)]
    assert not others, detail
    for fragment in fragments:
        assert fragment in errors[0], f"{fragment!r} not in {errors[0]!r}"
    return errors[0]


def tree_files(root: Path) -> dict[str, bytes]:
    """Every file under `root` by relative path, with its bytes (to compare two runs)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def temporaries(root: Path) -> list[Path]:
    """Leftovers of atomic writes (.NAME.XXXX.tmp) under `root`."""
    return sorted(p for p in root.rglob(".*.tmp"))


class FifoReader:
    """A FIFO at `path` with a thread reading it to the end, as a pager or `cat` would:
    a stand-in for a device that a test can write into without root and without risk
    to the real /dev/null."""

    def __init__(self, path: Path):
        import threading

        self.path = Path(path)
        os.mkfifo(self.path)
        self.data = b""
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with open(self.path, "rb") as fh:
            self.data = fh.read()

    def result(self, timeout: float = 60) -> bytes:
        self._thread.join(timeout)
        return self.data
