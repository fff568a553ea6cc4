"""`nocpipe ingest`, `extract-pairs` and `kana`: the raw store and the corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .. import config
from ..reporter import Reporter
from . import ReaderOpt, _check_reader, app

# ---------------------------------------------------------------- ingest


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., help="Files or folders: Aozora .txt/.zip, plain .txt."),
    raw_dir: Path = typer.Option(None, "--raw-dir", help="Raw store (default: data/raw)."),
    max_size: int = typer.Option(
        config.MAX_INPUT_MB, "--max-size", help="Largest file read, in MB (1 to 4096); bigger ones are skipped."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Bring local texts into the raw store.

    Aozora Bunko files (Shift_JIS or UTF-8, or the .zip Aozora distributes) are
    read with their notation (header, footer, notes, ruby, gaiji); any other text
    file counts every line as body. Re-ingesting an unchanged file does nothing.
    A file's work id is its name when that is safe (letters, digits, '.', '-', '_'),
    else its name made safe plus a hash of its path. FIFOs, devices, link loops and
    unreadable folders are skipped with a `skipped:` line and counted.

    Example:  nocpipe ingest data/samples/aozora/ ~/books/kokoro.zip
    """
    from stages.ingest import ingest as run

    raw = raw_dir or config.default_raw_dir()
    res = run(paths, raw, show_progress=not quiet, max_bytes=max_size * 1024 * 1024)
    c = res.counters
    failed = {k[len("failed_") :]: v for k, v in c.values.items() if k.startswith("failed_")}
    typer.echo(
        f"ingested into {raw}: {c['new']} new, {c['updated']} updated, {c['unchanged']} unchanged"
        + (f", {sum(failed.values())} skipped ({', '.join(f'{k} {v}' for k, v in failed.items())})" if failed else "")
        + (
            f"; gaiji: {c['gaiji_resolved']} resolved, {c['gaiji_dropped']} dropped"
            if c["gaiji_resolved"] or c["gaiji_dropped"]
            else ""
        )
    )


# ---------------------------------------------------------------- extract-pairs


@app.command("extract-pairs")
def extract_pairs(
    raw_dir: str = typer.Option(
        None,
        "--raw-dir",
        metavar="PATH|URL",
        help="Raw store: a path, or a URL (file://, s3://bucket/raw, any fsspec file system) (default: data/raw).",
    ),
    out_dir: str = typer.Option(
        None,
        "--out-dir",
        metavar="PATH|URL",
        help="The corpus folder, a path or a URL as for --raw-dir: pairs/ shards, README.md "
        "card, stats.json (default: data/processed).",
    ),
    max_len: int = typer.Option(
        config.DEFAULT_MAX_LEN, "--max-len", help="Longest side kept, in katakana characters; 0 = no limit."
    ),
    reader: str = ReaderOpt,
    workers: int = typer.Option(0, "--workers", help="Processes (up to 1024); 0 = all cores."),
    scheduler: Optional[str] = typer.Option(
        None,
        "--scheduler",
        metavar="ADDRESS|local:N",
        help="Run the per-work step on a Dask cluster: a scheduler's address (tcp://10.0.0.5:8786), or local:N "
        "for a local cluster of N worker processes (default: none, --workers local processes). "
        "Needs the dask extra: pip install 'nocpipe[dask]'.",
    ),
    split: str = typer.Option(
        "80,10,10",
        "--split",
        help="train,validation,test shares of works: finite, 0 or more, not all 0 (they are scaled to sum to 1).",
    ),
    shard_size: int = typer.Option(
        config.SHARD_TARGET_PAIRS,
        "--shard-size",
        help="Pairs per shard, 1 to 10,000,000; smaller shards resume with less redone work.",
    ),
    examples: int = typer.Option(3, "--examples", help="Example pairs to print at the end (0 to 1000)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Turn the raw store into katakana dialogue pairs (Parquet shards).

    Consecutive 「」 lines become (utterance, reply) pairs, read into katakana
    (the author's ruby first), deduplicated (exact and near duplicates), and
    written to OUT/pairs/{train,validation,test}-NNNNN.parquet with a dataset
    card (OUT/README.md) and stats.json. Near-copy works share one split. A
    rerun reads again only works that changed; an interrupted run resumes.

    \b
    Example:  nocpipe extract-pairs --reader unidic --max-len 50 --workers 2
    Example:  nocpipe extract-pairs --scheduler tcp://10.0.0.5:8786 --raw-dir /shared/raw --out-dir /shared/corpus
    Example:  nocpipe extract-pairs --scheduler tcp://10.0.0.5:8786 --raw-dir s3://bucket/raw --out-dir s3://bucket/corpus
    """
    from stages.extract_pairs import ExtractOptions, summary
    from stages.extract_pairs import extract_pairs as run

    from ..location import folder_or_url

    opts = ExtractOptions(
        raw_dir=folder_or_url(raw_dir) if raw_dir else config.default_raw_dir(),
        out_dir=folder_or_url(out_dir) if out_dir else config.default_processed_dir(),
        max_len=max_len,
        reader=reader,
        workers=workers,
        scheduler=scheduler,
        split=config.SplitConfig.parse(split),
        show_progress=not quiet,
        shard_target=shard_size,
        examples=examples,
    )
    report = Reporter()
    for line in summary(run(opts, report), opts.out_dir):
        report.result(line)


# ---------------------------------------------------------------- report


@app.command()
def report(
    data_dir: Path = typer.Option(
        None,
        "--data-dir",
        help="The corpus: extract-pairs' --out-dir, a folder of Parquet or one Parquet file (default: data/processed).",
    ),
    out: Path = typer.Option(
        Path("report.html"),
        "--out",
        help="The HTML report (one file, plots embedded); the Markdown version is written beside it (.md).",
    ),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the figures as JSON here."),
    top: int = typer.Option(20, "--top", help="Works to list by pairs."),
) -> None:
    """A corpus report with plots, before training: pairs per source and work,
    splits, side lengths against --max-len, characters and vocabulary coverage,
    drop reasons, near-copy works, where readings came from.

    Example:  nocpipe report --data-dir data/processed --out report.html --json report.json
    """
    from stages.report import ReportOptions
    from stages.report import report as run

    from ..atomic import check_output

    check_output(out)
    check_output(json_out)
    res = run(
        ReportOptions(
            data_dir=data_dir or config.default_processed_dir(), out=out, json_out=json_out, top_works=max(1, top)
        )
    )
    f = res.figures
    typer.echo(
        f"report: {res.html}"
        + (f" and {res.markdown}" if res.markdown else "")
        + f" ({res.plots} plots)"
        + (f", figures in {res.json}" if res.json else "")
    )
    typer.echo(
        f"{f['pairs']:,} pairs from {f['works']:,} works; "
        + ", ".join(f"{k} {v['pairs']:,}" for k, v in f["splits"].items())
        + "; vocabulary 128 covers "
        + f"{f['characters']['vocabulary_coverage']['128']:.1%} of the characters"
    )


# ---------------------------------------------------------------- kana


@app.command()
def kana(
    text: Optional[list[str]] = typer.Argument(None, help="Text to read; stdin when omitted."),
    reader: str = ReaderOpt,
    context: Optional[Path] = typer.Option(
        None,
        "--context",
        help="A raw text or Aozora file whose ruby primes the work's ruby memory, "
        "as extract-pairs does for the lines of that work.",
    ),
) -> None:
    """Print the katakana reading extract-pairs would store, one line per input line.

    Ruby in the input (｜漢字《かんじ》 or 漢字《かんじ》) is used and not printed.
    With --context, words that file annotates one way are read that way where
    they stand bare.

    \b
    Example:  nocpipe kana '邪智暴虐《じゃちぼうぎゃく》の王だ。3回目だぞ!'
    Example:  nocpipe kana --context data/aozora/1567_ruby_4948.txt 'メロスは激怒した。'
    """
    from ..kana import read_side
    from ..reporter import Reporter
    from ..rubymemory import memory_of_file
    from ..textinput import read_stdin_lines, text_arguments

    _check_reader(reader)
    say = Reporter()
    memory = memory_of_file(context) if context is not None else None
    lines = "\n".join(text_arguments(text)).split("\n") if text else read_stdin_lines("kana", hint=say)
    for line in lines:
        say.result(read_side(line.strip(), reader, memory))
