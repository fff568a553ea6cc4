"""The `nocpipe` command line: thin Typer commands over the stages.

Each command's docstring is its --help text, with an example. Errors a user can
cause (NocpipeError, bad options) end in one `Error: ...` line and exit status 1.
Heavy imports (TensorFlow, Keras) happen inside the commands that need them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from . import __version__, config
from .errors import NocpipeError

# Typer vendors Click in newer releases and uses Click itself in older ones; its
# exported BadParameter derives from ClickException either way.
_ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")

app = typer.Typer(
    name="nocpipe",
    help="Japanese web novels -> katakana dialogue corpus -> seq2seq chatbot.\n\n"
         "Flow: scrape/ingest -> extract-pairs -> train -> predict. Data lives under ./data "
         "(set NOCPIPE_DATA to move it).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nocpipe {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    pass


ReaderOpt = typer.Option("pykakasi", "--reader",
                         help="Katakana reader: pykakasi (default) or unidic (fugashi + unidic-lite).")


def _check_reader(reader: str) -> str:
    if reader not in config.READERS:
        raise NocpipeError(f"unknown reader {reader!r}: use pykakasi or unidic")
    return reader


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
    from .http import Politeness
    from stages.scrape import ScrapeOptions, scrape as run, site_of_target, summary

    targets = list(works or [])
    implied = {s for s in (site_of_target(t) for t in targets) if s}
    if site is not None and site not in ("nocturne", "narou"):
        raise NocpipeError(f"unknown site {site!r}: use nocturne or narou")
    if len(implied) > 1 or (site and implied and implied != {site}):
        raise NocpipeError("the URLs given belong to " + (" and ".join(sorted(implied | {site} - {None})))
                           + "; scrape one site per run")
    site = site or (implied.pop() if implied else "nocturne")
    from .ids import ncode_of

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


# ---------------------------------------------------------------- ingest

@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., help="Files or folders: Aozora .txt/.zip, plain .txt."),
    raw_dir: Path = typer.Option(None, "--raw-dir", help="Raw store (default: data/raw)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Bring local texts into the raw store.

    Aozora Bunko files (Shift_JIS or UTF-8, or the .zip Aozora distributes) are
    read with their notation (header, footer, notes, ruby, gaiji); any other text
    file counts every line as body. Re-ingesting an unchanged file does nothing.

    Example:  nocpipe ingest data/samples/aozora/ ~/books/kokoro.zip
    """
    from stages.ingest import ingest as run

    raw = raw_dir or config.default_raw_dir()
    res = run(paths, raw, show_progress=not quiet)
    c = res.counters
    failed = {k[len("failed_"):]: v for k, v in c.values.items() if k.startswith("failed_")}
    typer.echo(f"ingested into {raw}: {c['new']} new, {c['updated']} updated, {c['unchanged']} unchanged"
               + (f", {sum(failed.values())} skipped ({', '.join(f'{k} {v}' for k, v in failed.items())})"
                  if failed else "")
               + (f"; gaiji: {c['gaiji_resolved']} resolved, {c['gaiji_dropped']} dropped"
                  if c['gaiji_resolved'] or c['gaiji_dropped'] else ""))


# ---------------------------------------------------------------- extract-pairs

@app.command("extract-pairs")
def extract_pairs(
    raw_dir: Path = typer.Option(None, "--raw-dir", help="Raw store (default: data/raw)."),
    out_dir: Path = typer.Option(None, "--out-dir", help="Shard folder (default: data/processed/pairs)."),
    max_len: int = typer.Option(config.DEFAULT_MAX_LEN, "--max-len",
                                help="Longest side kept, in katakana characters; 0 = no limit."),
    reader: str = ReaderOpt,
    workers: int = typer.Option(0, "--workers", help="Processes; 0 = all cores."),
    split: str = typer.Option("80,10,10", "--split", help="train,valid,test shares of works."),
    shard_size: int = typer.Option(config.SHARD_TARGET_PAIRS, "--shard-size",
                                   help="Pairs per shard; smaller shards resume with less redone work."),
    examples: int = typer.Option(3, "--examples", help="Example pairs to print at the end."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Turn the raw store into katakana dialogue pairs (Parquet shards).

    Consecutive 「」 lines become (utterance, reply) pairs, read into katakana
    (the author's ruby first), and are written as zstd Parquet shards with
    stats.json. A rerun skips finished works; an interrupted run resumes.

    Example:  nocpipe extract-pairs --reader unidic --max-len 50 --workers 2
    """
    from stages.extract_pairs import ExtractOptions, extract_pairs as run

    opts = ExtractOptions(
        raw_dir=raw_dir or config.default_raw_dir(),
        out_dir=out_dir or config.default_pairs_dir(),
        max_len=max_len, reader=_check_reader(reader), workers=workers,
        split=config.SplitConfig.parse(split), show_progress=not quiet,
        shard_target=max(1, shard_size),
    )
    res = run(opts)
    t = res.totals
    if res.processed == 0:
        typer.echo(f"nothing new: {res.skipped} works already extracted into {opts.out_dir}")
    else:
        typer.echo(f"extracted {res.processed} works ({res.skipped} already done) -> "
                   f"{res.shards_written} new shard(s) in {opts.out_dir}")
    typer.echo(f"totals: {t['works']} works, {t['lines']} lines, {t['dialogue_lines']} dialogue lines, "
               f"{t['candidate_pairs']} candidate pairs, {t['pairs_kept']} kept "
               f"({', '.join(f'{k} {v}' for k, v in t['pairs_by_split'].items())})")
    if t["dropped"]:
        typer.echo("dropped: " + ", ".join(f"{k.removeprefix('dropped_')} {v}" for k, v in t["dropped"].items()))
    if examples > 0 and t["pairs_kept"]:
        from .shards import list_shards
        import pyarrow.parquet as pq

        shards = list_shards(opts.out_dir)
        rows = pq.read_table(shards[0]).slice(0, examples).to_pylist()
        for row in rows:
            typer.echo(f"  「{row['utterance']}」 -> 「{row['reply']}」")
            typer.echo(f"  「{row['utterance_kana']}」 -> 「{row['reply_kana']}」")


# ---------------------------------------------------------------- kana

@app.command()
def kana(
    text: Optional[list[str]] = typer.Argument(None, help="Text to read; stdin when omitted."),
    reader: str = ReaderOpt,
) -> None:
    """Print the katakana reading extract-pairs would store, one line per input line.

    Ruby in the input (｜漢字《かんじ》 or 漢字《かんじ》) is used and not printed.

    Example:  nocpipe kana '邪智暴虐《じゃちぼうぎゃく》の王だ。3回目だぞ!'
    """
    from .kana import to_katakana

    _check_reader(reader)
    if text:
        lines = "\n".join(text).split("\n")
    else:
        if sys.stdin.isatty():
            typer.echo("reading lines from stdin (Ctrl-D to end)", err=True)
        lines = (ln.rstrip("\n") for ln in sys.stdin)
    for line in lines:
        typer.echo(to_katakana(line.strip(), reader))


# ---------------------------------------------------------------- train

def _model_dir(model_dir: Optional[Path], name: str) -> Path:
    if model_dir is not None:
        return model_dir
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise NocpipeError(f"--name must be a plain folder name, not {name!r}")
    return config.default_models_dir() / name


NameOpt = typer.Option("default", "--name", help="Model name: the folder data/models/NAME (when no --model-dir).")


@app.command()
def train(
    data_dir: Path = typer.Option(None, "--data-dir", help="Pair shards, extract-pairs' --out-dir (default: data/processed/pairs)."),
    model_dir: Path = typer.Option(None, "--model-dir", help="Model folder (default: data/models/NAME)."),
    name: str = NameOpt,
    arch: Optional[str] = typer.Option(None, "--arch", help="seed (default: the 2017 network), simple, dense-attention."),
    epochs: int = typer.Option(10, "--epochs", help="Epochs in all; a resumed run counts the ones already done."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Pairs per step [default: 128]."),
    units: Optional[int] = typer.Option(None, "--units", help="LSTM and attention width [default: 512]."),
    max_len: Optional[int] = typer.Option(None, "--max-len", help="Time steps: characters per side [default: 50]."),
    vocab_size: Optional[int] = typer.Option(None, "--vocab-size",
                                             help="Characters incl. padding and unknown [default: 128]."),
    reverse_input: Optional[bool] = typer.Option(None, "--reverse-input/--no-reverse-input",
                                                 help="Feed the utterance reversed, as the original [default: on]."),
    optimizer: Optional[str] = typer.Option(None, "--optimizer", help="adam (default), rmsprop or sgd."),
    learning_rate: Optional[float] = typer.Option(None, "--learning-rate", help="[default: the optimizer's own]."),
    rotate_optimizers: Optional[bool] = typer.Option(None, "--rotate-optimizers/--no-rotate-optimizers",
                                                     help="A seeded choice of optimizer every epoch, as the original."),
    resume: bool = typer.Option(False, "--resume", help="Continue the model folder's last checkpoint exactly."),
    force: bool = typer.Option(False, "--force", help="Start over in a model folder that holds a model."),
    max_pairs: Optional[int] = typer.Option(None, "--max-pairs", help="Use the first N train pairs [default: 0 = all]."),
    steps_per_epoch: Optional[int] = typer.Option(None, "--steps-per-epoch",
                                                  help="Steps per epoch [default: 0 = one pass over the pairs]."),
    valid_pairs: Optional[int] = typer.Option(None, "--valid-pairs",
                                              help="Validation pairs [default: 10% of the train pairs, ≤5000; 0 = none]."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Makes a run repeatable [default: 0]."),
    precision: Optional[str] = typer.Option(None, "--precision",
                                            help="auto (mixed on a GPU, float32 on CPU), float32, mixed_float16, mixed_bfloat16."),
    pad_loss: Optional[str] = typer.Option(None, "--pad-loss",
                                           help="all (default): every position counts, as the original; "
                                                "end: padding after a reply's end adds no loss."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar (the per-epoch lines stay)."),
) -> None:
    """Train a seq2seq model on the pair shards, checkpointing every epoch.

    Streams the train split in a seeded order (memory does not grow with
    the corpus), validates on the valid split, and writes into the model
    folder: model.keras (best by validation loss), vocab.json, config.json,
    history.csv, curves.png and checkpoint.npz. Ctrl-C saves a checkpoint
    at the current step; --resume continues from it exactly, with the
    saved settings (give only --epochs).

    Example:  nocpipe train --units 32 --epochs 2 --max-pairs 2000 --name small
    """
    from stages.train import TrainOptions, train as run

    opts = TrainOptions(
        data_dir=data_dir or config.default_pairs_dir(), model_dir=_model_dir(model_dir, name),
        epochs=epochs, resume=resume, force=force, verbose=0 if quiet else 1 if sys.stdout.isatty() else 2,
        arch=arch, units=units, max_len=max_len, vocab_size=vocab_size, reverse_input=reverse_input,
        optimizer=optimizer, learning_rate=learning_rate, batch_size=batch_size,
        rotate_optimizers=rotate_optimizers, max_pairs=max_pairs, steps_per_epoch=steps_per_epoch,
        valid_pairs=valid_pairs, seed=seed, precision=precision, pad_loss=pad_loss,
    )
    if pad_loss not in (None, "end", "all"):
        raise NocpipeError(f"--pad-loss takes end or all, not {pad_loss!r}")
    res = run(opts, log=lambda s: typer.echo(s))
    if res.status == "interrupted":
        raise typer.Exit(130)
    if res.best_epoch is not None:
        typer.echo(f"model in {res.model_dir}: {res.epochs_done} epochs; best loss {res.best_val_loss:.4f} "
                   f"at epoch {res.best_epoch} -> {res.model_dir}/model.keras")


# ---------------------------------------------------------------- predict

@app.command()
def predict(
    text: Optional[list[str]] = typer.Argument(None, help="Texts to answer (any Japanese); stdin when omitted."),
    model_dir: Path = typer.Option(None, "--model-dir", help="Model folder (default: data/models/NAME)."),
    name: str = NameOpt,
    input_file: Path = typer.Option(None, "--input", "-i",
                                    help="Text file (one utterance a line) or Parquet with an `utterance` column."),
    output_file: Path = typer.Option(None, "--output", "-o", help="Write replies to a .csv or .parquet file."),
    temperature: float = typer.Option(0.0, "--temperature", "-t",
                                      help="0 = greedy (default); above 0 samples (1.0 when --num > 1)."),
    num: int = typer.Option(1, "--num", "-n", help="Candidates per text, best first."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for sampling."),
    show_kana: bool = typer.Option(False, "--show-kana", "-k", help="Print the katakana reading before the reply."),
) -> None:
    """Reply to each text with the model's katakana, in 「」.

    Each text is read into katakana with the reader the training data
    used, cut to the model's length (with a warning), reversed and encoded
    as in training. With no TEXT: an interactive prompt on a terminal,
    else one reply per stdin line.

    Example:  echo 'こんな忘れ物、ある?' | nocpipe predict --name small
    """
    from pipeline import modeldir
    from pipeline.errors import InputError
    from stages.predict import batched, read_input_file, strip_quotes, write_output_file

    mdir = _model_dir(model_dir, name)
    modeldir.read_config(mdir)  # a missing or foreign folder fails here, before TensorFlow loads
    if text is not None and any(not strip_quotes(t) for t in text):
        raise InputError("empty input: give some text to reply to")
    if input_file is not None and text:
        raise NocpipeError("give TEXT or --input, not both")
    if num < 1:
        raise NocpipeError(f"--num must be at least 1, not {num}")

    from stages.predict import Predictor

    pred = Predictor(mdir)
    collected = []
    counter = {"n": 0}

    def show(replies) -> None:
        for r in replies:
            counter["n"] += 1
            if r.truncated:
                typer.echo(f"warning: input {counter['n']} reads as {len(pred.to_kana(r.text))} katakana; "
                           f"the model takes {pred.vocab.max_len}: cut to 「{r.kana}」", err=True)
            if output_file is not None:
                collected.append(r)
                continue
            head = f"「{r.kana}」 -> " if show_kana else ""
            if num == 1:
                typer.echo(f"{head}「{r.replies[0]}」")
            else:
                if show_kana:
                    typer.echo(f"「{r.kana}」")
                for j, (rep, sc) in enumerate(zip(r.replies, r.scores), start=1):
                    typer.echo(f"  {j}. 「{rep}」  {sc:.3f}")

    def answer(texts: list[str]) -> None:
        keep = []
        for t in texts:
            if pred.to_kana(t):
                keep.append(t)
            else:
                typer.echo(f"warning: skipped {t!r}: nothing in it reads as katakana", err=True)
        if keep:
            show(pred.reply(keep, temperature=temperature, num=num, seed=seed))

    if text:
        if any(not pred.to_kana(t) for t in text):
            raise InputError(f"empty input: {next(t for t in text if not pred.to_kana(t))!r} has nothing to read")
        show(pred.reply(list(text), temperature=temperature, num=num, seed=seed))
    elif input_file is not None:
        lines = read_input_file(input_file)
        if not lines:
            raise InputError(f"empty input: {input_file} holds no text")
        for chunk in batched(lines, 256):
            answer(chunk)
    elif sys.stdin.isatty():
        typer.echo(f"nocpipe predict ({mdir}): type a line and Enter; Ctrl-D to end", err=True)
        while True:
            try:
                line = input("> ")
            except EOFError:
                typer.echo("", err=True)
                break
            if strip_quotes(line):
                answer([line])
    else:
        blank = 0
        for line in sys.stdin:
            if strip_quotes(line):
                answer([line.rstrip("\n")])
                sys.stdout.flush()
            else:
                blank += 1
        if counter["n"] == 0:
            raise InputError("empty input: stdin held no text")
        if blank:
            typer.echo(f"warning: skipped {blank} blank line(s)", err=True)
    if output_file is not None:
        rows = write_output_file(output_file, collected)
        typer.echo(f"{rows} replies to {counter['n']} texts -> {output_file}")


# ---------------------------------------------------------------- entry point

def main(argv: list[str] | None = None) -> int:
    """Console-script entry: one `Error:` line and exit 1 for every user error."""
    try:
        code = app(args=argv, standalone_mode=False, prog_name="nocpipe")
    except NocpipeError as exc:
        typer.echo(f"Error: {exc}", err=True)
        return 1
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("Error: interrupted; run the same command again to resume", err=True)
        return 130
    except _ClickException as exc:
        msg = exc.format_message()
        cmd = f" {exc.ctx.command_path}" if getattr(exc, "ctx", None) is not None else ""
        typer.echo(f"Error: {msg} (see{cmd or ' nocpipe'} --help)", err=True)
        return 1
    except BrokenPipeError:
        return 0
    return code if isinstance(code, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
