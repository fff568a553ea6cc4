"""nocpipe serve: a chat page and an HTTP API over one model, loaded once.

    GET  /             the chat page (pipeline/web/chat.html: one file, nothing from other hosts)
    GET  /api/health   {"status": "ok", "version", "model": {name, arch, max_len, ..., evaluate},
                        "limits", "stats"}
    POST /api/reply    {"text", "num"?, "temperature"?, "beam"?}
                       -> {"input_kana", "truncated", "replies": [{"text", "score"}, ...]} (best first)
    errors             {"error": "one line"}: 400 body is not JSON, 404, 405, 413 body too large,
                       415 not application/json, 422 a field is wrong, 503 queue full, 500 model failed

Batching: every request waits in one queue. One model thread takes whatever is waiting
(at most max_batch) and answers each group of equal options with one `reply` call.
Requests that arrive while the model is busy wait for the next call, so ten people typing
at once share a call instead of queueing for ten. After a batch of several, the next one
waits a few milliseconds (batch_window) for the stragglers of the same round; a lone client
never waits.

The model is a parameter (anything with `to_kana` and a batched `reply`, as
pipeline.inference.Chatbot), so the server runs in tests without TensorFlow.
"""

from __future__ import annotations

import asyncio
import json
import math
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline import __version__, config
from pipeline.config import ServeLimits
from pipeline.errors import NocpipeError, UsageError
from pipeline.modeldir import ModelDir

#: The figures `nocpipe evaluate` writes, in the order the page shows them.
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
OPTIONS = ("text", "num", "temperature", "beam")

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
    """What the server needs of a model (pipeline.inference.Chatbot is one)."""

    name: str
    arch: str
    max_len: int

    def to_kana(self, text: str) -> str: ...

    def reply(
        self, utterances_kana: list[str], *, num: int = 1, temperature: float = 0.0, beam: int = 0
    ) -> list[list[Any]]: ...


@dataclass(frozen=True)
class DecodeOptions:
    """Requests with equal options can share one model call."""

    num: int = 1
    temperature: float = 0.0
    beam: int = 0


@dataclass
class BatchStats:
    replies: int = 0  # requests answered by the model
    calls: int = 0  # model calls made for them
    largest: int = 0  # the most requests one call answered
    failed_calls: int = 0

    def as_dict(self) -> dict:
        mean = self.replies / self.calls if self.calls else 0.0
        return {
            "replies": self.replies,
            "calls": self.calls,
            "mean_batch": round(mean, 3),
            "largest_batch": self.largest,
            "failed_calls": self.failed_calls,
        }


class Busy(Exception):
    """The queue is full: the client should try again shortly."""


class Batcher:
    """One queue in front of the model; one thread that calls it.

    The model thread is the only one that touches the model (Keras and the readers are
    not promised to be thread-safe), and the event loop never waits on it.
    """

    def __init__(self, replier: Replier, limits: ServeLimits):
        self.replier = replier
        self.limits = limits
        self.stats = BatchStats()
        self.received = 0  # requests submitted so far
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._batch: list = []  # the requests taken from the queue and not yet answered
        self._model_thread = ThreadPoolExecutor(1, thread_name_prefix="nocpipe-model")

    @property
    def pending(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="nocpipe-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        left = list(self._batch)
        while self._queue is not None and not self._queue.empty():
            left.append(self._queue.get_nowait())
        for *_, fut in left:
            if not fut.done():
                fut.set_exception(Busy("the server is stopping"))
        self._model_thread.shutdown(wait=False, cancel_futures=True)

    async def submit(self, kana: str, opts: DecodeOptions) -> list[tuple[str, float]]:
        if self._queue is None:
            raise RuntimeError("Batcher.start() was not called")
        if self._queue.qsize() >= self.limits.max_pending:
            raise Busy(f"{self._queue.qsize()} requests are waiting for the model; try again shortly")
        fut = asyncio.get_running_loop().create_future()
        self.received += 1
        self._queue.put_nowait((kana, opts, fut))
        return await fut

    async def in_model_thread(self, fn: Callable, *args):
        return await asyncio.get_running_loop().run_in_executor(self._model_thread, fn, *args)

    async def _run(self) -> None:
        queue = self._queue
        last = 0
        while True:
            batch = [await queue.get()]
            # Wait a moment for company only when requests have been coming together: a lone
            # client never pays for the window, ten clients typing at once meet in one call.
            if last > 1 and self.limits.max_batch > 1 and self.limits.batch_window > 0:
                await asyncio.sleep(self.limits.batch_window)
            while len(batch) < self.limits.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            self._batch = batch
            groups: dict[DecodeOptions, list] = {}
            for item in batch:
                groups.setdefault(item[1], []).append(item)
            for opts, items in groups.items():
                items = [it for it in items if not it[2].done()]  # a cancelled request needs no reply
                if items:
                    await self._answer(items, opts)
            last = len(batch)

    async def _answer(self, items: list, opts: DecodeOptions) -> None:
        kanas = [kana for kana, _, _ in items]
        try:
            results = await self.in_model_thread(self._call, kanas, opts)
        except Exception as exc:  # handed to each waiting request; the loop goes on
            self.stats.failed_calls += 1
            for *_, fut in items:
                if not fut.done():
                    fut.set_exception(exc)
            return
        self.stats.calls += 1
        self.stats.replies += len(items)
        self.stats.largest = max(self.stats.largest, len(items))
        for (*_, fut), res in zip(items, results):
            if not fut.done():
                fut.set_result(res)

    def _call(self, kanas: list[str], opts: DecodeOptions) -> list[list[tuple[str, float]]]:
        out = self.replier.reply(kanas, num=opts.num, temperature=opts.temperature, beam=opts.beam)
        if len(out) != len(kanas):
            raise RuntimeError(f"the model answered {len(out)} of {len(kanas)} utterances")
        return [[(str(c.text), float(c.score)) for c in cands] for cands in out]


# ---------------------------------------------------------------- requests


def _request_model(limits: ServeLimits) -> type[BaseModel]:
    class ReplyRequest(BaseModel):
        # Strict: "2" is not a number and true is not 1; unknown options are errors, not ignored.
        model_config = ConfigDict(extra="forbid", strict=True)

        text: str = Field(max_length=limits.max_text)
        num: int = Field(1, ge=1, le=limits.max_num)
        temperature: float = Field(0.0, ge=0.0, le=limits.max_temperature, allow_inf_nan=False)
        beam: int = Field(0, ge=0, le=limits.max_beam)

    return ReplyRequest


class RequestError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _validation_message(exc: ValidationError, limits: ServeLimits) -> str:
    err = exc.errors()[0]
    name = ".".join(str(p) for p in err.get("loc", ())) or "body"
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return f"unknown option {name!r}: the options are {', '.join(OPTIONS)}"
    if kind == "string_too_long":
        return f"text is too long: at most {limits.max_text} characters"
    if kind == "missing":
        return f'{name} is missing: send {{"text": "..."}}'
    msg = err.get("msg", "invalid")
    return f"{name}: {msg[0].lower()}{msg[1:]}"


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON")


async def _read_json(request: Request, limits: ServeLimits) -> object:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise RequestError(415, "send the request as application/json")
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limits.max_body):
        raise RequestError(413, f"request body too large: at most {limits.max_body} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limits.max_body:
            raise RequestError(413, f"request body too large: at most {limits.max_body} bytes")
    try:
        return json.loads(bytes(body).decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError):
        raise RequestError(400, "the body is not valid JSON (UTF-8)") from None


def _finite(x: float) -> float | None:
    return round(x, 4) if math.isfinite(x) else None


# ---------------------------------------------------------------- the app


def read_evaluate(model_dir: Path | None) -> dict | None:
    """The figures of `nocpipe evaluate` in the model folder, when it has them."""
    if model_dir is None:
        return None
    obj = ModelDir(model_dir).read_evaluate()
    if obj is None:
        return None
    figures = {
        k: obj[k]
        for k in EVALUATE_KEYS
        if isinstance(obj.get(k), (int, float)) and not isinstance(obj[k], bool) and math.isfinite(obj[k])
    }
    return figures or None


def model_info(replier: Replier, model_dir: Path | None = None) -> dict:
    """What the page and /api/health say about the model."""
    cfg = getattr(replier, "config", None) or {}
    model = cfg.get("model", {}) if isinstance(cfg.get("model"), dict) else {}
    info = {"name": replier.name, "arch": replier.arch, "max_len": replier.max_len}
    for key in ("units", "vocab_size"):
        if key in model:
            info[key] = model[key]
    if "nocpipe" in cfg:
        info["trained_with"] = cfg["nocpipe"]
    return info


def page_html() -> str:
    return resources.files("pipeline").joinpath("web", "chat.html").read_text(encoding="utf-8")


def create_app(
    replier: Replier,
    *,
    model_dir: Path | None = None,
    limits: ServeLimits | None = None,
    on_ready: Callable[[], None] | None = None,
) -> FastAPI:
    """The FastAPI app around `replier`; the batching queue lives as long as the app runs."""
    limits = limits or ServeLimits()
    batcher = Batcher(replier, limits)
    reader = ThreadPoolExecutor(1, thread_name_prefix="nocpipe-reader")
    info = model_info(replier, model_dir)
    page = page_html()
    ReplyRequest = _request_model(limits)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            await batcher.stop()
            reader.shutdown(wait=False, cancel_futures=True)

    # No /docs: Swagger's page loads scripts from a CDN; the API is described in docs/serve.md.
    app = FastAPI(
        title="nocpipe", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.batcher = batcher

    def error(status: int, message: str, **headers: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers={**JSON_HEADERS, **headers})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), **(exc.headers or {}))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        return error(500, "internal error: see the server's log")

    @app.get("/", response_class=HTMLResponse)
    async def chat_page() -> HTMLResponse:
        return HTMLResponse(page, headers=PAGE_HEADERS)

    @app.get("/api/health")
    async def health() -> JSONResponse:
        return JSONResponse(
            {
                "status": "ok",
                "version": __version__,
                "model": {**info, "evaluate": read_evaluate(model_dir)},
                "limits": {
                    "max_text": limits.max_text,
                    "max_num": limits.max_num,
                    "max_beam": limits.max_beam,
                    "max_temperature": limits.max_temperature,
                },
                "stats": {**batcher.stats.as_dict(), "pending": batcher.pending},
            },
            headers=JSON_HEADERS,
        )

    @app.post("/api/reply")
    async def reply(request: Request) -> JSONResponse:
        try:
            obj = await _read_json(request, limits)
            if not isinstance(obj, dict):
                raise RequestError(422, 'the body must be a JSON object like {"text": "..."}')
            try:
                req = ReplyRequest.model_validate(obj)
            except ValidationError as exc:
                raise RequestError(422, _validation_message(exc, limits)) from None
            if not req.text.strip():
                raise RequestError(422, "text is empty: type something to reply to")
            loop = asyncio.get_running_loop()
            kana = await loop.run_in_executor(reader, replier.to_kana, req.text)
            if not kana:
                raise RequestError(422, "nothing in the text reads as katakana")
            truncated = len(kana) > replier.max_len
            kana = kana[: replier.max_len]
            try:
                cands = await batcher.submit(kana, DecodeOptions(req.num, req.temperature, req.beam))
            except Busy as exc:
                raise RequestError(503, str(exc)) from None
            except NocpipeError as exc:  # options this model cannot decode with (e.g. beam on seed)
                raise RequestError(422, str(exc)) from None
        except RequestError as exc:
            return error(exc.status, str(exc), **({"Retry-After": "1"} if exc.status == 503 else {}))
        return JSONResponse(
            {
                "input_kana": kana,
                "truncated": truncated,
                "replies": [{"text": t, "score": _finite(s)} for t, s in cands],
            },
            headers=JSON_HEADERS,
        )

    return app


# ---------------------------------------------------------------- the command


@dataclass
class ServeOptions:
    model_dir: Path
    host: str = config.SERVE_HOST
    port: int = config.SERVE_PORT
    limits: ServeLimits = field(default_factory=ServeLimits)


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
        replier.warm_up()
    else:
        replier.reply(["ア"])


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def serve(opts: ServeOptions, log: Callable[[str], None] = print) -> ServeResult:
    """Load the model once, warm it up, serve until Ctrl-C (or SIGTERM)."""
    import uvicorn

    from pipeline.inference import Chatbot

    t0 = time.monotonic()
    sock = bind(opts.host, opts.port)
    host, port = sock.getsockname()[:2]
    url = url_of(opts.host if opts.port == 0 or host in ("0.0.0.0", "::") else host, port)
    app = None
    try:
        try:
            bot = Chatbot.load(opts.model_dir)
            log(f"model {bot.name} ({bot.arch}) from {opts.model_dir}; warming up")
            warm_up(bot)
        except KeyboardInterrupt:
            return ServeResult("interrupted", url, seconds=time.monotonic() - t0)
        if opts.host not in ("127.0.0.1", "localhost", "::1"):
            log(
                f"note: listening on {opts.host}: put a reverse proxy with TLS, authentication and rate "
                "limits in front before anyone else can reach it"
            )
        app = create_app(
            bot,
            model_dir=opts.model_dir,
            limits=opts.limits,
            on_ready=lambda: log(f"serving at {url} (Ctrl-C to stop)"),
        )
        server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=10)
        )
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
        stats = app.state.batcher.stats.as_dict()
        return ServeResult("stopped", url, stats, time.monotonic() - t0)
    finally:
        sock.close()
        sys.stdout.flush()
