"""One queue in front of the model; one thread that calls it.

Every request waits in one asyncio queue. A single task takes whatever is waiting (at most
max_batch), groups it by Decoding (a frozen dataclass: equal options are equal keys) and
answers each group with one model call in the model thread. Requests that arrive while the
model is busy wait for the next call, so ten people typing at once share a call instead of
queueing for ten. After a batch of several, the next one waits a few milliseconds
(batch_window) for the stragglers of the same round; a lone client never waits.

The model thread is the only one that touches the model (Keras and the readers are not
promised to be thread-safe), and the event loop never waits on it.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass

from pipeline.config import ServeLimits
from pipeline.decoding import Decoding
from pipeline.errors import NocpipeError

#: What the batcher calls: utterances and one Decoding -> a list of candidates per utterance.
ModelCall = Callable[[list[str], Decoding], list[list]]


class Busy(Exception):
    """The queue is full: the client should try again shortly."""


class Stopping(Exception):
    """The server is stopping: requests still waiting are answered, not left to time out."""


class ModelFailed(Exception):
    """The model raised something other than a NocpipeError (its traceback is logged once per call)."""


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


class Batcher:
    def __init__(self, call: ModelCall, limits: ServeLimits, warn: Callable[[str], None] = print):
        self.call = call
        self.limits = limits
        self.warn = warn
        self.stats = BatchStats()
        self.received = 0  # requests submitted so far
        self.closed = False
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._batch: list = []  # taken from the queue and not yet answered
        self._in_call: list = []  # those of them inside the model call now
        self._model_thread = ThreadPoolExecutor(1, thread_name_prefix="nocpipe-model")

    @property
    def pending(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="nocpipe-batcher")

    def close(self) -> int:
        """Stop taking requests: every one still waiting (not inside the model call now) is
        answered with Stopping at once. Returns how many were."""
        self.closed = True
        waiting = [it for it in self._batch if it not in self._in_call]
        while self._queue is not None and not self._queue.empty():
            waiting.append(self._queue.get_nowait())
        told = 0
        for *_, fut in waiting:
            if not fut.done():
                fut.set_exception(Stopping("the server is stopping; try again when it is back"))
                told += 1
        return told

    async def stop(self) -> None:
        self.close()
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        for *_, fut in self._in_call:
            if not fut.done():
                fut.set_exception(Stopping("the server is stopping"))
        self._model_thread.shutdown(wait=False, cancel_futures=True)

    async def submit(self, kana: str, decoding: Decoding) -> list:
        if self._queue is None:
            raise RuntimeError("Batcher.start() was not called")
        if self.closed:
            raise Stopping("the server is stopping; try again when it is back")
        if self._queue.qsize() >= self.limits.max_pending:
            raise Busy(f"{self._queue.qsize()} requests are waiting for the model; try again shortly")
        fut = asyncio.get_running_loop().create_future()
        self.received += 1
        self._queue.put_nowait((kana, decoding, fut))
        return await fut

    async def in_model_thread(self, fn: Callable, *args):
        return await asyncio.get_running_loop().run_in_executor(self._model_thread, fn, *args)

    async def _run(self) -> None:
        queue = self._queue
        assert queue is not None  # start() makes the queue before it starts this task
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
            groups: dict[Decoding, list] = {}
            for item in batch:
                groups.setdefault(item[1], []).append(item)
            for decoding, items in groups.items():
                items = [it for it in items if not it[2].done()]  # cancelled, or told the server stops
                if items:
                    await self._answer(items, decoding)
            self._batch = []
            last = len(batch)

    async def _answer(self, items: list, decoding: Decoding) -> None:
        self._in_call = items
        try:
            results = await self.in_model_thread(self._call, [kana for kana, _, _ in items], decoding)
        except Exception as exc:  # handed to each waiting request; the loop goes on
            self.stats.failed_calls += 1
            if not isinstance(exc, NocpipeError):  # options this model cannot use are the client's to fix
                self.warn(f"the model failed on {len(items)} requests:\n{''.join(traceback.format_exception(exc))}")
                exc = ModelFailed(str(exc))
            self._settle(items, exc=exc)
            return
        finally:
            self._in_call = []
        self.stats.calls += 1
        self.stats.replies += len(items)
        self.stats.largest = max(self.stats.largest, len(items))
        self._settle(items, results=results)

    @staticmethod
    def _settle(items: list, results: list | None = None, exc: Exception | None = None) -> None:
        for i, (*_, fut) in enumerate(items):
            if fut.done():
                continue
            if exc is not None:
                fut.set_exception(exc)
            else:
                assert results is not None  # _settle is given results or exc
                fut.set_result(results[i])

    def _call(self, kanas: list[str], decoding: Decoding) -> list[list]:
        out = self.call(kanas, decoding)
        if len(out) != len(kanas):
            raise RuntimeError(f"the model answered {len(out)} of {len(kanas)} utterances")
        return [list(cands) for cands in out]
