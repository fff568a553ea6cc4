"""nocpipe serve under load: replies per second and p50/p95 latency for 1 and 10 concurrent
clients, with batching (the default) and without (--max-batch 1), on a demo-sized model;
then a stop with a long queue: --queued requests sent at once, Ctrl-C while they wait, and
what each got and how long the stop took. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/serve.py [--model-dir DIR | --arch ARCH] [--requests N] [--queued N]
                                         [--work DIR] [--json FILE]

The server is the real `nocpipe serve` process on a free port. Each client is a thread with
one keep-alive connection that sends a line, waits for the reply and sends the next (a
person typing, as fast as the server answers). Without --model-dir a demo-sized model (the
`make demo` settings: default architecture, 64 units, batch 16; one epoch, as latency does
not depend on training) is trained on the bundled sample first, into --work.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SAMPLES = REPO / "data" / "samples" / "aozora"
# Lines a user might type, of different lengths (the reading is what the model sees).
LINES = [
    "こんな忘れ物、ある?",
    "お母さん？",
    "うふふ",
    "大丈夫か?",
    "わたしがさりげなく聞いてみるわ",
    "はい",
    "どうしてそんなことを言うの",
    "メロスは激怒した。",
    "ぼくは知らないよ",
    "ありがとう、また明日ね",
    "何をしているんだ",
    "おい、待ってくれ",
]


def nocpipe(*args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args], check=True, env=env, cwd=REPO, stdout=subprocess.DEVNULL
    )


def demo_model(work: Path, arch: str | None) -> Path:
    model = work / "models" / f"demo-{arch or 'default'}"
    if (model / "model.keras").exists():
        return model
    print(f"training a demo-sized model into {model} ...", flush=True)
    if not (work / "pairs").is_dir():
        nocpipe("ingest", str(SAMPLES), "--raw-dir", str(work / "raw"), "-q")
        nocpipe("extract-pairs", "--raw-dir", str(work / "raw"), "--out-dir", str(work / "pairs"), "-q")
    nocpipe(
        "train",
        "--data-dir",
        str(work / "pairs"),
        "--model-dir",
        str(model),
        "--units",
        "64",
        "--batch-size",
        "16",
        "--epochs",
        "1",
        "--force",
        "-q",
        *(["--arch", arch] if arch else []),
    )
    return model


class Server:
    """`nocpipe serve --port 0` as a child process."""

    def __init__(self, model: Path, *extra: str):
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "serve", "--model-dir", str(model), "--port", "0", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO,
            env=env,
        )
        for line in self.proc.stdout:
            if line.startswith("serving at "):
                url = line.split()[2]
                self.host, self.port = url.split("//")[1].rstrip("/").rsplit(":", 1)
                break
        else:
            raise SystemExit(f"nocpipe serve did not start (exit {self.proc.wait()})")
        self.log: list[str] = []  # what it prints after the URL
        threading.Thread(target=lambda: self.log.extend(self.proc.stdout), daemon=True).start()

    def stop(self) -> float:
        """Ctrl-C; the seconds until the process has exited."""
        t0 = time.perf_counter()
        self.proc.send_signal(2)
        self.proc.wait(60)
        return time.perf_counter() - t0


def request(conn: http.client.HTTPConnection, method: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data else {}
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
        # The server closed an idle keep-alive connection (after 5 s): reconnect, as browsers do.
        conn.close()
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
    payload = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"{method} {path}: {resp.status} {payload[:200]!r}")
    return json.loads(payload)


def load(server: Server, clients: int, per_client: int, options: dict) -> dict:
    """`clients` threads, each sending `per_client` lines one after another."""
    latencies: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def client(c: int) -> None:
        conn = http.client.HTTPConnection(server.host, int(server.port), timeout=120)
        request(conn, "POST", "/api/reply", {"text": LINES[c % len(LINES)], **options})  # connect, warm
        start.wait()
        mine = []
        for i in range(per_client):
            t0 = time.perf_counter()
            request(conn, "POST", "/api/reply", {"text": LINES[(c + i) % len(LINES)], **options})
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)
        conn.close()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    conn = http.client.HTTPConnection(server.host, int(server.port), timeout=120)
    start.wait()
    before = request(conn, "GET", "/api/health")["stats"]
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    after = request(conn, "GET", "/api/health")["stats"]
    conn.close()
    calls = after["calls"] - before["calls"]
    lat = sorted(latencies)
    return {
        "clients": clients,
        "replies": len(lat),
        "replies_per_s": len(lat) / wall,
        "p50_ms": 1000 * statistics.median(lat),
        "p95_ms": 1000 * lat[min(len(lat) - 1, int(0.95 * len(lat)))],
        "mean_batch": (after["replies"] - before["replies"]) / calls if calls else 0.0,
    }


def stop_with_queue(model: Path, queued: int) -> dict:
    """`queued` clients send one line each (50 replies asked, so the queue outlasts the stop),
    Ctrl-C once most of them wait: what they got, the stop's seconds and log lines."""
    server = Server(model, "--max-batch", "1")
    answers: list[tuple[int, str]] = []
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection(server.host, int(server.port), timeout=120)
        try:
            conn.request(
                "POST", "/api/reply", json.dumps({"text": "はい", "num": 50}), {"Content-Type": "application/json"}
            )
            resp = conn.getresponse()
            got = (resp.status, resp.getheader("Content-Type", ""))
            resp.read()
        except OSError as exc:
            got = (0, type(exc).__name__)
        with lock:
            answers.append(got)

    threads = [threading.Thread(target=client) for _ in range(queued)]
    for t in threads:
        t.start()
    conn = http.client.HTTPConnection(server.host, int(server.port), timeout=120)
    deadline = time.monotonic() + 60
    while request(conn, "GET", "/api/health")["stats"]["pending"] < queued * 0.8 and time.monotonic() < deadline:
        time.sleep(0.01)
    conn.close()
    seconds = server.stop()
    for t in threads:
        t.join()
    statuses = [s for s, _ in answers]
    return {
        "queued": queued,
        "ok": statuses.count(200),
        "json_503": sum(1 for s, ct in answers if s == 503 and ct.startswith("application/json")),
        "other": sum(1 for s, ct in answers if s not in (200, 503) or not ct.startswith("application/json")),
        "stop_s": seconds,
        "log_lines": sum(1 for line in server.log if not line.startswith("stopped:")),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", type=Path, help="a trained model folder (default: train a demo-sized one)")
    ap.add_argument("--arch", help="architecture of the demo-sized model (default: train's default)")
    ap.add_argument(
        "--work",
        type=Path,
        default=REPO / "demo" / "bench-serve",
        help="where the demo-sized model is trained and kept",
    )
    ap.add_argument("--requests", type=int, default=200, help="replies per run (split among the clients)")
    ap.add_argument("--queued", type=int, default=250, help="requests waiting when the server is stopped")
    ap.add_argument("--json", type=Path, help="write the figures here too")
    args = ap.parse_args()

    model = args.model_dir or demo_model(args.work, args.arch)
    cfg = json.loads((model / "config.json").read_text())["model"]
    print(
        f"model: {model} ({cfg.get('arch')}, {cfg.get('units')} units); {os.cpu_count()} CPUs; "
        f"{args.requests} replies per run, greedy"
    )
    rows = []
    for label, extra in (("batched", ()), ("one by one", ("--max-batch", "1"))):
        server = Server(model, *extra)
        try:
            for clients in (1, 10):
                r = load(server, clients, max(1, args.requests // clients), {})
                r["server"] = label
                rows.append(r)
        finally:
            server.stop()
    print(f"\n{'server':<11} {'clients':>7} {'replies/s':>10} {'p50 ms':>8} {'p95 ms':>8} {'mean batch':>11}")
    for r in rows:
        print(
            f"{r['server']:<11} {r['clients']:>7} {r['replies_per_s']:>10.1f} {r['p50_ms']:>8.1f} "
            f"{r['p95_ms']:>8.1f} {r['mean_batch']:>11.1f}"
        )
    by = {(r["server"], r["clients"]): r for r in rows}
    for label in ("batched", "one by one"):
        one, ten = by[(label, 1)], by[(label, 10)]
        print(
            f"{label}: p95 at 10 clients / p95 at 1 client = {ten['p95_ms'] / one['p95_ms']:.2f}x; "
            f"throughput 10 / 1 clients = {ten['replies_per_s'] / one['replies_per_s']:.2f}x"
        )
    stop = stop_with_queue(model, args.queued)
    print(
        f"stop with {stop['queued']} queued: {stop['ok']} replies, {stop['json_503']} JSON 503s, {stop['other']} "
        f"other answers; exited {stop['stop_s']:.2f} s after Ctrl-C; {stop['log_lines']} log line(s) meanwhile"
    )
    if args.json:
        args.json.write_text(json.dumps({"load": rows, "stop": stop}, indent=2) + "\n")


if __name__ == "__main__":
    main()
