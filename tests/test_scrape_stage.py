"""stages.scrape against the local stand-in: what is requested, when, and what is stored."""

import json
import re
from pathlib import Path

import pytest
from syosetu_server import Ep, SyosetuServer, Work, episode_current, sample_works

from pipeline.http import HostBlocked, Politeness, TryLater
from pipeline.rawstore import PROGRESS_FILE
from pipeline.syosetu import parse_episode
from pipeline.syosetu.api import Filters
from stages.scrape import AgeGate, LayoutStop, ScrapeOptions, Scraper, scrape, summary

ALL = ["n0001aa", "N0002BB", "https://novel18.syosetu.com/n0003cc/"]
CONTACT = "tester@example.com"


@pytest.fixture
def srv():
    with SyosetuServer(sample_works(), per_page=2) as s:
        yield s


def run(srv, raw, targets=ALL, delay=0.05, api=True, **kw):
    pol = {k: kw.pop(k) for k in list(kw) if k in Politeness.__dataclass_fields__}
    filters = {k: kw.pop(k) for k in list(kw) if k in Filters.__dataclass_fields__}
    if filters:
        kw["filters"] = Filters(**filters)
    opts = ScrapeOptions(
        raw_dir=raw,
        site=srv.site,
        targets=list(targets),
        base_url=srv.url,
        api_url=srv.api_url if api else None,
        show_progress=False,
        politeness=Politeness(**{"delay": delay, "contact": CONTACT, "backoff": 0.05, **pol}),
        **kw,
    )
    return scrape(opts)


def gaps(hits):
    return [b.t - a.t for a, b in zip(hits, hits[1:])]


def visible_files(root: Path):
    """Files a reader sees: dot files (the run's lock, temporaries) are not among them."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def stored_lines(raw, ncode, n, site="nocturne"):
    return parse_episode((raw / site / ncode / "episodes" / f"{n:04d}.html").read_bytes()).body


def test_first_run_stores_every_episode_politely(srv, tmp_path):
    raw = tmp_path / "raw"
    res = run(srv, raw, delay=0.1)
    assert res.stopped is None
    c = res.counters
    assert (c["works_new"], c["episodes_downloaded"], c["episodes_failed"]) == (3, 8, 0)
    assert visible_files(raw / "nocturne") == [
        "n0001aa/episodes/0001.html",
        "n0001aa/episodes/0002.html",
        "n0001aa/episodes/0003.html",
        "n0001aa/episodes/0004.html",
        "n0001aa/episodes/0005.html",
        "n0001aa/meta.json",
        "n0002bb/episodes/0001.html",
        "n0002bb/episodes/0002.html",
        "n0002bb/meta.json",
        "n0003cc/episodes/0001.html",
        "n0003cc/meta.json",
    ]
    # What was asked for, in order, and how.
    paths = [h.path for h in srv.log]
    assert paths[0] == "/robots.txt" and paths.count("/robots.txt") == 1
    assert paths[1].startswith("/novel18api/api/?") and "ncode=n0001aa-n0002bb-n0003cc" in paths[1]
    assert paths[2:] == ["/n0001aa/", "/n0001aa/?p=2", "/n0001aa/?p=3"] + [f"/n0001aa/{i}/" for i in range(1, 6)] + [
        "/n0002bb/",
        "/n0002bb/1/",
        "/n0002bb/2/",
        "/n0003cc/",
    ]
    for h in srv.log:
        assert h.headers["User-Agent"].startswith("nocpipe/") and CONTACT in h.headers["User-Agent"]
        assert "over18=yes" in h.headers["Cookie"]
    assert min(gaps(srv.log)) >= 0.9 * 0.1
    # What was stored: pages as received, body apart from preface and afterword.
    assert stored_lines(raw, "n0001aa", 1)[2] == "「｜魔王《サタン》様、お待ちしておりました」"
    assert (raw / "nocturne/n0001aa/episodes/0003.html").read_bytes() == episode_current(
        srv.works["n0001aa"], 3
    ).encode()
    meta = json.loads((raw / "nocturne/n0001aa/meta.json").read_text())
    assert (meta["title"], meta["author"], meta["work_id"], meta["complete"]) == (
        "夜の図書館",
        "山田花子",
        "n0001aa",
        True,
    )
    assert meta["url"] == srv.url + "n0001aa/" and meta["fetched_at"]
    assert meta["api"]["novelupdated_at"] == "2021-05-01 10:00:00" and meta["api"]["ncode"] == "n0001aa"
    assert [(e["number"], e["chapter"], e["revised"]) for e in meta["episodes"]] == [
        (1, "第一章 出会い", None),
        (2, "第一章 出会い", "2021-04-10 09:30"),
        (3, "第二章 雨", None),
        (4, "第二章 雨", None),
        (5, "第二章 雨", None),
    ]
    short = json.loads((raw / "nocturne/n0003cc/meta.json").read_text())
    assert short["short"] is True and [e["number"] for e in short["episodes"]] == [1]
    assert "5 new" not in summary(res) and "8 downloaded" in summary(res)


def test_second_run_requests_nothing_but_the_api(srv, tmp_path):
    raw = tmp_path / "raw"
    run(srv, raw, delay=0.1)
    before = {p: p.stat().st_mtime_ns for p in (raw / "nocturne").rglob("*") if p.name != ".lock"}
    first = len(srv.log)
    res = run(srv, raw, delay=0.1)
    assert res.counters["works_current"] == 3 and res.counters["episodes_downloaded"] == 0
    assert [h.plain_path for h in srv.log[first:]] == ["/robots.txt", "/novel18api/api/"]
    assert {p: p.stat().st_mtime_ns for p in (raw / "nocturne").rglob("*") if p.name != ".lock"} == before
    assert min(gaps(srv.log)) >= 0.9 * 0.1  # runs back to back keep the gap too


def test_links_to_the_real_host_stay_on_the_mirror(srv, tmp_path):
    from syosetu_server import toc_old

    page = toc_old(srv.works["n0002bb"]).replace('href="/n0002bb/', 'href="https://novel18.syosetu.com/n0002bb/')
    srv.overrides["/n0002bb/"] = (200, page)
    res = run(srv, tmp_path / "raw", targets=["n0002bb"])
    assert res.works == {"n0002bb": "new"}
    assert [h.path for h in srv.episode_hits()] == ["/n0002bb/1/", "/n0002bb/2/"]


def test_revised_episode_is_fetched_again(srv, tmp_path):
    raw = tmp_path / "raw"
    run(srv, raw)
    w = srv.works["n0001aa"]
    w.episodes[2].revised = "2021/06/01 10:00"
    w.episodes[2].body = ["「改稿しました」", "「そうですか」"]
    w.updated_at = "2021-06-01 10:00:00"
    srv.clear_log()
    res = run(srv, raw)
    assert [h.path for h in srv.episode_hits()] == ["/n0001aa/3/"]
    assert res.counters["episodes_revised"] == 1 and res.counters["works_updated"] == 1
    assert res.counters["works_current"] == 2
    assert stored_lines(raw, "n0001aa", 3) == ["「改稿しました」", "「そうですか」"]
    meta = json.loads((raw / "nocturne/n0001aa/meta.json").read_text())
    assert meta["episodes"][2]["revised"] == "2021-06-01 10:00"
    assert meta["api"]["novelupdated_at"] == "2021-06-01 10:00:00"


def test_without_the_api_the_toc_decides(srv, tmp_path, capsys):
    raw = tmp_path / "raw"
    run(srv, raw, api=False)  # --base-url without --api-url: the API is not asked
    assert "tables of contents decide" in capsys.readouterr().err
    assert not srv.hits("/novel18api")
    srv.clear_log()
    res = run(srv, raw, api=False)
    assert srv.episode_hits() == []
    assert {h.path for h in srv.log} == {
        "/robots.txt",
        "/n0001aa/",
        "/n0001aa/?p=2",
        "/n0001aa/?p=3",
        "/n0002bb/",
        "/n0003cc/",
    }
    assert res.counters["works_current"] == 3
    srv.works["n0002bb"].episodes[0].revised = "2022/01/01 00:00"  # older layout, no API change
    srv.clear_log()
    res = run(srv, raw, api=False)
    assert [h.path for h in srv.episode_hits()] == ["/n0002bb/1/"]


def test_new_episode_only_that_one(srv, tmp_path):
    raw = tmp_path / "raw"
    run(srv, raw)
    w = srv.works["n0001aa"]
    w.episodes.append(Ep("六つ目の夜", ["「新しい話」", "「読みます」"], published="2021/07/01 12:00"))
    w.lastup = w.updated_at = "2021-07-01 12:00:00"
    srv.clear_log()
    res = run(srv, raw)
    assert [h.path for h in srv.episode_hits()] == ["/n0001aa/6/"]
    assert res.counters["episodes_downloaded"] == 1 and res.counters["episodes_current"] == 5 + 3


def test_renumbered_episodes_are_moved_not_downloaded(srv, tmp_path):
    raw = tmp_path / "raw"
    run(srv, raw)
    old4 = (raw / "nocturne/n0001aa/episodes/0004.html").read_bytes()
    w = srv.works["n0001aa"]
    del w.episodes[1]  # the author deleted episode 2: 3, 4, 5 become 2, 3, 4
    w.updated_at = "2021-08-01 00:00:00"
    srv.clear_log()
    res = run(srv, raw)
    assert srv.episode_hits() == []
    assert res.counters["episodes_renumbered"] == 3
    assert (raw / "nocturne/n0001aa/episodes/0003.html").read_bytes() == old4
    assert not (raw / "nocturne/n0001aa/episodes/0005.html").exists()
    meta = json.loads((raw / "nocturne/n0001aa/meta.json").read_text())
    assert [(e["number"], e["subtitle"]) for e in meta["episodes"]] == [
        (1, "はじまり"),
        (2, "三つ目の夜"),
        (3, "四つ目の夜"),
        (4, "五つ目の夜"),
    ]


def test_gone_work_is_reported_and_skipped(srv, tmp_path):
    raw = tmp_path / "raw"
    srv.works["n0002bb"].gone = True
    res = run(srv, raw, targets=["n0002bb", "n0001aa", "n0404zz"])
    assert res.works == {"n0002bb": "gone", "n0001aa": "new", "n0404zz": "gone"}
    assert res.counters["works_gone"] == 2 and "2 gone" in summary(res)
    assert not (raw / "nocturne/n0002bb").exists()


def test_robots_disallowed_work_is_never_requested(srv, tmp_path):
    res = run(srv, tmp_path / "raw", targets=["n9999zz", "n0003cc"])
    assert res.works == {"n9999zz": "disallowed", "n0003cc": "new"}
    assert not srv.hits("/n9999zz") and not srv.hits("/secret")


def test_robots_txt_unavailable_stops_before_any_page(tmp_path):
    with SyosetuServer(sample_works(), robots_status=503) as srv:
        res = run(srv, tmp_path / "raw", robots_retries=1)
        assert isinstance(res.stopped, HostBlocked) and "robots.txt" in str(res.stopped)
        assert {h.path for h in srv.log} == {"/robots.txt"}


def test_age_gate_is_taken_back_once(srv, tmp_path):
    srv.fault("/n0001aa/", "ageauth")
    srv.fault("/n0001aa/2/", "ageauth")
    res = run(srv, tmp_path / "raw", targets=["n0001aa"])
    assert res.stopped is None and res.counters["episodes_downloaded"] == 5
    assert [h.path for h in srv.hits("/n0001aa/")].count("/n0001aa/") == 2
    assert len(srv.hits("/n0001aa/2/")) == 2
    assert not srv.hits("/redirect")


def test_age_gate_that_stays_shut_stops_the_run(srv, tmp_path):
    srv.fault("/n0001aa/", "ageauth", "ageauth")
    res = run(srv, tmp_path / "raw", targets=["n0001aa", "n0002bb"])
    assert isinstance(res.stopped, AgeGate) and "age check" in str(res.stopped)
    assert not srv.hits("/n0002bb") and not (tmp_path / "raw/nocturne/n0001aa/meta.json").exists()


def test_faults_during_a_scrape_are_retried_and_nothing_partial_is_stored(srv, tmp_path):
    raw = tmp_path / "raw"
    srv.fault("/n0001aa/2/", "429:1")
    srv.fault("/n0001aa/3/", "truncate", "503")
    srv.fault("/n0001aa/4/", "slow:1.0")
    srv.fault("/n0001aa/5/", "reset", "500")
    res = run(srv, raw, targets=["n0001aa"], timeout=0.5)
    assert res.stopped is None and res.counters["episodes_downloaded"] == 5
    h2 = srv.hits("/n0001aa/2/")
    assert len(h2) == 2 and h2[1].t - h2[0].t >= 1.0
    assert [len(srv.hits(f"/n0001aa/{n}/")) for n in (3, 4, 5)] == [3, 2, 3]
    for n in range(1, 6):
        assert (raw / f"nocturne/n0001aa/episodes/{n:04d}.html").read_bytes() == episode_current(
            srv.works["n0001aa"], n
        ).encode()


def test_503_circuit_breaker_stops_and_a_rerun_resumes(srv, tmp_path):
    raw = tmp_path / "raw"
    srv.fault("/n0001aa/4/", *["503"] * 10)
    res = run(srv, raw, targets=["n0001aa", "n0002bb"], breaker_503=3)
    assert isinstance(res.stopped, TryLater) and "try again after" in str(res.stopped)
    assert len(srv.hits("/n0001aa/4/")) == 3 and not srv.hits("/n0002bb")
    work = raw / "nocturne/n0001aa"
    assert not (work / "meta.json").exists()  # unfinished: extract-pairs does not list it yet
    assert [json.loads(ln)["number"] for ln in (work / PROGRESS_FILE).read_text().splitlines()] == [1, 2, 3]
    srv.faults.clear()
    srv.clear_log()
    res = run(srv, raw, targets=["n0001aa", "n0002bb"])
    assert res.stopped is None
    assert [h.path for h in srv.episode_hits()] == ["/n0001aa/4/", "/n0001aa/5/", "/n0002bb/1/", "/n0002bb/2/"]
    assert json.loads((work / "meta.json").read_text())["complete"] is True
    assert not (work / PROGRESS_FILE).exists()


def test_a_failed_episode_is_kept_missing_and_fetched_next_time(srv, tmp_path):
    raw = tmp_path / "raw"
    srv.fault("/n0001aa/2/", "500", "500")
    res = run(srv, raw, targets=["n0001aa"], retries=1)
    assert res.works == {"n0001aa": "failed"} and res.counters["episodes_failed"] == 1
    meta = json.loads((raw / "nocturne/n0001aa/meta.json").read_text())
    assert meta["complete"] is False and meta["missing_episodes"] == [2]
    assert [e["number"] for e in meta["episodes"]] == [1, 3, 4, 5]
    srv.clear_log()
    res = run(srv, raw, targets=["n0001aa"])
    assert [h.path for h in srv.episode_hits()] == ["/n0001aa/2/"]
    assert json.loads((raw / "nocturne/n0001aa/meta.json").read_text())["complete"] is True


def test_a_page_that_does_not_parse_fails_its_work_and_the_run_goes_on(srv, tmp_path):
    raw = tmp_path / "raw"
    srv.overrides["/n0001aa/"] = (
        200,
        "<html><body><div class='novel-index'><a href='/n0001aa/1/'>一</a></div></body></html>",
    )
    res = run(srv, raw, targets=["n0001aa", "n0002bb"])
    assert res.stopped is None and res.works == {"n0001aa": "failed", "n0002bb": "new"}
    assert any(f.startswith(srv.url + "n0001aa/") and "layout" in f for f in res.failures)
    assert not (raw / "nocturne/n0001aa/meta.json").exists()


def test_the_first_works_all_failing_the_same_way_stop_the_run(tmp_path):
    works = sample_works() + [Work("n0004dd", "四", "著者", [Ep("一", ["「あ」", "「い」"])])]
    with SyosetuServer(works, per_page=2) as srv:
        for n in ("n0001aa", "n0002bb", "n0003cc"):
            srv.overrides[f"/{n}/"] = (200, "<html><body><div class='novel-index'></div></body></html>")
        res = run(srv, tmp_path / "raw", targets=["n0001aa", "n0002bb", "n0003cc", "n0004dd"])
        assert isinstance(res.stopped, LayoutStop) and "same way" in str(res.stopped)
        assert not srv.hits("/n0004dd")


def test_episode_page_with_an_empty_body_is_not_stored(srv, tmp_path):
    raw = tmp_path / "raw"
    srv.overrides["/n0002bb/2/"] = (200, "<html><body><div id='novel_honbun'></div></body></html>")
    res = run(srv, raw, targets=["n0002bb", "n0001aa"])
    assert res.stopped is None and res.works == {"n0002bb": "failed", "n0001aa": "new"}
    assert any("/n0002bb/2/" in f and "empty" in f for f in res.failures)
    assert (raw / "nocturne/n0002bb/episodes/0001.html").exists()
    assert not (raw / "nocturne/n0002bb/episodes/0002.html").exists()
    assert json.loads((raw / "nocturne/n0002bb/meta.json").read_text())["missing_episodes"] == [2]


def test_discovery_sends_the_filters(srv, tmp_path):
    raw = tmp_path / "raw"
    res = run(
        srv,
        raw,
        targets=[],
        limit=5,
        genres=(1, 2),
        keyword="図書館",
        min_length=5000,
        kaiwaritu="30-70",
        finished=True,
        order="favnovelcnt",
    )
    api = srv.hits("/novel18api/api/")
    assert len(api) == 1
    q = api[0].path
    for part in (
        "out=json",
        "gzip=5",
        "of=t-n-",
        "lim=5",
        "st=1",
        "nocgenre=1-2",
        "minlen=5000",
        "kaiwaritu=30-70",
        "type=ter",
        "order=favnovelcnt",
        "word=%E5%9B%B3%E6%9B%B8%E9%A4%A8",
    ):
        assert part in q
    assert res.discovered == 1 and res.works == {"n0001aa": "new"}
    meta = json.loads((raw / "nocturne/n0001aa/meta.json").read_text())
    assert meta["api"]["nocgenre"] == 1 and meta["api"]["kaiwaritu"] == 40


def test_discovery_limit_and_paging(srv, tmp_path):
    res = run(srv, tmp_path / "raw", targets=[], limit=2)
    assert res.discovered == 3 and list(res.works) == ["n0001aa", "n0002bb"]  # newest first
    assert not srv.hits("/n0003cc")
    srv.clear_log()
    sc = Scraper(
        ScrapeOptions(
            raw_dir=tmp_path,
            base_url=srv.url,
            api_url=srv.api_url,
            politeness=Politeness(delay=0),
            show_progress=False,
            all=True,
        )
    )
    sc.opts.limit = 0
    import pipeline.syosetu.api as mod

    mod_lim, mod.API_MAX_LIM = mod.API_MAX_LIM, 1  # one work per API page
    try:
        assert [r["ncode"] for r in sc.discover()] == ["n0001aa", "n0002bb", "n0003cc"]
    finally:
        mod.API_MAX_LIM = mod_lim
    assert [re.search(r"st=(\d+)", h.path).group(1) for h in srv.hits("/novel18api/")] == ["1", "2", "3"]


def synthetic_records(n):
    return [
        {
            "title": f"作品{i}",
            "ncode": f"N{i:04d}XY",
            "writer": "w",
            "noveltype": 1,
            "end": 0,
            "general_all_no": 1,
            "length": 1000,
            "kaiwaritu": 10,
            "nocgenre": 1,
            "general_lastup": f"20{10 + i % 12:02d}-{1 + i % 12:02d}-{1 + i % 28:02d} {i % 24:02d}:00:00",
            "novelupdated_at": "2023-01-01 00:00:00",
        }
        for i in range(n)
    ]


def test_discovery_when_the_api_ignores_lastup_stops_at_its_reach(tmp_path, capsys):
    with SyosetuServer([], extra_api_records=synthetic_records(2600), api_ignores_lastup=True) as srv:
        sc = Scraper(
            ScrapeOptions(
                raw_dir=tmp_path,
                base_url=srv.url,
                api_url=srv.api_url,
                politeness=Politeness(delay=0),
                show_progress=False,
                all=True,
            )
        )
        assert len(list(sc.discover())) == 2000
        assert len(srv.hits("/novel18api/")) == 1 + 1 + 3  # first page, the empty-window probe, 3 more
    assert "does not filter by lastup" in capsys.readouterr().err


def test_discovery_splits_beyond_the_apis_2000_reach(tmp_path):
    extra = synthetic_records(4500)
    with SyosetuServer([], extra_api_records=extra) as srv:
        sc = Scraper(
            ScrapeOptions(
                raw_dir=tmp_path,
                base_url=srv.url,
                api_url=srv.api_url,
                politeness=Politeness(delay=0),
                show_progress=False,
                all=True,
            )
        )
        found = [r["ncode"] for r in sc.discover()]
        assert sc.result.discovered == 4500
        assert len(found) == 4500 and set(found) == {r["ncode"].lower() for r in extra}
        for h in srv.hits("/novel18api/"):
            st = int(re.search(r"[?&]st=(\d+)", h.path).group(1))
            lim = int(re.search(r"[?&]lim=(\d+)", h.path).group(1))
            assert st <= 2000 and lim <= 500
        assert any("lastup=" in h.path for h in srv.hits("/novel18api/"))
        assert len(srv.hits("/novel18api/")) < 40


def test_narou_site_has_no_age_cookie(tmp_path):
    works = sample_works()[1:2]
    with SyosetuServer(works, site="narou") as srv:
        res = run(srv, tmp_path / "raw", targets=["n0002bb"])
        assert res.works == {"n0002bb": "new"}
        assert srv.hits("/novelapi/api/") and all("Cookie" not in h.headers for h in srv.log)
    assert (tmp_path / "raw/narou/n0002bb/meta.json").exists()


def test_a_work_whose_pages_keep_failing_does_not_stop_the_others(srv, tmp_path):
    srv.fault("/n0001aa/", "500", "500")
    srv.fault("/n0002bb/?p=2", "500")  # never asked: the older layout has one TOC page
    res = run(srv, tmp_path / "raw", targets=["n0001aa", "n0002bb"], retries=1)
    assert res.works == {"n0001aa": "failed", "n0002bb": "new"} and res.stopped is None
    assert "1 failed" in summary(res)


def test_an_age_check_page_shown_in_place_is_named_as_such(srv, tmp_path):
    srv.overrides["/n0001aa/2/"] = (
        200,
        "<html><body><h1>年齢確認</h1><a href='https://nl.syosetu.com/redirect/ageauth/?url=x'>はい</a></body></html>",
    )
    res = run(srv, tmp_path / "raw", targets=["n0001aa"])
    assert isinstance(res.stopped, AgeGate) and "age check" in str(res.stopped)
    assert not (tmp_path / "raw/nocturne/n0001aa/episodes/0002.html").exists()


def test_a_progress_line_whose_file_is_not_in_place_is_ignored(srv, tmp_path):
    import hashlib

    work = tmp_path / "raw/nocturne/n0001aa"
    (work / "episodes").mkdir(parents=True)
    pages = {n: episode_current(srv.works["n0001aa"], n).encode() for n in (1, 2, 3)}
    keys = {
        1: ["はじまり", "2021-04-01 12:00", None],
        2: ["二つ目の夜", "2021-04-02 12:00", "2021-04-10 09:30"],
        3: ["三つ目の夜", "2021-04-03 12:00", None],
    }
    (work / "episodes/0001.html").write_bytes(pages[1])
    (work / "episodes/0003.html").write_bytes(b"<html>an older version</html>")  # killed before the rename
    with open(work / PROGRESS_FILE, "w") as fh:
        for n in (1, 2, 3):  # 2: killed after the line, before its file appeared
            fh.write(
                json.dumps(
                    {
                        "number": n,
                        "key": keys[n],
                        "file": f"episodes/{n:04d}.html",
                        "sha256": hashlib.sha256(pages[n]).hexdigest(),
                    }
                )
                + "\n"
            )
    res = run(srv, tmp_path / "raw", targets=["n0001aa"])
    assert [h.path for h in srv.episode_hits()] == ["/n0001aa/2/", "/n0001aa/3/", "/n0001aa/4/", "/n0001aa/5/"]
    assert res.works == {"n0001aa": "new"}
    assert (work / "episodes/0003.html").read_bytes() == pages[3]
