"""uvicorn for `nocpipe serve`: a read timeout per request, and a stop that answers the queue.

uvicorn closes idle keep-alive connections (timeout_keep_alive) but gives a request no time
limit while it arrives: a client that sends half its headers, or a Content-Length and half
the body, and then nothing holds its connection for ever, and a few hundred such clients
hold the server. ReadTimeoutH11 gives a request `read_timeout` seconds from its first byte
(or from the connection, for the first request) to arrive whole; then the connection is
closed. It is the h11 protocol in any install (httptools, when present, would be chosen by
"auto" and has its own internals).

On Ctrl-C or SIGTERM uvicorn stops accepting, waits for the requests in flight (at most
timeout_graceful_shutdown) and cancels the rest; requests queued for the model would wait
for every model call before them and then be cancelled with a text/plain 500 each.
StoppingServer calls `before_shutdown` first, so the queue answers them with a JSON 503
at once and only the model call in progress is waited for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from pipeline.config import ServeLimits

#: How long the requests in flight may take to finish once the server is told to stop.
GRACEFUL_S = 10


class ReadTimeoutH11(H11Protocol):
    read_timeout: float = 5.0

    def connection_made(self, transport) -> None:
        self._read_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # IDLE with bytes received: the headers are on their way; SEND_BODY: the body is.
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
            self._arm()
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._read_timer is None and not self.transport.is_closing():
            self._read_timer = self.loop.call_later(self.read_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _timed_out(self) -> None:
        self._read_timer = None
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            self.transport.close()  # the app, if it was reading the body, sees a disconnect


class StoppingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, before_shutdown: Callable[[], None] | None = None):
        super().__init__(config)
        self.before_shutdown = before_shutdown

    async def shutdown(self, sockets=None) -> None:
        if self.before_shutdown is not None:
            self.before_shutdown()
        await super().shutdown(sockets=sockets)


def make_server(app, limits: ServeLimits, before_shutdown: Callable[[], None] | None = None) -> StoppingServer:
    protocol = type("ReadTimeoutH11", (ReadTimeoutH11,), {"read_timeout": limits.read_timeout})
    config = uvicorn.Config(
        app,
        http=protocol,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_keep_alive=limits.keep_alive,
        timeout_graceful_shutdown=GRACEFUL_S,
    )
    return StoppingServer(config, before_shutdown)
