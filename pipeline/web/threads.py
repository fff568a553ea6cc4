"""A blocking call (a file read) run off the event loop, in a daemon thread.

The event loop serves every route and handles the stop signals: a read that blocks on it
stops all of them. A daemon thread, not a pool, because a read stuck in the kernel (a
network disk that went away) must not keep the process from exiting when the server stops.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any


def in_thread(fn: Callable[..., Any], *args: Any) -> asyncio.Future:
    """A future of the event loop that gets fn(*args) from a new daemon thread."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()

    def settle(result: Any, exc: BaseException | None) -> None:
        if fut.done():
            return
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(result)

    def work() -> None:
        try:
            result, exc = fn(*args), None
        except BaseException as e:  # handed to the awaiting coroutine
            result, exc = None, e
        if not loop.is_closed():
            loop.call_soon_threadsafe(settle, result, exc)

    threading.Thread(target=work, name="nocpipe-read", daemon=True).start()
    return fut


class LatestRead:
    """fn() read again on each get(), one read at a time; a read that takes longer than
    `timeout` leaves the last value in place (and is not started again until it ends)."""

    def __init__(self, fn: Callable[[], Any], timeout: float = 1.0):
        self.fn = fn
        self.timeout = timeout
        self.value: Any = None
        self._reading: asyncio.Future | None = None

    async def get(self) -> Any:
        if self._reading is None or self._reading.done():
            self._reading = in_thread(self.fn)
        try:
            self.value = await asyncio.wait_for(asyncio.shield(self._reading), self.timeout)
        except TimeoutError:
            pass
        return self.value
