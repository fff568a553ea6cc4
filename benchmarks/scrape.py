"""scrape against the local stand-in of the syosetu.com family (tests/syosetu_server.py,
run in its own process so that the CPU time measured here is the scraper's alone).

1. --delay 0: CPU time per page and pages per second (HTTP, parsing, checks, atomic writes).
2. the same again: what a rerun costs when nothing changed (API only).
3. with a delay: the achieved request rate, from the server's own log, against the
   configured one (1 / delay; jitter only ever lengthens a gap).
4. parsing alone (Beautiful Soup, lxml builder): CPU per episode page as served in UTF-8
   HTML, against the same page as Shift_JIS XHTML with an XML declaration (decoding by
   what the bytes prove costs a failed strict UTF-8 pass first) and a TOC page of 100 entries.

Prints figures; asserts nothing.

    .venv/bin/python benchmarks/scrape.py [--works 20] [--episodes 25] [--lines 80] [--delay 0.2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from pipeline.http import Politeness  # noqa: E402
from stages.scrape import ScrapeOptions, scrape  # noqa: E402


def make_works(n_works: int, n_eps: int, n_lines: int):
    from syosetu_server import Ep, Work

    works = []
    for w in range(n_works):
        eps = []
        for e in range(n_eps):
            body = []
            for i in range(n_lines):
                if i % 4 == 3:
                    body.append("")
                elif i % 2:
                    body.append(f"「{w}番目の作品の{e}話、{i}行目の｜台詞《せりふ》です。本当にそう思いますか」")
                else:
                    body.append(f"　{w}番目の作品の{e}話、{i}行目の地の文です。雨が降っていて、窓の外は暗かった。")
            eps.append(
                Ep(
                    f"第{e + 1}話",
                    body,
                    preface=["「前書き」", "「です」"] if e % 3 == 0 else [],
                    published=f"2021/{1 + e % 12:02d}/{1 + e % 28:02d} 12:00",
                )
            )
        works.append(Work(f"n{w + 1:04d}bm", f"作品{w}", "作者", eps, layout="current" if w % 2 == 0 else "old"))
    return works


def serve(conn, n_works: int, n_eps: int, n_lines: int) -> None:
    from syosetu_server import SyosetuServer

    with SyosetuServer(make_works(n_works, n_eps, n_lines)) as srv:
        conn.send((srv.url, srv.api_url))
        while True:
            msg = conn.recv()
            if msg == "log":
                conn.send([(h.t, h.path) for h in srv.log])
            elif msg == "clear":
                srv.clear_log()
                conn.send(True)
            else:
                break


def run(raw: Path, url: str, api: str, ncodes: list[str], delay: float):
    opts = ScrapeOptions(
        raw_dir=raw,
        targets=ncodes,
        base_url=url,
        api_url=api,
        show_progress=False,
        politeness=Politeness(delay=delay, contact="bench@example.com"),
    )
    c0, t0 = time.process_time(), time.perf_counter()
    res = scrape(opts)
    return res, time.process_time() - c0, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--works", type=int, default=20)
    ap.add_argument("--episodes", type=int, default=25)
    ap.add_argument("--lines", type=int, default=80, help="body lines per episode")
    ap.add_argument("--delay", type=float, default=0.2, help="delay of the paced run")
    args = ap.parse_args()

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=serve, args=(child, args.works, args.episodes, args.lines), daemon=True)
    proc.start()
    url, api = parent.recv()
    ncodes = [f"n{w + 1:04d}bm" for w in range(args.works)]
    print(
        f"local stand-in at {url}: {args.works} works x {args.episodes} episodes x {args.lines} lines "
        f"(half current layout, half older), pid {proc.pid}; scraper pid {os.getpid()}"
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "raw"
            res, cpu, wall = run(raw, url, api, ncodes, 0.0)
            pages = res.requests
            stored = sum(p.stat().st_size for p in raw.rglob("*.html"))
            print(
                f"\n--delay 0, first run: {pages} requests ({res.counters['episodes_downloaded']} episodes, "
                f"{res.counters['works_new']} works), {stored / 1e6:.1f} MB stored"
            )
            print(f"  wall {wall:.2f} s -> {pages / wall:.0f} pages/s")
            print(f"  scraper CPU {cpu:.2f} s -> {cpu / pages * 1000:.2f} ms CPU per page")
            res, cpu, wall = run(raw, url, api, ncodes, 0.0)
            print(
                f"--delay 0, rerun (nothing changed): {res.requests} requests, "
                f"{res.counters['works_current']} works current, wall {wall:.2f} s, CPU {cpu:.2f} s"
            )

            raw2 = Path(tmp) / "paced"
            parent.send("clear")
            parent.recv()
            # One work: robots.txt, the API, its TOC and its episodes.
            res, cpu, wall = run(raw2, url, api, [ncodes[0]], args.delay)
            parent.send("log")
            log = parent.recv()
            times = [t for t, _ in log]
            gaps = [b - a for a, b in zip(times, times[1:])]
            achieved = (len(times) - 1) / (times[-1] - times[0])
            print(
                f"\n--delay {args.delay}: {len(times)} requests for 1 work of {args.episodes} episodes in {wall:.2f} s"
            )
            print(f"  configured rate {1 / args.delay:.2f} req/s (gap >= {args.delay:.3f} s; jitter adds 0-30%)")
            print(
                f"  achieved rate   {achieved:.2f} req/s = {achieved * args.delay:.2f} x configured; "
                f"gaps min {min(gaps):.3f} s ({min(gaps) / args.delay:.2f} x delay), "
                f"mean {sum(gaps) / len(gaps):.3f} s, max {max(gaps):.3f} s"
            )
            print(f"  waited {res.waited:.2f} s in all; scraper CPU {cpu:.2f} s")
    finally:
        parent.send("stop")
        proc.join(5)
    parse_figures(args.lines)


def parse_figures(n_lines: int, repeat: int = 200) -> None:
    from syosetu_server import as_xhtml, episode_current, toc_current

    from pipeline.syosetu import parse_episode, parse_toc

    w = make_works(1, 100, n_lines)[0]
    html_page = episode_current(w, 1)
    utf8 = html_page.encode("utf-8")
    sjis = as_xhtml(html_page, "Shift_JIS").encode("cp932")
    toc = toc_current(w, 1, 100).encode("utf-8")
    print(f"\nparsing alone, {repeat} times each:")
    base = None
    for name, data, fn in (
        ("episode, UTF-8 HTML", utf8, lambda d: parse_episode(d)),
        ("episode, Shift_JIS XHTML", sjis, lambda d: parse_episode(d)),
        ("TOC of 100 episodes", toc, lambda d: parse_toc(d, "http://x/n0001bm/")),
    ):
        fn(data)
        c0 = time.process_time()
        for _ in range(repeat):
            fn(data)
        ms = (time.process_time() - c0) / repeat * 1000
        base = base or ms
        print(f"  {name:26s} {len(data) / 1000:6.1f} kB  {ms:6.2f} ms CPU per page ({ms / base:.2f} x the first)")


if __name__ == "__main__":
    main()
