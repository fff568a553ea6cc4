"""pipeline.http: each politeness setting on its own, against a local server."""

import socket
import time
from email.utils import formatdate

import pytest
from syosetu_server import SyosetuServer, sample_works

from pipeline import __version__
from pipeline.http import (
    Disallowed,
    HostBlocked,
    NotFound,
    Politeness,
    PoliteSession,
    RetriesExhausted,
    TryLater,
    parse_retry_after,
)


class FakeClock:
    """A clock that sleeping moves forward; records every sleep."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, s):
        self.sleeps.append(s)
        self.now += s


@pytest.fixture
def server():
    with SyosetuServer(sample_works(), age_gate=False) as srv:
        yield srv


def session(**kw):
    cookies = kw.pop("cookies", None)
    clock = kw.pop("clock", None)
    extra = {"clock": clock, "sleep": clock.sleep} if clock else {}
    if "origins" in kw:
        extra["origins"] = kw.pop("origins")
    settings = {"delay": 0.0, "backoff": 0.05, "contact": "ops@example.com", **kw}
    return PoliteSession(Politeness(**settings), cookies=cookies, **extra)


def gaps(hits):
    return [b.t - a.t for a, b in zip(hits, hits[1:])]


def test_user_agent_cookie_and_robots_first(server):
    with session(cookies={"over18": "yes"}) as s:
        r = s.get(server.url + "n0001aa/1/")
    assert r.status == 200 and "はじまり" in r.text
    paths = [h.path for h in server.log]
    assert paths == ["/robots.txt", "/n0001aa/1/"]
    for h in server.log:
        ua = h.headers["User-Agent"]
        assert ua.startswith(f"nocpipe/{__version__} ") and "ops@example.com" in ua
        assert h.headers["Cookie"] == "over18=yes"


def test_disallowed_path_is_never_requested(server):
    with session() as s:
        with pytest.raises(Disallowed, match="robots.txt"):
            s.get(server.url + "secret/admin/")
        assert s.allowed(server.url + "n0001aa/") and not s.allowed(server.url + "secret/x")
    assert not server.hits("/secret")
    assert [h.path for h in server.log] == ["/robots.txt"]


def test_robots_txt_for_us_by_name():
    with SyosetuServer([], robots="User-agent: nocpipe\nDisallow: /\n\nUser-agent: *\nDisallow:\n") as srv:
        with session() as s:
            with pytest.raises(Disallowed):
                s.get(srv.url + "n0001aa/")
        assert [h.path for h in srv.log] == ["/robots.txt"]


@pytest.mark.parametrize("status", [500, 503])
def test_robots_5xx_means_do_not_crawl(status):
    with SyosetuServer(sample_works(), robots_status=status) as srv:
        with session(robots_retries=1) as s:
            with pytest.raises(HostBlocked, match="robots.txt"):
                s.get(srv.url + "n0001aa/")
            with pytest.raises(HostBlocked):  # remembered: robots.txt is not asked again
                s.get(srv.url + "n0001aa/1/")
        assert [h.path for h in srv.log] == ["/robots.txt", "/robots.txt"]


def test_robots_4xx_means_no_rules():
    with SyosetuServer(sample_works(), robots_status=404, age_gate=False) as srv:
        with session() as s:
            assert s.allowed(srv.url + "secret/admin/")
            with pytest.raises(NotFound):
                s.get(srv.url + "secret/admin/")
        assert [h.path for h in srv.log] == ["/robots.txt", "/secret/admin/"]


def test_unreachable_host_is_not_crawled():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with session(robots_retries=0, timeout=1) as s:
        with pytest.raises(HostBlocked, match="unreachable"):
            s.get(f"http://127.0.0.1:{port}/n0001aa/")


def test_delay_between_requests_real_time(server):
    with session(delay=0.2, jitter=0.5) as s:
        for n in range(1, 5):
            s.get(server.url + f"n0001aa/{n}/")
    g = gaps(server.log)
    assert len(g) == 4 and min(g) >= 0.2 * 0.9
    assert max(g) < 0.2 * 1.5 + 0.25  # jitter only adds, and not without bound


def test_delay_and_jitter_with_a_fake_clock(server):
    clock = FakeClock()
    with session(delay=2.0, jitter=0.5, clock=clock) as s:
        for n in range(1, 6):
            s.get(server.url + f"n0001aa/{n}/")
    # robots.txt + 5 pages: 6 waits (the first request waits too), each in [delay, delay * (1 + jitter)]
    assert len(clock.sleeps) == 6
    assert all(2.0 <= w <= 3.0 for w in clock.sleeps)
    assert len(set(round(w, 6) for w in clock.sleeps)) > 1  # jittered
    assert s.stats.waited == pytest.approx(sum(clock.sleeps))


def test_crawl_delay_in_robots_txt_lengthens_the_delay():
    clock = FakeClock()
    with SyosetuServer(sample_works(), age_gate=False, robots="User-agent: *\nCrawl-delay: 5\n") as srv:
        with session(delay=1.0, jitter=0.0, clock=clock) as s:
            s.get(srv.url + "n0001aa/1/")
            s.get(srv.url + "n0001aa/2/")
    assert clock.sleeps == [pytest.approx(1.0), pytest.approx(5.0), pytest.approx(5.0)]


def test_429_retry_after_seconds_is_honoured(server):
    server.fault("/n0001aa/1/", "429:1")
    with session(delay=0.05) as s:
        r = s.get(server.url + "n0001aa/1/")
    assert r.status == 200 and s.stats.retries == 1
    hits = server.hits("/n0001aa/1/")
    assert len(hits) == 2 and hits[1].t - hits[0].t >= 1.0


def test_retry_after_http_date_with_a_fake_clock(server):
    clock = FakeClock()
    server.fault("/n0001aa/1/", "429date:30")
    with session(clock=clock) as s:
        s.get(server.url + "n0001aa/1/")
    assert max(clock.sleeps) >= 28  # the date has one-second resolution


def test_parse_retry_after():
    assert parse_retry_after("120") == 120
    assert parse_retry_after(formatdate(1_000_060, usegmt=True), now=1_000_000) == pytest.approx(60)
    assert parse_retry_after(formatdate(999_000, usegmt=True), now=1_000_000) == 0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_a_retry_after_longer_than_we_wait_stops(server):
    server.fault("/n0001aa/1/", "429:7200")
    clock = FakeClock()
    with session(clock=clock) as s:
        with pytest.raises(TryLater, match="try again after") as exc:
            s.get(server.url + "n0001aa/1/")
    assert exc.value.retry_at.timestamp() > time.time() + 7000
    assert not clock.sleeps


def test_exponential_backoff_on_5xx(server):
    clock = FakeClock()
    server.fault("/n0001aa/1/", "500", "502", "504")
    with session(backoff=2.0, clock=clock) as s:
        assert s.get(server.url + "n0001aa/1/").status == 200
    assert clock.sleeps == [pytest.approx(2.0), pytest.approx(4.0), pytest.approx(8.0)]


def test_retries_run_out(server):
    server.fault("/n0001aa/1/", *["500"] * 3)
    with session(retries=2) as s:
        with pytest.raises(RetriesExhausted, match="3 tries"):
            s.get(server.url + "n0001aa/1/")


def test_circuit_breaker_on_repeated_503(server):
    server.fault("/n0001aa/1/", *["503"] * 20)
    with session(breaker_503=3, retries=10) as s:
        with pytest.raises(TryLater, match=r"503.*3 times in a row.*try again after") as exc:
            s.get(server.url + "n0001aa/1/")
    assert len(server.hits("/n0001aa/1/")) == 3
    assert exc.value.retry_at.timestamp() >= time.time() + 1700


def test_a_success_resets_the_breaker(server):
    server.fault("/n0001aa/1/", "503", "503")
    server.fault("/n0001aa/2/", "503", "503")
    with session(breaker_503=3) as s:
        assert s.get(server.url + "n0001aa/1/").status == 200
        assert s.get(server.url + "n0001aa/2/").status == 200


def test_truncated_body_is_retried_never_returned(server):
    server.fault("/n0001aa/1/", "truncate")
    with session() as s:
        r = s.get(server.url + "n0001aa/1/")
    assert r.text.rstrip().endswith("</html>") and s.stats.retries == 1
    server.fault("/n0001aa/2/", "truncate", "truncate")
    with session(retries=1) as s:
        with pytest.raises(RetriesExhausted, match="truncated"):
            s.get(server.url + "n0001aa/2/")


def test_truncated_body_without_compression():
    with SyosetuServer(sample_works(), age_gate=False, gzip_html=False) as srv:
        srv.fault("/n0001aa/1/", "truncate")
        with session() as s:
            r = s.get(srv.url + "n0001aa/1/")
        assert r.content.rstrip().endswith(b"</html>") and s.stats.retries == 1
        assert "Content-Encoding" not in r.headers


def test_gzip_content_encoding(server):
    with session() as s:
        r = s.get(server.url + "n0001aa/1/")
    assert r.headers["Content-Encoding"] == "gzip" and r.text.startswith("<!DOCTYPE html>")
    assert "gzip" in server.log[-1].headers["Accept-Encoding"]


def test_slow_response_times_out_and_is_retried(server):
    server.fault("/n0001aa/1/", "slow:1.5")
    with session(timeout=0.4) as s:
        t0 = time.monotonic()
        r = s.get(server.url + "n0001aa/1/")
    assert r.status == 200 and s.stats.retries == 1
    assert time.monotonic() - t0 < 1.4
    assert len(server.hits("/n0001aa/1/")) == 2


def test_connection_reset_is_retried(server):
    server.fault("/n0001aa/1/", "reset")
    with session() as s:
        assert s.get(server.url + "n0001aa/1/").status == 200
    assert len(server.hits("/n0001aa/1/")) == 2


def test_404_is_not_found_and_not_retried(server):
    with session() as s:
        with pytest.raises(NotFound):
            s.get(server.url + "n0001aa/99/")
    assert len(server.hits("/n0001aa/99/")) == 1


def test_repeated_403_stops_the_crawl(server):
    for n in (1, 2, 3):
        server.overrides[f"/n0001aa/{n}/"] = (403, "forbidden")
    with session() as s:
        from pipeline.errors import FetchError

        for n in (1, 2):
            with pytest.raises(FetchError, match="403") as exc:
                s.get(server.url + f"n0001aa/{n}/")
            assert not isinstance(exc.value, HostBlocked)
        with pytest.raises(HostBlocked, match="403"):
            s.get(server.url + "n0001aa/3/")


def test_redirects_go_through_the_hook_and_are_limited():
    from urllib.parse import parse_qs, urlsplit

    from pipeline.errors import FetchError

    seen = []

    def hook(src, target):
        seen.append(target)
        return parse_qs(urlsplit(target).query)["url"][0]

    with SyosetuServer(sample_works()) as gated:  # no cookie: the age gate redirects every time
        with session() as s:
            with pytest.raises(FetchError, match="redirects"):
                s.get(gated.url + "n0001aa/1/", on_redirect=hook, max_redirects=2)
        assert len(seen) == 3 and all(t.startswith("https://nl.syosetu.com/redirect/ageauth/") for t in seen)
        assert [h.path for h in gated.log] == ["/robots.txt"] + ["/n0001aa/1/"] * 3


def test_settings_are_validated():
    from pipeline.errors import UsageError

    with pytest.raises(UsageError, match="delay"):
        Politeness(delay=-1)
    with pytest.raises(UsageError, match="contact"):
        Politeness(contact="a\nb")
    with pytest.raises(UsageError, match="ASCII"):
        Politeness(contact="山田@example.com")
    assert "no contact" in Politeness().user_agent


@pytest.mark.parametrize("name", ["delay", "backoff", "timeout"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_settings_are_refused(name, value):
    from pipeline.errors import UsageError

    with pytest.raises(UsageError, match=f"--{name} must be a finite number"):
        Politeness(**{name: value})


def test_a_session_talks_to_its_origins_only():
    from pipeline.http import OffSite

    with SyosetuServer(sample_works(), age_gate=False) as srv, SyosetuServer(sample_works(), age_gate=False) as other:
        with session(origins=[srv.url]) as s:
            assert s.get(srv.url + "n0001aa/1/").status == 200
            with pytest.raises(OffSite, match="not fetched"):
                s.get(other.url + "n0001aa/1/")
            srv.fault("/n0001aa/2/", "redirect:" + other.url + "n0001aa/2/")
            with pytest.raises(OffSite, match="redirects to") as exc:
                s.get(srv.url + "n0001aa/2/")
            assert exc.value.host == other.url.split("/")[2]
            with pytest.raises(OffSite):
                s.get("file:///etc/passwd")
        assert not other.log


def test_the_cookie_goes_to_its_origin_only():
    with SyosetuServer(sample_works(), age_gate=False) as srv, SyosetuServer(sample_works(), age_gate=False) as api:
        with PoliteSession(
            Politeness(delay=0), cookies={"over18": "yes"}, origins=[srv.url, api.url], cookie_origins=[srv.url]
        ) as s:
            s.get(srv.url + "n0001aa/1/")
            s.get(api.api_url, params={"out": "json"})
        assert srv.log[-1].headers.get("Cookie") == "over18=yes"
        assert all("Cookie" not in h.headers for h in api.log)


def test_a_server_dripping_bytes_is_cut_off_at_the_deadline(server):
    # One byte every 50 ms never trips the 0.3 s read timeout; the 0.5 s deadline for the
    # whole response must still end it (checked while reading, not between 64 KB chunks).
    server.fault("/n0001aa/1/", "drip:0.05")
    with session(timeout=0.3, max_duration=0.5, retries=0) as s:
        with pytest.raises(RetriesExhausted, match="took longer than"):
            s.get(server.url + "n0001aa/1/")


def test_long_waits_say_why(server):
    clock = FakeClock()
    heard = []
    server.fault("/n0001aa/1/", "429:120")
    with session(clock=clock, max_retry_after=900) as s:
        s.on_wait = lambda seconds, why: heard.append(why)
        s.get(server.url + "n0001aa/1/")
    assert "HTTP 429 from 127.0.0.1; waiting 120 s as Retry-After asks, then retry 1 of 5" in heard
