"""extract-pairs with the raw store and the corpus in an object store, against local folders.

    .venv/bin/python benchmarks/object_store.py [--works 30] [--workers 2] [--repeat 2]

Ingests the first --works works of the bundled corpus (data/aozora), copies the raw store
into a bucket of a local S3 endpoint (moto's server on 127.0.0.1, through s3fs: the HTTP
path and the request count are real, the network's latency is not), then runs the whole
command `nocpipe extract-pairs` from a fresh interpreter:

    local        --raw-dir DIR            --out-dir DIR
    s3           --raw-dir s3://.../raw   --out-dir s3://.../corpus    (a clean run)
    s3 rerun     the same again: nothing to do but list, compare and copy the corpus down

and prints the best wall time of --repeat runs, the object store's cost per work against
the local run, and the requests the store served. The rows and stats.json of the S3
corpus must equal the local run's; a difference stops the benchmark. Figures only.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import digest, run  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=REPO / "data" / "aozora")
    ap.add_argument("--works", type=int, default=30)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()

    import fsspec
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    py = sys.executable
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "FSSPEC_S3_ENDPOINT_URL": endpoint,
    }
    fs = fsspec.filesystem("s3", endpoint_url=endpoint, key="bench", secret="bench", skip_instance_cache=True)
    fs.mkdir("bench")
    files = sorted(p for p in args.corpus.iterdir() if p.suffix in (".txt", ".zip"))[: args.works]
    opts = ["-q", "--examples", "0", "--workers", str(args.workers)]
    try:
        with tempfile.TemporaryDirectory(prefix="nocpipe-objstore-") as tmp:
            tmp = Path(tmp)
            raw = tmp / "raw"
            run([py, "-m", "pipeline.cli", "ingest", "-q", "--raw-dir", str(raw), *map(str, files)], env)
            fs.put(str(raw) + "/", "bench/raw/", recursive=True)
            print(
                f"extract-pairs on {len(files)} works, --workers {args.workers}, best of {args.repeat}; "
                f"S3 at {endpoint} (moto); load average {os.getloadavg()[0]:.1f}"
            )
            times: dict[str, float] = {}
            reference = None
            for rep in range(args.repeat):
                out = tmp / f"local-{rep}"
                times["local"] = min(
                    times.get("local", 1e9),
                    run(
                        [
                            py,
                            "-m",
                            "pipeline.cli",
                            "extract-pairs",
                            *opts,
                            "--raw-dir",
                            str(raw),
                            "--out-dir",
                            str(out),
                        ],
                        env,
                    ),
                )
                reference = reference or digest(out)
                url = f"s3://bench/corpus-{rep}"
                cmd = [
                    py,
                    "-m",
                    "pipeline.cli",
                    "extract-pairs",
                    *opts,
                    "--raw-dir",
                    "s3://bench/raw",
                    "--out-dir",
                    url,
                ]
                times["s3"] = min(times.get("s3", 1e9), run(cmd, env))
                times["s3 rerun"] = min(times.get("s3 rerun", 1e9), run(cmd, env))
                got = tmp / f"s3-{rep}"
                fs.invalidate_cache()
                fs.get(f"bench/corpus-{rep}/", str(got) + "/", recursive=True)
                if digest(got) != reference:
                    raise SystemExit(f"the S3 corpus differs from the local one:\n{digest(got)}\n{reference}")
                print(f"  run {rep + 1}: " + ", ".join(f"{k} {v:.2f}s" for k, v in times.items()), flush=True)
            print(f"\nrows and stats.json of the S3 corpus equal the local run's: {reference[0]}")
            for k, v in times.items():
                print(f"{k:9s} {v:6.2f}s  ({v / times['local']:.2f}x local)")
            print(
                f"object store cost per work, clean run: {(times['s3'] - times['local']) / len(files) * 1000:+.0f} ms"
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
