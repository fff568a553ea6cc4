"""The `nocpipe` command line: thin Typer commands over the stages.

Each command's docstring is its --help text, with an example. Errors a user can
cause (NocpipeError, bad options) end in one `Error: ...` line and exit status 1.
Heavy imports (TensorFlow, Keras) happen inside the commands that need them.

One module per group of commands, each registering on `app`:
    scrape.py   scrape, list           (the raw store from the sites)
    corpus.py   ingest, extract-pairs, kana, report
    model.py    train, predict
    evaluate.py evaluate
    serve.py    serve
    settings.py config             (the settings in force and where each came from)
Shared options and helpers live here.
"""

from __future__ import annotations

import gc
import sys
from typing import Any

import typer

from .. import __version__, config
from ..errors import NocpipeError, describe_os_error

# Typer vendors Click in newer releases and uses Click itself in older ones; its
# exported BadParameter derives from ClickException either way.
_ClickException: type[Any] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")

app = typer.Typer(
    name="nocpipe",
    help="Japanese web novels -> katakana dialogue corpus -> seq2seq chatbot.\n\n"
    "Flow: scrape/ingest -> extract-pairs -> train -> predict. Data lives under ./data "
    "(set NOCPIPE_DATA, or data in nocpipe.toml, to move it; `nocpipe config` shows the settings).",
    no_args_is_help=True,
    add_completion=False,
    # No Rich markup: "[default: 128]" in a help string must show as written.
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nocpipe {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    pass


ReaderOpt = typer.Option(
    config.READERS[0], "--reader", help="Katakana reader: unidic (fugashi + unidic-lite) or pykakasi."
)


def from_settings(key: str) -> dict:
    """An option's default from the settings in force (`nocpipe config`), read when the command
    runs, not when the module is imported: `typer.Option(..., "--delay", **from_settings("delay"))`.
    The help shows the built-in default and where else the value can come from."""
    spec = config.SPECS[key]
    builtin = getattr(config.Settings(), key)
    return {
        "default_factory": lambda: getattr(config.load_settings(), key),
        "show_default": f"{repr(builtin) if builtin is not None else 'none'}; or {key} in nocpipe.toml, or {spec.env}",
    }


def _check_reader(reader: str) -> str:
    if reader not in config.READERS:
        raise NocpipeError(f"unknown reader {reader!r}: use unidic or pykakasi")
    return reader


# Register the commands (each module adds its own to `app`). Imported here, after
# `app` exists; the modules import nothing heavy at the top.
from . import corpus as _corpus_cmds  # noqa: E402,F401
from . import evaluate as _evaluate_cmds  # noqa: E402,F401
from . import model as _model_cmds  # noqa: E402,F401
from . import scrape as _scrape_cmds  # noqa: E402,F401
from . import serve as _serve_cmds  # noqa: E402,F401
from . import settings as _settings_cmds  # noqa: E402,F401

# ---------------------------------------------------------------- entry point


def run() -> None:
    """The `nocpipe` command: main(), then exit with its status."""
    code = main()
    # The process ends next: its last garbage collection would walk every object still
    # alive (a reader's dictionaries: a million of them, a fifth of a second) for nothing.
    gc.freeze()
    sys.exit(code)


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
    except OSError as exc:  # a full disk, a read-only folder: the user's to fix, not a bug
        typer.echo(f"Error: {describe_os_error(exc)}", err=True)
        return 1
    return code if isinstance(code, int) else 0
