"""`nocpipe scrape` on the command line: help, one-line errors, kill -9, and the whole way
from the local stand-in through extract-pairs to the exact pairs."""

import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
from syosetu_server import SyosetuServer, episode_current, sample_works

from pipeline.kana import to_katakana
from pipeline.shards import list_shards
from pipeline.syosetu import parse_episode

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def srv():
    with SyosetuServer(sample_works(), per_page=2) as s:
        yield s


def scrape_args(srv, raw, *targets, delay="0.05"):
    return [
        "scrape",
        *targets,
        "--raw-dir",
        raw,
        "--base-url",
        srv.url,
        "--api-url",
        srv.api_url,
        "--delay",
        delay,
        "--contact",
        "cli@example.com",
        "-q",
    ]


def test_help_has_an_example_and_the_options(cli):
    r = cli("scrape", "--help")
    assert r.code == 0 and "Example:" in r.out
    for opt in (
        "--site",
        "--raw-dir",
        "--delay",
        "--limit",
        "--base-url",
        "--api-url",
        "--contact",
        "--genre",
        "--keyword",
        "--min-length",
        "--kaiwaritu",
        "--finished",
        "--order",
    ):
        assert opt in r.out


@pytest.mark.parametrize(
    "args,needle",
    [
        (["scrape", "n12ab"], "not an ncode"),
        (["scrape", "https://example.com/novel/"], "not an ncode"),
        (["scrape", "--site", "kakuyomu", "n1234ab"], "unknown site"),
        (["scrape", "https://ncode.syosetu.com/n1234ab/", "https://novel18.syosetu.com/n1234ac/"], "one site per run"),
        (["scrape", "--site", "nocturne", "https://ncode.syosetu.com/n1234ab/"], "one site per run"),
        (["scrape", "--kaiwaritu", "lots"], "--kaiwaritu"),
        (["scrape", "--order", "random"], "--order"),
        (["scrape", "--delay", "-1", "n1234ab"], "--delay"),
        (["scrape", "--base-url", "ftp://x/", "n1234ab"], "not an http"),
        (["scrape", "--base-url", "http://x:port/", "n1234ab"], "--base-url"),
        (["scrape", "--base-url", "http:///novels", "n1234ab"], "--base-url"),
        (["scrape", "--api-url", "http://a b/", "n1234ab"], "--api-url"),
        (["scrape", "--delay", "nan", "n1234ab"], "--delay"),
        (["scrape", "--delay", "inf", "n1234ab"], "--delay"),
        (["scrape", "--backoff", "nan", "n1234ab"], "--backoff"),
        (["scrape", "--backoff", "-inf", "n1234ab"], "--backoff"),
        (["scrape", "--timeout", "nan", "n1234ab"], "--timeout"),
        (["scrape", "--timeout", "inf", "n1234ab"], "--timeout"),
        (["scrape", "--timeout", "-3", "n1234ab"], "--timeout"),
        (["scrape", "n１２３４ab"], "not an ncode"),
        (["scrape", "n١٢٣٤ab"], "not an ncode"),
        (["scrape"], "--all"),
        (["scrape", "--site", "narou", "--order", "hyoka"], "choose the works"),
        (["list", "--site", "kakuyomu"], "unknown --site"),
    ],
)
def test_user_errors_are_one_line(cli, data_dir, args, needle):
    r = cli(*args)
    assert r.code == 1
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and needle in lines[0], r.err
    assert not (data_dir / "raw").exists() or not any((data_dir / "raw").rglob("*.html"))


def test_a_stopped_run_prints_the_summary_then_one_error(cli, srv, tmp_path):
    srv.fault("/n0001aa/3/", *["503"] * 10)
    r = cli(*scrape_args(srv, tmp_path / "raw", "n0001aa"), "--backoff", "0.05")
    assert r.code == 1
    assert "episodes: 2 downloaded" in r.out
    err = [ln for ln in r.err.splitlines() if ln.startswith("Error:")]
    assert len(err) == 1 and "try again after" in err[0]


def test_scrape_then_extract_pairs_exactly(cli, srv, tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "pairs"
    r = cli(*scrape_args(srv, raw, "n0001aa", "N0002BB", "https://novel18.syosetu.com/n0003cc/1/"))
    assert r.code == 0, r.err
    assert "3 new" in r.out and "8 downloaded" in r.out
    r = cli(
        "extract-pairs",
        "--raw-dir",
        raw,
        "--out-dir",
        out,
        "--workers",
        "1",
        "-q",
        "--examples",
        "0",
        "--reader",
        "pykakasi",
    )
    assert r.code == 0, r.err
    rows = pq.read_table(list_shards(out)).to_pylist()
    got = sorted((r["source"], r["work_id"], r["episode"], r["line"], r["utterance"], r["reply"]) for r in rows)
    expected = sorted(
        [
            ("nocturne", "n0001aa", 1, 1, "こんばんは", "魔王様、お待ちしておりました"),
            ("nocturne", "n0001aa", 1, 5, "本を探しに来たの", "どの本でしょう"),
            ("nocturne", "n0001aa", 2, 0, "また来たのね", "ええ、また来ました"),
            ("nocturne", "n0001aa", 3, 0, "雨ですね", "傘を貸しましょうか"),
            ("nocturne", "n0001aa", 3, 1, "傘を貸しましょうか", "ありがとう"),
            ("nocturne", "n0001aa", 4, 0, "さようなら", "またね"),
            ("nocturne", "n0001aa", 5, 0, "おはよう", "早起きですね"),
            ("nocturne", "n0002bb", 1, 0, "ここはどこ", "古都だよ"),
            ("nocturne", "n0002bb", 2, 1, "疲れた", "休もう"),
            ("nocturne", "n0003cc", 1, 0, "短編です", "そうですね"),
            ("nocturne", "n0003cc", 1, 1, "そうですね", "終わり"),
            ("nocturne", "n0003cc", 1, 3, "終わり", "はい"),
        ]
    )
    assert got == expected  # nothing from prefaces or afterwords
    r = cli("list", "--raw-dir", raw, "--out-dir", out, "--json")
    listed = {
        row["work_id"]: (row["episodes"], row["status"], row["pairs"]) for row in map(json.loads, r.out.splitlines())
    }
    assert listed == {"n0001aa": (5, "current", 7), "n0002bb": (2, "current", 2), "n0003cc": (1, "current", 3)}
    kana = {(r["work_id"], r["episode"], r["line"]): (r["utterance_kana"], r["reply_kana"]) for r in rows}
    assert kana[("n0001aa", 1, 1)] == ("コンバンハ", "サタンサマ、オマチシテオリマシタ")  # the author's ruby
    assert kana[("n0002bb", 1, 0)][1] == "フルミヤコダヨ"
    assert kana[("n0001aa", 3, 0)] == (
        to_katakana("雨ですね", "pykakasi"),
        to_katakana("傘を貸しましょうか", "pykakasi"),
    )


def test_kill_9_leaves_no_partial_file_and_the_rerun_resumes(srv, tmp_path, cli):
    raw = tmp_path / "raw"
    args = [sys.executable, "-m", "pipeline.cli", *map(str, scrape_args(srv, raw, "n0001aa", "n0002bb", delay="0.3"))]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    episodes = raw / "nocturne/n0001aa/episodes"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(list(episodes.glob("*.html"))) < 2:
        time.sleep(0.02)
    time.sleep(0.1)  # somewhere inside the next wait or request
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    work = raw / "nocturne/n0001aa"
    done = sorted(p.name for p in episodes.glob("*.html"))
    assert 2 <= len(done) < 5
    assert not (work / "meta.json").exists()
    for name in done:  # every visible episode file is complete: byte for byte what was served
        assert (episodes / name).read_bytes() == episode_current(srv.works["n0001aa"], int(name[:4])).encode()
    fetched_before = {h.path for h in srv.episode_hits()}
    srv.clear_log()
    r = cli(*scrape_args(srv, raw, "n0001aa", "n0002bb"))
    assert r.code == 0, r.err
    again = [h.path for h in srv.episode_hits()]
    stored_before = {f"/n0001aa/{int(n[:4])}/" for n in done}
    assert not stored_before & set(again)  # nothing stored before is downloaded again
    assert set(again) | stored_before == {f"/n0001aa/{i}/" for i in range(1, 6)} | {"/n0002bb/1/", "/n0002bb/2/"}
    assert len(again) == len(set(again))
    assert fetched_before - stored_before <= set(again)  # at most the one cut off by the kill
    assert not list(raw.rglob(".*.tmp")) and not (work / ".progress.jsonl").exists()
    assert [parse_episode((episodes / f"{i:04d}.html").read_bytes()).body[0] for i in (1, 5)] == [
        "　図書館は静かだった。",
        "「おはよう」",
    ]
