"""Where a stage runs its per-work step: local processes or a Dask cluster, behind one switch.

    --scheduler (none)        ProcessExecutor: a fork pool of --workers processes on this machine
    --scheduler local:N       DaskExecutor on a LocalCluster of N worker processes (one thread each)
    --scheduler HOST:PORT     DaskExecutor on a running cluster (`dask scheduler` + `dask worker`),
    --scheduler tcp://...     also tls:// and the other addresses dask.distributed accepts

An executor maps a picklable function over tasks and yields the results, in task order
or as they complete. The function must write whatever it produces under a name that is
unique and deterministic (a function of the task, never of the worker or of the clock),
through a temporary name and a rename: then a task that runs twice (a worker lost
mid-task, a driver restarted) writes the same file twice, never two files, and a
half-written file never carries the final name. Dask re-runs the tasks of a lost worker
by itself; `retries` covers a task that raised (an I/O error on a shared file system).

Dask is an optional extra: without it `--scheduler` stops with one line saying how to
install it. Dask is imported only here, only when asked for.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ClusterError, UsageError

INSTALL_HINT = "pip install 'nocpipe[dask]'"
# A local cluster's workers run our tasks and nothing else: without its statistical profiler
# (a stack sample every 10 ms) and GIL monitor (every 1 ms) two workers spent a tenth less
# CPU on 30 works. Its other clocks feed dashboards and warnings this command never shows:
# the event-loop tick (every 20 ms in every server), the system monitor (every 0.5 s, disk
# counters included) and the memory monitors (every 0.1 s) wake each process less often,
# and steal less of the GIL from the task thread. The memory limits still hold, checked
# every second. A cluster someone else started keeps its own settings.
_LEAN = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "10s",
    "distributed.admin.system-monitor.disk": False,
    "distributed.worker.memory.monitor-interval": "1s",
}
_LOCAL_RE = re.compile(r"^local(?::(\d+))?$")


@dataclass(frozen=True)
class Scheduler:
    """A parsed --scheduler: a LocalCluster of `workers` processes, or the `address` of a running one."""

    address: str | None = None
    workers: int = 0

    @property
    def local(self) -> bool:
        return self.address is None

    def __str__(self) -> str:
        return f"local:{self.workers}" if self.local else str(self.address)


def parse_scheduler(text: str, default_workers: int = 0) -> Scheduler:
    """'local:N' (N worker processes; 'local' = `default_workers` or all cores) or a scheduler address."""
    text = (text or "").strip()
    if not text:
        raise UsageError("--scheduler needs an address (tcp://host:8786) or local:N")
    m = _LOCAL_RE.match(text)
    if m:
        n = int(m.group(1)) if m.group(1) else (default_workers or os.cpu_count() or 1)
        if n < 1:
            raise UsageError(f"--scheduler {text}: a local cluster needs at least one worker")
        return Scheduler(workers=n)
    if "://" not in text:
        if not re.match(r"^[\w.\-\[\]:]+:\d+$", text):
            raise UsageError(
                f"--scheduler {text!r} is neither local:N nor a scheduler address like "
                "tcp://10.0.0.5:8786 or 10.0.0.5:8786"
            )
        text = "tcp://" + text
    return Scheduler(address=text)


def dask_available() -> bool:
    try:
        import dask.distributed  # noqa: F401
    except ImportError:
        return False
    return True


def require_dask() -> None:
    if not dask_available():
        raise ClusterError(f"--scheduler needs dask.distributed, which is not installed: {INSTALL_HINT}")


# ---------------------------------------------------------------- executors


class Executor:
    """Maps a picklable function over tasks; subclasses say where it runs."""

    kind = "inline"
    workers = 1

    def map(
        self, fn: Callable[[Any], Any], tasks: Sequence, keys: Sequence[str] | None = None, ordered: bool = True
    ) -> Iterator:
        """fn(task) for every task: results in task order, or (index, result) as they complete."""
        for i, t in enumerate(tasks):
            r = fn(t)
            yield r if ordered else (i, r)

    def describe(self) -> str:
        return "this process"

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:  # None: an exception inside the block is never swallowed
        self.close()


class ProcessExecutor(Executor):
    """A pool of forked processes: what has been built in this process (a reader's
    dictionaries) is shared copy-on-write; one process runs tasks inline."""

    kind = "processes"

    def __init__(self, workers: int):
        self.workers = max(1, workers)

    def map(self, fn, tasks, keys=None, ordered=True):
        if self.workers <= 1 or len(tasks) <= 1:
            yield from super().map(fn, tasks, keys, ordered)
            return
        ctx = multiprocessing.get_context("fork")
        with _frozen_for_fork():
            pool = ctx.Pool(min(self.workers, len(tasks)))
        with pool:
            if ordered:
                yield from pool.imap(fn, tasks, chunksize=1)
            else:
                yield from pool.imap_unordered(_Indexed(fn), list(enumerate(tasks)), chunksize=1)

    def describe(self) -> str:
        return f"{self.workers} local process(es)"


class _Indexed:
    """fn over (index, task) pairs, picklable for a pool."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, item):
        i, task = item
        return i, self.fn(task)


class DaskExecutor(Executor):
    """Tasks on a dask.distributed cluster; the tasks of a lost worker are run again elsewhere."""

    kind = "dask"

    def __init__(
        self,
        scheduler: Scheduler,
        retries: int = 1,
        log: Callable[[str], None] | None = None,
        connect_timeout: float = 20.0,
    ):
        require_dask()
        import dask
        from dask.distributed import Client, LocalCluster

        self.scheduler = scheduler
        self.retries = retries
        self._cluster = None
        # The tasks are CPU-bound Python: one thread per worker process, or they share one GIL.
        try:
            if scheduler.local:
                with (
                    dask.config.set({"distributed.worker.multiprocessing-method": _start_method(), **_LEAN}),
                    _frozen_for_fork(),
                ):
                    # Silent but for critical records: what goes wrong in a task comes back
                    # through its future (raised here, reported by the stage), and a worker's
                    # heartbeat that races the cluster's close logs a traceback at ERROR.
                    self._cluster = LocalCluster(
                        n_workers=scheduler.workers,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=":0",
                        silence_logs=logging.CRITICAL,
                    )
                self.client = Client(self._cluster)
            else:
                self.client = Client(scheduler.address, timeout=f"{connect_timeout}s")
        except (OSError, TimeoutError) as exc:
            self.close()
            raise ClusterError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        self.workers = max(1, len(self.client.scheduler_info().get("workers", {})))
        if log:
            log(f"dask: {self.describe()}")

    def map(self, fn, tasks, keys=None, ordered=True):
        from dask.distributed import as_completed

        if not tasks:
            return
        kw = {"key": list(keys)} if keys is not None else {"pure": False}
        futures = self.client.map(fn, list(tasks), retries=self.retries, **kw)
        index = {f.key: i for i, f in enumerate(futures)}
        try:
            if ordered:
                for f in futures:
                    yield f.result()
                    f.release()
            else:
                for f in as_completed(futures):
                    yield index[f.key], f.result()
                    f.release()
        finally:
            # A stopped driver (Ctrl-C, an error) cancels what it no longer waits for.
            self.client.cancel([f for f in futures if not f.done()])

    def describe(self) -> str:
        where = "a local cluster" if self.scheduler.local else f"the cluster at {self.scheduler}"
        return f"{self.workers} Dask worker(s) on {where}"

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


@contextlib.contextmanager
def _frozen_for_fork():
    """What exists now goes to the collector's permanent generation while workers fork:
    in them the collector never walks the shared dictionaries (a reader's million objects),
    which costs time and touches their pages (copy-on-write copies them after all). This
    process gets its collector back as it was once the workers are started. No collection
    first: it would cost the driver a pass over every object and leave holes in pages the
    workers share (the garbage it would free is kept, a few kilobytes)."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _start_method() -> str:
    """How a LocalCluster starts its workers. Forked from this process, they share what the
    driver has loaded (a reader's dictionaries: seconds per worker otherwise) and skip the
    imports; but a process that has started TensorFlow's or JAX's thread pools must not
    fork, so those get fresh interpreters."""
    heavy = {"tensorflow", "jax", "torch"} & set(sys.modules)
    return "spawn" if heavy or sys.platform != "linux" else "fork"


def open_executor(scheduler: str | None, workers: int = 0, log: Callable[[str], None] | None = None) -> Executor:
    """The executor for `--scheduler` (None: local processes, `workers` of them, 0 = all cores)."""
    if scheduler:
        return DaskExecutor(parse_scheduler(scheduler, workers), log=log)
    n = workers or os.cpu_count() or 1
    if n < 1:
        raise UsageError("--workers must be 1 or more")
    return ProcessExecutor(n)
