"""`nocpipe evaluate`: held-out figures of a trained model beside a reply n-gram model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from .. import config
from . import app
from .model import NameOpt, _model_dir


@app.command()
def evaluate(
    model_dir: Path = typer.Option(None, "--model-dir", help="Model folder (default: data/models/NAME)."),
    name: str = NameOpt,
    data_dir: Path = typer.Option(
        None, "--data-dir", help="Corpus to read the split from (default: the one the model trained on)."
    ),
    split: str = typer.Option("test", "--split", help="train, valid or test (works the model never saw)."),
    json_file: Path = typer.Option(None, "--json", help="Also write the figures to this JSON file."),
    examples: int = typer.Option(5, "--examples", help="Sample inputs, references and replies to show."),
    max_pairs: int = typer.Option(0, "--max-pairs", help="Evaluate the first N pairs of the split (0 = all)."),
    batch_size: int = typer.Option(64, "--batch-size", help="Pairs per batch, 1 to 4096."),
    temperature: float = typer.Option(0.0, "--temperature", "-t", help="0 = greedy replies; above 0 samples."),
    top_p: float = typer.Option(
        1.0, "--top-p", help="Nucleus sampling: keep the smallest set of characters holding this much probability."
    ),
    beam: int = typer.Option(0, "--beam", help="Beam search with N beams, at most 64 (0 = off)."),
    length_penalty: float = typer.Option(1.0, "--length-penalty", help="Beam score ÷ length^this."),
    mmi: float = typer.Option(
        0.0,
        "--mmi",
        help="Rerank 8 candidates by log p(reply|utterance) − λ·log p_LM(reply) (0 = off; 0.3-0.5 is a usual λ).",
    ),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for sampling."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Measure a model on a split of the corpus, beside a reply n-gram model.

    bits_per_char is −log2 p of every reply character plus one end token
    (replies cut to max_len − 1), averaged over those tokens; the same for
    every architecture. ngram_bits_per_char is that figure for a 5-gram
    Kneser-Ney model of replies fitted on the train split, which never sees
    the utterance: a model that does not beat it has learned what replies
    look like, not how to answer. Also char_accuracy, and chrf, distinct_1,
    distinct_2, generic_rate and mean_length of the model's own replies
    (greedy unless told otherwise). The figures go to evaluate.json in the
    model folder too.

    Example:  nocpipe evaluate --name small --examples 8 --json small.json
    """
    from stages.evaluate import EvaluateOptions
    from stages.evaluate import evaluate as run

    from ..atomic import check_output
    from ..decoding import Decoding
    from ..modeldir import ModelDir

    check_output(json_file)
    dec = Decoding(
        temperature=temperature, top_p=top_p, beam=beam, length_penalty=length_penalty, seed=seed, mmi=mmi
    ).validate()
    mdir = _model_dir(model_dir, name)
    res = run(
        EvaluateOptions(
            model_dir=mdir,
            data_dir=data_dir,
            split=split,
            max_pairs=max_pairs,
            examples=examples,
            batch_size=batch_size,
            decoding=dec,
            json_path=json_file,
            show_progress=not quiet and sys.stderr.isatty(),
        ),
        log=lambda s: typer.echo(s, err=True),
        default_data_dir=config.default_processed_dir(),
    )
    f = res.figures
    typer.echo(f"{mdir} on the {split} split of {res.data_dir} ({f['n']:,} pairs; replies: {dec.describe()})")
    typer.echo("")
    _print_figures(f)
    for i, (utt, ref, rep) in enumerate(res.examples, start=1):
        typer.echo("")
        typer.echo(f"  {i:2d}. input      「{utt}」")
        typer.echo(f"      reference  「{ref}」")
        typer.echo(f"      reply      「{rep}」")
    typer.echo("")
    typer.echo(
        f"evaluated {f['n']:,} pairs in {res.seconds:.1f}s -> {ModelDir(mdir).evaluate_path}"
        + (f" and {json_file}" if json_file else "")
    )


def _num(v) -> str:
    return "     n/a" if v is None or v != v else f"{v:8.3f}"


def _print_figures(f: dict) -> None:
    typer.echo(f"  {'':24s} {'model':>8s} {'baseline':>8s}")
    typer.echo(
        f"  {'bits/char':24s} {_num(f['bits_per_char'])} {_num(f['ngram_bits_per_char'])}   (5-gram of replies)   "
        + _verdict(f["bits_per_char"], f["ngram_bits_per_char"])
    )
    typer.echo(
        f"  {'select@1 (of 10)':24s} {_num(f['select_at_1'])} {_num(f['tfidf_select_at_1'])}   (TF-IDF cosine)   "
        + _select_verdict(f["select_at_1"], f["tfidf_select_at_1"])
    )
    for key in ("char_accuracy", "chrf", "distinct_1", "distinct_2", "generic_rate", "mean_length"):
        typer.echo(f"  {key:24s} {_num(f[key])}")


def _select_verdict(model, tfidf) -> str:
    if model is None or tfidf is None or model != model or tfidf != tfidf:
        return ""
    if model > tfidf:
        return f"(picks the fitting reply {model - tfidf:.3f} more often than TF-IDF; chance is 0.100)"
    return "(no better than TF-IDF at telling the fitting reply from others; chance is 0.100)"


def _verdict(model, ngram) -> str:
    if model is None or ngram is None:
        return "(a retrieval model scores no characters)"
    if model != model or ngram != ngram:
        return ""
    if model < ngram:
        return f"(the model is {ngram - model:.3f} bits/char better: it uses the utterance)"
    return "(no better than the n-gram model: it has learned what replies look like, not how to answer)"
