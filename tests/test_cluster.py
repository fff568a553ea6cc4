"""--scheduler: parsing, local processes and a real two-worker Dask LocalCluster, fsspec locations."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from distributed import WorkerPlugin

from pipeline import cluster
from pipeline.errors import ClusterError, UsageError
from pipeline.location import Location


# ---------------------------------------------------------------- helpers run in workers

def _square(x: int) -> int:
    return x * x


def _square_or_die(task: tuple[int, str]) -> tuple[int, int]:
    """Kills its own worker process the first time it sees task 3 (a worker lost mid-task)."""
    x, marker = task
    if x == 3 and not os.path.exists(marker):
        Path(marker).write_text(str(os.getpid()))
        os._exit(1)
    return x, os.getpid()


@pytest.fixture(scope="session")
def dask_cluster():
    """One real LocalCluster of two worker processes for every test that needs one."""
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=40) as lc:
        yield lc.scheduler_address


# ---------------------------------------------------------------- parsing

def test_parse_scheduler():
    assert cluster.parse_scheduler("local:3") == cluster.Scheduler(workers=3)
    assert cluster.parse_scheduler("local", default_workers=2).workers == 2
    assert cluster.parse_scheduler("10.0.0.5:8786").address == "tcp://10.0.0.5:8786"
    assert cluster.parse_scheduler("tls://sched:8786").address == "tls://sched:8786"
    assert str(cluster.parse_scheduler("local:2")) == "local:2"
    for bad in ("", "local:0", "somewhere", "local:x"):
        with pytest.raises(UsageError):
            cluster.parse_scheduler(bad)


def test_missing_dask_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # import fails as if not installed
    assert not cluster.dask_available()
    with pytest.raises(ClusterError, match=r"pip install 'nocpipe\[dask\]'"):
        cluster.open_executor("local:2")


def test_unreachable_scheduler_is_one_error():
    with pytest.raises(ClusterError, match="cannot reach the Dask scheduler"):
        cluster.DaskExecutor(cluster.Scheduler(address="tcp://127.0.0.1:1"), connect_timeout=2).close()


# ---------------------------------------------------------------- executors

def test_process_executor_orders_and_unordered():
    with cluster.open_executor(None, workers=2) as ex:
        assert isinstance(ex, cluster.ProcessExecutor)
        assert list(ex.map(_square, list(range(6)))) == [0, 1, 4, 9, 16, 25]
        assert sorted(ex.map(_square, list(range(6)), ordered=False)) == [(i, i * i) for i in range(6)]


def test_dask_executor_on_two_workers(dask_cluster, tmp_path):
    with cluster.open_executor(dask_cluster) as ex:
        assert ex.kind == "dask" and ex.workers == 2
        assert list(ex.map(_square, list(range(8)), keys=[f"sq-{i}" for i in range(8)])) == [i * i for i in range(8)]
        got = dict(ex.map(_square, list(range(8)), ordered=False))
        assert got == {i: i * i for i in range(8)}


def test_dask_executor_survives_a_lost_worker(dask_cluster, tmp_path):
    marker = str(tmp_path / "died")
    with cluster.open_executor(dask_cluster) as ex:
        out = list(ex.map(_square_or_die, [(i, marker) for i in range(6)], keys=[f"die-{i}" for i in range(6)]))
    assert Path(marker).exists()  # the worker did die mid-task
    assert [x for x, _ in out] == list(range(6))
    assert int(Path(marker).read_text()) not in {pid for x, pid in out if x == 3}


# ---------------------------------------------------------------- locations

@pytest.mark.parametrize("kind", ["path", "file-url", "memory"])
def test_location_commit_fetch_list(tmp_path, kind):
    if kind == "path":
        loc = Location(tmp_path / "out")
    elif kind == "file-url":
        loc = Location((tmp_path / "out").as_uri())
    else:  # an object store's rules (no rename) in one process
        loc = Location(f"memory://nocpipe-test-{os.getpid()}/out")
    assert loc.renames == (kind != "memory")
    loc.commit("works/a/1.parquet", b"one")
    loc.commit("works/a/1.parquet", b"uno")  # the same deterministic name twice: one file, the last content
    loc.commit("works/b.txt", b"two")
    assert loc.listdir("works") == ["a", "b.txt"]
    assert loc.listdir("works/a") == ["1.parquet"]  # no temporary left behind
    assert loc.read_bytes("works/a/1.parquet") == b"uno"
    assert loc.stat("works/b.txt")[0] == 3
    with loc.fetch("works") as local:
        assert (local / "a" / "1.parquet").read_bytes() == b"uno"
    loc.commit("works/.x.parquet.1234.tmp", b"left by a killed worker")
    assert loc.clean_temporaries("works") == 1
    loc.remove("works/a")
    assert loc.listdir("works") == ["b.txt"]
    if kind != "memory":
        assert loc.local_path == tmp_path / "out"
    else:
        assert loc.local_path is None
        loc.remove("")


# ---------------------------------------------------------------- extract-pairs on the cluster

class _DieOnce(WorkerPlugin):
    """A worker plugin: the first worker to start a work's task exits at once (a worker lost mid-run)."""

    name = "nocpipe-test-die-once"

    def __init__(self, marker: str):
        self.marker = marker

    def transition(self, key, start, finish, **kwargs):
        if finish == "executing" and str(key).startswith("extract-") and not os.path.exists(self.marker):
            Path(self.marker).write_text(str(key))
            os._exit(1)


def _corpus(root: Path) -> tuple[list[str], dict, list[str]]:
    """(sorted rows with their shard's split file, stats.json, per-work file names) of an output folder."""
    import json

    import pyarrow.parquet as pq

    rows = sorted(json.dumps({**r, "file": f.name.split("-")[0]}, ensure_ascii=False, sort_keys=True)
                  for f in sorted((root / "pairs").glob("*.parquet")) for r in pq.read_table(f).to_pylist())
    stats = json.loads((root / "stats.json").read_text(encoding="utf-8"))
    works = sorted(str(p.relative_to(root)) for p in root.glob(".works/**/*") if p.is_file())
    return rows, stats, works


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    """The four sample works in a raw store, and the local run's output as the reference."""
    from pipeline.cli import main

    root = tmp_path_factory.mktemp("cluster-corpus")
    samples = Path(__file__).resolve().parents[1] / "data" / "samples" / "aozora"
    assert main(["ingest", "-q", "--raw-dir", str(root / "raw"), str(samples)]) == 0
    assert main(["extract-pairs", "-q", "--examples", "0", "--workers", "1", "--shard-size", "40",
                 "--raw-dir", str(root / "raw"), "--out-dir", str(root / "local")]) == 0
    ref = _corpus(root / "local")
    assert len(ref[0]) > 50 and len(ref[2]) == 4
    return root, ref


def test_extract_pairs_on_two_dask_workers_equals_local(dask_cluster, small_store, cli):
    root, (rows, stats, works) = small_store
    out = root / "dask"
    r = cli("extract-pairs", "-q", "--examples", "0", "--shard-size", "40", "--scheduler", dask_cluster,
            "--raw-dir", (root / "raw").as_uri(), "--out-dir", out.as_uri())
    assert r.code == 0, r.err
    assert _corpus(out) == (rows, stats, works)
    again = cli("extract-pairs", "-q", "--examples", "0", "--shard-size", "40", "--scheduler", dask_cluster,
                "--raw-dir", str(root / "raw"), "--out-dir", str(out))
    assert again.code == 0 and "nothing new" in again.out


def test_extract_pairs_survives_a_lost_worker(dask_cluster, small_store, cli, tmp_path):
    from dask.distributed import Client

    root, reference = small_store
    marker = tmp_path / "died"
    with Client(dask_cluster) as client:
        client.register_plugin(_DieOnce(str(marker)))
        try:
            r = cli("extract-pairs", "-q", "--examples", "0", "--shard-size", "40", "--scheduler", dask_cluster,
                    "--raw-dir", str(root / "raw"), "--out-dir", str(tmp_path / "out"))
        finally:
            client.unregister_worker_plugin(_DieOnce.name)
    assert r.code == 0, r.err
    assert marker.read_text().startswith("extract-")  # a worker did die in the middle of a work
    assert _corpus(tmp_path / "out") == reference
    assert not list((tmp_path / "out").rglob("*.tmp"))


def test_extract_pairs_without_dask_says_how_to_install(monkeypatch, small_store, cli, tmp_path):
    root, _ = small_store
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    r = cli("extract-pairs", "-q", "--scheduler", "local:2", "--raw-dir", str(root / "raw"),
            "--out-dir", str(tmp_path / "out"))
    assert r.code == 1
    assert r.err.strip() == ("Error: --scheduler needs dask.distributed, which is not installed: "
                             "pip install 'nocpipe[dask]'")


def test_object_store_urls_are_refused_in_one_line(small_store, cli, tmp_path):
    root, _ = small_store
    r = cli("extract-pairs", "-q", "--raw-dir", str(root / "raw"), "--out-dir", "memory://bucket/corpus")
    assert r.code == 1 and "only local paths and file:// URLs" in r.err


def test_extract_pairs_on_a_local_cluster_it_starts(small_store, cli, tmp_path):
    root, reference = small_store
    r = cli("extract-pairs", "-q", "--examples", "0", "--shard-size", "40", "--scheduler", "local:2",
            "--raw-dir", str(root / "raw"), "--out-dir", str(tmp_path / "out"))
    assert r.code == 0, r.err
    assert _corpus(tmp_path / "out") == reference
