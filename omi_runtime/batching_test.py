"""Unit tests of the adaptive batcher: coalescing, order, isolation of failures."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from omi_runtime.batching import Batcher, _others_ready


def run(coro):
    return asyncio.run(coro)


def _first_held_while_the_rest_queue(predict, first_inputs, rest_inputs, max_batch_size=8):
    """The first request's call is held in the worker until the others have queued behind it; every answer."""
    gate = threading.Event()

    def held(inputs):
        gate.wait(5)
        return predict(inputs)

    async def main():
        batcher = Batcher(held, ThreadPoolExecutor(1), max_batch_size=max_batch_size)
        first = asyncio.ensure_future(batcher.submit(first_inputs))
        await asyncio.sleep(0.05)  # first call is running: the next ones queue up
        rest = [asyncio.ensure_future(batcher.submit(inputs)) for inputs in rest_inputs]
        await asyncio.sleep(0.05)
        gate.set()
        return await first, await asyncio.gather(*rest)

    return run(main())


def test_concurrent_requests_are_coalesced_and_split_back():
    calls = []

    def double(inputs):
        calls.append(len(inputs["x"]))
        return {"y": inputs["x"] * 2}

    first, rest = _first_held_while_the_rest_queue(
        double, {"x": np.array([[0.0]])}, [{"x": np.array([[float(i)]] * 2)} for i in range(1, 6)])
    assert first["y"].tolist() == [[0.0]]
    assert [r["y"].tolist() for r in rest] == [[[2.0 * i]] * 2 for i in range(1, 6)]
    assert calls[0] == 1 and sum(calls) == 11 and max(calls) <= 8 and len(calls) <= 3


def test_a_failing_request_does_not_fail_its_batch():
    gate = threading.Event()

    def picky(inputs):
        gate.wait(5)
        if (inputs["x"] < 0).any():
            raise ValueError("negative")
        return {"y": inputs["x"]}

    async def main():
        batcher = Batcher(picky, ThreadPoolExecutor(1), max_batch_size=16)
        head = asyncio.ensure_future(batcher.submit({"x": np.array([1.0])}))
        await asyncio.sleep(0.05)
        jobs = [asyncio.ensure_future(batcher.submit({"x": np.array([v])})) for v in (2.0, -1.0, 3.0)]
        await asyncio.sleep(0.05)
        gate.set()
        await head
        return await asyncio.gather(*jobs, return_exceptions=True)

    good, bad, good2 = run(main())
    assert good["y"].tolist() == [2.0] and good2["y"].tolist() == [3.0]
    assert isinstance(bad, ValueError)


def test_incompatible_shapes_are_not_merged():
    seen = []

    def ident(inputs):
        seen.append(inputs["x"].shape)
        return {"y": inputs["x"]}

    async def main():
        batcher = Batcher(ident, ThreadPoolExecutor(1), max_batch_size=16)
        return await asyncio.gather(batcher.submit({"x": np.zeros((1, 2))}), batcher.submit({"x": np.zeros((1, 3))}),
                                    batcher.submit({"x": np.zeros((1, 2))}))

    a, b, c = run(main())
    assert a["y"].shape == (1, 2) and b["y"].shape == (1, 3) and c["y"].shape == (1, 2)
    assert (1, 3) in seen


@pytest.mark.parametrize("max_batch", [1, 4])
def test_outputs_without_batch_dimension_fall_back(max_batch):
    def summary(inputs):
        return {"total": np.array(inputs["x"].sum())}

    async def main():
        batcher = Batcher(summary, ThreadPoolExecutor(1), max_batch_size=max_batch)
        return await asyncio.gather(*(batcher.submit({"x": np.array([float(i)])}) for i in range(4)))

    assert [float(r["total"]) for r in run(main())] == [0.0, 1.0, 2.0, 3.0]


def test_a_fast_handler_runs_on_the_loop_thread_and_a_slow_one_in_the_worker():
    threads = []
    delay = {"seconds": 0.0}

    def record(inputs):
        threads.append(threading.get_ident())
        time.sleep(delay["seconds"])
        return {"y": inputs["x"]}

    async def main():
        batcher = Batcher(record, ThreadPoolExecutor(1), max_batch_size=8, inline=True)
        loop_thread = threading.get_ident()
        for _ in range(3):  # the first call's cost is unknown: the worker; then the loop's thread
            await batcher.submit({"x": np.array([1.0])})
        delay["seconds"] = 0.01  # slower than INLINE_SECONDS: this call, made inline, sends the next to the worker
        await batcher.submit({"x": np.array([1.0])})
        delay["seconds"] = 0.0
        await batcher.submit({"x": np.array([1.0])})
        return loop_thread

    loop_thread = run(main())
    on_loop = [t == loop_thread for t in threads]
    assert on_loop == [False, True, True, True, False]


@pytest.mark.parametrize("inline", [False, True])
def test_calls_never_overlap_even_when_callers_give_up(inline):
    active, overlaps, calls = [0], [0], [0]
    lock = threading.Lock()

    def guarded(inputs):
        with lock:
            active[0] += 1
            overlaps[0] += active[0] > 1
            calls[0] += 1
        time.sleep(0.002 if calls[0] % 3 == 0 else 0.0)  # some calls too slow to stay inline
        with lock:
            active[0] -= 1
        return {"y": inputs["x"]}

    async def main():
        batcher = Batcher(guarded, ThreadPoolExecutor(1), max_batch_size=4, inline=inline)
        for round_ in range(30):
            tasks = [asyncio.ensure_future(batcher.submit({"x": np.array([float(i)])})) for i in range(6)]
            await asyncio.sleep(0)
            tasks[round_ % 6].cancel()  # a caller that gives up while its call may be running
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert all(isinstance(r, (dict, asyncio.CancelledError)) for r in results)
        await asyncio.sleep(0.05)

    run(main())
    assert overlaps[0] == 0 and calls[0] > 30


def test_requests_arriving_together_are_coalesced_on_the_loop_thread_too():
    calls = []

    def fast(inputs):
        calls.append((threading.get_ident(), len(inputs["x"])))
        return {"y": inputs["x"] * 2}

    async def main():
        batcher = Batcher(fast, ThreadPoolExecutor(1), max_batch_size=32, inline=True)
        await batcher.submit({"x": np.array([[0.0]])})  # in the worker: its cost is not known yet
        calls.clear()
        results = await asyncio.gather(*(batcher.submit({"x": np.array([[float(i)]])}) for i in range(16)))
        return threading.get_ident(), results

    loop_thread, results = run(main())
    assert [r["y"].tolist() for r in results] == [[[2.0 * i]] for i in range(16)]
    assert calls == [(loop_thread, 16)]


def test_bytes_requests_are_coalesced_and_each_gets_its_own_answer():
    calls = []

    def lengths(inputs):
        calls.append(len(inputs["text"]))
        return {"n": np.array([len(t) for t in inputs["text"]], dtype=np.int64)}

    def texts(*items: bytes) -> np.ndarray:
        array = np.empty(len(items), dtype=object)
        array[:] = items
        return array

    first, rest = _first_held_while_the_rest_queue(
        lengths, {"text": texts(b"a")}, [{"text": texts(b"bb" * i, b"c")} for i in range(1, 4)])
    assert first["n"].tolist() == [1]
    assert [r["n"].tolist() for r in rest] == [[2 * i, 1] for i in range(1, 4)]  # what one-by-one calls give
    assert calls == [1, 6]


def test_the_loop_is_yielded_to_only_when_something_else_is_ready():
    """A lone request (nothing else ready in this turn of the loop) is served without a yield, which would coalesce
    nothing; with another callback ready, a request among them may join, so the caller yields."""
    async def main():
        loop = asyncio.get_running_loop()
        alone = _others_ready(loop)
        loop.call_soon(lambda: None)
        return alone, _others_ready(loop)

    assert run(main()) == (False, True)
