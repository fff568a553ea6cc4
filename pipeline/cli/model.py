"""`nocpipe train` and `predict`: models on the corpus."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from .. import config
from ..errors import NocpipeError
from . import app

# ---------------------------------------------------------------- train


def _model_dir(model_dir: Optional[Path], name: str) -> Path:
    if model_dir is not None:
        return model_dir
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise NocpipeError(f"--name must be a plain folder name, not {name!r}")
    if len(name.encode("utf-8", "surrogateescape")) > 255:  # the longest file name most file systems take
        raise NocpipeError(
            f"--name is {len(name.encode('utf-8', 'surrogateescape'))} bytes long; "
            "a folder name can have at most 255: choose a shorter one"
        )
    return config.default_models_dir() / name


def parse_duration(text: str) -> float:
    """'90s', '20m', '2h', '1.5h' or plain seconds -> seconds."""
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text or "")
    if not m or float(m.group(1)) <= 0:
        raise NocpipeError(f"--max-time takes a duration like 90s, 20m or 2h, not {text!r}")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def _bound_epochs() -> str:
    from ..sizes import MAX_EPOCHS

    return f"1 to {MAX_EPOCHS:,}"


NameOpt = typer.Option("default", "--name", help="Model name: the folder data/models/NAME (when no --model-dir).")


def _bound(name: str) -> str:
    """'1 to 65,536': the bounds of a size option, for its --help (pipeline.sizes)."""
    from ..sizes import BOUNDS

    low, high = next((lo, hi) for n, lo, hi in BOUNDS if n == name)
    return f"{low:,} to {high:,}"


@app.command()
def train(
    data_dir: Path = typer.Option(
        None,
        "--data-dir",
        help="The corpus: extract-pairs' --out-dir, a folder of Parquet or one Parquet file (default: data/processed).",
    ),
    model_dir: Path = typer.Option(None, "--model-dir", help="Model folder (default: data/models/NAME)."),
    name: str = NameOpt,
    arch: Optional[str] = typer.Option(
        None,
        "--arch",
        help=f"transformer, attention (GRU encoder-decoder with "
        f"attention), seed (the 2017 network), simple, dense-attention, retrieval (ranks "
        f"the corpus's own replies) [default: {config.DEFAULT_ARCH}].",
    ),
    epochs: int = typer.Option(
        10, "--epochs", help=f"Epochs in all, {_bound_epochs()}; a resumed run counts the ones already done."
    ),
    batch_size: Optional[int] = typer.Option(
        None,
        "--batch-size",
        help=f"Pairs per step, {_bound('batch_size')}, and no more than the memory of one step holds "
        "(estimated for the architecture before any work); a batch above the train pairs is cut to them "
        "[default: 128].",
    ),
    units: Optional[int] = typer.Option(
        None,
        "--units",
        help="Width of every architecture: units of each "
        f"LSTM/GRU layer, the Transformer's model size, {_bound('units')} [default: {config.DEFAULT_UNITS}].",
    ),
    layers: Optional[int] = typer.Option(
        None, "--layers", help=f"Transformer blocks on each side, {_bound('layers')} [default: 2]."
    ),
    heads: Optional[int] = typer.Option(
        None, "--heads", help=f"Attention heads, {_bound('heads')}, dividing --units [default: 0 = units / 32, 1 to 8]."
    ),
    positions: Optional[str] = typer.Option(
        None, "--positions", help="Transformer positions: learned or sinusoidal [default: learned]."
    ),
    itf: Optional[float] = typer.Option(
        None,
        "--itf",
        help="attention, transformer: weigh each reply "
        "character's loss by 1/frequency^λ (inverse token frequency), so the "
        "characters every generic reply is made of count less, 0 to 2 [default: 0 = off].",
    ),
    reply_dropout: Optional[float] = typer.Option(
        None,
        "--reply-dropout",
        help="attention, transformer: share of "
        "the reply-so-far characters hidden in training, so the "
        "decoder must use the utterance, 0 up to 1 [default: 0].",
    ),
    max_time: Optional[str] = typer.Option(
        None,
        "--max-time",
        help="Stop after the step that reaches this "
        "much training time (90s, 20m, 2h); --resume continues [default: none].",
    ),
    lr_decay: bool = typer.Option(
        False,
        "--lr-decay/--no-lr-decay",
        help="With --max-time: lower the "
        "learning rate linearly towards 0 as the time budget runs out (set at each "
        "epoch's start; a resumed run decays over its own budget).",
    ),
    early_stop: int = typer.Option(
        0, "--early-stop", help="Stop when the validation bits/char has not improved for N epochs (0 = off)."
    ),
    tensorboard: Optional[Path] = typer.Option(
        None,
        "--tensorboard",
        help="Write TensorBoard logs to this folder (needs pip install 'nocpipe[tensorboard]').",
    ),
    max_len: Optional[int] = typer.Option(
        None, "--max-len", help=f"Time steps: characters per side, {_bound('max_len')} [default: 50]."
    ),
    vocab_size: Optional[int] = typer.Option(
        None, "--vocab-size", help=f"Characters incl. padding and unknown, {_bound('vocab_size')} [default: 128]."
    ),
    reverse_input: Optional[bool] = typer.Option(
        None, "--reverse-input/--no-reverse-input", help="Feed the utterance reversed, as the original [default: on]."
    ),
    optimizer: Optional[str] = typer.Option(None, "--optimizer", help="adam (default), rmsprop or sgd."),
    learning_rate: Optional[float] = typer.Option(None, "--learning-rate", help="[default: the optimizer's own]."),
    rotate_optimizers: Optional[bool] = typer.Option(
        None,
        "--rotate-optimizers/--no-rotate-optimizers",
        help="A seeded choice of optimizer every epoch, as the original.",
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the model folder's last checkpoint exactly."),
    force: bool = typer.Option(
        False,
        "--force",
        help="Start over in a model folder that holds anything (a model, a vocabulary, a config, "
        "other files); only nocpipe's files are replaced.",
    ),
    max_pairs: Optional[int] = typer.Option(
        None, "--max-pairs", help=f"Use the first N train pairs, {_bound('max_pairs')} [default: 0 = all]."
    ),
    steps_per_epoch: Optional[int] = typer.Option(
        None,
        "--steps-per-epoch",
        help=f"Steps per epoch, {_bound('steps_per_epoch')} [default: 0 = one pass over the pairs].",
    ),
    valid_pairs: Optional[int] = typer.Option(
        None,
        "--valid-pairs",
        help=f"Validation pairs, {_bound('valid_pairs')} [default: 10% of the train pairs, ≤5000; 0 = none].",
    ),
    seed: Optional[int] = typer.Option(None, "--seed", help="Makes a run repeatable [default: 0]."),
    precision: Optional[str] = typer.Option(
        None, "--precision", help="auto (mixed on a GPU, float32 on CPU), float32, mixed_float16, mixed_bfloat16."
    ),
    pad_loss: Optional[str] = typer.Option(
        None,
        "--pad-loss",
        help="all (default): every position counts, as the original; end: padding after a reply's end adds no loss.",
    ),
    distribute: bool = typer.Option(
        False,
        "--distribute",
        help="Split each batch over every device: DataParallel on JAX (several GPUs "
        "or hosts), MirroredStrategy on TensorFlow (several GPUs of one host).",
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="No progress inside an epoch (the per-epoch lines and the summary stay)."
    ),
) -> None:
    """Train a seq2seq model on the pair shards, checkpointing every epoch.

    Streams the train split in a seeded order (memory does not grow with
    the corpus), validates on the valid split, and writes into the model
    folder: model.keras (the best by validation bits/char), vocab.json,
    config.json, history.csv, curves.png and checkpoint.npz. A folder that
    holds anything already is refused without --force (or --resume). Ctrl-C
    saves a checkpoint at the current step; --resume continues from it
    exactly, with the saved settings (give only --epochs). The log goes to
    stdout: a bar on a terminal, else a line at least every 30 s.

    Example:  nocpipe train --arch transformer --max-time 5m --name small
    Example:  KERAS_BACKEND=jax nocpipe train --distribute --batch-size 1024   (every GPU)
    """
    from stages.train import TrainOptions
    from stages.train import train as run

    from ..reporter import Reporter

    opts = TrainOptions(
        data_dir=data_dir or config.default_processed_dir(),
        model_dir=_model_dir(model_dir, name),
        epochs=epochs,
        resume=resume,
        force=force,
        verbose=0 if quiet else 1,
        arch=arch,
        units=units,
        max_len=max_len,
        vocab_size=vocab_size,
        reverse_input=reverse_input,
        optimizer=optimizer,
        learning_rate=learning_rate,
        batch_size=batch_size,
        rotate_optimizers=rotate_optimizers,
        max_pairs=max_pairs,
        steps_per_epoch=steps_per_epoch,
        valid_pairs=valid_pairs,
        seed=seed,
        precision=precision,
        pad_loss=pad_loss,
        distribute=distribute,
        layers=layers,
        heads=heads,
        positions=positions,
        reply_dropout=reply_dropout,
        itf=itf,
        max_time=parse_duration(max_time) if max_time else None,
        lr_decay=lr_decay,
        early_stop=early_stop,
        tensorboard=tensorboard,
    )
    # The training log is what the command is run for: on stdout, as `nocpipe train > train.log` keeps it.
    reporter = Reporter(err=sys.stdout)
    res = run(opts, log=reporter)
    reporter.result(res.summary())
    if res.status == "interrupted":
        raise typer.Exit(130)


# ---------------------------------------------------------------- predict


@app.command()
def predict(
    text: Optional[list[str]] = typer.Argument(None, help="Texts to answer (any Japanese); stdin when omitted."),
    model_dir: Path = typer.Option(None, "--model-dir", help="Model folder (default: data/models/NAME)."),
    name: str = NameOpt,
    input_file: Path = typer.Option(
        None, "--input", "-i", help="Text file (one utterance a line) or Parquet with an `utterance` column."
    ),
    output_file: Path = typer.Option(None, "--output", "-o", help="Write replies to a .csv or .parquet file."),
    temperature: float = typer.Option(
        0.0, "--temperature", "-t", help="0 = greedy or beam search; above 0 samples at that temperature."
    ),
    top_p: float = typer.Option(
        1.0,
        "--top-p",
        help="Sampling: draw from the smallest set of characters holding this much probability (1 = all).",
    ),
    beam: int = typer.Option(
        0,
        "--beam",
        "-b",
        help="Beam search of this width (0 = off; --num > 1 without --temperature searches a beam of --num).",
    ),
    num: int = typer.Option(
        1,
        "--num",
        "-n",
        help="Distinct candidates per text, best first, with the model's log-probability (at most 50).",
    ),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for sampling."),
    mmi: float = typer.Option(
        0.0,
        "--mmi",
        help="Rerank an N-best list (8 beams unless --beam/--temperature) by "
        "log p(reply|utterance) − λ·log p_LM(reply), p_LM the reply 5-gram "
        "model in the model folder (0 = off; 0.3-0.5 is usual).",
    ),
    show_kana: bool = typer.Option(False, "--show-kana", "-k", help="Print the katakana reading before the reply."),
) -> None:
    """Reply to each text with the model's katakana, in 「」.

    Each text is read into katakana with the reader the training data
    used and cut to the model's length (with a warning). Decoding is greedy
    by default; --temperature/--top-p sample, --beam searches, and --num N
    gives N distinct replies, best first, with their log-probabilities.
    With no TEXT: an interactive prompt on a terminal, else one reply per
    stdin line; an --input file is answered in batches.

    Example:  echo 'こんな忘れ物、ある?' | nocpipe predict --name small --num 3
    """
    from pipeline import modeldir
    from pipeline.errors import InputError
    from stages.predict import MAX_NUM, batched, check_decoding, read_input_file, strip_quotes, write_output_file

    from ..atomic import check_output

    check_output(output_file)  # a folder named as -o fails before any reply is made
    mdir = _model_dir(model_dir, name)
    modeldir.read_config(mdir)  # a missing or foreign folder fails here, before TensorFlow loads
    if text is not None and any(not strip_quotes(t) for t in text):
        raise InputError("empty input: give some text to reply to")
    if input_file is not None and text:
        raise NocpipeError("give TEXT or --input, not both")
    check_decoding(num, temperature, top_p, beam, mmi)
    if num > MAX_NUM:
        typer.echo(f"note: --num {num} capped at {MAX_NUM} candidates", err=True)
        num = MAX_NUM
    decoding = dict(num=num, temperature=temperature, top_p=top_p, beam=beam, seed=seed)

    from stages.predict import Predictor

    pred = Predictor(mdir)
    if mmi:
        from pipeline.ngram import MMI_NBEST, mmi_rerank, ngram_for_model

        lm, _ = ngram_for_model(mdir, pred.vocab, log=lambda s: typer.echo(s, err=True))
        decoding["rerank"] = mmi_rerank(lm, mmi)
        if not beam and not temperature:
            decoding["beam"] = max(MMI_NBEST, num)
    short = {"n": 0}
    collected = []
    counter = {"n": 0}

    def show(replies) -> None:
        for r in replies:
            counter["n"] += 1
            if r.truncated:
                typer.echo(
                    f"warning: input {counter['n']} reads as {len(pred.to_kana(r.text))} katakana; "
                    f"the model takes {pred.vocab.max_len}: cut to 「{r.kana}」",
                    err=True,
                )
            if output_file is not None:
                collected.append(r)
                continue
            if len(r.candidates) < num:
                short["n"] += 1
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
            show(pred.reply(keep, **decoding))

    if text:
        if any(not pred.to_kana(t) for t in text):
            raise InputError(f"empty input: {next(t for t in text if not pred.to_kana(t))!r} has nothing to read")
        show(pred.reply(list(text), **decoding))
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
    if short["n"]:
        typer.echo(
            f"note: {short['n']} text(s) got fewer than {num} distinct candidates (the vocabulary allows no more)",
            err=True,
        )
    if output_file is not None:
        rows = write_output_file(output_file, collected)
        typer.echo(f"{rows} replies to {counter['n']} texts -> {output_file}")
