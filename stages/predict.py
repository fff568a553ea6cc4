"""nocpipe predict: text -> katakana (the reading extract-pairs uses) -> model -> katakana replies.

    inputs     TEXT arguments (one batch), an --input file (text lines or a Parquet `utterance`
               column, 256 lines a batch), stdin piped (a line answered as it comes) or a terminal
               (an interactive prompt), or --jsonl FILE / - (below)
    reading    one outer 「」 dropped, katakana with the reader of the training data, cut to
               max_len (with a warning); a line with nothing to read is skipped with a warning
               (an argument is an error)
    model      pipeline.inference.load_bot: the generative Chatbot or the retrieval bot of the
               folder, answering `reply(kanas, Decoding)`; --num N candidates, best first, each
               with the score its list is ranked by (pipeline/decoding.py)
    outputs    「reply」 lines on stdout (with --num, the N best under a line naming the input; with
               --show-source, each retrieved reply's original line and work), or an -o .csv /
               .parquet file written whole at the end

--jsonl: one JSON object a line in, one a line out, in input order, each answered and flushed
before the next is read (pipeline/jsonlines.py). Everything a user can get wrong (options, the
input file, the model folder) is refused before Keras is imported.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.decoding import Candidate, Decoding
from pipeline.errors import InputError, UsageError
from pipeline.inference import strip_quotes
from pipeline.reporter import Reporter, as_reporter
from pipeline.textinput import read_stdin_lines, text_arguments

__all__ = [
    "PredictOptions",
    "PredictResult",
    "Reply",
    "Predictor",
    "predict",
    "strip_quotes",
    "read_input_file",
    "write_output_file",
    "batched",
    "INPUT_BATCH",
]

#: Lines of an --input file answered in one call of the model.
INPUT_BATCH = 256
OUTPUT_SUFFIXES = (".csv", ".txt", "", ".parquet", ".pq")


@dataclass
class PredictOptions:
    model_dir: Path
    texts: list[str] | None = None  # TEXT arguments
    input_file: Path | None = None  # --input: text lines or Parquet with `utterance`
    jsonl: str | None = None  # --jsonl: a file of JSON lines, or "-" for stdin
    output_file: Path | None = None  # -o: .csv/.parquet (JSON lines with --jsonl)
    decoding: Decoding = field(default_factory=Decoding)
    show_kana: bool = False
    show_source: bool = False

    def validate(self) -> "PredictOptions":
        """Every check that needs no model: run before Keras is imported."""
        from pipeline.atomic import check_output

        self.decoding.validate()
        if self.texts is not None and any(not strip_quotes(t) for t in self.texts):
            raise InputError("empty input: give some text to reply to")
        given = [name for name, v in (("TEXT", self.texts), ("--input", self.input_file), ("--jsonl", self.jsonl)) if v]
        if len(given) > 1:
            raise UsageError(f"give one of TEXT, --input and --jsonl, not {' and '.join(given)}")
        check_output(self.output_file)
        if self.output_file is not None and self.jsonl is None:
            if Path(self.output_file).suffix.lower() not in OUTPUT_SUFFIXES:
                raise UsageError(f"--output must end in .csv or .parquet, not {Path(self.output_file).name}")
        for flag, path in (("--input", self.input_file), ("--jsonl", None if self.jsonl == "-" else self.jsonl)):
            if path is not None and not Path(path).exists():
                raise InputError(f"no such input file: {path} ({flag})")
            if path is not None and Path(path).is_dir():
                raise InputError(f"{flag} {path} is a folder; name a file")
        return self


@dataclass
class Reply:
    text: str  # the input as given
    kana: str  # its katakana reading, as the model saw it (after cutting)
    candidates: list[Candidate]  # best first
    truncated: bool = False
    unknown: list[str] = field(default_factory=list)  # characters outside the vocabulary
    number: int = 0  # the input's place among this run's inputs, from 1

    @property
    def replies(self) -> list[str]:
        return [c.text for c in self.candidates]

    @property
    def scores(self) -> list[float]:
        return [c.score for c in self.candidates]


@dataclass
class PredictResult:
    answered: int = 0  # inputs replied to
    rows: int = 0  # replies written to --output
    short: int = 0  # inputs with fewer candidates than --num
    output_file: Path | None = None


class Predictor:
    """A loaded model folder (any bot of load_bot). `reply(texts, decoding)` answers a batch of
    texts in any Japanese; `read(text)` is one text's katakana as the model takes it."""

    def __init__(self, model_dir: Path, log=None):
        from pipeline.inference import load_bot

        self.model_dir = Path(model_dir)
        self.bot = load_bot(self.model_dir, log=log)
        self.vocab = self.bot.vocab
        self.reader = self.vocab.reader

    def to_kana(self, text: str) -> str:
        return self.bot.to_kana(text)

    def read(self, text: str) -> tuple[str, bool]:
        """(the katakana the model sees, whether it was cut to max_len)."""
        kana = self.to_kana(text)
        return kana[: self.vocab.max_len], len(kana) > self.vocab.max_len

    def reply(self, texts: list[str], decoding: Decoding | None = None, **options) -> list[Reply]:
        """`decoding` (or its fields as keywords); a text with nothing to read is an InputError."""
        decoding = decoding or Decoding(**options)
        read = [self.read(t) for t in texts]
        for t, (k, _) in zip(texts, read):
            if not k:
                raise InputError(f"empty input: {t!r} has nothing to read")
        if not texts:
            return []
        lists = self.bot.reply([k for k, _ in read], decoding)
        return [Reply(t, k, c, cut, self.vocab.unknown_chars(k)) for t, (k, cut), c in zip(texts, read, lists)]


# ---------------------------------------------------------------- the run


def predict(opts: PredictOptions, log: Reporter | None = None, stdin=None) -> PredictResult:
    """Answer every input of `opts` (see the module docstring); replies go to `log.result` as they
    are made, or to opts.output_file at the end."""
    from pipeline import modeldir

    rep = as_reporter(log)
    stdin = sys.stdin if stdin is None else stdin
    opts.validate()
    modeldir.read_config(Path(opts.model_dir))  # a missing or foreign folder fails here, before Keras
    lines = read_input_file(opts.input_file) if opts.input_file is not None else None
    if lines is not None and not lines:
        raise InputError(f"empty input: {opts.input_file} holds no text")
    pred = Predictor(opts.model_dir, log=rep)
    opts.decoding.validate_for(pred.bot.arch)
    if opts.jsonl is not None:
        from pipeline.jsonlines import answer_jsonl

        answered = answer_jsonl(pred.bot, opts.jsonl, opts.decoding, opts.output_file, rep.out, stdin)
        return PredictResult(answered=answered, rows=answered if opts.output_file else 0, output_file=opts.output_file)
    if opts.show_source and not _retrieves(pred.bot):
        rep.info(f"note: {pred.bot.name} is a generative model ({pred.bot.arch}): its replies have no source line")
    result, collected = PredictResult(output_file=opts.output_file), []
    for batch in _batches(opts, lines, stdin, rep, pred):
        for r in _answer(pred, batch, opts.decoding, rep, result):
            if opts.output_file is not None:
                collected.append(r)
            else:
                for line in format_reply(r, opts, several=opts.texts is None or len(opts.texts) > 1):
                    rep.result(line)
    if result.short:
        rep.info(
            f"note: {result.short} text(s) got fewer than {opts.decoding.num} distinct candidates "
            "(the vocabulary allows no more)"
        )
    if opts.output_file is not None:
        result.rows = write_output_file(opts.output_file, collected)
    return result


def _retrieves(bot) -> bool:
    return getattr(bot, "arch", "") == "retrieval"


def _batches(opts: PredictOptions, lines, stdin, rep: Reporter, pred: Predictor) -> Iterator[list[str]]:
    """The inputs of the run, a batch at a time: arguments at once, a file 256 lines a batch,
    stdin a line at a time (piped or typed at the prompt)."""
    if opts.texts:
        text_arguments(opts.texts, "predict")  # bytes the shell passed that are not UTF-8: one line
        bad = next((t for t in opts.texts if not pred.read(t)[0]), None)
        if bad is not None:
            raise InputError(f"empty input: {bad!r} has nothing to read")
        yield list(opts.texts)
        return
    if lines is not None:
        yield from batched(lines, INPUT_BATCH)
        return
    seen = 0
    terminal = bool(getattr(stdin, "isatty", lambda: False)())
    if terminal:
        rep.info(f"nocpipe predict ({opts.model_dir}): type a line and Enter; Ctrl-D to end")
    blank = 0
    # Piped stdin is decoded here, so that bytes that are not UTF-8 (Shift_JIS, UTF-16) are one line.
    piped = read_stdin_lines("predict", stream=stdin.buffer) if hasattr(stdin, "buffer") else stdin
    for line in _prompted(stdin, rep) if terminal else piped:
        if strip_quotes(line):
            seen += 1
            yield [line.rstrip("\n")]
        else:
            blank += 1
    if not terminal and seen == 0:
        raise InputError("empty input: stdin held no text")
    if blank and not terminal:
        rep.warn(f"skipped {blank} blank line(s)")


def _prompted(stdin, rep: Reporter) -> Iterator[str]:
    """Lines typed at a `> ` prompt until Ctrl-D (input() gives line editing on the real terminal)."""
    while True:
        try:
            if stdin is sys.stdin:
                line = input("> ")
            else:
                rep.out.write("> ")
                rep.out.flush()
                line = stdin.readline()
                if not line:
                    raise EOFError
        except EOFError:
            rep.info("")
            return
        yield line


def _answer(pred: Predictor, texts: list[str], decoding: Decoding, rep: Reporter, result: PredictResult) -> list[Reply]:
    """Replies to the texts that read to something (the others skipped with a warning), numbered."""
    keep = []
    for t in texts:
        if pred.read(t)[0]:
            keep.append(t)
        else:
            rep.warn(f"skipped {t!r}: nothing in it reads as katakana")
    replies = pred.reply(keep, decoding) if keep else []
    for r in replies:
        result.answered += 1
        r.number = result.answered
        if r.truncated:
            rep.warn(
                f"input {r.number} reads as {len(pred.to_kana(r.text))} katakana; "
                f"the model takes {pred.vocab.max_len}: cut to 「{r.kana}」"
            )
        if len(r.candidates) < decoding.num:
            result.short += 1
    return replies


def format_reply(r: Reply, opts: PredictOptions, several: bool = True) -> list[str]:
    """The printed lines of one answer. One candidate: 「reply」 (after 「kana」 -> with --show-kana).
    Several: a line naming the input ([n] text, its kana with --show-kana), then `k. 「reply」  score`,
    best first, the scores the list is ranked by. --show-source adds each reply's original line."""
    lines = []
    if opts.decoding.num == 1:
        for c in r.candidates[:1]:
            lines.append((f"「{r.kana}」 -> " if opts.show_kana else "") + f"「{c.text}」")
            lines += _source_lines(c, opts)
        return lines
    if opts.show_kana and not several:
        lines.append(f"「{r.kana}」")
    elif opts.show_kana or several:
        lines.append(f"[{r.number}] {r.text}" + (f"  「{r.kana}」" if opts.show_kana else ""))
    for j, c in enumerate(r.candidates, start=1):
        lines.append(f"  {j}. 「{c.text}」  {c.score:.3f}")
        lines += _source_lines(c, opts)
    return lines


def _source_lines(c: Candidate, opts: PredictOptions) -> list[str]:
    if not opts.show_source or (c.surface is None and not c.source):
        return []
    return ["     " + describe_source(c)]


def describe_source(c: Candidate) -> str:
    """「the original line」 — author『title』 (just the title when the author is not known)."""
    src = c.source or {}
    line = c.surface if c.surface is not None else c.text
    line = line if line.startswith("「") else f"「{line}」"
    title = f"『{src['title']}』" if src.get("title") else ""
    who = str(src.get("author") or "")
    return f"{line} — {who}{title}" if (who or title) else line


# ---------------------------------------------------------------- inputs and outputs


def read_input_file(path: Path) -> list[str]:
    """Text lines (blank ones skipped) or the `utterance` column of a Parquet file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such input file: {path}")
    if path.is_dir():
        raise InputError(f"--input {path} is a folder; name a text or Parquet file")
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        from pipeline.corpus import read_checked

        try:
            schema = pq.read_schema(path)
            if "utterance" not in schema.names:
                raise InputError(f"{path} has no `utterance` column (it has: {', '.join(schema.names)})")
            texts = [t for t in read_checked(path, ["utterance"]).column(0).to_pylist()]
        except pa.ArrowException as exc:
            raise InputError(f"cannot read {path} as Parquet: {exc}") from None
        return [t for t in texts if t and strip_quotes(t)]
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text (or give a .parquet file)") from None
    return [ln.strip() for ln in text.splitlines() if strip_quotes(ln)]


def write_output_file(path: Path, replies: list[Reply]) -> int:
    """CSV (UTF-8) or Parquet by suffix: utterance, utterance_kana, candidate, reply, score, truncated,
    surface (the original line of a retrieved reply, else empty)."""
    import pyarrow as pa

    from pipeline.atomic import write_output as write_with

    names = ("utterance", "utterance_kana", "candidate", "reply", "score", "truncated", "surface")
    rows: dict[str, list] = {name: [] for name in names}
    for r in replies:
        for j, c in enumerate(r.candidates, start=1):
            for name, value in zip(names, (r.text, r.kana, j, c.text, round(c.score, 5), r.truncated, c.surface)):
                rows[name].append(value)
    table = pa.table({k: pa.array(v, type=pa.string() if k == "surface" else None) for k, v in rows.items()})
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        write_with(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
    elif suffix in (".csv", ".txt", ""):
        import pyarrow.csv as pacsv

        write_with(path, lambda tmp: pacsv.write_csv(table, tmp))
    else:
        raise UsageError(f"--output must end in .csv or .parquet, not {path.name}")
    return table.num_rows


def batched(items: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for it in items:
        batch.append(it)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
