"""Model-based test: random operation sequences against a plain reference model.

Hypothesis draws sequences of puts, gets (plain and async), clock ticks, aging-rate and
overflow changes, requeues (at the tail, and with the arrival token of a delivery held out, in
any order), drains, and cancelled or woken-then-cancelled putters and getters.
The reference model is a list scanned in full for every decision, the obviously correct and
slow way: the best item is the minimum of (priority + rate * enqueue time, enqueue time,
arrival), the one evict-lowest drops is the maximum. After every step the queue must agree
with the model on order, depth per priority, counts and drops, and at the end every item ever
offered must have exactly one fate: got, evicted, rejected, never landed, or still queued.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.queue import Overflow, PriorityQueue

PRIORITIES = [0, 1, 2, 2.5, 4, -1]
TICKS = [0.0, 0.5, 1.0, 4.0]
RATES = [0.0, 0.5, 1.0, 2.0]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Model:
    """The reference: a flat list of (priority, enqueue time, arrival, item)."""

    maxsize: int
    overflow: Overflow = Overflow.BLOCK
    rate: float = 0.0
    entries: list[tuple[float, float, int, int]] = field(default_factory=list)
    arrivals: int = 0
    puts: int = 0
    requeues: int = 0
    gets: int = 0
    evicted: list[tuple[int, float, str]] = field(default_factory=list)
    rejected: list[tuple[int, float, str]] = field(default_factory=list)

    def order_key(self, entry: tuple[float, float, int, int]) -> tuple[float, float, int]:
        priority, t, arrival, _ = entry
        return (priority + self.rate * (t - 0.0) if self.rate else priority), t, arrival

    def full(self) -> bool:
        return 0 < self.maxsize <= len(self.entries)

    def ordered(self) -> list[tuple[float, float, int, int]]:
        return sorted(self.entries, key=self.order_key)

    def insert(self, item: int, priority: float, now: float, *, requeue: bool = False) -> None:
        self.entries.append((priority, now, self.arrivals, item))
        self.arrivals += 1
        if requeue:
            self.requeues += 1
        else:
            self.puts += 1

    def put(self, item: int, priority: float, now: float) -> str:
        """What put_nowait must do: 'put', 'full' (QueueFull, not a drop) or 'rejected'."""
        if not self.full():
            self.insert(item, priority, now)
            return "put"
        if self.overflow is Overflow.BLOCK:
            return "full"
        if self.overflow is Overflow.REJECT:
            self.rejected.append((item, priority, "rejected"))
            return "rejected"
        newcomer = (priority, now, self.arrivals, item)
        worst = max(self.entries, key=self.order_key)
        if self.order_key(newcomer) > self.order_key(worst):
            self.evicted.append((item, priority, "evicted"))
            return "put"
        self.entries.remove(worst)
        self.insert(item, priority, now)
        self.evicted.append((worst[3], worst[0], "evicted"))
        return "put"

    def get(self) -> tuple[int, float]:
        best = self.take()
        return best[3], best[0]

    def take(self) -> tuple[float, float, int, int]:
        best = min(self.entries, key=self.order_key)
        self.entries.remove(best)
        self.gets += 1
        return best

    def put_back(self, entry: tuple[float, float, int, int]) -> None:
        """A requeue with the arrival token: the original entry, its place and its time."""
        self.entries.append(entry)
        self.requeues += 1


put_op = st.tuples(st.just("put"), st.sampled_from(PRIORITIES), st.booleans())
get_op = st.tuples(st.just("get"), st.booleans())
tick_op = st.tuples(st.just("tick"), st.sampled_from(TICKS))
operation = st.one_of(
    # Puts, gets and ticks listed more than once: they are what the rest acts on.
    put_op, put_op, put_op, get_op, get_op, tick_op, tick_op,
    st.tuples(st.just("rate"), st.sampled_from(RATES)),
    st.tuples(st.just("overflow"), st.sampled_from(list(Overflow))),
    st.tuples(st.just("requeue"), st.sampled_from(PRIORITIES)),
    st.tuples(st.just("out")),
    st.tuples(st.just("out")),
    st.tuples(st.just("back"), st.integers(0, 3)),
    st.tuples(st.just("drain")),
    st.tuples(st.just("cancel_put"), st.sampled_from(PRIORITIES)),
    st.tuples(st.just("woken_cancel_put"), st.sampled_from(PRIORITIES)),
    st.tuples(st.just("cancel_get")),
    st.tuples(st.just("woken_cancel_get"), st.sampled_from(PRIORITIES)),
    st.tuples(st.just("top"), st.integers(0, 6)),
)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def run(maxsize: int, rate: float, ops: list[tuple[Any, ...]]) -> None:
    clock = FakeClock()
    drops: list[tuple[int, float, str]] = []
    queue = PriorityQueue(
        maxsize, aging_rate=rate, clock=clock, on_drop=lambda *drop: drops.append(drop)
    )
    model = Model(maxsize, rate=rate)
    offered: list[int] = []  # every item id handed to the queue in any way
    got: list[int] = []
    never_landed: list[int] = []
    out: list[tuple[Any, tuple[float, float, int, int]]] = []  # deliveries held, model entries

    def new_item() -> int:
        offered.append(len(offered))
        return offered[-1]

    def check() -> None:
        assert queue.qsize() == len(model.entries)
        assert queue.full() == model.full()
        assert queue.depth_by_priority() == dict(
            sorted(Counter(entry[0] for entry in model.entries).items())
        )
        best = queue.peek()
        ordered = model.ordered()
        assert (best.item if best else None) == (ordered[0][3] if ordered else None)
        stats = queue.stats()
        assert (stats.puts, stats.gets, stats.depth) == (model.puts, model.gets, len(ordered))
        assert stats.requeues == queue.requeues == model.requeues
        assert stats.evicted == len(model.evicted) and stats.rejected == len(model.rejected)
        assert sorted(drops) == sorted(model.evicted + model.rejected)
        assert queue.blocked_putters == 0 and queue.blocked_getters == 0
        now = clock.now
        assert queue.oldest_wait() == max((now - e[1] for e in model.entries), default=0.0)
        for priority in PRIORITIES:
            waits = [now - e[1] for e in model.entries if e[0] == priority]
            assert queue.oldest_wait(priority) == max(waits, default=0.0)

    for op in ops:
        kind = op[0]
        if kind == "put":
            _, priority, use_async = op
            item = new_item()
            expected = model.put(item, priority, clock.now)
            if expected == "put" and use_async:
                await queue.put(item, priority=priority)
            elif expected == "put":
                queue.put_nowait(item, priority=priority)
            else:
                try:
                    queue.put_nowait(item, priority=priority)
                except asyncio.QueueFull:
                    pass
                else:
                    raise AssertionError(f"put of {item} on a full queue did not fail")
                if expected == "full":
                    never_landed.append(item)
        elif kind == "get":
            if not model.entries:
                try:
                    queue.get_nowait()
                except asyncio.QueueEmpty:
                    continue
                raise AssertionError("get_nowait on an empty queue did not fail")
            expected_item, expected_priority = model.get()
            if op[1]:
                assert await queue.get_with_priority() == (expected_item, expected_priority)
            else:
                assert queue.get_nowait() == expected_item
            got.append(expected_item)
        elif kind == "tick":
            clock.now += op[1]
        elif kind == "rate":
            queue.aging_rate = model.rate = op[1]
        elif kind == "overflow":
            queue.overflow = model.overflow = op[1]
        elif kind == "requeue":
            item = new_item()
            model.insert(item, op[1], clock.now, requeue=True)
            queue.requeue_nowait(item, priority=op[1])
        elif kind == "out":
            if not model.entries:
                continue
            entry = model.take()
            delivery = queue.get_delivery_nowait()
            item, priority, _, first_arrival, *_ = delivery
            assert (item, priority, first_arrival) == (entry[3], entry[0], entry[1])
            out.append((delivery, entry))
            got.append(entry[3])
        elif kind == "back":
            if not out:
                continue
            delivery, entry = out.pop(op[1] % len(out))
            model.put_back(entry)
            got.remove(entry[3])
            queue.requeue_nowait(
                delivery[0], priority=delivery[1], arrival=delivery[2]
            )
        elif kind == "drain":
            expected = [(entry[3], entry[0]) for entry in model.ordered()]
            model.entries.clear()
            model.gets += len(expected)
            assert queue.drain_nowait() == expected
            got.extend(item for item, _ in expected)
        elif kind == "cancel_put":
            if not (model.full() and model.overflow is Overflow.BLOCK):
                continue
            item = new_item()
            putter = asyncio.create_task(queue.put(item, priority=op[1]))
            await settle()
            assert queue.blocked_putters == 1
            putter.cancel()
            await asyncio.gather(putter, return_exceptions=True)
            never_landed.append(item)
        elif kind == "woken_cancel_put":
            # Exactly full, so that one get frees the one slot (requeue can overfill).
            if not (len(model.entries) == maxsize > 0 and model.overflow is Overflow.BLOCK):
                continue
            first, second = new_item(), new_item()
            putters = [
                asyncio.create_task(queue.put(first, priority=op[1])),
                asyncio.create_task(queue.put(second, priority=op[1])),
            ]
            await settle()
            assert queue.blocked_putters == 2
            expected_item, _ = model.get()
            assert queue.get_nowait() == expected_item  # wakes the first putter ...
            got.append(expected_item)
            putters[0].cancel()  # ... cancelled before it can use the slot
            await asyncio.gather(*putters, return_exceptions=True)
            assert putters[0].cancelled() and putters[1].exception() is None
            model.put(second, op[1], clock.now)
            never_landed.append(first)
        elif kind == "cancel_get":
            if model.entries:
                continue
            getter = asyncio.create_task(queue.get())
            await settle()
            getter.cancel()
            await asyncio.gather(getter, return_exceptions=True)
        elif kind == "woken_cancel_get":
            if model.entries:
                continue
            getters = [asyncio.create_task(queue.get()) for _ in range(2)]
            await settle()
            item = new_item()
            model.put(item, op[1], clock.now)
            queue.put_nowait(item, priority=op[1])  # wakes the first getter ...
            getters[0].cancel()  # ... cancelled before it can take the item
            results = await asyncio.gather(*getters, return_exceptions=True)
            assert getters[0].cancelled()
            assert results[1] == item
            model.get()
            got.append(item)
        elif kind == "top":
            now = clock.now
            entries = queue.top(op[1])
            expected = model.ordered()[: op[1]]
            assert [e.item for e in entries] == [entry[3] for entry in expected]
            assert [e.waited for e in entries] == [now - entry[1] for entry in expected]
            assert [e.effective_priority for e in entries] == [
                entry[0] - model.rate * (now - entry[1]) for entry in expected
            ]
        check()

    remaining = [item for item, _ in queue.drain_nowait()]
    assert remaining == [entry[3] for entry in model.ordered()]
    fates = got + remaining + never_landed + [drop[0] for drop in drops]
    assert sorted(fates) == offered, "an item was lost or duplicated"


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    maxsize=st.sampled_from([0, 1, 2, 3, 5]),
    rate=st.sampled_from(RATES),
    ops=st.lists(operation, min_size=1, max_size=60),
)
def test_queue_agrees_with_the_reference_model(
    maxsize: int, rate: float, ops: list[tuple[Any, ...]]
) -> None:
    # A wrong queue could leave a get waiting forever: fail instead of hanging.
    asyncio.run(asyncio.wait_for(run(maxsize, rate, ops), timeout=5))


ordering_operation = st.one_of(
    put_op, get_op, tick_op, st.tuples(st.just("rate"), st.sampled_from(RATES))
)


@settings(max_examples=300, deadline=None)
@given(
    rate=st.sampled_from(RATES[1:]),
    ops=st.lists(ordering_operation, min_size=4, max_size=40),
)
def test_aging_order_agrees_with_the_reference_model(
    rate: float, ops: list[tuple[Any, ...]]
) -> None:
    """A smaller alphabet (put, get, tick, rate) that reaches deep aging orders more often."""
    asyncio.run(asyncio.wait_for(run(0, rate, ops), timeout=5))
