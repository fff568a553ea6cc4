"""`nocpipe serve`: a chat page and an HTTP API for a trained model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import typer

from .. import config
from ..decoding import MAX_NUM
from ..errors import NocpipeError
from ..reporter import Reporter
from ..web.hosts import MAX_ALLOWED
from . import app
from .model import NameOpt, _model_dir

_LIMITS = config.ServeLimits()


@app.command(
    help=f"""Chat with a model in the browser, and answer over HTTP.

    Loads the model once, warms it up and prints the URL. The page at /
    shows the conversation and the katakana reading of each line. POST
    /api/reply takes {{"text": "...", "num": 1, "temperature": 0, "beam": 0}}
    (text: at most {_LIMITS.max_text} characters; num: 1 to {MAX_NUM} replies;
    temperature: 0 to {_LIMITS.max_temperature:g}; beam: 0 to {_LIMITS.max_beam}; the
    body at most {_LIMITS.max_body} bytes); GET /api/health names the model and
    version. Requests arriving together share one model call. Only the
    Host names the server listens on are answered (add others with
    --allow-host). A request must arrive whole within {_LIMITS.read_timeout:g} s;
    idle connections close after {_LIMITS.keep_alive} s. Ctrl-C stops it.

    Example:  nocpipe serve --name demo   (then open http://127.0.0.1:8000/)
    """
)
def serve(
    model_dir: Path = typer.Option(None, "--model-dir", help="Model folder (default: data/models/NAME)."),
    name: str = NameOpt,
    host: str = typer.Option(
        config.SERVE_HOST, "--host", help="Address to listen on; keep localhost unless a reverse proxy is in front."
    ),
    port: int = typer.Option(config.SERVE_PORT, "--port", help="Port to listen on, 0 to 65535 (0: any free port)."),
    max_batch: int = typer.Option(
        _LIMITS.max_batch,
        "--max-batch",
        help=f"Most requests answered by one model call, 1 to {config.SERVE_MAX_BATCH}; 1 = no batching.",
    ),
    max_pending: int = typer.Option(
        _LIMITS.max_pending,
        "--max-pending",
        help=f"Requests waiting for the model before more get 503, 1 to {config.SERVE_MAX_PENDING}.",
    ),
    allow_host: list[str] = typer.Option(
        [],
        "--allow-host",
        metavar="NAME",
        help=f"Also answer requests for this Host name (a reverse proxy's public name); repeatable, at most {MAX_ALLOWED}.",
    ),
) -> None:
    missing = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise NocpipeError(f"serve needs {' and '.join(missing)}: pip install 'nocpipe[serve]'")
    from stages.serve import ServeOptions
    from stages.serve import serve as run

    limits = config.ServeLimits(max_batch=max_batch, max_pending=max_pending)
    opts = ServeOptions(
        model_dir=_model_dir(model_dir, name), host=host, port=port, limits=limits, allow_hosts=tuple(allow_host)
    )
    rep = Reporter()
    res = run(opts, log=rep)
    if res.status == "interrupted":
        rep.info("interrupted before serving")
        raise typer.Exit(130)
    st = res.stats
    replies, calls = st.get("replies", 0), st.get("calls", 0)
    rep.result(
        f"stopped: {replies} repl{'y' if replies == 1 else 'ies'} in {calls} model call{'' if calls == 1 else 's'} "
        f"(mean batch {st.get('mean_batch', 0):.1f}) over {res.seconds:.0f} s"
    )
