"""nocpipe scrape: works of the syosetu.com family into the raw store, politely.

    targets: the ncodes / URLs given, or discovery through the official API (filters,
             lim/st paging, and lastup windows beyond the API's 2000-result reach)
      -> API records say which stored works may have changed (novelupdated_at,
         general_lastup, general_all_no): an unchanged complete work costs no request
      -> per work: the work page; a short story is its own text, a serial has TOC pages
         (?p=N) in the current or the older layout
      -> compare the TOC with meta.json: fetch new episodes and those whose subtitle,
         date or 改稿 date changed; move renumbered ones; forget ones no longer listed
      -> every page is checked before it is stored (it must parse to a body), and stored
         as received: raw/<site>/<ncode>/episodes/NNNN.html
      -> meta.json (title, author, url, the API record, fetched_at, the episode list with
         dates) is written last; extract-pairs lists a work only once it exists.

While a work is half done, .progress.jsonl beside meta.json lists the episodes already
stored (one JSON line with the file's SHA-256 appended just before the file is renamed
into place; a line whose file does not match is ignored), so an interrupted run (kill -9, Ctrl-C) starts again where it stopped; every
file is written atomically, so nothing partial is ever visible.

Faults: a work that answers 404 is "gone"; a page whose retries ran out is "failed"
(the rest of the work goes on, a rerun fetches it); robots.txt trouble, the 503 circuit
breaker, a long Retry-After, an age gate that will not open and a changed page layout
stop the run, with what was finished kept.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

from pipeline import __version__, rawstore
from pipeline.errors import FetchError, UsageError
from pipeline.http import (Disallowed, NotFound, Politeness, PoliteSession, Response, StopCrawl,
                           host_of)
from pipeline.ids import NCODE_RE, ncode_of
from pipeline.parsers.syosetu import LayoutChanged, TocEntry, parse_episode, parse_toc
from pipeline.records import Counters

API_MAX_LIM = 500          # the API's largest page
API_MAX_ST = 2000          # the API's largest start position
FIRST_LASTUP = 1072915200  # 2004-01-01: no work of the family is older
NCODES_PER_LOOKUP = 100
ORDERS = ("new", "favnovelcnt", "reviewcnt", "hyoka", "hyokaasc", "dailypoint", "weeklypoint",
          "monthlypoint", "quarterpoint", "yearlypoint", "impressioncnt", "hyokacnt", "hyokacntasc",
          "weekly", "lengthdesc", "lengthasc", "ncodedesc", "ncodeasc", "old")
#: API fields that change when a work or one of its episodes changes.
VERSION_FIELDS = ("novelupdated_at", "general_lastup", "general_all_no")
_RANGE_RE = re.compile(r"\d+-\d*|-\d+|\d+")


@dataclass(frozen=True)
class Site:
    name: str
    base_url: str
    api_url: str
    host: str
    genre_param: str
    fields: str
    cookies: dict[str, str] = field(default_factory=dict)


_FIELDS = "t-n-u-w-s-k-nt-e-ga-l-ka-gf-gl-nu-ua"
SITES = {
    "nocturne": Site("nocturne", "https://novel18.syosetu.com/", "https://api.syosetu.com/novel18api/api/",
                     "novel18.syosetu.com", "nocgenre", _FIELDS + "-ng", {"over18": "yes"}),
    "narou": Site("narou", "https://ncode.syosetu.com/", "https://api.syosetu.com/novelapi/api/",
                  "ncode.syosetu.com", "genre", _FIELDS + "-bg-g"),
}


class AgeGate(StopCrawl):
    """The site keeps sending us to its age check even with the over18 cookie."""


@dataclass
class ScrapeOptions:
    raw_dir: Path
    site: str = "nocturne"
    targets: list[str] = field(default_factory=list)
    limit: int = 0
    base_url: str | None = None
    api_url: str | None = None
    genres: tuple[int, ...] = ()
    keyword: str | None = None
    min_length: int | None = None
    kaiwaritu: str | None = None
    finished: bool = False
    order: str = "new"
    politeness: Politeness = field(default_factory=Politeness)
    show_progress: bool = True


@dataclass
class ScrapeResult:
    counters: Counters = field(default_factory=Counters)
    works: dict[str, str] = field(default_factory=dict)  # ncode -> new/updated/current/gone/failed/...
    failures: list[str] = field(default_factory=list)
    stopped: FetchError | None = None
    discovered: int | None = None                        # the API's allcount, when discovering
    requests: int = 0
    bytes: int = 0
    waited: float = 0.0
    seconds: float = 0.0


def site_of_target(target: str) -> str | None:
    low = target.lower()
    for site in SITES.values():
        if site.host in low:
            return site.name
    return None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _gate_or(exc: LayoutChanged, resp: Response) -> FetchError:
    """A page that does not parse is the age check shown in place, or a layout change."""
    if b"ageauth" in resp.content or "年齢確認".encode() in resp.content:
        return AgeGate(f"{resp.url}: the site shows its age check instead of the page, even with "
                       "the cookie over18=yes; stopped")
    return exc


def _root(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"{url!r} is not an http(s) URL")
    return url if url.endswith("/") else url + "/"


class Scraper:
    def __init__(self, opts: ScrapeOptions, session: PoliteSession | None = None):
        if opts.site not in SITES:
            raise UsageError(f"unknown site {opts.site!r}: use nocturne or narou")
        if opts.limit < 0:
            raise UsageError("--limit must be 0 (no limit) or more")
        if opts.order not in ORDERS:
            raise UsageError(f"unknown --order {opts.order!r}: use one of {', '.join(ORDERS)}")
        if opts.kaiwaritu is not None and not _RANGE_RE.fullmatch(opts.kaiwaritu):
            raise UsageError(f"--kaiwaritu takes a percentage range like 30-70, not {opts.kaiwaritu!r}")
        if opts.min_length is not None and opts.min_length < 0:
            raise UsageError("--min-length must be 0 or more characters")
        self.opts = opts
        self.ncodes = list(dict.fromkeys(ncode_of(t) for t in opts.targets))
        self.site = SITES[opts.site]
        self.base = _root(opts.base_url or self.site.base_url)
        self.api = _root(opts.api_url or self.site.api_url)
        self.store = opts.raw_dir / self.site.name
        self.session = session or PoliteSession(opts.politeness, cookies=self.site.cookies)
        self.result = ScrapeResult()
        self.c = self.result.counters
        self._bar = None

    # ------------------------------------------------------------ output

    def say(self, msg: str) -> None:
        if self._bar is not None:
            self._bar.write(msg, file=sys.stderr)
        else:
            print(msg, file=sys.stderr)

    def _tick(self) -> None:
        if self._bar is not None:
            st = self.session.stats
            self._bar.set_postfix_str(f"{self.c['episodes_downloaded'] + self.c['episodes_revised']} ep, "
                                      f"{st.requests} req, {st.bytes / 1e6:.1f} MB, waited {st.waited:.0f} s",
                                      refresh=True)

    # ------------------------------------------------------------ pages

    def _on_base(self, url: str) -> str:
        """A link to the real site's host, met while scraping a mirror (--base-url), is
        taken onto the mirror: nothing is fetched from a host the user did not choose."""
        parts = urlsplit(url)
        if parts.netloc.lower() == self.site.host and host_of(url) != host_of(self.base):
            return urljoin(self.base, parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else ""))
        return url

    def fetch_page(self, url: str) -> Response:
        """A page of the site, through the age gate: a redirect to .../ageauth/?url=X is
        taken back to X once (with the over18 cookie, which every request carries)."""
        url = self._on_base(url)
        gates = 0

        def on_redirect(src: str, target: str) -> str:
            nonlocal gates
            parts = urlsplit(target)
            if "ageauth" not in parts.path:
                return self._on_base(target)
            gates += 1
            if gates > 1:
                raise AgeGate(f"{src}: the site still sends us to its age check ({host_of(target)}) "
                              "with the cookie over18=yes; stopped. Open the site in a browser to see "
                              "whether the age check changed")
            back = parse_qs(parts.query).get("url", [src])[0]
            if host_of(back) != host_of(src):  # a mirror or a test server: stay on it
                b = urlsplit(back)
                back = urljoin(src, b.path + (f"?{b.query}" if b.query else ""))
            return back

        try:
            return self.session.get(url, on_redirect=on_redirect)
        finally:
            self._tick()

    # ------------------------------------------------------------ the API

    def api_query(self, params: dict) -> tuple[int, list[dict]]:
        """One API request: (allcount, records with lower-case ncodes)."""
        resp = self.session.get(self.api, params={"out": "json", "gzip": 5, "of": self.site.fields, **params})
        data = resp.content
        try:
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            arr = json.loads(data.decode("utf-8"))
        except (OSError, EOFError, zlib.error, UnicodeDecodeError, ValueError) as exc:
            raise FetchError(f"{resp.url}: the API answered something that is not its gzip JSON ({exc})") from exc
        if isinstance(arr, dict) and arr.get("error"):
            raise FetchError(f"{resp.url}: the API answered an error: {arr.get('error')}")
        if not isinstance(arr, list) or not arr or not isinstance(arr[0], dict) or "allcount" not in arr[0]:
            raise FetchError(f"{resp.url}: the API answer has no allcount; has the API changed?")
        records = []
        for rec in arr[1:]:
            if isinstance(rec, dict) and isinstance(rec.get("ncode"), str) \
                    and NCODE_RE.fullmatch(rec["ncode"].lower()):
                records.append({**rec, "ncode": rec["ncode"].lower()})
        self.c.add("api_requests")
        return int(arr[0]["allcount"]), records

    def lookup(self, ncodes: list[str]) -> dict[str, dict]:
        """API records of the given works; {} (the TOCs decide) when the API cannot help."""
        if self.opts.base_url and not self.opts.api_url:
            self.say("note: --base-url without --api-url: the official API describes the real site, "
                     "so tables of contents decide what changed")
            return {}
        found: dict[str, dict] = {}
        for i in range(0, len(ncodes), NCODES_PER_LOOKUP):
            batch = ncodes[i:i + NCODES_PER_LOOKUP]
            try:
                _, records = self.api_query({"ncode": "-".join(batch), "lim": API_MAX_LIM})
            except FetchError as exc:
                self.say(f"warning: API lookup failed ({exc}); tables of contents decide what changed")
                return {}
            found.update((r["ncode"], r) for r in records)
        return found

    def filter_params(self) -> dict:
        o = self.opts
        params: dict[str, object] = {"order": o.order}
        if o.genres:
            params[self.site.genre_param] = "-".join(str(g) for g in o.genres)
        if o.keyword:
            params["word"] = o.keyword
        if o.min_length:
            params["minlen"] = o.min_length
        if o.kaiwaritu:
            params["kaiwaritu"] = o.kaiwaritu
        if o.finished:
            params["type"] = "ter"  # short stories and finished serials
        return params

    def discover(self) -> Iterator[dict]:
        """API records matching the filters, each work once. The API stops at st=2000:
        a larger result is split into lastup windows (each <= 2000), newest first."""
        params = self.filter_params()
        lim = min(API_MAX_LIM, self.opts.limit) if self.opts.limit else API_MAX_LIM
        total, first = self.api_query({**params, "lim": lim, "st": 1})
        self.result.discovered = total
        seen: set[str] = set()
        if total <= API_MAX_ST or (self.opts.limit and self.opts.limit <= API_MAX_ST):
            records = self._pages(params, lim, total, first)
        else:
            # An API that ignored lastup would split forever: a window before any work must be empty.
            probe, _ = self.api_query({**params, "lastup": f"1-{FIRST_LASTUP - 1}", "lim": 1, "st": 1})
            if probe:
                self.say(f"warning: the API does not filter by lastup, so only the first {API_MAX_ST} "
                         f"of {total} works can be listed")
                records = self._pages(params, lim, total, first)
            else:
                records = self._split(params, lim, FIRST_LASTUP, int(time.time()) + 86400)
        for rec in records:
            if rec["ncode"] not in seen:
                seen.add(rec["ncode"])
                yield rec

    def _pages(self, params: dict, lim: int, total: int, first: list[dict]) -> Iterator[dict]:
        yield from first
        got, st = len(first), 1 + lim
        while got < total and st <= API_MAX_ST and first:
            _, records = self.api_query({**params, "lim": lim, "st": st})
            if not records:
                break
            yield from records
            got += len(records)
            st += lim

    def _split(self, params: dict, lim: int, lo: int, hi: int) -> Iterator[dict]:
        """Halve [lo, hi] until each window's result fits the API's reach."""
        mid = (lo + hi) // 2
        for a, b in ((mid + 1, hi), (lo, mid)):
            if a > b:
                continue
            window = {**params, "lastup": f"{a}-{b}"}
            total, first = self.api_query({**window, "lim": lim, "st": 1})
            if total <= API_MAX_ST or a == b:
                if total > API_MAX_ST:
                    self.say(f"warning: {total} works last updated in one second; only {API_MAX_ST} reachable")
                yield from self._pages(window, lim, total, first)
            else:
                yield from self._split(params, lim, a, b)

    # ------------------------------------------------------------ one work

    @staticmethod
    def _same_version(old: dict | None, new: dict | None) -> bool:
        if not old or not new:
            return False
        keys = [k for k in VERSION_FIELDS if k in new]
        return bool(keys) and all(old.get(k) == new.get(k) for k in keys)

    def scrape_work(self, ncode: str, api_rec: dict | None) -> str:
        work_dir = rawstore.work_dir(self.opts.raw_dir, self.site.name, ncode)
        rawstore.clean(work_dir)
        meta = rawstore.read_meta_or_empty(work_dir)
        progress = rawstore.has_progress(work_dir)
        if meta.get("complete") and not progress and self._same_version(meta.get("api"), api_rec):
            self.c.add("episodes_current", len(meta.get("episodes") or []))
            return "current"
        work_url = urljoin(self.base, ncode + "/")
        try:
            first = self.fetch_page(work_url)
        except NotFound:
            self.say(f"{ncode}: gone (the work answers 404); skipped")
            return "gone"
        except Disallowed:
            self.say(f"{ncode}: robots.txt disallows {work_url}; skipped")
            return "disallowed"
        try:
            toc = parse_toc(first.content, first.url)
        except LayoutChanged as exc:
            raise _gate_or(exc, first) from exc
        if toc.short:
            return self._short_work(ncode, work_dir, meta, progress, api_rec, toc, first)
        return self._serial_work(ncode, work_dir, meta, progress, api_rec, toc, first)

    def _meta(self, ncode: str, meta: dict, api_rec: dict | None, toc, short: bool,
              episodes: list[dict], complete: bool, missing: list[int], gone: list[int]) -> dict:
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

    def _short_work(self, ncode: str, work_dir: Path, meta: dict, progress: bool, api_rec: dict | None,
                    toc, first: Response) -> str:
        page = parse_episode(first.content, first.url)
        digest = hashlib.sha256(json.dumps(page.body, ensure_ascii=False).encode()).hexdigest()
        old = rawstore.stored_episodes(work_dir, meta, with_progress=True).get(1)
        if old and old.get("body_sha256") == digest:
            self.c.add("episodes_current")
            if not self._same_version(meta.get("api"), api_rec) and api_rec:
                rawstore.write_meta(work_dir, {**meta, "api": api_rec, "fetched_at": _now()})
            return "current"
        rawstore.write_episode(work_dir, 1, first.content)
        info = {"number": 1, "subtitle": toc.title, "chapter": None, "published": None, "revised": None,
                "url": first.url, "file": rawstore.episode_file(1), "bytes": len(first.content),
                "sha256": hashlib.sha256(first.content).hexdigest(), "body_sha256": digest,
                "fetched_at": _now()}
        self.c.add("episodes_revised" if old else "episodes_downloaded")
        self.result.bytes += len(first.content)
        rawstore.write_meta(work_dir, self._meta(ncode, meta, api_rec, toc, True, [info], True, [], []))
        rawstore.drop_progress(work_dir)
        return "updated" if meta else "new"

    def _toc_entries(self, toc, first: Response) -> list[TocEntry]:
        entries = list(toc.entries)
        seen = {first.url}
        nxt = toc.next_url
        while nxt and nxt not in seen:
            seen.add(nxt)
            try:
                resp = self.fetch_page(nxt)
            except NotFound as exc:
                raise LayoutChanged(f"{nxt}: a TOC page the pager links to answers 404; the page layout "
                                    "has probably changed") from exc
            page = parse_toc(resp.content, resp.url, chapter=entries[-1].chapter if entries else None)
            entries.extend(page.entries)
            nxt = page.next_url
        numbers = [e.number for e in entries]
        if len(set(numbers)) != len(numbers):
            raise LayoutChanged(f"{first.url}: the TOC pages list an episode twice; the page layout has "
                                "probably changed")
        return sorted(entries, key=lambda e: e.number)

    def _serial_work(self, ncode: str, work_dir: Path, meta: dict, progress: bool, api_rec: dict | None,
                     toc, first: Response) -> str:
        entries = self._toc_entries(toc, first)
        stored = rawstore.stored_episodes(work_dir, meta, with_progress=True)
        by_key: dict[str, list[int]] = {}
        for n, info in stored.items():
            by_key.setdefault(json.dumps(info.get("key")), []).append(n)

        final: dict[int, dict] = {}
        moves: dict[int, int] = {}
        todo: list[tuple[TocEntry, str]] = []
        for e in entries:
            old = stored.get(e.number)
            if old and old.get("key") == e.key:
                final[e.number] = old
                continue
            same = by_key.get(json.dumps(e.key), [])
            if len(same) == 1 and same[0] != e.number and stored[same[0]].get("key") == e.key:
                moves[e.number] = same[0]
            else:
                todo.append((e, "episodes_revised" if old else "episodes_downloaded"))
        listed = {e.number for e in entries}
        stale = [n for n in stored if n not in listed]
        self.c.add("episodes_current", len(final))

        # Renumbered episodes (the author deleted or inserted one): move, do not download.
        if moves:
            data = {src: rawstore.episode_path(work_dir, stored[src]).read_bytes()
                    for src in set(moves.values())}
            entry_of = {e.number: e for e in entries}
            for dst, src in sorted(moves.items()):
                info = {**stored[src], **self._info(entry_of[dst]), "file": rawstore.episode_file(dst),
                        "sha256": hashlib.sha256(data[src]).hexdigest()}
                rawstore.append_progress(work_dir, info)
                rawstore.write_episode(work_dir, dst, data[src])
                final[dst] = info
                self.c.add("episodes_renumbered")

        failed: list[int] = []
        gone: list[int] = []
        for e, why in todo:
            try:
                resp = self.fetch_page(e.url)
            except NotFound:
                gone.append(e.number)
                self.c.add("episodes_gone")
                self.say(f"{ncode}: episode {e.number} answers 404; skipped")
                continue
            except Disallowed:
                gone.append(e.number)
                self.c.add("episodes_disallowed")
                self.say(f"{ncode}: robots.txt disallows episode {e.number}; skipped")
                continue
            except (StopCrawl, LayoutChanged):
                raise
            except FetchError as exc:
                if e.number in stored:  # keep the version we have until a rerun gets the new one
                    final[e.number] = stored[e.number]
                failed.append(e.number)
                self.c.add("episodes_failed")
                self.result.failures.append(str(exc))
                self.say(f"{ncode}: episode {e.number} failed: {exc}")
                continue
            try:
                parse_episode(resp.content, resp.url)  # checked before anything is stored
            except LayoutChanged as exc:
                raise _gate_or(exc, resp) from exc
            info = {**self._info(e), "url": resp.url, "file": rawstore.episode_file(e.number),
                    "bytes": len(resp.content), "sha256": hashlib.sha256(resp.content).hexdigest(),
                    "fetched_at": _now()}
            # First the line, then the file: see rawstore.stored_episodes.
            rawstore.append_progress(work_dir, info)
            rawstore.write_episode(work_dir, e.number, resp.content)
            final[e.number] = info
            self.c.add(why)
            self.result.bytes += len(resp.content)

        episodes = [final[n] for n in sorted(final)]
        changed = (not meta or moves or stale or len(todo) > len(failed) + len(gone)
                   or (api_rec is not None and api_rec != meta.get("api"))
                   or meta.get("episodes") != episodes
                   or sorted(failed) != meta.get("missing_episodes")
                   or sorted(gone) != meta.get("gone_episodes"))
        if episodes and changed:
            rawstore.write_meta(work_dir, self._meta(ncode, meta, api_rec, toc, False, episodes,
                                                     not failed, sorted(failed), sorted(gone)))
        for n in stale:
            (work_dir / rawstore.episode_file(n)).unlink(missing_ok=True)
            self.c.add("episodes_dropped")
        rawstore.drop_progress(work_dir)
        if failed:
            return "failed"
        if not meta:
            return "new" if episodes else "failed"
        return "updated" if (moves or stale or todo) else "current"

    @staticmethod
    def _info(e: TocEntry) -> dict:
        return {"number": e.number, "subtitle": e.subtitle, "chapter": e.chapter, "published": e.published,
                "revised": e.revised, "key": e.key, "url": e.url}

    # ------------------------------------------------------------ the run

    def targets(self) -> tuple[Iterator[tuple[str, dict | None]], int | None]:
        if self.ncodes:
            records = self.lookup(self.ncodes)
            return iter([(n, records.get(n)) for n in self.ncodes]), len(self.ncodes)
        found = ((r["ncode"], r) for r in self.discover())
        if self.opts.limit:
            found = islice(found, self.opts.limit)
        return found, None

    def run(self) -> ScrapeResult:
        start = time.monotonic()
        self.store.mkdir(parents=True, exist_ok=True)
        bar = None
        if self.opts.show_progress:
            from tqdm import tqdm

            bar = self._bar = tqdm(desc=f"scrape {self.site.name}", unit="work", file=sys.stderr,
                                   disable=None, dynamic_ncols=True, leave=False)
        if self.opts.politeness.delay < 1 and not self.opts.base_url:
            self.say(f"note: --delay {self.opts.politeness.delay:g} is under 1 s against {self.base}; "
                     "the default of 1 s is the polite minimum")
        if not self.opts.politeness.contact:
            self.say("note: no --contact (or NOCPIPE_CONTACT) given; the site cannot reach you if "
                     "something goes wrong")
        try:
            items, total = self.targets()
            for ncode, rec in items:
                if bar is not None and bar.total is None:
                    known = total if total is not None else self.result.discovered
                    if known is not None:
                        bar.total = min(known, self.opts.limit) if self.opts.limit else known
                        bar.refresh()
                try:
                    status = self.scrape_work(ncode, rec)
                except (StopCrawl, LayoutChanged):
                    raise
                except FetchError as exc:  # its work page or a TOC page: the next run tries again
                    status = "failed"
                    self.result.failures.append(str(exc))
                    self.say(f"{ncode}: failed: {exc}")
                self.result.works[ncode] = status
                self.c.add(f"works_{status}")
                if bar is not None:
                    bar.update(1)
                self._tick()
        except (StopCrawl, LayoutChanged) as exc:
            self.result.stopped = exc
        finally:
            if bar is not None:
                bar.close()
            self._bar = None
            st = self.session.stats
            self.result.requests, self.result.waited = st.requests, st.waited
            self.result.seconds = time.monotonic() - start
        return self.result


def scrape(opts: ScrapeOptions, session: PoliteSession | None = None) -> ScrapeResult:
    """Run the scrape; the result says what happened, `stopped` why it ended early."""
    scraper = Scraper(opts, session)
    try:
        return scraper.run()
    finally:
        if session is None:
            scraper.session.close()


def summary(result: ScrapeResult) -> str:
    c = result.counters
    works = sum(v for k, v in c.values.items() if k.startswith("works_"))
    return (f"{works} works: {c['works_new']} new, {c['works_updated']} updated, "
            f"{c['works_current']} current, {c['works_gone']} gone, {c['works_failed']} failed"
            + (f", {c['works_disallowed']} disallowed by robots.txt" if c["works_disallowed"] else "")
            + f"; episodes: {c['episodes_downloaded']} downloaded, {c['episodes_revised']} revised, "
              f"{c['episodes_current']} skipped as current, {c['episodes_gone']} gone, "
              f"{c['episodes_failed']} failed"
            + (f", {c['episodes_renumbered']} renumbered" if c["episodes_renumbered"] else "")
            + f"; {result.requests} requests, {result.bytes / 1e6:.2f} MB stored, "
              f"waited {result.waited:.1f} s, {result.seconds:.1f} s in all")
