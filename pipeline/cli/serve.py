"""`nocpipe serve`: a chat page and an HTTP API for a trained model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import typer

from .. import config
from ..errors import NocpipeError
from . import app
from .model import NameOpt, _model_dir


@app.command()
def serve(
    model_dir: Path = typer.Option(None, "--model-dir", help="Model folder (default: data/models/NAME)."),
    name: str = NameOpt,
    host: str = typer.Option(
        config.SERVE_HOST, "--host", help="Address to listen on; keep localhost unless a reverse proxy is in front."
    ),
    port: int = typer.Option(config.SERVE_PORT, "--port", help="Port to listen on (0: any free port)."),
    max_batch: int = typer.Option(
        config.ServeLimits.max_batch, "--max-batch", help="Most requests answered by one model call; 1 = no batching."
    ),
) -> None:
    """Chat with a model in the browser, and answer over HTTP.

    Loads the model once, warms it up and prints the URL. The page at /
    shows the conversation, the katakana reading of each line, the
    decoding options and the model's figures. POST /api/reply takes
    {"text": "...", "num": 1, "temperature": 0, "beam": 0}; GET
    /api/health names the model and version. Requests arriving together
    share one model call. Ctrl-C stops it.

    Example:  nocpipe serve --name demo   (then open http://127.0.0.1:8000/)
    """
    missing = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise NocpipeError(f"serve needs {' and '.join(missing)}: pip install 'nocpipe[serve]'")
    if not 0 <= port <= 65535:
        raise NocpipeError(f"--port must be between 0 and 65535, not {port}")
    if max_batch < 1:
        raise NocpipeError(f"--max-batch must be at least 1, not {max_batch}")
    from pipeline import modeldir

    mdir = _model_dir(model_dir, name)
    modeldir.read_config(mdir)  # a missing or foreign folder fails here, before TensorFlow loads

    from stages.serve import ServeOptions
    from stages.serve import serve as run

    limits = config.ServeLimits(max_batch=max_batch)
    res = run(ServeOptions(model_dir=mdir, host=host, port=port, limits=limits), log=lambda s: typer.echo(s))
    if res.status == "interrupted":
        typer.echo("interrupted before serving", err=True)
        raise typer.Exit(130)
    st = res.stats
    replies, calls = st.get("replies", 0), st.get("calls", 0)
    typer.echo(
        f"stopped: {replies} repl{'y' if replies == 1 else 'ies'} in {calls} model call{'' if calls == 1 else 's'} "
        f"(mean batch {st.get('mean_batch', 0):.1f}) over {res.seconds:.0f} s"
    )
