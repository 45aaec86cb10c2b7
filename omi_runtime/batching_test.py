"""Unit tests of the adaptive batcher: coalescing, order, isolation of failures."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from omi_runtime.batching import Batcher


def run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_are_coalesced_and_split_back():
    calls = []
    gate = threading.Event()

    def double(inputs):
        calls.append(len(inputs["x"]))
        gate.wait(5)
        return {"y": inputs["x"] * 2}

    async def main():
        batcher = Batcher(double, ThreadPoolExecutor(1), max_batch_size=8)
        first = asyncio.ensure_future(batcher.submit({"x": np.array([[0.0]])}))
        await asyncio.sleep(0.05)  # first call is running: the next ones queue up
        rest = [asyncio.ensure_future(batcher.submit({"x": np.array([[float(i)]] * 2)})) for i in range(1, 6)]
        await asyncio.sleep(0.05)
        gate.set()
        return await first, await asyncio.gather(*rest)

    first, rest = run(main())
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
