"""The official novel API (api.syosetu.com): lookups by ncode, discovery by filters.

One request answers at most `lim`=500 records from start position `st` <= 2000, as
gzip'd JSON whose first element is {"allcount": N}. A result larger than the API's reach
is split into `lastup` windows (each within reach), newest first; an API that ignores
`lastup` would make that split run forever, so discovery first checks that a window
before any work of the family is empty.
"""

from __future__ import annotations

import gzip
import json
import re
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..errors import FetchError, UsageError
from ..http import PoliteSession
from ..ids import NCODE_RE
from .site import Site

API_MAX_LIM = 500  # the API's largest page
API_MAX_ST = 2000  # the API's largest start position
FIRST_LASTUP = 1072915200  # 2004-01-01: no work of the family is older
NCODES_PER_LOOKUP = 100
ORDERS = (
    "new",
    "favnovelcnt",
    "reviewcnt",
    "hyoka",
    "hyokaasc",
    "dailypoint",
    "weeklypoint",
    "monthlypoint",
    "quarterpoint",
    "yearlypoint",
    "impressioncnt",
    "hyokacnt",
    "hyokacntasc",
    "weekly",
    "lengthdesc",
    "lengthasc",
    "ncodedesc",
    "ncodeasc",
    "old",
)
#: API fields that change when a work or one of its episodes changes.
VERSION_FIELDS = ("novelupdated_at", "general_lastup", "general_all_no")
_RANGE_RE = re.compile(r"[0-9]+-[0-9]*|-[0-9]+|[0-9]+")


@dataclass(frozen=True)
class Filters:
    """What discovery asks the API for."""

    genres: tuple[int, ...] = ()
    keyword: str | None = None
    min_length: int | None = None
    kaiwaritu: str | None = None
    finished: bool = False
    order: str = "new"

    def __post_init__(self) -> None:
        if self.order not in ORDERS:
            raise UsageError(f"unknown --order {self.order!r}: use one of {', '.join(ORDERS)}")
        if self.kaiwaritu is not None and not _RANGE_RE.fullmatch(self.kaiwaritu):
            raise UsageError(f"--kaiwaritu takes a percentage range like 30-70, not {self.kaiwaritu!r}")
        if self.min_length is not None and self.min_length < 0:
            raise UsageError("--min-length must be 0 or more characters")

    @property
    def any(self) -> bool:
        """Whether a filter narrows the works (the order alone does not)."""
        return bool(self.genres or self.keyword or self.min_length or self.kaiwaritu or self.finished)

    def params(self, site: Site) -> dict:
        params: dict[str, object] = {"order": self.order}
        if self.genres:
            params[site.genre_param] = "-".join(str(g) for g in self.genres)
        if self.keyword:
            params["word"] = self.keyword
        if self.min_length:
            params["minlen"] = self.min_length
        if self.kaiwaritu:
            params["kaiwaritu"] = self.kaiwaritu
        if self.finished:
            params["type"] = "ter"  # short stories and finished serials
        return params


def same_version(old: dict | None, new: dict | None) -> bool:
    """Whether two API records describe the same version of a work."""
    if not old or not new:
        return False
    keys = [k for k in VERSION_FIELDS if k in new]
    return bool(keys) and all(old.get(k) == new.get(k) for k in keys)


class Api:
    """The API of one site, through a polite session."""

    def __init__(self, session: PoliteSession, site: Site, url: str, say: Callable[[str], None] = print):
        self.session, self.site, self.url, self.say = session, site, url, say
        self.requests = 0

    def query(self, params: dict) -> tuple[int, list[dict]]:
        """One API request: (allcount, records with lower-case ncodes)."""
        resp = self.session.get(self.url, params={"out": "json", "gzip": 5, "of": self.site.fields, **params})
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
        try:
            total = int(arr[0]["allcount"])
        except (TypeError, ValueError) as exc:
            raise FetchError(f"{resp.url}: the API's allcount is not a number") from exc
        records = []
        for rec in arr[1:]:
            if isinstance(rec, dict) and isinstance(rec.get("ncode"), str) and NCODE_RE.fullmatch(rec["ncode"].lower()):
                records.append({**rec, "ncode": rec["ncode"].lower()})
        self.requests += 1
        return total, records

    def lookup(self, ncodes: list[str]) -> dict[str, dict]:
        """API records of the given works; {} (the TOCs decide) when the API cannot help."""
        found: dict[str, dict] = {}
        for i in range(0, len(ncodes), NCODES_PER_LOOKUP):
            batch = ncodes[i : i + NCODES_PER_LOOKUP]
            try:
                _, records = self.query({"ncode": "-".join(batch), "lim": API_MAX_LIM})
            except FetchError as exc:
                self.say(f"warning: API lookup failed ({exc}); tables of contents decide what changed")
                return {}
            found.update((r["ncode"], r) for r in records)
        return found

    def discover(
        self, filters: Filters, limit: int = 0, on_total: Callable[[int], None] | None = None
    ) -> Iterator[dict]:
        """API records matching the filters, each work once (at most `limit`, 0 = all)."""
        params = filters.params(self.site)
        lim = min(API_MAX_LIM, limit) if limit else API_MAX_LIM
        total, first = self.query({**params, "lim": lim, "st": 1})
        if on_total:
            on_total(total)
        seen: set[str] = set()
        if total <= API_MAX_ST or (limit and limit <= API_MAX_ST):
            records = self._pages(params, lim, total, first)
        else:
            probe, _ = self.query({**params, "lastup": f"1-{FIRST_LASTUP - 1}", "lim": 1, "st": 1})
            if probe:
                self.say(
                    f"warning: the API does not filter by lastup, so only the first {API_MAX_ST} "
                    f"of {total} works can be listed"
                )
                records = self._pages(params, lim, total, first)
            else:
                records = self._split(params, lim, FIRST_LASTUP, int(time.time()) + 86400)
        for rec in records:
            if rec["ncode"] not in seen:
                seen.add(rec["ncode"])
                yield rec
                if limit and len(seen) >= limit:
                    return

    def _pages(self, params: dict, lim: int, total: int, first: list[dict]) -> Iterator[dict]:
        yield from first
        got, st = len(first), 1 + lim
        while got < total and st <= API_MAX_ST and first:
            _, records = self.query({**params, "lim": lim, "st": st})
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
            total, first = self.query({**window, "lim": lim, "st": 1})
            if total <= API_MAX_ST or a == b:
                if total > API_MAX_ST:
                    self.say(f"warning: {total} works last updated in one second; only {API_MAX_ST} reachable")
                yield from self._pages(window, lim, total, first)
            else:
                yield from self._split(params, lim, a, b)
