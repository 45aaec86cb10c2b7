"""Adaptive batching: concurrent requests to one model are coalesced into one handler call.

No timer: while a call runs in the model's worker thread, new requests queue up; when it returns, everything
queued (up to `max_batch_size` rows, same trailing shapes and dtypes) is concatenated along axis 0 and run at once.
A lone request therefore pays no added latency, and under load the per-call overhead is shared. If a coalesced
call fails, each request is re-run alone so one bad request cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
from collections import deque
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Callable

import numpy as np

Arrays = dict[str, np.ndarray]


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
        if array.ndim == 0 or array.dtype == object:
            return None, ()
        if rows is None:
            rows = array.shape[0]
        elif rows != array.shape[0]:
            return None, ()
        key.append((name, array.dtype.str, array.shape[1:]))
    return rows, tuple(key)


class Batcher:
    """Serialises calls to `run` on one executor thread, coalescing queued requests when `max_batch_size` > 1."""

    def __init__(self, run: Callable[[Arrays], Arrays], executor: Executor, max_batch_size: int) -> None:
        self._run = run
        self._executor = executor
        self._max_rows = max(1, max_batch_size)
        self._pending: deque[_Job] = deque()
        self._draining = False

    async def submit(self, inputs: Arrays) -> Arrays:
        loop = asyncio.get_running_loop()
        rows, key = _signature(inputs) if self._max_rows > 1 else (None, ())
        job = _Job(inputs, rows, key, loop.create_future())
        self._pending.append(job)
        if not self._draining:
            self._draining = True
            self._task = loop.create_task(self._drain())  # referenced so it is not collected mid-run
        return await job.future

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

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = [j for j in self._take() if not j.future.done()]  # drop cancelled callers
                if batch:
                    await self._run_batch(batch)
        finally:
            self._draining = False

    async def _call(self, inputs: Arrays) -> Arrays:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._run, inputs)

    async def _run_alone(self, job: _Job) -> None:
        try:
            result = await self._call(job.inputs)
        except Exception as e:  # delivered to the caller, which maps it to a protocol error
            if not job.future.done():
                job.future.set_exception(e)
            return
        if not job.future.done():
            job.future.set_result(result)

    async def _run_batch(self, batch: list[_Job]) -> None:
        if len(batch) == 1:
            await self._run_alone(batch[0])
            return
        merged = {name: np.concatenate([j.inputs[name] for j in batch]) for name in batch[0].inputs}
        total = sum(j.rows or 0 for j in batch)
        try:
            result = await self._call(merged)
            split_ok = all(np.ndim(v) >= 1 and len(v) == total for v in result.values())
        except Exception:
            result, split_ok = {}, False
        if not split_ok:
            # Failure or outputs without a per-row leading dimension: isolate the requests.
            for job in batch:
                await self._run_alone(job)
            return
        offsets = np.cumsum([j.rows for j in batch])[:-1]
        parts = {name: np.split(np.asarray(value), offsets) for name, value in result.items()}
        for i, job in enumerate(batch):
            if not job.future.done():
                job.future.set_result({name: pieces[i] for name, pieces in parts.items()})
