"""`nocpipe train` and `predict`: models on the corpus."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from .. import config
from ..decoding import MAX_BEAM, MAX_CANDIDATES, MAX_NUM, MMI_NBEST, Decoding
from ..errors import NocpipeError
from . import app, from_settings

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


NameOpt = typer.Option(
    ..., "--name", **from_settings("model"), help="Model name: the folder data/models/NAME (when no --model-dir)."
)


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
    jsonl: Optional[str] = typer.Option(
        None,
        "--jsonl",
        help='JSON lines in and out (- for stdin): {"text": ..., "candidates": [...]} a line, at most '
        f"{MAX_CANDIDATES} candidates; one answer line each, in order, with replies and the candidates ranked.",
    ),
    output_file: Path = typer.Option(
        None, "--output", "-o", help="Write replies to a .csv or .parquet file (JSON lines with --jsonl)."
    ),
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
        help=f"Beam search of this width, at most {MAX_BEAM} (0 = off; --num > 1 without --temperature "
        "searches a beam of --num).",
    ),
    num: int = typer.Option(
        1,
        "--num",
        "-n",
        help=f"Distinct candidates per text, 1 to {MAX_NUM}, best first, each with the score the list is ranked "
        "by: log p(reply + end | utterance), divided by the length penalty under beam search, minus λ·log p_LM "
        "with --mmi.",
    ),
    length_penalty: float = typer.Option(
        1.0, "--length-penalty", help="Beam search: rank by log p / ((5 + length) / 6)^this (0 = raw log p)."
    ),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for sampling."),
    mmi: float = typer.Option(
        0.0,
        "--mmi",
        help=f"Rerank an N-best list ({MMI_NBEST} beams unless --beam/--temperature) by "
        "log p(reply|utterance) − λ·log p_LM(reply), p_LM the reply 5-gram "
        "model in the model folder (0 = off; 0.3-0.5 is usual).",
    ),
    show_kana: bool = typer.Option(False, "--show-kana", "-k", help="Print the katakana reading before the reply."),
    show_source: bool = typer.Option(
        False,
        "--show-source",
        help="After each reply, its original line and work (「…」 — author『title』): retrieval models only.",
    ),
) -> None:
    """Reply to each text with the model's katakana, in 「」.

    Each text is read into katakana with the reader the training data
    used and cut to the model's length (with a warning). Decoding is greedy
    by default; --temperature/--top-p sample, --beam searches, and --num N
    gives N distinct replies, best first, under a line naming the input.
    With no TEXT: an interactive prompt on a terminal, else one reply per
    stdin line; an --input file is answered in batches. --jsonl answers
    JSON lines (for programs) and ranks the candidates a line gives.

    Example:  echo 'こんな忘れ物、ある?' | nocpipe predict --name small --num 3
    Example:  echo '{"text": "元気？", "candidates": ["ウン", "イイエ"]}' | nocpipe predict --jsonl -
    """
    from stages.predict import PredictOptions
    from stages.predict import predict as run

    from ..reporter import Reporter

    opts = PredictOptions(
        model_dir=_model_dir(model_dir, name),
        texts=list(text) if text else None,
        input_file=input_file,
        jsonl=jsonl,
        output_file=output_file,
        decoding=Decoding(
            num=num,
            temperature=temperature,
            top_p=top_p,
            beam=beam,
            length_penalty=length_penalty,
            seed=seed,
            mmi=mmi,
        ),
        show_kana=show_kana,
        show_source=show_source,
    )
    res = run(opts, Reporter())
    if output_file is not None:
        typer.echo(f"{res.rows} replies to {res.answered} texts -> {output_file}")
