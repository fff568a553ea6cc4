"""`nocpipe scrape`: the syosetu.com family into the raw store."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .. import config
from ..errors import NocpipeError
from . import app


# ---------------------------------------------------------------- scrape

@app.command()
def scrape(
    works: Optional[list[str]] = typer.Argument(
        None, help="ncodes (n1234ab, any case) or URLs of works or episodes; none = discover through the API."),
    site: Optional[str] = typer.Option(None, "--site", help="nocturne (novel18.syosetu.com; the default) "
                                       "or narou (ncode.syosetu.com)."),
    raw_dir: Path = typer.Option(None, "--raw-dir", help="Raw store (default: data/raw)."),
    delay: float = typer.Option(1.0, "--delay", help="Seconds between requests (plus up to 30% jitter)."),
    limit: int = typer.Option(0, "--limit", help="At most N works from discovery; 0 = all."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="Site root instead of the real one "
                                           "(a mirror, a local test server)."),
    api_url: Optional[str] = typer.Option(None, "--api-url", help="Novel API URL instead of the official one."),
    contact: Optional[str] = typer.Option(None, "--contact", envvar="NOCPIPE_CONTACT",
                                          help="E-mail or URL put in the User-Agent, so the site can reach you."),
    genre: Optional[list[int]] = typer.Option(None, "--genre", help="Discovery: genre number (nocgenre for "
                                              "nocturne, genre for narou); repeatable."),
    keyword: Optional[str] = typer.Option(None, "--keyword", help="Discovery: search word."),
    min_length: Optional[int] = typer.Option(None, "--min-length", help="Discovery: at least N characters."),
    kaiwaritu: Optional[str] = typer.Option(None, "--kaiwaritu", help="Discovery: dialogue ratio range "
                                            "in percent, e.g. 30-70."),
    finished: bool = typer.Option(False, "--finished", help="Discovery: finished works only."),
    order: str = typer.Option("new", "--order", help="Discovery order (API `order`: new, favnovelcnt, "
                              "hyoka, weekly, lengthdesc, ...)."),
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds to connect / between bytes."),
    retries: int = typer.Option(5, "--retries", help="Retries of a request after 429/5xx, timeouts, "
                                "resets, truncated bodies."),
    backoff: float = typer.Option(2.0, "--backoff", help="Seconds before the first retry; doubles "
                                  "on each further one (a longer Retry-After wins)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Download works of the syosetu.com family into the raw store, politely.

    robots.txt is obeyed, one request at a time with --delay seconds between them,
    faults are retried with backoff (Retry-After honoured), and repeated 503s stop
    the run. A rerun downloads only what is missing or was revised; an interrupted
    run picks up where it stopped. With no works given, the official API finds them.

    Example:  nocpipe scrape n1234ab https://novel18.syosetu.com/n5678cd/ --contact me@example.com
    Example:  nocpipe scrape --site narou --genre 201 --kaiwaritu 30-70 --finished --limit 20
    """
    from ..http import Politeness
    from stages.scrape import ScrapeOptions, scrape as run, site_of_target, summary

    targets = list(works or [])
    implied = {s for s in (site_of_target(t) for t in targets) if s}
    if site is not None and site not in ("nocturne", "narou"):
        raise NocpipeError(f"unknown site {site!r}: use nocturne or narou")
    if len(implied) > 1 or (site and implied and implied != {site}):
        raise NocpipeError("the URLs given belong to " + (" and ".join(sorted(implied | {site} - {None})))
                           + "; scrape one site per run")
    site = site or (implied.pop() if implied else "nocturne")
    from ..ids import ncode_of

    for t in targets:
        ncode_of(t)  # a bad ncode is one Error: line before anything else
    opts = ScrapeOptions(
        raw_dir=raw_dir or config.default_raw_dir(), site=site, targets=targets, limit=limit,
        base_url=base_url, api_url=api_url, genres=tuple(genre or ()), keyword=keyword,
        min_length=min_length, kaiwaritu=kaiwaritu, finished=finished, order=order,
        politeness=Politeness(delay=delay, contact=contact, timeout=timeout, retries=retries,
                              backoff=backoff),
        show_progress=not quiet,
    )
    res = run(opts)
    typer.echo(f"scraped {site} into {opts.raw_dir / site}: {summary(res)}")
    if res.stopped is not None:
        raise res.stopped
    if res.counters["works_failed"]:
        raise NocpipeError(f"{res.counters['works_failed']} work(s) not complete "
                           f"({res.counters['episodes_failed']} episode(s) failed); "
                           "run the same command again to retry them")
