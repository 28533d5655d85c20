"""The least a queue with PriorityQueue's hot-path contract can do in pure Python: a ceiling.

`bench_queue.py` times its steady-depth loop on this queue too, beside ours and the baseline,
to show how far any pure-Python design could go on that loop. It keeps only what the loop's
contract asks of every put and get: asyncio's bookkeeping (`join()`'s counter, waking a
waiting getter or putter), the arrival clock reading, the delivery tuple with its arrival
token, and the counters `stats()` reports (size, peak, puts) with the sampled wait countdown.

It leaves out, so it is cheaper than any real queue could be: priority checks and new levels
(10 levels, made up front), the heap of level heads (it scans the 10 levels in order), aging,
overflow policies, shutdown, the wait-time windows, and requeue at the original place (a
requeue goes to the front of its level, right only for the level's head, which is what the
loop gives back). Not a queue to use: a measuring stick.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

SAMPLE_EVERY = 8


class FloorLevel:
    __slots__ = ("priority", "entries", "served")

    def __init__(self, priority: int) -> None:
        self.priority = priority
        self.entries: deque[tuple[float, Any]] = deque()  # (arrival time, item)
        self.served = 0


class FloorQueue:
    __slots__ = (
        "_levels", "_order", "_clock", "_size", "_limit", "_peak", "_puts", "_sample_due",
        "_unfinished_tasks", "_finished", "_getters", "_putters",
    )  # fmt: skip

    def __init__(self, priorities: int = 10) -> None:
        self._order = [FloorLevel(p) for p in range(priorities)]
        self._levels = {level.priority: level for level in self._order}
        self._clock = time.monotonic
        self._size = self._peak = self._puts = self._unfinished_tasks = 0
        self._limit = 1 << 62
        self._sample_due = SAMPLE_EVERY
        self._finished = asyncio.Event()
        self._getters: deque[asyncio.Future[Any]] = deque()
        self._putters: deque[asyncio.Future[Any]] = deque()

    def put_nowait(self, item: Any, *, priority: int = 5) -> None:
        level = self._levels[priority]
        clock = self._clock
        t = clock()
        if self._size >= self._limit:
            raise asyncio.QueueFull
        level.entries.append((t, item))
        size = self._size = self._size + 1
        if size > self._peak:
            self._peak = size
        self._puts += 1
        unfinished = self._unfinished_tasks
        if not unfinished:
            self._finished.clear()
        self._unfinished_tasks = unfinished + 1
        if self._getters:
            self._getters.popleft().set_result(t)

    def get_delivery_nowait(self) -> tuple[Any, ...]:
        if not self._size:
            raise asyncio.QueueEmpty
        for level in self._order:
            if level.entries:
                break
        t, item = level.entries.popleft()
        seq = level.served
        level.served = seq + 1
        self._size -= 1
        due = self._sample_due - 1
        self._sample_due = due if due else SAMPLE_EVERY
        if self._putters:
            self._putters.popleft().set_result(None)
        return (item, level.priority, (t, seq, 0, level), t, 0, None)

    def requeue_nowait(self, item: Any, *, priority: int, arrival: tuple[Any, ...]) -> None:
        level = self._levels[priority]
        level.entries.appendleft((arrival[0], item))
        level.served -= 1
        self._size += 1
