"""--scheduler: parsing, local processes and a real two-worker Dask LocalCluster, fsspec locations."""

from __future__ import annotations

import os
import re
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

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40) as lc:
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

    rows = sorted(
        json.dumps({**r, "file": f.name.split("-")[0]}, ensure_ascii=False, sort_keys=True)
        for f in sorted((root / "pairs").glob("*.parquet"))
        for r in pq.read_table(f).to_pylist()
    )
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
    assert (
        main(
            [
                "extract-pairs",
                "-q",
                "--examples",
                "0",
                "--workers",
                "1",
                "--shard-size",
                "40",
                "--raw-dir",
                str(root / "raw"),
                "--out-dir",
                str(root / "local"),
            ]
        )
        == 0
    )
    ref = _corpus(root / "local")
    assert len(ref[0]) > 50 and len(ref[2]) == 4
    return root, ref


def test_extract_pairs_on_two_dask_workers_equals_local(dask_cluster, small_store, cli):
    root, (rows, stats, works) = small_store
    out = root / "dask"
    r = cli(
        "extract-pairs",
        "-q",
        "--examples",
        "0",
        "--shard-size",
        "40",
        "--scheduler",
        dask_cluster,
        "--raw-dir",
        (root / "raw").as_uri(),
        "--out-dir",
        out.as_uri(),
    )
    assert r.code == 0, r.err
    assert _corpus(out) == (rows, stats, works)
    again = cli(
        "extract-pairs",
        "-q",
        "--examples",
        "0",
        "--shard-size",
        "40",
        "--scheduler",
        dask_cluster,
        "--raw-dir",
        str(root / "raw"),
        "--out-dir",
        str(out),
    )
    assert again.code == 0 and "nothing new" in again.out


def test_extract_pairs_survives_a_lost_worker(dask_cluster, small_store, cli, tmp_path):
    from dask.distributed import Client

    root, reference = small_store
    marker = tmp_path / "died"
    with Client(dask_cluster) as client:
        client.register_plugin(_DieOnce(str(marker)))
        try:
            r = cli(
                "extract-pairs",
                "-q",
                "--examples",
                "0",
                "--shard-size",
                "40",
                "--scheduler",
                dask_cluster,
                "--raw-dir",
                str(root / "raw"),
                "--out-dir",
                str(tmp_path / "out"),
            )
        finally:
            client.unregister_worker_plugin(_DieOnce.name)
    assert r.code == 0, r.err
    assert marker.read_text().startswith("extract-")  # a worker did die in the middle of a work
    assert _corpus(tmp_path / "out") == reference
    assert not list((tmp_path / "out").rglob("*.tmp"))


def test_extract_pairs_without_dask_says_how_to_install(monkeypatch, small_store, cli, tmp_path):
    root, _ = small_store
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    r = cli(
        "extract-pairs",
        "-q",
        "--scheduler",
        "local:2",
        "--raw-dir",
        str(root / "raw"),
        "--out-dir",
        str(tmp_path / "out"),
    )
    assert r.code == 1
    assert r.err.strip() == (
        "Error: --scheduler needs dask.distributed, which is not installed: pip install 'nocpipe[dask]'"
    )


def test_unknown_or_unusable_urls_are_refused_in_one_line(small_store, cli, tmp_path, monkeypatch):
    root, _ = small_store
    r = cli("extract-pairs", "-q", "--raw-dir", str(root / "raw"), "--out-dir", "nosuch://bucket/corpus")
    assert r.code == 1 and r.err.startswith("Error: cannot open nosuch://bucket/corpus") and r.err.count("\n") == 1
    monkeypatch.setitem(sys.modules, "s3fs", None)  # as if its driver were not installed
    r = cli("extract-pairs", "-q", "--raw-dir", "s3://bucket/raw", "--out-dir", str(tmp_path / "out"))
    assert r.code == 1 and "s3fs" in r.err and r.err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_extract_pairs_on_a_local_cluster_it_starts(small_store, cli, tmp_path):
    root, reference = small_store
    r = cli(
        "extract-pairs",
        "-q",
        "--examples",
        "0",
        "--shard-size",
        "40",
        "--scheduler",
        "local:2",
        "--raw-dir",
        str(root / "raw"),
        "--out-dir",
        str(tmp_path / "out"),
    )
    assert r.code == 0, r.err
    assert _corpus(tmp_path / "out") == reference


# ---------------------------------------------------------------- an object store


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A real S3 endpoint (moto's server on 127.0.0.1) that s3:// URLs reach, in this process
    and in the workers it starts (forked, or spawned: they read the same variables)."""
    import fsspec
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    none = tmp_path_factory.mktemp("aws") / "none"
    env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(none),
        "AWS_SHARED_CREDENTIALS_FILE": str(none),
        "FSSPEC_S3_ENDPOINT_URL": f"http://{host}:{port}",
    }
    saved = {k: os.environ.get(k) for k in env}
    saved_conf = fsspec.config.conf.get("s3")
    os.environ.update(env)
    fsspec.config.conf["s3"] = {**(saved_conf or {}), "endpoint_url": env["FSSPEC_S3_ENDPOINT_URL"]}
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir("nocpipe")
    try:
        yield fs
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if saved_conf is None:
            fsspec.config.conf.pop("s3", None)
        else:
            fsspec.config.conf["s3"] = saved_conf


def _download(fs, url: str, dest: Path) -> Path:
    fs.invalidate_cache()
    fs.get(url.removeprefix("s3://").rstrip("/") + "/", str(dest) + "/", recursive=True)
    return dest


@pytest.mark.parametrize("where", ["processes", "dask"])
def test_extract_pairs_on_an_object_store_equals_local(s3, small_store, cli, tmp_path, where):
    """Raw store and corpus in S3: the same rows, stats and per-work files as the local run;
    a rerun does nothing; a work removed from the store leaves the corpus with it."""
    root, reference = small_store
    raw, out = f"s3://nocpipe/{where}/raw", f"s3://nocpipe/{where}/corpus"
    s3.put(str(root / "raw") + "/", raw.removeprefix("s3://") + "/", recursive=True)
    run = ("--scheduler", "local:2") if where == "dask" else ("--workers", "2")
    args = ("extract-pairs", "-q", "--examples", "1", "--shard-size", "40", *run, "--raw-dir", raw, "--out-dir", out)
    r = cli(*args)
    assert r.code == 0, r.err
    assert f"written in {out}/pairs" in r.out and " -> 「" in r.out  # an example row, read from the store
    assert _corpus(_download(s3, out, tmp_path / "first")) == reference
    # The dataset card names every work by the title and author in its meta.json, read from the bucket.
    assert (tmp_path / "first" / "README.md").read_text() == (root / "local" / "README.md").read_text()
    assert not [f for f in s3.find(out.removeprefix("s3://")) if f.endswith(".tmp")]

    # The 4 per-work files came in to build the shards; the shards, card, stats and state went up.
    shards = int(re.search(r"(\d+) shard\(s\) written", r.out).group(1))
    assert f"{out}: 4 file(s) copied in to work on, {shards + 3} uploaded, 0 removed" in r.out
    again = cli(*args)
    assert again.code == 0 and "nothing new: 4 works" in again.out, again.err
    assert f"{out}: {4 + shards + 3} file(s) copied in to work on, 0 uploaded, 0 removed" in again.out

    gone = reference[2][0].removeprefix(".works/").removesuffix(".parquet")  # e.g. aozora/1567_ruby_4948
    s3.rm(f"{raw.removeprefix('s3://')}/{gone}", recursive=True)
    third = cli(*args)
    assert third.code == 0 and "(3 already done, 1 removed)" in third.out, third.err
    rows, stats, works = _corpus(_download(s3, out, tmp_path / "third"))
    assert stats["works"] == 3 and f".works/{gone}.parquet" not in works and len(works) == 3
    assert gone.split("/")[1] not in "".join(rows) and len(rows) < len(reference[0])


def test_mirror_uploads_changes_state_last_then_removes(tmp_path):
    from pipeline.mirror import Mirror

    class Recording(Location):
        def commit_file(self, local_file, name):
            order.append(("put", name))
            super().commit_file(local_file, name)

        def remove(self, name):
            order.append(("rm", name))
            super().remove(name)

    order: list[tuple[str, str]] = []
    remote = Recording(tmp_path / "remote")
    for name in ("_state.json", "pairs/a.parquet", "pairs/b.parquet", ".works/x.parquet", ".lock"):
        remote.commit(name, name.encode())
    mirror = Mirror(remote, tmp_path / "local")
    assert mirror.pull() == 4  # the lock file stays where it is
    order.clear()
    assert mirror.push(last="_state.json").uploaded == []  # nothing changed, nothing moves
    local = tmp_path / "local"
    (local / "pairs" / "b.parquet").unlink()
    (local / "pairs" / "c.parquet").write_bytes(b"c")
    (local / "_state.json").write_bytes(b"new state")
    (local / "pairs" / ".c.parquet.1234.tmp").write_bytes(b"a temporary")
    res = mirror.push(last="_state.json")
    assert order == [("put", "pairs/c.parquet"), ("put", "_state.json"), ("rm", "pairs/b.parquet")]
    assert (res.uploaded, res.removed) == (["pairs/c.parquet", "_state.json"], ["pairs/b.parquet"])
    assert remote.read_bytes("_state.json") == b"new state" and not remote.exists("pairs/b.parquet")
    assert remote.listdir("pairs") == ["a.parquet", "c.parquet"]


def test_object_store_failures_are_one_line(s3, small_store, cli, tmp_path, monkeypatch):
    import fsspec

    root, _ = small_store
    r = cli("extract-pairs", "-q", "--raw-dir", "s3://nocpipe-missing/raw", "--out-dir", str(tmp_path / "a"))
    assert r.code == 1 and r.err.startswith("Error: raw store s3://nocpipe-missing/raw does not exist")
    monkeypatch.setitem(
        fsspec.config.conf,
        "s3",
        {
            "endpoint_url": "http://127.0.0.1:9",  # nothing listens there
            "config_kwargs": {"retries": {"max_attempts": 1}},
        },
    )
    r = cli("extract-pairs", "-q", "--raw-dir", "s3://nocpipe/raw", "--out-dir", str(tmp_path / "b"))
    assert r.code == 1 and r.err.count("\n") == 1, r.err
    assert r.err.startswith("Error: s3://nocpipe/raw: Could not connect") and "check the URL" in r.err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_lost_worker_on_an_object_store_loses_nothing(s3, small_store, cli, tmp_path):
    """A worker killed in the middle of a work, corpus in S3: its work runs again elsewhere and
    the bucket holds exactly the local run's files (its PUT never happened or happened whole)."""
    from dask.distributed import Client, LocalCluster

    root, reference = small_store
    raw, out = "s3://nocpipe/lost/raw", "s3://nocpipe/lost/corpus"
    s3.put(str(root / "raw") + "/", raw.removeprefix("s3://") + "/", recursive=True)
    marker = tmp_path / "died"
    # Started after the S3 endpoint's variables are set, so its workers reach it too.
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40) as lc,
        Client(lc) as client,
    ):
        client.register_plugin(_DieOnce(str(marker)))
        r = cli(
            "extract-pairs",
            "-q",
            "--examples",
            "0",
            "--shard-size",
            "40",
            "--scheduler",
            lc.scheduler_address,
            "--raw-dir",
            raw,
            "--out-dir",
            out,
        )
    assert r.code == 0, r.err
    assert marker.read_text().startswith("extract-")
    assert _corpus(_download(s3, out, tmp_path / "corpus")) == reference
    assert not [f for f in s3.find(out.removeprefix("s3://")) if f.endswith(".tmp")]


def test_a_killed_driver_on_an_object_store_resumes_to_the_same_corpus(s3, cli, tmp_path):
    """kill -9 of extract-pairs while its per-work files go into S3; the rerun redoes only the
    rest and the bucket ends with the rows and stats of an uninterrupted local run."""
    import signal
    import subprocess
    import time

    from pipeline.cli import main

    repo = Path(__file__).resolve().parents[1]
    works = sorted((repo / "data" / "aozora").glob("*.txt"))[:12]
    assert main(["ingest", "-q", "--raw-dir", str(tmp_path / "raw"), *map(str, works)]) == 0
    args = ["extract-pairs", "-q", "--examples", "0", "--workers", "1", "--shard-size", "200"]
    assert main([*args, "--raw-dir", str(tmp_path / "raw"), "--out-dir", str(tmp_path / "local")]) == 0
    raw, out = "s3://nocpipe/killed/raw", "s3://nocpipe/killed/corpus"
    s3.put(str(tmp_path / "raw") + "/", raw.removeprefix("s3://") + "/", recursive=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", *args, "--raw-dir", raw, "--out-dir", out],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    works_prefix = out.removeprefix("s3://") + "/.works"
    deadline = time.monotonic() + 120
    done: list[str] = []
    while time.monotonic() < deadline and len(done) < 2 and proc.poll() is None:
        time.sleep(0.05)
        s3.invalidate_cache()
        done = s3.find(works_prefix) if s3.exists(works_prefix) else []
    killed = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert killed, "the run finished before it could be killed; give it more work"
    assert not s3.exists(out.removeprefix("s3://") + "/_state.json")  # nothing was committed
    r = cli(*args, "--raw-dir", raw, "--out-dir", out)
    assert r.code == 0, r.err
    redone, kept = map(int, re.findall(r"extracted (\d+) works \((\d+) already done", r.out)[-1])
    assert kept >= 2 and redone + kept == 12, r.out
    assert _corpus(_download(s3, out, tmp_path / "resumed")) == _corpus(tmp_path / "local")
