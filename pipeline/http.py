"""Polite HTTP for `nocpipe scrape`: a requests session that behaves like a guest.

Politeness is a handful of named settings (`Politeness`, scrapy's names in brackets):

    delay            [DOWNLOAD_DELAY] seconds between the end of one response and the
                     next request, 1.0 by default; the first request of a session waits
                     too, so runs started back to back keep the gap. One clock for all
                     hosts, stricter than scrapy's per-host slots: never two requests at once.
    jitter           [RANDOMIZE_DOWNLOAD_DELAY] each wait is delay x uniform(1, 1 + jitter):
                     jitter only ever adds time, so no gap is shorter than `delay`.
    obey_robots      [ROBOTSTXT_OBEY] robots.txt is fetched once per host and obeyed;
                     its Crawl-delay / Request-rate lengthen the delay for that host.
                     robots.txt answering 4xx means no rules; 5xx or unreachable means
                     the host is not crawled at all (RFC 9309).
    user_agent       [USER_AGENT] "nocpipe/VERSION (+CONTACT)": the contact is what the
                     user sets (--contact or NOCPIPE_CONTACT), so the site can reach them.
    timeout          [DOWNLOAD_TIMEOUT] seconds for connecting and between bytes;
                     a whole response may take at most `max_duration`.
    retries          [RETRY_TIMES] retries of one request after 429, 500, 502, 503, 504
                     [RETRY_HTTP_CODES], timeouts, resets and truncated bodies.
    backoff          first wait before a retry, doubled on each further retry up to
                     `backoff_max`; a Retry-After header (seconds or an HTTP date) wins
                     when it asks for longer, and one over `max_retry_after` stops the run.
    breaker_503      after this many 503 answers in a row the run stops (circuit
                     breaker) with a message that says when to try again.

A body shorter than its Content-Length is treated as a fault and retried: it is never
returned, so it can never be stored. A whole response may take at most `max_duration`
seconds: the deadline is checked after every read from the socket, and each read may wait
only until the deadline, so a server dripping one byte every few seconds is cut off on time.
Redirects are followed by hand (each hop is a request like any other: robots.txt, delay),
with an optional hook that may rewrite them.

Origins: a session made with `origins` talks to those origins only (scheme, host and port:
two test servers on 127.0.0.1 are two origins). A URL elsewhere, a redirect hop elsewhere
(checked before it is followed) and a robots.txt that redirects elsewhere are never
requested. Cookies go only to `cookie_origins` when it is given.

Exceptions (every one a FetchError, which the CLI prints as one `Error:` line):

    FetchError
    ├── NotFound            404 or 410: the page or the work is gone (the scraper skips it)
    ├── Disallowed          robots.txt forbids the URL; it was not requested
    ├── OffSite             the URL or a redirect hop is on an origin not chosen; not requested
    ├── RetriesExhausted    a retryable fault persisted through every retry
    └── StopCrawl           the run must stop now
        ├── HostBlocked     robots.txt is 5xx or unreachable, or the host answered 403
        └── TryLater        503 circuit breaker, or a Retry-After longer than we wait;
                            `.retry_at` says when to try again

Clock, sleep and randomness are injectable, so tests can check every wait without waiting.
"""

from __future__ import annotations

import email.utils
import math
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urljoin, urlsplit

import requests
import urllib3

from . import __version__
from .errors import FetchError

if TYPE_CHECKING:
    from protego import Protego

RETRY_CODES = (429, 500, 502, 503, 504)
REDIRECT_CODES = (301, 302, 303, 307, 308)
ROBOTS_TOKEN = "nocpipe"


class NotFound(FetchError):
    """404 or 410: the page is gone."""


class Disallowed(FetchError):
    """robots.txt forbids this URL; it was not requested."""


class OffSite(FetchError):
    """A URL (or a redirect hop) on an origin the session may not talk to; not requested."""

    def __init__(self, message: str, url: str):
        super().__init__(message)
        self.url = url
        self.host = urlsplit(url).netloc.rpartition("@")[2].lower() or url


class RetriesExhausted(FetchError):
    """A retryable fault (429/5xx, timeout, reset, truncated body) persisted."""


class StopCrawl(FetchError):
    """Continuing would be impolite or pointless: the run stops."""


class HostBlocked(StopCrawl):
    """robots.txt cannot be read (5xx, unreachable) or the host refuses us (403)."""


class TryLater(StopCrawl):
    """The host asked us to go away for a while (503s in a row, long Retry-After)."""

    def __init__(self, message: str, retry_at: datetime):
        super().__init__(message)
        self.retry_at = retry_at


@dataclass(frozen=True)
class Politeness:
    """The named politeness settings; see the module docstring for each one."""

    delay: float = 1.0
    jitter: float = 0.3
    obey_robots: bool = True
    contact: str | None = None
    timeout: float = 30.0
    max_duration: float = 120.0
    retries: int = 5
    retry_codes: tuple[int, ...] = RETRY_CODES
    backoff: float = 2.0
    backoff_max: float = 300.0
    max_retry_after: float = 900.0
    robots_retries: int = 2
    breaker_503: int = 5
    breaker_cooldown: float = 1800.0
    max_bytes: int = 20_000_000

    def __post_init__(self) -> None:
        from .errors import UsageError

        for name, flag in (
            ("delay", "--delay"),
            ("jitter", "jitter"),
            ("timeout", "--timeout"),
            ("backoff", "--backoff"),
            ("max_duration", "max_duration"),
            ("backoff_max", "backoff_max"),
            ("max_retry_after", "max_retry_after"),
            ("breaker_cooldown", "breaker_cooldown"),
        ):
            value = getattr(self, name)
            # nan passes every comparison and inf never ends a wait: both would turn politeness off.
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise UsageError(f"{flag} must be a finite number of seconds, not {value!r}")
        if self.delay < 0:
            raise UsageError("--delay must be 0 or more seconds")
        if self.jitter < 0:
            raise UsageError("jitter must be 0 or more")
        if self.timeout <= 0:
            raise UsageError("--timeout must be more than 0 seconds")
        if self.retries < 0:
            raise UsageError("--retries must be 0 or more")
        if self.backoff < 0:
            raise UsageError("--backoff must be 0 or more seconds")
        if self.breaker_503 < 1:
            raise UsageError("the 503 circuit breaker needs a threshold of 1 or more")
        if self.contact is not None and (
            not self.contact.strip() or not self.contact.isprintable() or not self.contact.isascii()
        ):
            raise UsageError(
                "--contact must be printable ASCII, such as an e-mail address or a URL (it goes into an HTTP header)"
            )

    @property
    def user_agent(self) -> str:
        contact = self.contact.strip() if self.contact else "no contact given"
        return f"nocpipe/{__version__} (+{contact}; polite corpus scraper)"


@dataclass(frozen=True)
class Response:
    """A complete response (never a truncated one)."""

    url: str
    status: int
    headers: Mapping[str, str]
    content: bytes
    elapsed: float

    @property
    def text(self) -> str:
        ctype = self.headers.get("Content-Type", "")
        charset = "utf-8"
        for part in ctype.split(";")[1:]:
            k, _, v = part.strip().partition("=")
            if k.lower() == "charset" and v:
                charset = v.strip('"')
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")


@dataclass
class FetchStats:
    """What the session has done, for progress bars and summaries."""

    requests: int = 0
    bytes: int = 0
    retries: int = 0
    waited: float = 0.0
    robots_fetched: int = 0
    by_status: dict[int, int] = field(default_factory=dict)


@dataclass
class _Robots:
    parser: Protego | None  # None = no rules
    delay: float = 0.0
    blocked: str | None = None  # why the host is not crawled


class _Transient(Exception):
    """A fault worth retrying that produced no usable response."""


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def host_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str | None:
    """scheme://host:port of an http(s) URL (the port written out), or None when the URL
    has no such origin (another scheme, no host, a port that is not a number)."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = parts.hostname
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None
    if scheme not in DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def with_params(url: str, params: Mapping[str, object] | None) -> str:
    if not params:
        return url
    return url + ("&" if "?" in url else "?") + urlencode([(k, str(v)) for k, v in params.items()])


class PoliteSession:
    """GET with every politeness setting applied. Thread-safe: one request at a time."""

    def __init__(
        self,
        settings: Politeness | None = None,
        *,
        cookies: Mapping[str, str] | None = None,
        origins: Iterable[str] | None = None,
        cookie_origins: Iterable[str] | None = None,
        http: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        on_wait: Callable[[float, str], None] | None = None,
    ):
        """`on_wait(seconds, why)` hears of every wait before it starts; `why` is a sentence
        such as "HTTP 429 from example.com; waiting 120 s as Retry-After asks, then retry 1 of 5"."""
        self.settings = settings or Politeness()
        self.cookies = dict(cookies or {})
        self.origins = None if origins is None else {origin_of(u) for u in origins} - {None}
        self.cookie_origins = None if cookie_origins is None else {origin_of(u) for u in cookie_origins} - {None}
        self.http = http or requests.Session()
        self.http.headers.update({"User-Agent": self.settings.user_agent, "Accept-Encoding": "gzip, deflate"})
        self.clock, self.sleep, self.wall = clock, sleep, wall
        self.rng = rng or random.Random()
        self.on_wait = on_wait
        self.stats = FetchStats()
        self._lock = threading.RLock()
        self._robots: dict[str, _Robots] = {}
        # The first request waits too, so that runs started back to back keep the gap.
        self._last_end: float | None = self.clock()  # when the last response ended
        self._gap = self._draw_gap()  # the wait drawn after it
        self._not_before = 0.0  # clock() before which no request starts (retries)
        self._consecutive_503 = 0
        self._consecutive_403 = 0
        self._defer_reason = ""

    @property
    def user_agent(self) -> str:
        return self.settings.user_agent

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "PoliteSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ public

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, object] | None = None,
        max_redirects: int = 5,
        on_redirect: Callable[[str, str], str] | None = None,
    ) -> Response:
        """GET `url` politely; follows redirects (each hop checked like a new request).
        `on_redirect(from_url, location)` may rewrite a redirect target or raise."""
        url = with_params(url, params)
        with self._lock:
            self.check_origin(url)
            for _ in range(max_redirects + 1):
                resp = self._get_with_retries(url)
                if resp.status in REDIRECT_CODES and resp.headers.get("Location"):
                    try:
                        target = urljoin(url, resp.headers["Location"])
                    except ValueError as exc:
                        raise FetchError(
                            f"{url}: redirects to {resp.headers['Location']!r}, which is not a URL ({exc})"
                        ) from None
                    target = on_redirect(url, target) if on_redirect else target
                    self.check_origin(target, f"{url} redirects to")  # before the hop is followed
                    url = target
                    continue
                return resp
            raise FetchError(f"{url}: more than {max_redirects} redirects")

    def on_site(self, url: str) -> bool:
        """Whether `url` is on an origin this session may talk to."""
        origin = origin_of(url)
        return origin is not None and (self.origins is None or origin in self.origins)

    def check_origin(self, url: str, what: str = "") -> None:
        if not self.on_site(url):
            host = urlsplit(url).netloc.rpartition("@")[2].lower() or url
            raise OffSite(f"{what + ' ' if what else ''}{url}: {host} is not a host of this run; not fetched", url)

    def allowed(self, url: str) -> bool:
        """Whether robots.txt lets us fetch `url` (fetching robots.txt if needed)."""
        with self._lock:
            robots = self._robots_for(url)
            if robots.blocked:
                raise HostBlocked(robots.blocked)
            return robots.parser is None or robots.parser.can_fetch(url, ROBOTS_TOKEN)

    # ------------------------------------------------------------ robots.txt

    def _robots_for(self, url: str) -> _Robots:
        host = host_of(url)
        if host in self._robots:
            return self._robots[host]
        if not self.settings.obey_robots:
            robots = self._robots[host] = _Robots(None)
            return robots
        robots_url = host + "/robots.txt"
        self.stats.robots_fetched += 1
        why = ""
        target = robots_url
        for attempt in range(self.settings.robots_retries + 1):
            if attempt:
                self._defer(
                    min(self.settings.backoff * 2 ** (attempt - 1), self.settings.backoff_max),
                    f"{robots_url} {why}; waiting {{wait}} before asking again",
                )
            try:
                resp = self._send(target)
                hops = 0
                while resp.status in REDIRECT_CODES and resp.headers.get("Location") and hops < 5:
                    target = urljoin(target, resp.headers["Location"])
                    if not self.on_site(target):
                        break  # a robots.txt elsewhere is not ours to read: no rules (below)
                    resp = self._send(target)
                    hops += 1
            except _Transient as exc:
                why = f"unreachable ({exc})"
                continue
            if 200 <= resp.status < 300:
                from protego import Protego

                parser = Protego.parse(resp.content.decode("utf-8", errors="replace"))
                delay = parser.crawl_delay(ROBOTS_TOKEN) or 0.0
                rate = parser.request_rate(ROBOTS_TOKEN)
                if rate and rate.requests:
                    delay = max(delay, rate.seconds / rate.requests)
                robots = _Robots(parser, float(delay))
                break
            if (400 <= resp.status < 500 and resp.status != 429) or resp.status in REDIRECT_CODES:
                robots = _Robots(None)  # no robots.txt (or one on another host): no rules
                break
            why = f"answered HTTP {resp.status}"
        else:
            robots = _Robots(
                None,
                blocked=f"{robots_url} {why}; by robots.txt rules a host whose "
                "robots.txt cannot be read is not crawled. Try again later",
            )
        self._robots[host] = robots
        return robots

    # ------------------------------------------------------------ one URL, with retries

    def _get_with_retries(self, url: str) -> Response:
        s = self.settings
        attempt = 0
        while True:
            robots = self._robots_for(url)
            if robots.blocked:
                raise HostBlocked(robots.blocked)
            if robots.parser is not None and not robots.parser.can_fetch(url, ROBOTS_TOKEN):
                raise Disallowed(f"{url}: robots.txt disallows it; not requested")
            retry_after = None
            try:
                resp = self._send(url, extra_delay=robots.delay)
            except _Transient as exc:
                reason = str(exc)
            else:
                self._consecutive_503 = self._consecutive_503 + 1 if resp.status == 503 else 0
                if resp.status != 403:
                    self._consecutive_403 = 0
                if resp.status in s.retry_codes:
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"), self.wall())
                    reason = f"HTTP {resp.status}"
                    if resp.status == 503 and self._consecutive_503 >= s.breaker_503:
                        wait = max(retry_after or 0.0, s.breaker_cooldown)
                        at = self._wall_dt(wait)
                        raise TryLater(
                            f"{host_of(url)} answered 503 (unavailable) {self._consecutive_503} "
                            f"times in a row: it is overloaded or in maintenance. Stopped; "
                            f"try again after {at:%Y-%m-%d %H:%M %Z}",
                            at,
                        )
                elif resp.status in (404, 410):
                    raise NotFound(f"{url}: HTTP {resp.status} (gone)")
                elif resp.status == 403:
                    self._consecutive_403 += 1
                    if self._consecutive_403 >= 3:
                        raise HostBlocked(
                            f"{url}: HTTP 403 {self._consecutive_403} times in a row (the site "
                            "refuses us). Stopped; check the --contact and the --delay "
                            "before trying again"
                        )
                    raise FetchError(f"{url}: HTTP 403 (forbidden)")
                elif resp.status >= 400:
                    raise FetchError(f"{url}: HTTP {resp.status}")
                else:
                    return resp
            attempt += 1
            if attempt > s.retries:
                raise RetriesExhausted(f"{url}: gave up after {attempt} tries (last: {reason})")
            if retry_after is not None and retry_after > s.max_retry_after:
                at = self._wall_dt(retry_after)
                raise TryLater(
                    f"{host_of(url)} asked us to wait {retry_after:.0f} s (Retry-After). "
                    f"Stopped; try again after {at:%Y-%m-%d %H:%M %Z}",
                    at,
                )
            backoff = min(s.backoff * 2 ** (attempt - 1), s.backoff_max)
            wait = max(backoff, retry_after or 0.0)
            self.stats.retries += 1
            how = "as Retry-After asks" if retry_after is not None and retry_after >= backoff else "(backoff)"
            self._defer(
                wait,
                f"{reason} from {urlsplit(url).hostname}; waiting {{wait}} {how}, then retry {attempt} of {s.retries}",
            )

    def _wall_dt(self, seconds: float) -> datetime:
        return datetime.fromtimestamp(self.wall() + seconds, tz=timezone.utc).astimezone()

    # ------------------------------------------------------------ the throttle

    def _defer(self, seconds: float, why: str) -> None:
        """No request before `seconds` from now."""
        until = self.clock() + seconds
        if until > self._not_before:
            self._not_before = until
            self._defer_reason = why

    def _wait_turn(self, extra_delay: float) -> None:
        if self._last_end is None:
            target = self._not_before
        else:
            target = max(self._last_end + max(self._gap, extra_delay), self._not_before)
        now = self.clock()
        wait = target - now
        if wait > 0:
            if self.on_wait:
                if self._not_before > now and self._defer_reason:
                    why = self._defer_reason
                elif extra_delay > self._gap:
                    why = "robots.txt asks for a Crawl-delay; waiting {wait}"
                else:
                    why = "--delay between requests; waiting {wait}"
                self.on_wait(wait, why.replace("{wait}", f"{wait:.0f} s"))
            self.sleep(wait)
            self.stats.waited += wait

    def _draw_gap(self) -> float:
        s = self.settings
        return s.delay * (1.0 + self.rng.uniform(0.0, s.jitter)) if s.delay > 0 else 0.0

    # ------------------------------------------------------------ one request

    def _send(self, url: str, extra_delay: float = 0.0) -> Response:
        """One GET after our turn has come; raises _Transient for retryable faults."""
        s = self.settings
        self.check_origin(url)  # the last line of defence: nothing leaves for a host not chosen
        self._wait_turn(extra_delay)
        headers = {}
        if self.cookies and (self.cookie_origins is None or origin_of(url) in self.cookie_origins):
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        start = self.clock()
        self.stats.requests += 1
        try:
            with self.http.get(
                url, headers=headers, stream=True, allow_redirects=False, timeout=(s.timeout, s.timeout)
            ) as r:
                chunks = self._read_body(r, url, start)
                wire = r.raw.tell()
                length = r.headers.get("Content-Length", "")
                if length.isdigit() and wire < int(length):
                    raise _Transient(f"truncated body ({wire} of {length} bytes)")
                self.stats.bytes += wire
                self.stats.by_status[r.status_code] = self.stats.by_status.get(r.status_code, 0) + 1
                return Response(
                    url=url, status=r.status_code, headers=r.headers, content=chunks, elapsed=self.clock() - start
                )
        except requests.Timeout as exc:
            raise _Transient(f"timeout after {s.timeout:g} s") from exc
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as exc:
            raise _Transient(f"truncated or broken body ({type(exc).__name__})") from exc
        except (requests.ConnectionError, urllib3.exceptions.HTTPError) as exc:
            raise _Transient(f"connection failed ({type(exc).__name__})") from exc
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
        ) as exc:
            raise FetchError(f"{url}: not a URL we can fetch ({exc})") from exc
        except ValueError as exc:  # requests reads a redirect's Location even when not following it
            raise FetchError(f"{url}: the answer points to something that is not a URL ({exc})") from None
        finally:
            self._last_end = self.clock()
            self._gap = self._draw_gap()

    def _read_body(self, r: requests.Response, url: str, start: float) -> bytes:
        """The decoded body, read as it arrives (read1: one socket read at a time), with
        the whole-response deadline checked after every read and each read allowed to
        wait only until that deadline."""
        s = self.settings
        deadline = start + s.max_duration
        sock = _socket_of(r.raw)
        chunks: list[bytes] = []
        size = 0
        while True:
            left = deadline - self.clock()
            if left <= 0:
                raise _Transient(f"response took longer than {s.max_duration:.0f} s")
            if sock is not None:
                sock.settimeout(max(0.001, min(s.timeout, left)))
            try:
                chunk = r.raw.read1(65536, decode_content=True)
            except (urllib3.exceptions.ReadTimeoutError, socket.timeout) as exc:
                if self.clock() >= deadline:
                    raise _Transient(f"response took longer than {s.max_duration:.0f} s") from exc
                raise _Transient(f"timeout after {s.timeout:g} s") from exc
            except (urllib3.exceptions.ProtocolError, urllib3.exceptions.DecodeError) as exc:
                raise _Transient(f"truncated or broken body ({type(exc).__name__})") from exc
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
            if size > s.max_bytes:
                raise FetchError(f"{url}: response larger than {s.max_bytes} bytes")


def _socket_of(raw: object) -> socket.socket | None:
    """The socket under a urllib3 response, to shorten its read timeout near the deadline
    (None if this urllib3 hides it; the deadline is then checked after each read only)."""
    sock = getattr(getattr(raw, "_connection", None), "sock", None)
    if sock is None:
        fp = getattr(getattr(raw, "_fp", None), "fp", None)
        sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None
