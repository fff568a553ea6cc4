"""nocpipe scrape: works of the syosetu.com family into the raw store, politely.

    targets: the ncodes / URLs given, the works already stored (--update), or discovery
             through the official API (filters; pipeline.syosetu.api)
      -> API records say which stored works may have changed (novelupdated_at,
         general_lastup, general_all_no): an unchanged complete work costs no request
      -> per work: the work page; a short story is its own text, a serial has TOC pages
         (?p=N) in the current or the older layout (pipeline.syosetu.pages)
      -> compare the TOC with meta.json: fetch new episodes and those whose subtitle,
         date or 改稿 date changed; move renumbered ones; forget ones no longer listed
      -> every page is checked before it is stored (it must parse to a body), and stored
         as received through pipeline.rawstore (episodes/NNNN.html, meta.json last)

Only the site's origin (--site or --base-url) and the API's origin are ever requested:
a link or a redirect elsewhere is not fetched, is reported and counted, and leaves its
episode missing (the work is "failed"). The over18 cookie goes to the site's origin only.

While a work is half done the raw store's progress log lists the episodes already stored,
so an interrupted run (kill -9, Ctrl-C) starts again where it stopped.

Faults: a work that answers 404 is "gone" (its meta.json says so); a page whose retries ran
out, or that does not parse, makes its work "failed" (the run goes on; a rerun tries again).
robots.txt trouble, the 503 circuit breaker, a long Retry-After and an age gate that will
not open stop the run, with what was finished kept; so do the first works all failing to
parse in the same way (the site's layout has changed: every further request is wasted).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import cast
from urllib.parse import parse_qs, urljoin, urlsplit

from pipeline import __version__, rawstore
from pipeline.errors import FetchError, UsageError
from pipeline.http import (
    Disallowed,
    NotFound,
    OffSite,
    Politeness,
    PoliteSession,
    Response,
    StopCrawl,
    host_of,
    origin_of,
)
from pipeline.ids import ncode_of
from pipeline.locks import folder_lock
from pipeline.records import Counters
from pipeline.syosetu import SITES, LayoutChanged, TocEntry, TocPage, parse_episode, parse_toc, site_of_target
from pipeline.syosetu.api import Api, Filters, same_version

#: Stop early when this many works in a row, from the start, fail to parse the same way.
LAYOUT_STOP_AFTER = 3
#: Without a terminal: a progress line at least this often (seconds), besides one per work.
LOG_EVERY = 30.0
#: Waits longer than this are announced, with their reason.
ANNOUNCE_WAIT = 5.0


class AgeGate(StopCrawl):
    """The site keeps sending us to its age check even with the over18 cookie."""


class LayoutStop(StopCrawl):
    """The first works all failed to parse the same way: the site's layout has changed."""


#: Bounds of the sizes a user chooses (the --help text states them).
MAX_LIMIT = 1_000_000
MAX_RETRIES = 100


@dataclass
class ScrapeOptions:
    raw_dir: Path
    site: str | None = None  # None: the site of the URLs given, else nocturne
    targets: list[str] = field(default_factory=list)
    limit: int = 0
    base_url: str | None = None
    api_url: str | None = None
    filters: Filters = field(default_factory=Filters)
    update: bool = False  # re-check stored works (all of the site's, or `targets`)
    all: bool = False  # discovery without a filter: everything the API lists
    politeness: Politeness = field(default_factory=Politeness)
    show_progress: bool = True  # bars on a terminal, lines otherwise; False: only notes

    def site_name(self) -> str:
        """The site to scrape: --site, else the one the URLs given name, else nocturne."""
        implied = sorted({s for s in (site_of_target(t) for t in self.targets) if s})
        return self.site or (implied[0] if implied else "nocturne")

    def validate(self) -> None:
        """Every option checked, one UsageError line each, before any request."""
        if self.site is not None and self.site not in SITES:
            raise UsageError(f"unknown site {self.site!r}: use nocturne or narou")
        implied = {s for s in (site_of_target(t) for t in self.targets) if s}
        if len(implied) > 1 or (self.site and implied and implied != {self.site}):
            sites = " and ".join(sorted(implied | cast(set[str], {self.site} - {None})))
            raise UsageError(f"the URLs given belong to {sites}; scrape one site per run")
        for t in self.targets:
            ncode_of(t)  # a bad ncode is one Error: line before anything else
        if not 0 <= self.limit <= MAX_LIMIT:
            raise UsageError(f"--limit must be 0 (no limit) to {MAX_LIMIT:,}, not {self.limit}")
        if self.politeness.retries > MAX_RETRIES:
            raise UsageError(f"--retries must be 0 to {MAX_RETRIES}, not {self.politeness.retries}")
        if not (self.targets or self.update or self.filters.any or self.all or self.limit):
            raise UsageError(
                "choose the works to download: ncodes or URLs, a filter (--genre, --keyword, "
                "--min-length, --kaiwaritu, --finished), --limit N, --update for the works "
                "already stored, or --all to mean everything the API lists"
            )
        site = SITES[self.site_name()]
        check_root(self.base_url or site.base_url, "--base-url")
        check_root(self.api_url or site.api_url, "--api-url")


@dataclass
class ScrapeResult:
    site: str = ""
    store: Path | None = None  # the site's folder of the raw store
    counters: Counters = field(default_factory=Counters)
    works: dict[str, str] = field(default_factory=dict)  # ncode -> new/updated/current/gone/failed/...
    failures: list[str] = field(default_factory=list)
    offsite: list[str] = field(default_factory=list)  # links and redirects not followed
    stopped: FetchError | None = None
    discovered: int | None = None  # the API's allcount, when discovering
    requests: int = 0
    retries: int = 0
    bytes: int = 0
    waited: float = 0.0
    seconds: float = 0.0


class _WorkFailed(FetchError):
    """One work cannot go on (its work page or a TOC page); `layout` when it did not parse."""

    def __init__(self, message: str, layout: bool = False):
        super().__init__(message)
        self.layout = layout


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def check_root(url: str, flag: str) -> str:
    """A site or API root given by the user, checked (one line when it cannot be used)."""
    if not isinstance(url, str) or not url.isascii() or not url.isprintable() or any(c.isspace() for c in url):
        raise UsageError(f"{flag} {url!r} is not a URL (printable ASCII, no spaces)")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise UsageError(f"{flag} {url!r} is not a URL ({exc})") from None
    if parts.scheme.lower() not in ("http", "https") or origin_of(url) is None:
        raise UsageError(f"{flag} {url!r} is not an http(s) URL with a host (and a numeric port, if any)")
    if parts.username or parts.password or parts.fragment:
        raise UsageError(f"{flag} {url!r}: no user name, password or #fragment, please")
    return url if url.endswith("/") else url + "/"


def _gate_or(exc: LayoutChanged, resp: Response) -> FetchError:
    """A page that does not parse is the age check shown in place, or a layout change."""
    if b"ageauth" in resp.content or "年齢確認".encode() in resp.content:
        return AgeGate(
            f"{resp.url}: the site shows its age check instead of the page, even with the cookie over18=yes; stopped"
        )
    return exc


def _charset(resp: Response) -> str | None:
    for part in resp.headers.get("Content-Type", "").split(";")[1:]:
        k, _, v = part.strip().partition("=")
        if k.lower() == "charset" and v:
            return v.strip('"')
    return None


@dataclass
class EpisodePlan:
    """What a work's TOC asks of its stored episodes: which stay as they are (`final`), which
    moved to a new number (`moves`: the TOC entry and the stored number), which to fetch
    (`todo`, each with its counter) and which the TOC no longer lists (`stale`)."""

    final: dict[int, dict] = field(default_factory=dict)
    moves: list[tuple[TocEntry, int]] = field(default_factory=list)
    todo: list[tuple[TocEntry, str]] = field(default_factory=list)
    stale: list[int] = field(default_factory=list)


def plan_episodes(entries: list[TocEntry], stored: dict[int, dict]) -> EpisodePlan:
    """The per-episode decision, from the TOC and the stored entries alone: an episode whose
    key (subtitle, dates) is unchanged stays; one whose key is stored once under another
    number moved; anything else is fetched."""
    by_key: dict[str, list[int]] = {}
    for n, info in stored.items():
        by_key.setdefault(json.dumps(info.get("key")), []).append(n)
    plan = EpisodePlan()
    for e in entries:
        old = stored.get(e.number)
        if old and old.get("key") == e.key:
            plan.final[e.number] = old
            continue
        same = by_key.get(json.dumps(e.key), [])
        if len(same) == 1 and same[0] != e.number and stored[same[0]].get("key") == e.key:
            plan.moves.append((e, same[0]))
        else:
            plan.todo.append((e, "episodes_revised" if old else "episodes_downloaded"))
    listed = {e.number for e in entries}
    plan.stale = [n for n in stored if n not in listed]
    return plan


@dataclass
class _Outcome:
    """The episodes of one work that could not be stored this run."""

    failed: list[int] = field(default_factory=list)
    gone: list[int] = field(default_factory=list)
    layout_failures: int = 0


class Scraper:
    def __init__(self, opts: ScrapeOptions, session: PoliteSession | None = None):
        opts.validate()
        self.opts = opts
        self.ncodes = list(dict.fromkeys(ncode_of(t) for t in opts.targets))
        self.site = SITES[opts.site_name()]
        self.base = check_root(opts.base_url or self.site.base_url, "--base-url")
        self.api_root = check_root(opts.api_url or self.site.api_url, "--api-url")
        self.store = Path(opts.raw_dir) / self.site.name
        self.session = session or PoliteSession(
            opts.politeness, cookies=self.site.cookies, origins=[self.base, self.api_root], cookie_origins=[self.base]
        )
        self.session.on_wait = self._announce_wait
        self.api = Api(self.session, self.site, self.api_root, self.say)
        self.result = ScrapeResult(site=self.site.name, store=self.store)
        self.c = self.result.counters
        self._bar = None
        self._lines = False
        self._last_line = time.monotonic()
        self._done = 0
        self._total: int | None = None

    # ------------------------------------------------------------ output

    def say(self, msg: str) -> None:
        if self._bar is not None:
            self._bar.write(msg, file=sys.stderr)
        else:
            print(msg, file=sys.stderr, flush=True)

    def _announce_wait(self, seconds: float, why: str) -> None:
        if seconds > ANNOUNCE_WAIT:
            self.say(why)

    def _status_line(self) -> str:
        st = self.session.stats
        of = f"/{self._total}" if self._total is not None else ""
        return (
            f"{self._done}{of} works, {self.c['episodes_downloaded'] + self.c['episodes_revised']} episodes "
            f"stored, {st.requests} requests, {st.retries} retries, {st.bytes / 1e6:.1f} MB, "
            f"waited {st.waited:.0f} s"
        )

    def _tick(self) -> None:
        if self._bar is not None:
            st = self.session.stats
            self._bar.set_postfix_str(
                f"{self.c['episodes_downloaded'] + self.c['episodes_revised']} ep, "
                f"{st.requests} req, {st.retries} retries, {st.bytes / 1e6:.1f} MB, "
                f"waited {st.waited:.0f} s",
                refresh=True,
            )
        elif self._lines and time.monotonic() - self._last_line >= LOG_EVERY:
            self._last_line = time.monotonic()
            self.say(f"scrape {self.site.name}: {self._status_line()}")

    def _work_done(self, ncode: str, status: str) -> None:
        self._done += 1
        if self._bar is not None:
            self._bar.update(1)
            self._tick()
        elif self._lines:
            self._last_line = time.monotonic()
            self.say(f"scrape {self.site.name}: {ncode} {status}; {self._status_line()}")

    # ------------------------------------------------------------ pages

    def _on_base(self, url: str) -> str:
        """A link to the real site's host, met while scraping a mirror (--base-url), is
        taken onto the mirror: nothing is fetched from a host the user did not choose."""
        parts = urlsplit(url)
        if (parts.hostname or "").lower() == self.site.host and host_of(url) != host_of(self.base):
            return urljoin(self.base, parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else ""))
        return url

    def fetch_page(self, url: str) -> Response:
        """A page of the site, through the age gate: a redirect to .../ageauth/?url=X is
        taken back to X once (with the over18 cookie). OffSite when the URL or a redirect
        hop leaves the site's origin: nothing is requested there."""
        url = self._on_base(url)
        gates = 0

        def on_redirect(src: str, target: str) -> str:
            nonlocal gates
            parts = urlsplit(target)
            if "ageauth" not in parts.path:
                return self._on_base(target)
            gates += 1
            if gates > 1:
                raise AgeGate(
                    f"{src}: the site still sends us to its age check ({host_of(target)}) "
                    "with the cookie over18=yes; stopped. Open the site in a browser to see "
                    "whether the age check changed"
                )
            back = parse_qs(parts.query).get("url", [src])[0]
            if host_of(back) != host_of(src):  # a mirror or a test server: stay on it
                b = urlsplit(back)
                back = urljoin(src, b.path + (f"?{b.query}" if b.query else ""))
            return back

        try:
            if origin_of(url) != origin_of(self.base):
                raise OffSite(f"{url}: not on {host_of(self.base)}; not fetched", url)
            resp = self.session.get(url, on_redirect=on_redirect)
            if origin_of(resp.url) != origin_of(self.base):
                raise OffSite(f"{resp.url}: not on {host_of(self.base)}; not fetched", resp.url)
            return resp
        finally:
            self._tick()

    def _offsite(self, ncode: str, what: str, exc: OffSite, redirect: bool) -> str:
        msg = f"{ncode} {what} {'redirects' if redirect else 'links'} to {exc.host}: not fetched"
        self.c.add("offsite_not_fetched")
        self.result.offsite.append(msg)
        self.say(msg)
        return msg

    # ------------------------------------------------------------ one work

    def scrape_work(self, ncode: str, api_rec: dict | None) -> str:
        writer = rawstore.WorkWriter(rawstore.work_dir(self.opts.raw_dir, self.site.name, ncode))
        meta = rawstore.read_meta_or_empty(writer.work)
        if (
            meta.get("complete")
            and not rawstore.has_progress(writer.work)
            and not meta.get("gone")
            and same_version(meta.get("api"), api_rec)
            and len(rawstore.stored_episodes(writer.work, meta)) == len(meta.get("episodes") or [])
        ):
            self.c.add("episodes_current", len(meta.get("episodes") or []))
            return "current"
        work_url = urljoin(self.base, ncode + "/")
        try:
            first = self.fetch_page(work_url)
        except NotFound:
            self.say(f"{ncode}: gone (the work answers 404); skipped")
            if meta and not meta.get("gone"):
                writer.update_meta({**meta, "gone": True, "gone_at": _now()})
            return "gone"
        except Disallowed:
            self.say(f"{ncode}: robots.txt disallows {work_url}; skipped")
            return "disallowed"
        except OffSite as exc:
            raise _WorkFailed(self._offsite(ncode, "work page", exc, redirect=True)) from exc
        try:
            toc = parse_toc(first.content, first.url, header_charset=_charset(first))
        except LayoutChanged as exc:
            gated = _gate_or(exc, first)
            if isinstance(gated, AgeGate):
                raise gated from exc
            raise _WorkFailed(str(exc), layout=True) from exc
        if toc.short:
            return self._short_work(ncode, writer, meta, api_rec, toc, first)
        return self._serial_work(ncode, writer, meta, api_rec, toc, first)

    def _meta(
        self,
        ncode: str,
        meta: dict,
        api_rec: dict | None,
        toc: TocPage,
        short: bool,
        episodes: list[dict],
        complete: bool,
        missing: list[int],
        gone: list[int],
    ) -> dict:
        api = api_rec or meta.get("api")
        return {
            "source": self.site.name,
            "work_id": ncode,
            "title": (api or {}).get("title") or toc.title or meta.get("title", ""),
            "author": (api or {}).get("writer") or toc.author or meta.get("author", ""),
            "url": urljoin(self.base, ncode + "/"),
            "short": short,
            "layout": toc.layout,
            "complete": complete,
            "missing_episodes": missing,
            "gone_episodes": gone,
            "fetched_at": _now(),
            "first_fetched_at": meta.get("first_fetched_at") or meta.get("fetched_at") or _now(),
            "api": api,
            "episodes": episodes,
            "nocpipe_version": __version__,
        }

    def _short_work(
        self, ncode: str, writer: rawstore.WorkWriter, meta: dict, api_rec: dict | None, toc: TocPage, first: Response
    ) -> str:
        try:
            page = parse_episode(first.content, first.url, header_charset=_charset(first))
        except LayoutChanged as exc:
            raise _WorkFailed(str(exc), layout=True) from exc
        digest = hashlib.sha256(json.dumps(page.body, ensure_ascii=False).encode()).hexdigest()
        old = rawstore.stored_episodes(writer.work, meta, with_progress=True).get(1)
        if old and old.get("body_sha256") == digest and not meta.get("gone"):
            self.c.add("episodes_current")
            if not same_version(meta.get("api"), api_rec) and api_rec:
                writer.update_meta({**meta, "api": api_rec, "fetched_at": _now()})
            return "current"
        info = {
            "number": 1,
            "subtitle": toc.title,
            "chapter": None,
            "published": None,
            "revised": None,
            "url": first.url,
            "body_sha256": digest,
            "fetched_at": _now(),
        }
        entry = writer.store(info, first.content)
        self.c.add("episodes_revised" if old else "episodes_downloaded")
        self.result.bytes += len(first.content)
        writer.commit(self._meta(ncode, meta, api_rec, toc, True, [entry], True, [], []))
        return "updated" if meta else "new"

    def _toc_entries(self, ncode: str, toc: TocPage, first: Response) -> list[TocEntry]:
        entries = list(toc.entries)
        seen = {first.url}
        nxt = toc.next_url
        while nxt and nxt not in seen:
            seen.add(nxt)
            try:
                resp = self.fetch_page(nxt)
            except NotFound as exc:
                raise _WorkFailed(
                    f"{nxt}: a TOC page the pager links to answers 404; the page layout has probably changed",
                    layout=True,
                ) from exc
            except OffSite as exc:
                raise _WorkFailed(
                    self._offsite(
                        ncode, "table of contents", exc, redirect=origin_of(self._on_base(nxt)) == origin_of(self.base)
                    )
                ) from exc
            try:
                page = parse_toc(
                    resp.content,
                    resp.url,
                    chapter=entries[-1].chapter if entries else None,
                    header_charset=_charset(resp),
                )
            except LayoutChanged as exc:
                raise _WorkFailed(str(exc), layout=True) from exc
            entries.extend(page.entries)
            nxt = page.next_url
        numbers = [e.number for e in entries]
        if len(set(numbers)) != len(numbers):
            raise _WorkFailed(
                f"{first.url}: the TOC pages list an episode twice; the page layout has probably changed", layout=True
            )
        return sorted(entries, key=lambda e: e.number)

    def _serial_work(
        self, ncode: str, writer: rawstore.WorkWriter, meta: dict, api_rec: dict | None, toc: TocPage, first: Response
    ) -> str:
        entries = self._toc_entries(ncode, toc, first)
        stored = rawstore.stored_episodes(writer.work, meta, with_progress=True)
        plan = plan_episodes(entries, stored)
        self.c.add("episodes_current", len(plan.final))
        final = dict(plan.final)
        # Renumbered episodes (the author deleted or inserted one): move, do not download.
        for entry in writer.move([({**stored[src], **self._info(e)}, stored[src]) for e, src in plan.moves]):
            final[entry["number"]] = entry
            self.c.add("episodes_renumbered")
        outcome = _Outcome()
        for e, why in plan.todo:
            resp = self._fetch_episode(ncode, e, outcome)
            if resp is None:
                if e.number in outcome.failed and e.number in stored:
                    final[e.number] = stored[e.number]  # kept until a rerun gets the new one
                continue
            final[e.number] = writer.store({**self._info(e), "url": resp.url, "fetched_at": _now()}, resp.content)
            self.c.add(why)
            self.result.bytes += len(resp.content)
        episodes = [final[n] for n in sorted(final)]
        failed, gone = sorted(outcome.failed), sorted(outcome.gone)
        changed = (
            not meta
            or plan.moves
            or plan.stale
            or len(plan.todo) > len(failed) + len(gone)
            or (api_rec is not None and api_rec != meta.get("api"))
            or meta.get("episodes") != episodes
            or meta.get("gone")
            or failed != meta.get("missing_episodes")
            or gone != meta.get("gone_episodes")
        )
        for n in plan.stale:
            writer.drop(n)
        new_meta = self._meta(ncode, meta, api_rec, toc, False, episodes, not failed, failed, gone)
        writer.commit(new_meta if episodes and changed else None)
        self.c.add("episodes_dropped", len(plan.stale))
        if failed:
            if outcome.layout_failures and outcome.layout_failures == len(plan.todo) and not final:
                raise _WorkFailed(f"{ncode}: no episode page parsed ({self.result.failures[-1]})", layout=True)
            return "failed"
        if not meta:
            return "new" if episodes else "failed"
        return "updated" if (plan.moves or plan.stale or plan.todo) else "current"

    def _fetch_episode(self, ncode: str, e: TocEntry, outcome: _Outcome) -> Response | None:
        """One episode page, checked to parse before it is stored; None when it cannot be
        had (gone, disallowed, off-site, failed: noted in `outcome` and the counters)."""
        try:
            resp = self.fetch_page(e.url)
        except NotFound:
            outcome.gone.append(e.number)
            self.c.add("episodes_gone")
            self.say(f"{ncode}: episode {e.number} answers 404; skipped")
            return None
        except Disallowed:
            outcome.gone.append(e.number)
            self.c.add("episodes_disallowed")
            self.say(f"{ncode}: robots.txt disallows episode {e.number}; skipped")
            return None
        except OffSite as exc:
            on_site = origin_of(self._on_base(e.url)) == origin_of(self.base)
            self._episode_failed(
                e, outcome, self._offsite(ncode, f"episode {e.number}", exc, on_site), "episodes_offsite"
            )
            return None
        except StopCrawl:
            raise
        except FetchError as exc:
            self._episode_failed(e, outcome, f"{ncode} episode {e.number}: {exc}")
            self.say(f"{ncode}: episode {e.number} failed: {exc}")
            return None
        try:
            parse_episode(resp.content, resp.url, header_charset=_charset(resp))
        except LayoutChanged as exc:
            gated = _gate_or(exc, resp)
            if isinstance(gated, AgeGate):
                raise gated from exc
            outcome.layout_failures += 1
            self._episode_failed(e, outcome, f"{ncode} episode {e.number}: {exc}")
            self.say(f"{ncode}: episode {e.number} failed: {exc}")
            return None
        return resp

    def _episode_failed(self, e: TocEntry, outcome: _Outcome, msg: str, counter: str = "episodes_failed") -> None:
        outcome.failed.append(e.number)
        self.c.add(counter)
        self.result.failures.append(msg)

    @staticmethod
    def _info(e: TocEntry) -> dict:
        return {
            "number": e.number,
            "subtitle": e.subtitle,
            "chapter": e.chapter,
            "published": e.published,
            "revised": e.revised,
            "key": e.key,
            "url": e.url,
        }

    # ------------------------------------------------------------ the run

    def stored_ncodes(self) -> list[str]:
        """The works of this site in the raw store, finished or half done."""
        if not self.store.is_dir():
            return []
        return [w.work_id for w in rawstore.work_dirs(self.opts.raw_dir, [self.site.name], finished_only=False)]

    def discover(self) -> Iterator[dict]:
        def on_total(total: int) -> None:
            self.result.discovered = total

        return self.api.discover(self.opts.filters, self.opts.limit, on_total)

    def lookup(self, ncodes: list[str]) -> dict[str, dict]:
        if self.opts.base_url and not self.opts.api_url:
            self.say(
                "note: --base-url without --api-url: the official API describes the real site, "
                "so tables of contents decide what changed"
            )
            return {}
        return self.api.lookup(ncodes)

    def targets(self) -> tuple[Iterator[tuple[str, dict | None]], int | None]:
        ncodes = self.ncodes
        if self.opts.update:
            stored = self.stored_ncodes()
            if ncodes:
                missing = [n for n in ncodes if n not in stored]
                if missing:
                    raise UsageError(f"{', '.join(missing)} not in {self.store}; scrape new works without --update")
            else:
                ncodes = stored
                if not ncodes:
                    self.say(f"note: {self.store} holds no works yet; nothing to update")
        if ncodes or self.opts.update:
            records = self.lookup(ncodes) if ncodes else {}
            return iter([(n, records.get(n)) for n in ncodes]), len(ncodes)
        return ((r["ncode"], r) for r in self.discover()), None

    def _start_output(self) -> None:
        if self.opts.show_progress:
            if sys.stderr.isatty():
                from tqdm import tqdm

                self._bar = tqdm(
                    desc=f"scrape {self.site.name}", unit="work", file=sys.stderr, dynamic_ncols=True, leave=False
                )
            else:
                self._lines = True
        if self.opts.politeness.delay < 1 and not self.opts.base_url:
            self.say(
                f"note: --delay {self.opts.politeness.delay:g} is under 1 s against {self.base}; "
                "the default of 1 s is the polite minimum"
            )
        if not self.opts.politeness.contact:
            self.say("note: no --contact (or NOCPIPE_CONTACT) given; the site cannot reach you if something goes wrong")

    def _set_total(self, total: int | None) -> None:
        if self._total is not None:
            return
        known = total if total is not None else self.result.discovered
        if known is not None:
            self._total = min(known, self.opts.limit) if self.opts.limit else known
            if self._bar is not None:
                self._bar.total = self._total
                self._bar.refresh()

    def _one_work(self, ncode: str, rec: dict | None, layout_run: list[str] | None) -> tuple[str, list[str] | None]:
        """Scrape one work; its status, and the run of layout failures since the start (None
        once anything else happened). LayoutStop when that run is long enough."""
        try:
            status = self.scrape_work(ncode, rec)
        except StopCrawl:
            raise
        except FetchError as exc:  # its work page or a TOC page: the next run tries again
            self.result.failures.append(str(exc))
            self.say(f"{ncode}: failed: {exc}")
            if not (isinstance(exc, _WorkFailed) and exc.layout and layout_run is not None):
                return "failed", None
            layout_run.append(str(exc))
            if len(layout_run) >= LAYOUT_STOP_AFTER:
                self.result.works[ncode] = "failed"
                self.c.add("works_failed")
                raise LayoutStop(
                    f"the first {len(layout_run)} works all failed the same way (the "
                    f"page layout has probably changed, so nocpipe needs an update); "
                    f"stopped early. Last: {layout_run[-1]}"
                ) from exc
            return "failed", layout_run
        return status, layout_run if status in ("gone", "disallowed") else None

    def run(self) -> ScrapeResult:
        start = time.monotonic()
        self._start_output()
        layout_run: list[str] | None = []  # the first works' layout failures, while nothing else happened
        try:
            items, total = self.targets()
            for ncode, rec in items:
                self._set_total(total)
                status, layout_run = self._one_work(ncode, rec, layout_run)
                self.result.works[ncode] = status
                self.c.add(f"works_{status}")
                self._work_done(ncode, status)
        except StopCrawl as exc:
            self.result.stopped = exc
        finally:
            if self._bar is not None:
                self._bar.close()
            self._bar = None
            st = self.session.stats
            self.result.requests, self.result.waited, self.result.retries = st.requests, st.waited, st.retries
            self.result.seconds = time.monotonic() - start
        return self.result


def scrape(opts: ScrapeOptions, session: PoliteSession | None = None) -> ScrapeResult:
    """Run the scrape; the result says what happened, `stopped` why it ended early."""
    scraper = Scraper(opts, session)
    try:
        # One run at a time on a site's part of the store: a second one would fetch the same
        # pages and interleave progress lines.
        with folder_lock(scraper.store, "scrape", "raw store"):
            return scraper.run()
    finally:
        if session is None:
            scraper.session.close()


def summary(result: ScrapeResult) -> str:
    c = result.counters
    works = sum(v for k, v in c.values.items() if k.startswith("works_"))
    return (
        f"{works} works: {c['works_new']} new, {c['works_updated']} updated, "
        f"{c['works_current']} current, {c['works_gone']} gone, {c['works_failed']} failed"
        + (f", {c['works_disallowed']} disallowed by robots.txt" if c["works_disallowed"] else "")
        + f"; episodes: {c['episodes_downloaded']} downloaded, {c['episodes_revised']} revised, "
        f"{c['episodes_current']} skipped as current, {c['episodes_gone']} gone, "
        f"{c['episodes_failed'] + c['episodes_offsite']} failed"
        + (f", {c['episodes_renumbered']} renumbered" if c["episodes_renumbered"] else "")
        + (
            f"; {c['offsite_not_fetched']} links/redirects to other hosts not fetched"
            if c["offsite_not_fetched"]
            else ""
        )
        + f"; {result.requests} requests, {result.retries} retries, {result.bytes / 1e6:.2f} MB stored, "
        f"waited {result.waited:.1f} s, {result.seconds:.1f} s in all"
    )
