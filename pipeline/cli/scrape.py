"""`nocpipe scrape`: the syosetu.com family into the raw store."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .. import config
from ..errors import NocpipeError
from ..reporter import Reporter
from . import app, from_settings

# ---------------------------------------------------------------- scrape


@app.command()
def scrape(
    works: Optional[list[str]] = typer.Argument(
        None, help="ncodes (n1234ab, any case) or URLs of works or episodes; with --update, stored works."
    ),
    site: Optional[str] = typer.Option(
        None, "--site", help="nocturne (novel18.syosetu.com; the default) or narou (ncode.syosetu.com)."
    ),
    raw_dir: Path = typer.Option(None, "--raw-dir", help="Raw store (default: data/raw)."),
    update: bool = typer.Option(
        False,
        "--update",
        help="Re-check the works already stored for the site "
        "(all of them, or the ncodes given): new and revised episodes only.",
    ),
    all_works: bool = typer.Option(
        False,
        "--all",
        help="Discover without a filter: every work the API lists (a site-wide crawl; say so on purpose).",
    ),
    delay: float = typer.Option(
        ..., "--delay", **from_settings("delay"), help="Seconds between requests (plus up to 30% jitter)."
    ),
    limit: int = typer.Option(0, "--limit", help="At most N works from discovery (up to 1,000,000); 0 = all."),
    base_url: Optional[str] = typer.Option(
        None,
        "--base-url",
        help="Site root instead of the real one (a mirror, a local test server). Only it and the API are requested.",
    ),
    api_url: Optional[str] = typer.Option(None, "--api-url", help="Novel API URL instead of the official one."),
    contact: Optional[str] = typer.Option(
        ...,
        "--contact",
        **from_settings("contact"),
        help="E-mail or URL put in the User-Agent, so the site can reach you.",
    ),
    genre: Optional[list[int]] = typer.Option(
        None, "--genre", help="Discovery: genre number (nocgenre for nocturne, genre for narou); repeatable."
    ),
    keyword: Optional[str] = typer.Option(None, "--keyword", help="Discovery: search word."),
    min_length: Optional[int] = typer.Option(None, "--min-length", help="Discovery: at least N characters."),
    kaiwaritu: Optional[str] = typer.Option(
        None, "--kaiwaritu", help="Discovery: dialogue ratio range in percent, e.g. 30-70."
    ),
    finished: bool = typer.Option(False, "--finished", help="Discovery: finished works only."),
    order: str = typer.Option(
        "new", "--order", help="Discovery order (API `order`: new, favnovelcnt, hyoka, weekly, lengthdesc, ...)."
    ),
    timeout: float = typer.Option(
        ..., "--timeout", **from_settings("timeout"), help="Seconds to connect / between bytes."
    ),
    retries: int = typer.Option(
        ...,
        "--retries",
        **from_settings("retries"),
        help="Retries of a request after 429/5xx, timeouts, resets, truncated bodies (0 to 100).",
    ),
    backoff: float = typer.Option(
        ...,
        "--backoff",
        **from_settings("backoff"),
        help="Seconds before the first retry; doubles on each further one (a longer Retry-After wins).",
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="No progress (notes, warnings and the summary still print)."
    ),
) -> None:
    """Download works of the syosetu.com family into the raw store, politely.

    Choose the works: ncodes or URLs, a discovery filter (--genre, --keyword,
    --min-length, --kaiwaritu, --finished, --limit), --update for the works already
    stored, or --all for everything the API lists. Only the site (or --base-url) and
    the API are requested; links and redirects elsewhere are reported, not followed.
    robots.txt is obeyed, one request at a time with --delay seconds between them,
    faults are retried with backoff (Retry-After honoured), and repeated 503s stop
    the run. A rerun downloads only what is missing or was revised; an interrupted
    run picks up where it stopped. A work whose pages fail is reported and the run
    goes on (exit status 1 at the end). Progress: bars on a terminal, otherwise a line
    per work and every 30 s; waits over 5 s say why.

    \b
    Example:  nocpipe scrape n1234ab https://novel18.syosetu.com/n5678cd/ --contact me@example.com
    Example:  nocpipe scrape --site narou --genre 201 --kaiwaritu 30-70 --finished --limit 20
    Example:  nocpipe scrape --update
    """
    from stages.scrape import ScrapeOptions, summary
    from stages.scrape import scrape as run

    from ..http import Politeness
    from ..syosetu.api import Filters

    opts = ScrapeOptions(
        raw_dir=raw_dir or config.default_raw_dir(),
        site=site,
        targets=list(works or []),
        limit=limit,
        base_url=base_url,
        api_url=api_url,
        update=update,
        all=all_works,
        filters=Filters(
            genres=tuple(genre or ()),
            keyword=keyword,
            min_length=min_length,
            kaiwaritu=kaiwaritu,
            finished=finished,
            order=order,
        ),
        politeness=Politeness(delay=delay, contact=contact, timeout=timeout, retries=retries, backoff=backoff),
        show_progress=not quiet,
    )
    res = run(opts)
    Reporter().result(f"scraped {res.site} into {res.store}: {summary(res)}")
    _raise_unfinished(res)


def _raise_unfinished(res) -> None:
    """Exit status 1 with one line when the run stopped early or left works incomplete."""
    if res.stopped is not None:
        raise res.stopped
    failed = res.counters["works_failed"]
    if failed:
        works_done = sum(v for k, v in res.counters.values.items() if k.startswith("works_"))
        every = " (every work: see the reasons above)" if failed == works_done and works_done > 1 else ""
        raise NocpipeError(
            f"{failed} work(s) not complete{every} "
            f"({res.counters['episodes_failed'] + res.counters['episodes_offsite']} episode(s) "
            "failed); run the same command again to retry them"
        )


# ---------------------------------------------------------------- list


@app.command("list")
def list_works(
    site: Optional[str] = typer.Option(None, "--site", help="Only this source (nocturne, narou, aozora, text)."),
    raw_dir: Path = typer.Option(None, "--raw-dir", help="Raw store (default: data/raw)."),
    out_dir: Path = typer.Option(
        None,
        "--out-dir",
        help="Corpus whose pair counts are shown (default: data/processed; left out when there is none).",
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per work, one per line."),
) -> None:
    """Show the raw store: one row per work.

    Columns: source, work id, title, author, episodes stored, last fetched, status
    (current; N failed episodes; gone; incomplete: a run was interrupted) and the pairs
    extracted from it when the corpus exists.

    \b
    Example:  nocpipe list --site nocturne
    Example:  nocpipe list --json | jq -r 'select(.status != "current") | .work_id'
    """
    from stages.list import list_store, render_table

    rows = list_store(raw_dir or config.default_raw_dir(), site=site, out_dir=out_dir or config.default_processed_dir())
    if as_json:
        import json

        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
    else:
        typer.echo(render_table(rows))
