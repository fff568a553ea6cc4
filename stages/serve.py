"""nocpipe serve: a chat page and an HTTP API over one model, loaded once.

    GET  /             the chat page (pipeline/web/chat.html: one file, nothing from other hosts)
    GET  /api/health   {"status": "ok", "version", "model": {name, arch, max_len, ..., about, evaluate},
                        "limits", "stats"}
    POST /api/reply    {"text", "num"?, "temperature"?, "beam"?}
                       -> {"input_kana", "truncated",
                           "replies": [{"reply", "surface", "score", "source"}, ...]} (best first)
    errors             {"error": "one line"}: 400 body is not JSON, 403 a Host this server does not
                       answer to, 404, 405, 413 body too large, 415 not application/json, 422 a field
                       is wrong, 503 queue full or server stopping, 500 model failed

The parts live in pipeline/web/ (batching queue, body checks, Host check, uvicorn glue);
this module puts them together and runs the command. The model is a parameter (anything
with `to_kana` and a batched `reply(utterances_kana, decoding)`), so the server runs in
tests without TensorFlow.
"""

from __future__ import annotations

import asyncio
import math
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, cast

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline import __version__, config, modeldir
from pipeline.config import SERVE_MAX_BATCH, SERVE_MAX_PENDING, ServeLimits
from pipeline.decoding import MAX_NUM, Decoding
from pipeline.errors import NocpipeError, UsageError
from pipeline.regularfile import read_regular
from pipeline.reporter import Reporter, as_reporter
from pipeline.web import hosts
from pipeline.web.batcher import Batcher, Busy, ModelFailed, Stopping
from pipeline.web.body import ClientGone, RequestError, parse_reply, read_json, request_model
from pipeline.web.threads import LatestRead

#: The figures `nocpipe evaluate` writes, in the order /api/health gives them.
EVALUATE_KEYS = (
    "bits_per_char",
    "ngram_bits_per_char",
    "char_accuracy",
    "chrf",
    "distinct_1",
    "distinct_2",
    "generic_rate",
    "mean_length",
    "n",
)
#: The chat page is a few kilobytes; the limit only keeps a broken install from being read whole.
MAX_PAGE_BYTES = 1 << 20

# The page is one inline file: scripts and styles inline, requests to this server only.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
JSON_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


class Replier(Protocol):
    """What the server needs of a model: what pipeline.inference.load_bot returns, generative or retrieval."""

    name: str
    arch: str
    max_len: int

    def to_kana(self, text: str) -> str: ...

    def reply(self, utterances_kana: list[str], decoding: Decoding) -> list[list[Any]]: ...


def as_replier(bot) -> Replier:
    """A loaded bot (pipeline.inference.load_bot) as serve calls it: reply(utterances_kana, decoding)."""
    return bot


# ---------------------------------------------------------------- what the app says


def _finite(x: float) -> float | None:
    return round(x, 4) if math.isfinite(x) else None


def read_figures(model_dir: Path | None) -> dict | None:
    """The finite figures of `nocpipe evaluate` in the model folder, when it has them."""
    obj = modeldir.read_evaluate(model_dir) if model_dir is not None else None
    if obj is None:
        return None
    figures = {
        k: obj[k]
        for k in EVALUATE_KEYS
        if isinstance(obj.get(k), (int, float)) and not isinstance(obj[k], bool) and math.isfinite(obj[k])
    }
    return figures or None


def model_info(replier: Replier) -> dict:
    """What the page and /api/health say about the model."""
    cfg: Any = getattr(replier, "config", None) or {}
    model = cfg.get("model") if isinstance(cfg.get("model"), dict) else {}
    data = cfg.get("data") if isinstance(cfg.get("data"), dict) else {}
    info = {"name": replier.name, "arch": replier.arch, "max_len": replier.max_len}
    for key in ("units", "vocab_size"):
        if key in model:
            info[key] = model[key]
    if isinstance(data.get("train_pairs"), int):
        info["train_pairs"] = data["train_pairs"]
    if "nocpipe" in cfg:
        info["trained_with"] = cfg["nocpipe"]
    return info


def reply_json(cand) -> dict:
    """One candidate as /api/reply gives it: surface and source only a retrieval model fills."""
    source = getattr(cand, "source", None)
    return {
        "reply": str(cand.text),
        "surface": getattr(cand, "surface", None),
        "score": _finite(float(cand.score)),
        "source": dict(source) if isinstance(source, dict) else None,
    }


def page_html() -> str:
    """The chat page, read once at start (a regular file only, as every file the server reads)."""
    with resources.as_file(resources.files("pipeline.web").joinpath("chat.html")) as path:
        return read_regular(path, MAX_PAGE_BYTES).decode("utf-8")


def has_reading(kana: str) -> bool:
    """True when the reading holds a katakana letter: emoji and symbols pass the reader as they are."""
    return any("\u30a1" <= ch <= "\u30fa" for ch in kana)


# ---------------------------------------------------------------- the app


def error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers={**JSON_HEADERS, **headers})


@dataclass
class _Parts:
    """What the routes share: one per app."""

    replier: Replier
    limits: ServeLimits
    batcher: Batcher
    reader: ThreadPoolExecutor
    figures: LatestRead
    info: dict
    page: str
    request_model: type


async def _reply(parts: _Parts, request: Request) -> Response:
    try:
        text, decoding = parse_reply(
            await read_json(request, parts.limits), parts.request_model, parts.limits, parts.replier.arch
        )
        kana = await asyncio.get_running_loop().run_in_executor(parts.reader, parts.replier.to_kana, text)
        if not has_reading(kana):
            raise RequestError(
                422, "nothing in the text has a reading (emoji and symbols have none): type some Japanese"
            )
        truncated = len(kana) > parts.replier.max_len
        kana = kana[: parts.replier.max_len]
        cands = await parts.batcher.submit(kana, decoding)
    except ClientGone:
        return Response(status_code=400)  # nobody is there to read it; nothing is logged
    except RequestError as exc:
        return error(exc.status, str(exc))
    except Busy as exc:
        return error(503, str(exc), **{"Retry-After": "1"})
    except (Stopping, asyncio.CancelledError):  # cancelled: the stop outlasted the model call
        return error(503, "the server is stopping; try again when it is back", **{"Retry-After": "5"})
    except NocpipeError as exc:  # options this model cannot decode with
        return error(422, str(exc))
    except ModelFailed:
        return error(500, "the model failed: see the server's log")
    body = {"input_kana": kana, "truncated": truncated, "replies": [reply_json(c) for c in cands]}
    return JSONResponse(body, headers=JSON_HEADERS)


async def _health(parts: _Parts) -> JSONResponse:
    lim = parts.limits
    body = {
        "status": "ok",
        "version": __version__,
        "model": {**parts.info, "evaluate": await parts.figures.get()},
        "limits": {
            "max_text": lim.max_text,
            "max_num": MAX_NUM,
            "max_beam": lim.max_beam,
            "max_temperature": lim.max_temperature,
            "max_body": lim.max_body,
        },
        "stats": {**parts.batcher.stats.as_dict(), "pending": parts.batcher.pending},
    }
    return JSONResponse(body, headers=JSON_HEADERS)


def _routes(app: FastAPI, parts: _Parts) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), **(exc.headers or {}))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        return error(500, "internal error: see the server's log")

    @app.get("/", response_class=HTMLResponse)
    async def chat_page() -> HTMLResponse:
        return HTMLResponse(parts.page, headers=PAGE_HEADERS)

    @app.get("/api/health")
    async def health() -> JSONResponse:
        return await _health(parts)

    @app.post("/api/reply")
    async def reply(request: Request) -> Response:
        return await _reply(parts, request)


def create_app(
    replier: Replier,
    *,
    model_dir: Path | None = None,
    limits: ServeLimits | None = None,
    host_policy: hosts.HostPolicy | None = None,
    on_ready: Callable[[], None] | None = None,
    log: Reporter | Callable[[str], None] | None = None,
) -> FastAPI:
    """The FastAPI app around `replier`; the batching queue lives as long as the app runs.
    Without a host_policy it answers the loopback names only."""
    limits = limits or ServeLimits()
    rep = as_reporter(log)
    parts = _Parts(
        replier=replier,
        limits=limits,
        batcher=Batcher(replier.reply, limits, warn=rep.warn),
        reader=ThreadPoolExecutor(1, thread_name_prefix="nocpipe-reader"),
        figures=LatestRead(lambda: read_figures(model_dir)),
        info=model_info(replier),
        page=page_html(),
        request_model=request_model(limits),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        parts.batcher.start()
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            await parts.batcher.stop()
            parts.reader.shutdown(wait=False, cancel_futures=True)

    # No /docs: Swagger's page loads scripts from a CDN; the API is described in docs/serve.md.
    app = FastAPI(
        title="nocpipe", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.batcher = parts.batcher
    app.add_middleware(hosts.HostCheck, policy=host_policy or hosts.HostPolicy.for_listening("127.0.0.1"))
    _routes(app, parts)
    return app


# ---------------------------------------------------------------- the command


@dataclass
class ServeOptions:
    model_dir: Path
    host: str = config.SERVE_HOST
    port: int = config.SERVE_PORT
    limits: ServeLimits = field(default_factory=ServeLimits)
    allow_hosts: tuple[str, ...] = ()

    def validate(self) -> ServeOptions:
        if not 0 <= self.port <= 65535:
            raise UsageError(f"--port must be from 0 to 65535, not {self.port}")
        if not 1 <= self.limits.max_batch <= SERVE_MAX_BATCH:
            raise UsageError(f"--max-batch must be from 1 to {SERVE_MAX_BATCH}, not {self.limits.max_batch}")
        if not 1 <= self.limits.max_pending <= SERVE_MAX_PENDING:
            raise UsageError(f"--max-pending must be from 1 to {SERVE_MAX_PENDING}, not {self.limits.max_pending}")
        if len(self.allow_hosts) > hosts.MAX_ALLOWED:
            raise UsageError(
                f"--allow-host may be given at most {hosts.MAX_ALLOWED} times, not {len(self.allow_hosts)}"
            )
        for name in self.allow_hosts:
            if not hosts.is_host_name(name):
                raise UsageError(
                    f"--allow-host {name!r} is not a host name or IP address (give it without port or scheme)"
                )
        return self


@dataclass
class ServeResult:
    status: str  # "stopped" (Ctrl-C or SIGTERM while serving) or "interrupted" (before)
    url: str = ""
    stats: dict = field(default_factory=dict)
    seconds: float = 0.0


def url_of(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def bind(host: str, port: int) -> socket.socket:
    """Listen before the model loads, so a taken port fails at once (port 0: any free port)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"cannot listen on {host!r}: {exc.strerror}") from None
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart while old sockets linger
        sock.bind(addr)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {url_of(host, port)}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def warm_up(replier: Replier) -> None:
    """Run the model once before the first user waits for it (tracing, allocation)."""
    if callable(getattr(replier, "warm_up", None)):
        cast(Any, replier).warm_up()  # an optional method, outside the Replier protocol
    else:
        replier.reply(["ア"], Decoding())


def load(model_dir: Path, rep: Reporter) -> Replier:
    """The model folder, checked before TensorFlow loads, then loaded and warmed up."""
    from pipeline.inference import load_bot

    modeldir.check_regular_files(model_dir)
    modeldir.read_config(model_dir)  # a missing or foreign folder fails here, before TensorFlow loads
    bot = as_replier(load_bot(model_dir))
    rep.info(f"model {bot.name} ({bot.arch}) from {model_dir}; warming up")
    warm_up(bot)
    return bot


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _stopping(batcher: Batcher, rep: Reporter) -> None:
    told = batcher.close()
    rep.info(
        f"stopping: {told} waiting request{'' if told == 1 else 's'} told the server is stopping"
        if told
        else "stopping"
    )


def serve(
    opts: ServeOptions, log: Reporter | Callable[[str], None] | None = None, replier: Replier | None = None
) -> ServeResult:
    """Load the model once, warm it up, serve until Ctrl-C (or SIGTERM). A library caller may
    pass its own `replier` (then the model folder only gives the evaluate figures)."""
    rep = as_reporter(log)
    opts.validate()
    t0 = time.monotonic()
    sock = bind(opts.host, opts.port)
    host, port = sock.getsockname()[:2]
    url = url_of(opts.host if opts.port == 0 or host in ("0.0.0.0", "::") else host, port)
    try:
        try:
            bot = replier if replier is not None else load(opts.model_dir, rep)
        except KeyboardInterrupt:
            return ServeResult("interrupted", url, seconds=time.monotonic() - t0)
        if opts.host not in hosts.LOOPBACK:
            rep.info(
                f"note: listening on {opts.host}: put a reverse proxy with TLS, authentication and rate "
                "limits in front before anyone else can reach it (and --allow-host its public name)"
            )
        stats = _run(bot, opts, url, sock, rep)
        return ServeResult("stopped", url, stats, time.monotonic() - t0)
    finally:
        sock.close()
        sys.stdout.flush()


def _run(bot: Replier, opts: ServeOptions, url: str, sock: socket.socket, rep: Reporter) -> dict:
    """Serve until stopped; the batching figures of the run."""
    from pipeline.web.server import make_server

    app = create_app(
        bot,
        model_dir=opts.model_dir,
        limits=opts.limits,
        host_policy=hosts.HostPolicy.for_listening(opts.host, opts.allow_hosts),
        on_ready=lambda: rep.result(f"serving at {url} (Ctrl-C to stop)"),
        log=rep,
    )
    server = make_server(app, opts.limits, before_shutdown=lambda: _stopping(app.state.batcher, rep))
    # uvicorn re-raises the signal that stopped it once it has shut down; turning SIGTERM
    # into KeyboardInterrupt gives both the same clean end.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    if not server.started:
        raise NocpipeError(f"the server at {url} did not start (see the messages above)")
    return app.state.batcher.stats.as_dict()
