"""Adaptive batching: concurrent requests to one model are coalesced into one handler call.

No timer: while a call runs in the model's worker thread, new requests queue up; when it returns, everything
queued (up to `max_batch_size` rows, same trailing shapes and dtypes, BYTES ones too) is concatenated along axis 0
and run at once.
A lone request therefore pays no added latency (it is run at once, without a queue), and under load the per-call
overhead is shared. If a coalesced call fails, each request is re-run alone so one bad request cannot fail its
neighbours.

A handler that keeps no per-thread state (`inline=True`) and whose last call took under `INLINE_SECONDS` is called
on the event loop's own thread: the hop to the worker thread and back costs more than such a model's whole
prediction (about 40 us against 30 us for a small scikit-learn model), and the loop is held no longer than that.
A slower call moves the next ones back to the worker thread.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Callable

import numpy as np

Arrays = dict[str, np.ndarray]
INLINE_SECONDS = 0.001  # the longest call a fast handler may make on the event loop's thread


@dataclass
class _Job:
    inputs: Arrays
    rows: int | None  # None: not batchable (no common leading dimension)
    key: tuple
    future: asyncio.Future


def _signature(inputs: Arrays) -> tuple[int | None, tuple]:
    rows = None
    key = []
    for name in sorted(inputs):
        array = inputs[name]
        if array.ndim == 0:
            return None, ()
        if rows is None:
            rows = array.shape[0]
        elif rows != array.shape[0]:
            return None, ()
        key.append((name, array.dtype.str, array.shape[1:]))
    return rows, tuple(key)


class Batcher:
    """Serialises calls to `run` on one executor thread, coalescing queued requests when `max_batch_size` > 1."""

    def __init__(self, run: Callable[[Arrays], Arrays], executor: Executor, max_batch_size: int,
                 inline: bool = False) -> None:
        self._run = run
        self._executor = executor
        self._max_rows = max(1, max_batch_size)
        self._pending: deque[_Job] = deque()
        self._draining = False
        self._inline = inline
        self._last_seconds = float("inf")  # how long the last call took, in the thread that made it
        # Calls handed to the worker thread, and those it finished: each written by one thread only. An inline call
        # waits for them to be equal, so the handler never runs twice at once (a cancelled caller does not stop
        # the worker).
        self._sent = 0
        self._finished = 0

    async def submit(self, inputs: Arrays) -> Arrays:
        loop = asyncio.get_running_loop()
        rows, key = _signature(inputs) if self._max_rows > 1 else (None, ())
        job = _Job(inputs, rows, key, loop.create_future())
        self._pending.append(job)
        if not self._draining:
            self._draining = True
            if self._inline_now():
                try:
                    if _others_ready(loop):
                        await asyncio.sleep(0)  # requests that arrived with this one queue up and join its batch
                finally:
                    self._serve_here()  # no task, no thread: the caller serves its batch (even if it gave up)
            else:
                self._task = loop.create_task(self._drain())  # referenced so it is not collected mid-run
        return await job.future

    def _inline_now(self) -> bool:
        return self._inline and self._last_seconds < INLINE_SECONDS and self._sent == self._finished

    def _serve_here(self) -> None:
        """Run the first batch on the loop's thread, synchronously; what queues meanwhile is drained as usual."""
        try:
            batch = self._take_live()
            if batch:
                self._run_batch_inline(batch)
        finally:
            if self._pending:
                self._task = asyncio.get_running_loop().create_task(self._drain())
            else:
                self._draining = False

    def _take(self) -> list[_Job]:
        first = self._pending.popleft()
        if first.rows is None or first.rows >= self._max_rows:
            return [first]
        batch, rows, skipped = [first], first.rows, []
        while self._pending and rows < self._max_rows:
            job = self._pending.popleft()
            if job.rows is not None and job.key == first.key and rows + job.rows <= self._max_rows:
                batch.append(job)
                rows += job.rows
            else:
                skipped.append(job)
        self._pending.extendleft(reversed(skipped))  # keep arrival order for the next round
        return batch

    def _take_live(self) -> list[_Job]:
        return [j for j in self._take() if not j.future.done()]  # drop cancelled callers

    async def _drain(self) -> None:
        try:
            while self._pending:
                inline = self._inline_now()
                if inline:
                    # Let requests that arrived meanwhile queue up and join the batch. Nothing else takes from the
                    # queue or calls the handler meanwhile, so the choice stands.
                    await asyncio.sleep(0)
                batch = self._take_live()
                if batch and inline:
                    self._run_batch_inline(batch)
                elif batch:
                    await self._run_batch(batch)
        finally:
            self._draining = False

    def _timed(self, inputs: Arrays) -> Arrays:
        started = time.perf_counter()
        try:
            return self._run(inputs)
        finally:
            self._last_seconds = time.perf_counter() - started

    def _in_worker(self, inputs: Arrays) -> Arrays:
        try:
            return self._timed(inputs)
        finally:
            self._finished += 1

    async def _in_thread(self, inputs: Arrays) -> Arrays:
        self._sent += 1
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._in_worker, inputs)

    @staticmethod
    def _merge(batch: list[_Job]) -> Arrays:
        return {name: np.concatenate([j.inputs[name] for j in batch]) for name in batch[0].inputs}

    @staticmethod
    def _split(batch: list[_Job], result: Arrays) -> bool:
        """Give each request its rows of a coalesced call's outputs; False when they have no per-row dimension."""
        total = sum(j.rows or 0 for j in batch)
        if not all(np.ndim(v) >= 1 and len(v) == total for v in result.values()):
            return False
        offsets = np.cumsum([j.rows for j in batch])[:-1]
        parts = {name: np.split(np.asarray(value), offsets) for name, value in result.items()}
        for i, job in enumerate(batch):
            _settle(job, {name: pieces[i] for name, pieces in parts.items()})
        return True

    def _run_batch_inline(self, batch: list[_Job]) -> None:
        if len(batch) > 1:
            try:
                if self._split(batch, self._timed(self._merge(batch))):
                    return
            except Exception:  # isolate the requests below
                pass
        for job in batch:  # alone, or each request of a batch that failed or cannot be split
            try:
                _settle(job, self._timed(job.inputs))
            except Exception as e:  # delivered to the caller, which maps it to a protocol error
                _settle(job, error=e)

    async def _run_batch(self, batch: list[_Job]) -> None:
        if len(batch) > 1:
            try:
                if self._split(batch, await self._in_thread(self._merge(batch))):
                    return
            except Exception:  # isolate the requests below
                pass
        for job in batch:
            try:
                _settle(job, await self._in_thread(job.inputs))
            except Exception as e:
                _settle(job, error=e)


def _others_ready(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether other callbacks will run in this turn of the loop (a request among them may join the batch). A yield
    lets only those run before the caller resumes: with none ready, it would coalesce nothing and cost a turn of the
    loop. A loop that does not show its queue is always yielded to."""
    ready = getattr(loop, "_ready", None)
    return ready is None or len(ready) > 0


def _settle(job: _Job, result: Arrays | None = None, error: Exception | None = None) -> None:
    if job.future.done():  # the caller gave up
        return
    if error is not None:
        job.future.set_exception(error)
    else:
        job.future.set_result(result)
