"""scrape stays on the chosen origins, survives odd pages, updates what is stored, and says
what it is doing: against the local stand-in and a second server that must see nothing."""

import json

import pytest
from syosetu_server import Ep, SyosetuServer, sample_works

from pipeline import rawstore
from pipeline.errors import UsageError
from pipeline.http import Politeness
from pipeline.syosetu import parse_episode
from stages.scrape import ScrapeOptions, scrape, summary


@pytest.fixture
def other():
    """Another origin on 127.0.0.1: nothing may ever reach it."""
    with SyosetuServer(sample_works(), age_gate=False) as s:
        yield s


def run(srv, raw, targets=("n0001aa", "n0002bb", "n0003cc"), api_url=None, **kw):
    pol = {k: kw.pop(k) for k in list(kw) if k in Politeness.__dataclass_fields__}
    opts = ScrapeOptions(
        raw_dir=raw,
        site=srv.site,
        targets=list(targets),
        base_url=srv.url,
        api_url=api_url or srv.api_url,
        show_progress=kw.pop("show_progress", False),
        politeness=Politeness(**{"delay": 0.0, "contact": "t@example.com", "backoff": 0.05, **pol}),
        **kw,
    )
    return scrape(opts)


def test_an_episode_linking_to_another_host_is_not_fetched(other, tmp_path):
    works = sample_works()
    works[0].links[3] = other.url + "n0001aa/3/"
    with SyosetuServer(works, per_page=2) as srv:
        res = run(srv, tmp_path / "raw")
    assert not other.log
    host = other.url.split("/")[2]
    assert res.offsite == [f"n0001aa episode 3 links to {host}: not fetched"]
    assert res.works["n0001aa"] == "failed" and res.works["n0002bb"] == "new" and res.stopped is None
    meta = rawstore.read_meta(tmp_path / "raw/nocturne/n0001aa")
    assert meta["missing_episodes"] == [3] and [e["number"] for e in meta["episodes"]] == [1, 2, 4, 5]
    assert "1 links/redirects to other hosts not fetched" in summary(res)


def test_redirects_to_another_host_are_checked_before_they_are_followed(other, tmp_path):
    with SyosetuServer(sample_works(), per_page=2) as srv:
        srv.fault("/n0001aa/2/", "redirect:" + other.url + "n0001aa/2/")
        srv.fault("/n0002bb/", "redirect:" + other.url + "n0002bb/")
        srv.fault("/robots.txt", "redirect:" + other.url + "robots.txt")
        res = run(srv, tmp_path / "raw")
    assert not other.log
    host = other.url.split("/")[2]
    assert f"n0001aa episode 2 redirects to {host}: not fetched" in res.offsite
    assert f"n0002bb work page redirects to {host}: not fetched" in res.offsite
    assert res.works == {"n0001aa": "failed", "n0002bb": "failed", "n0003cc": "new"}


def test_the_cookie_goes_to_the_site_only_and_the_api_may_be_elsewhere(tmp_path):
    with SyosetuServer(sample_works(), per_page=2) as srv, SyosetuServer(sample_works()) as api:
        res = run(srv, tmp_path / "raw", api_url=api.api_url)
        assert res.works == {"n0001aa": "new", "n0002bb": "new", "n0003cc": "new"}
        assert api.hits("/novel18api/") and all("Cookie" not in h.headers for h in api.log)
        assert all(h.headers.get("Cookie") == "over18=yes" for h in srv.log if h.path != "/robots.txt")
        assert not srv.hits("/novel18api/")


@pytest.mark.parametrize(
    "kw",
    [
        {"xhtml": True},  # XML declaration, XHTML 1.1
        {"xhtml": True, "encoding": "cp932"},  # Shift_JIS, declared in the prolog
        {"encoding": "cp932", "charset_header": "utf-8"},  # a header that lies
        {"bom": True, "charset_header": "iso-8859-1"},  # a BOM beats the header
    ],
)
def test_pages_of_every_encoding_and_doctype_parse(tmp_path, kw):
    works = sample_works()
    with SyosetuServer(works, per_page=2, **kw) as srv:
        res = run(srv, tmp_path / "raw")
    assert res.works == {"n0001aa": "new", "n0002bb": "new", "n0003cc": "new"}, res.failures
    for w in works:
        for n, ep in enumerate(w.episodes, 1):
            page = parse_episode((tmp_path / f"raw/nocturne/{w.ncode}/episodes/{n:04d}.html").read_bytes())
            assert page.body == [ln for ln in ep.body], (w.ncode, n)
    meta = rawstore.read_meta(tmp_path / "raw/nocturne/n0001aa")
    assert meta["title"] == "夜の図書館" and meta["episodes"][1]["subtitle"] == "二つ目の夜"


def test_update_rechecks_the_stored_works_only(tmp_path):
    works = sample_works()
    with SyosetuServer(works, per_page=2) as srv:
        raw = tmp_path / "raw"
        assert run(srv, raw, targets=["n0001aa", "n0002bb"]).works == {"n0001aa": "new", "n0002bb": "new"}
        works[0].episodes.append(Ep("六つ目の夜", ["「ただいま」", "「おかえり」"], published="2021/04/06 12:00"))
        works[0].updated_at = works[0].lastup = "2021-05-02 10:00:00"
        srv.clear_log()
        res = run(srv, raw, targets=[], update=True)
        assert res.works == {"n0001aa": "updated", "n0002bb": "current"}
        assert [h.path for h in srv.episode_hits()] == ["/n0001aa/6/"] and not srv.hits("/n0003cc")
        srv.clear_log()
        assert run(srv, raw, targets=["n0002bb"], update=True).works == {"n0002bb": "current"}
        with pytest.raises(UsageError, match="n0003cc not in"):
            run(srv, raw, targets=["n0003cc"], update=True)


def test_a_work_that_is_gone_is_recorded_as_gone(tmp_path):
    works = sample_works()
    with SyosetuServer(works, per_page=2) as srv:
        run(srv, tmp_path / "raw", targets=["n0002bb"])
        works[1].gone = True
        res = run(srv, tmp_path / "raw", targets=["n0002bb"])
    assert res.works == {"n0002bb": "gone"}
    assert rawstore.read_meta(tmp_path / "raw/nocturne/n0002bb")["gone"] is True


def test_without_a_terminal_progress_is_a_line_per_work_and_waits_say_why(tmp_path, capsys):
    with SyosetuServer(sample_works(), per_page=2) as srv:
        srv.fault("/n0002bb/1/", "429:6")
        res = run(srv, tmp_path / "raw", show_progress=True, max_retry_after=10)
    err = capsys.readouterr().err
    for ncode, status in res.works.items():
        assert f"{ncode} {status};" in err
    host = srv.url.split("/")[2].split(":")[0]
    assert f"HTTP 429 from {host}; waiting 6 s as Retry-After asks, then retry 1 of 5" in err
    assert res.retries == 1 and "1 retries" in summary(res)


def test_the_run_goes_on_past_a_failed_work_and_stops_for_nothing_else(tmp_path):
    with SyosetuServer(sample_works(), per_page=2) as srv:
        srv.overrides["/n0001aa/?p=2"] = (200, "<html><body>odd</body></html>")
        srv.overrides["/n0001aa/"] = (
            200,
            "<?xml version='1.0' encoding='UTF-8'?><html><body><p>nothing here</p></body></html>",
        )
        res = run(srv, tmp_path / "raw")
    assert res.stopped is None and res.works == {"n0001aa": "failed", "n0002bb": "new", "n0003cc": "new"}
    assert res.failures and res.failures[0].startswith(srv.url + "n0001aa/")


def test_a_meta_file_entry_outside_the_work_is_never_read(tmp_path):
    with SyosetuServer(sample_works(), per_page=2) as srv:
        raw = tmp_path / "raw"
        run(srv, raw, targets=["n0002bb"])
        work = raw / "nocturne/n0002bb"
        meta = rawstore.read_meta(work)
        (tmp_path / "outside.html").write_bytes((work / "episodes/0001.html").read_bytes())
        meta["episodes"][0]["file"] = "../../../outside.html"
        (work / "meta.json").write_text(json.dumps(meta))
        srv.clear_log()
        res = run(srv, raw, targets=["n0002bb"])
    # Episode 1 counts as not stored, so it is fetched again into its own folder.
    assert [h.path for h in srv.episode_hits()] == ["/n0002bb/1/"] and res.works == {"n0002bb": "updated"}
    assert rawstore.read_meta(work)["episodes"][0]["file"] == "episodes/0001.html"


def test_a_second_run_on_the_same_site_folder_is_refused(tmp_path):
    from pipeline.errors import BusyError
    from pipeline.locks import folder_lock

    with SyosetuServer(sample_works(), per_page=2) as srv:
        with folder_lock(tmp_path / "raw/nocturne", "scrape"):
            with pytest.raises(BusyError, match="already working"):
                run(srv, tmp_path / "raw")
        assert not srv.log


def test_malformed_links_and_redirects_fail_their_work_not_the_run(tmp_path):
    works = sample_works()
    works[0].links[2] = "http://[::1/n0001aa/2/"
    with SyosetuServer(works, per_page=2) as srv:
        srv.fault("/n0002bb/2/", "redirect:http://[bad")
        res = run(srv, tmp_path / "raw")
    assert res.stopped is None and res.works == {"n0001aa": "failed", "n0002bb": "failed", "n0003cc": "new"}
    assert any("not a URL" in f for f in res.failures) and any(
        "cannot be read" in f or "episode number" in f for f in res.failures
    )


def test_a_log_gets_a_status_line_at_least_every_interval(tmp_path, capsys, monkeypatch):
    import stages.scrape as mod

    monkeypatch.setattr(mod, "LOG_EVERY", 0.0)  # every page, instead of every 30 s
    with SyosetuServer(sample_works(), per_page=2) as srv:
        run(srv, tmp_path / "raw", targets=["n0001aa"], show_progress=True)
    status = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("scrape nocturne: ")]
    assert len(status) >= 7 and status[-1].startswith("scrape nocturne: n0001aa new; 1/1 works, 5 episodes stored")
