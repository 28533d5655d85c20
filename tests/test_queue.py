"""Behaviour of engine.queue.PriorityQueue on a real event loop."""

from __future__ import annotations

import asyncio

import pytest

from engine.queue import Overflow, PriorityQueue, QueueShutDown


async def test_lower_priority_first_and_fifo_among_equals():
    queue = PriorityQueue()
    for index, priority in enumerate([5, 1, 3, 1, 9, 5]):
        queue.put_nowait({"index": index}, priority=priority)
    got = [queue.get_with_priority_nowait() for _ in range(6)]
    assert [(item["index"], priority) for item, priority in got] == [
        (1, 1), (3, 1), (2, 3), (0, 5), (5, 5), (4, 9)
    ]


async def test_is_an_asyncio_queue_and_shutdown_drains_then_fails():
    queue = PriorityQueue()
    assert isinstance(queue, asyncio.Queue)
    await queue.put("a", priority=2)
    queue.shutdown()
    with pytest.raises(QueueShutDown):
        await queue.put("b")
    assert await queue.get() == "a"
    with pytest.raises(QueueShutDown):
        await queue.get()


async def test_evict_lowest_drops_the_worst_newest_item():
    dropped = []
    queue = PriorityQueue(3, overflow=Overflow.EVICT_LOWEST, on_drop=lambda *a: dropped.append(a))
    for item, priority in [("a", 5), ("b", 1), ("c", 9), ("d", 3), ("e", 9), ("f", 0)]:
        queue.put_nowait(item, priority=priority)
    assert dropped == [("c", 9, "evicted"), ("e", 9, "evicted"), ("a", 5, "evicted")]
    assert queue.drain_nowait() == [("f", 0), ("b", 1), ("d", 3)]
