"""Behaviour of engine.queue.PriorityQueue and engine.latency on a real event loop."""

from __future__ import annotations

import asyncio
import logging
import math
import re
import sys

import pytest

from engine import PriorityQueue as ExportedPriorityQueue
from engine.latency import SAMPLE_TABLE, LatencyWindow, SparseLatencyWindow, flag_drawer, gap_drawer
from engine.protocol import Delivery, WorkQueue, Wrapped
from engine.queue import Overflow, PriorityQueue, QueueShutDown
from engine.snapshots import HeapEntry, QueueStats
from tests.waiting import until


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Opaque:
    """A payload with no ordering at all: comparing two would raise TypeError."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.name == self.name

    def __lt__(self, other: object) -> bool:
        raise TypeError("payloads must never be compared")


class ExactQueue(PriorityQueue):
    """Times every get and every blocked put: no sampling, for exact latency figures."""

    __slots__ = ()
    WAIT_SAMPLE_EVERY = 1


async def settle() -> None:
    """Let every ready task run until it blocks again."""
    for _ in range(5):
        await asyncio.sleep(0)


def drain(queue: PriorityQueue) -> list:
    return [item for item, _ in queue.drain_nowait()]


# ------------------------------------------------------------------ ordering


async def test_lower_priority_first_and_fifo_among_equals():
    queue = PriorityQueue()
    for index, priority in enumerate([5, 1, 3, 1, 9, 5, 1.5, -2]):
        queue.put_nowait({"index": index}, priority=priority)
    got = [queue.get_with_priority_nowait() for _ in range(8)]
    assert [(item["index"], priority) for item, priority in got] == [
        (7, -2), (1, 1), (3, 1), (6, 1.5), (2, 3), (0, 5), (5, 5), (4, 9)
    ]  # fmt: skip


async def test_default_priority_is_documented_five():
    queue = PriorityQueue()
    assert PriorityQueue.DEFAULT_PRIORITY == 5
    queue.put_nowait("default")
    await queue.put("also-default")
    queue.put_nowait("four", priority=4)
    queue.put_nowait("six", priority=6)
    assert queue.depth_by_priority() == {4: 1, 5: 2, 6: 1}
    assert drain(queue) == ["four", "default", "also-default", "six"]


async def test_payloads_are_never_compared():
    queue = PriorityQueue()
    items = [Opaque(f"o{i}") for i in range(50)]
    for item in items:
        queue.put_nowait(item, priority=1)
    queue.put_nowait({"a": 1}, priority=1)
    queue.put_nowait({"a": 2}, priority=0)
    assert queue.top(3)[0].item == {"a": 2}
    assert await queue.get() == {"a": 2}
    assert [await queue.get() for _ in range(50)] == items
    assert queue.get_nowait() == {"a": 1}


async def test_get_returns_the_item_and_get_with_priority_the_pair():
    queue = PriorityQueue()
    await queue.put(("tuple", "payload"), priority=2)
    await queue.put("x", priority=7)
    assert await queue.get() == ("tuple", "payload")
    assert await queue.get_with_priority() == ("x", 7)


async def test_exported_from_the_package_and_is_an_asyncio_queue():
    assert ExportedPriorityQueue is PriorityQueue
    queue = PriorityQueue(3)
    assert isinstance(queue, asyncio.Queue)
    assert queue.maxsize == 3
    assert queue.empty() and not queue.full() and queue.qsize() == 0


async def test_many_distinct_priorities_stay_ordered():
    queue = PriorityQueue()
    priorities = [((i * 7919) % 3001) / 7 for i in range(3001)]
    for index, priority in enumerate(priorities):
        queue.put_nowait(index, priority=priority)
    got = [queue.get_with_priority_nowait() for _ in range(len(priorities))]
    assert [priority for _, priority in got] == sorted(priorities)
    assert sorted(item for item, _ in got) == list(range(3001))


# ------------------------------------------------------------------ asyncio.Queue behaviour


async def test_the_n_plus_first_put_waits_for_a_get():
    queue = PriorityQueue(2)
    await queue.put("a", priority=1)
    await queue.put("b", priority=2)
    assert queue.full()
    with pytest.raises(asyncio.QueueFull):
        queue.put_nowait("c", priority=0)
    third = asyncio.create_task(queue.put("c", priority=0))
    await settle()
    assert not third.done()
    assert queue.blocked_putters == 1
    assert await queue.get() == "a"
    await third
    assert queue.blocked_putters == 0
    assert drain(queue) == ["c", "b"]


async def test_get_nowait_on_empty_raises_queue_empty_and_get_waits():
    queue = PriorityQueue()
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()
    getter = asyncio.create_task(queue.get())
    await settle()
    assert queue.blocked_getters == 1 and not getter.done()
    queue.put_nowait("late", priority=3)
    assert await getter == "late"
    assert queue.blocked_getters == 0


async def test_join_waits_for_task_done_of_every_item():
    queue = PriorityQueue()
    for index in range(3):
        queue.put_nowait(index, priority=index)
    joiner = asyncio.create_task(queue.join())
    for _ in range(3):
        await queue.get()
        await settle()
        assert not joiner.done()
        queue.task_done()
    await asyncio.wait_for(joiner, 1)
    with pytest.raises(ValueError):
        queue.task_done()


async def test_cancelled_put_never_lands():
    queue = PriorityQueue(1)
    await queue.put("first")
    blocked = asyncio.create_task(queue.put("never", priority=0))
    await settle()
    blocked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocked
    assert queue.blocked_putters == 0
    assert await queue.get() == "first"
    assert queue.empty()
    assert queue.stats().puts == 1


async def test_cancelled_get_never_loses_an_item():
    queue = PriorityQueue()
    getter = asyncio.create_task(queue.get())
    await settle()
    getter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await getter
    queue.put_nowait("kept")
    assert queue.get_nowait() == "kept"


async def test_woken_then_cancelled_getter_wakes_the_next_one():
    queue = PriorityQueue()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await settle()
    queue.put_nowait("only")  # wakes `first` ...
    first.cancel()  # ... which is cancelled before it can take the item
    assert await asyncio.wait_for(second, 1) == "only"
    with pytest.raises(asyncio.CancelledError):
        await first
    assert queue.empty()


async def test_woken_then_cancelled_putter_wakes_the_next_one():
    queue = PriorityQueue(1)
    queue.put_nowait("full")
    first = asyncio.create_task(queue.put("first", priority=1))
    second = asyncio.create_task(queue.put("second", priority=2))
    await settle()
    assert queue.get_nowait() == "full"  # wakes `first` ...
    first.cancel()  # ... which is cancelled before it can use the slot
    await asyncio.wait_for(second, 1)
    with pytest.raises(asyncio.CancelledError):
        await first
    assert drain(queue) == ["second"]


# ------------------------------------------------------------------ shutdown


async def test_queue_shutdown_is_asyncios_on_313():
    if sys.version_info >= (3, 13):
        assert QueueShutDown is asyncio.QueueShutDown
    assert issubclass(QueueShutDown, Exception)


async def test_shutdown_fails_puts_and_lets_getters_drain_then_fail():
    queue = PriorityQueue(1)
    queue.put_nowait("queued", priority=2)
    blocked_putter = asyncio.create_task(queue.put("blocked"))
    await settle()
    queue.shutdown()
    with pytest.raises(QueueShutDown):
        await blocked_putter
    with pytest.raises(QueueShutDown):
        queue.put_nowait("late")
    with pytest.raises(QueueShutDown):
        await queue.put("late")
    assert queue.is_shutdown and queue.stats().is_shutdown
    assert await queue.get() == "queued"
    with pytest.raises(QueueShutDown):
        queue.get_nowait()
    with pytest.raises(QueueShutDown):
        await queue.get()


async def test_shutdown_wakes_blocked_getters_with_queue_shutdown():
    queue = PriorityQueue()
    getters = [asyncio.create_task(queue.get()) for _ in range(3)]
    await settle()
    assert queue.blocked_getters == 3
    queue.shutdown()
    results = await asyncio.gather(*getters, return_exceptions=True)
    assert all(isinstance(result, QueueShutDown) for result in results)
    assert queue.blocked_getters == 0


async def test_immediate_shutdown_returns_the_items_and_releases_join():
    queue = PriorityQueue()
    for item, priority in [("c", 3), ("a", 1), ("b", 2)]:
        queue.put_nowait(item, priority=priority)
    joiner = asyncio.create_task(queue.join())
    await settle()
    discarded = queue.shutdown(immediate=True)
    assert discarded == [("a", 1), ("b", 2), ("c", 3)]
    await asyncio.wait_for(joiner, 1)
    assert queue.empty()
    with pytest.raises(QueueShutDown):
        queue.get_nowait()
    stats = queue.stats()
    assert (stats.puts, stats.gets, stats.depth) == (3, 0, 0)


async def test_requeue_ignores_maxsize_overflow_and_shutdown():
    queue = PriorityQueue(1, overflow="reject")
    queue.put_nowait("in", priority=5)
    queue.requeue_nowait("back", priority=1)
    assert queue.qsize() == 2 and queue.full()
    queue.shutdown()
    queue.requeue_nowait("after-shutdown", priority=9)
    assert queue.stats().rejected == 0
    assert [queue.get_nowait() for _ in range(3)] == ["back", "in", "after-shutdown"]


async def test_drain_is_best_first_and_frees_blocked_putters():
    queue = PriorityQueue(2)
    queue.put_nowait("low", priority=9)
    queue.put_nowait("high", priority=0)
    putters = [asyncio.create_task(queue.put(f"p{i}", priority=i)) for i in range(2)]
    await settle()
    assert queue.drain_nowait() == [("high", 0), ("low", 9)]
    await asyncio.wait_for(asyncio.gather(*putters), 1)
    assert drain(queue) == ["p0", "p1"]
    assert queue.stats().gets == 4


# ------------------------------------------------------------------ bad input


BAD_PRIORITIES = [
    (None, TypeError),
    ("high", TypeError),
    (True, TypeError),
    (b"1", TypeError),
    ([1], TypeError),
    (float("nan"), ValueError),
    (float("inf"), ValueError),
    (float("-inf"), ValueError),
]


@pytest.mark.parametrize(("priority", "error"), BAD_PRIORITIES)
async def test_bad_priority_names_the_value_and_changes_nothing(priority, error):
    queue = PriorityQueue(2)
    queue.put_nowait("existing", priority=1)
    before = queue.stats()
    for attempt in (
        lambda: queue.put_nowait("x", priority=priority),
        lambda: queue.requeue_nowait("x", priority=priority),
    ):
        with pytest.raises(error, match=re.escape(repr(priority))):
            attempt()
    with pytest.raises(error):
        await queue.put("x", priority=priority)
    queue.put_nowait("fills", priority=2)
    with pytest.raises(error):  # fails at once, does not wait for room first
        await asyncio.wait_for(queue.put("x", priority=priority), 1)
    after = queue.stats()
    assert after.depth == before.depth + 1 and after.puts == before.puts + 1
    assert drain(queue) == ["existing", "fills"]


async def test_bad_settings_name_the_value():
    with pytest.raises(ValueError, match="'sideways'"):
        PriorityQueue(overflow="sideways")
    with pytest.raises(ValueError, match="-1"):
        PriorityQueue(aging_rate=-1)
    with pytest.raises(TypeError, match="'fast'"):
        PriorityQueue(aging_rate="fast")
    with pytest.raises(ValueError, match="window size .* 0"):
        PriorityQueue(window=0)
    with pytest.raises(TypeError, match="'3'"):
        PriorityQueue("3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="-2"):
        PriorityQueue(log_every=-2)
    queue = PriorityQueue(overflow="reject", aging_rate=0.5)
    with pytest.raises(ValueError, match="nan"):
        queue.aging_rate = float("nan")
    with pytest.raises(ValueError, match="'drop'"):
        queue.overflow = "drop"
    assert queue.aging_rate == 0.5 and queue.overflow is Overflow.REJECT
    with pytest.raises(ValueError, match="-3"):
        queue.top(-3)


# ------------------------------------------------------------------ overflow


async def test_reject_fails_at_once_counts_and_reports():
    dropped = []
    queue = PriorityQueue(1, overflow="reject", on_drop=lambda *args: dropped.append(args))
    await queue.put("kept", priority=5)
    with pytest.raises(asyncio.QueueFull):
        await asyncio.wait_for(queue.put("refused", priority=0), 1)
    with pytest.raises(asyncio.QueueFull):
        queue.put_nowait("refused-too", priority=9)
    assert dropped == [("refused", 0, "rejected"), ("refused-too", 9, "rejected")]
    stats = queue.stats()
    assert (stats.rejected, stats.evicted, stats.dropped, stats.depth) == (2, 0, 2, 1)


async def test_block_policy_put_nowait_full_is_not_a_drop():
    dropped = []
    queue = PriorityQueue(1, on_drop=lambda *args: dropped.append(args))
    queue.put_nowait("a")
    with pytest.raises(asyncio.QueueFull):
        queue.put_nowait("b")
    assert dropped == [] and queue.stats().dropped == 0


async def test_evict_lowest_drops_the_worst_newest_item_or_the_newcomer():
    dropped = []
    queue = PriorityQueue(3, overflow=Overflow.EVICT_LOWEST, on_drop=lambda *a: dropped.append(a))
    for item, priority in [("a", 5), ("b", 1), ("c", 9), ("c2", 9)]:
        await queue.put(item, priority=priority)  # never blocks under evict-lowest
    assert dropped == [("c2", 9, "evicted")]  # worst tie: the newest is dropped
    queue.put_nowait("d", priority=3)
    queue.put_nowait("e", priority=9)  # the newcomer is the worst
    queue.put_nowait("f", priority=0)
    assert dropped == [
        ("c2", 9, "evicted"), ("c", 9, "evicted"), ("e", 9, "evicted"), ("a", 5, "evicted")
    ]  # fmt: skip
    assert queue.stats().evicted == 4
    assert drain(queue) == ["f", "b", "d"]


async def test_evict_lowest_picks_the_newest_of_the_worst_priority():
    dropped = []
    queue = PriorityQueue(4, overflow="evict-lowest", on_drop=lambda *a: dropped.append(a[0]))
    for item in ["w1", "w2", "w3"]:
        queue.put_nowait(item, priority=8)
    queue.put_nowait("ok", priority=2)
    queue.put_nowait("better", priority=1)
    queue.put_nowait("best", priority=0)
    assert dropped == ["w3", "w2"]
    assert drain(queue) == ["best", "better", "ok", "w1"]


async def test_a_put_into_a_queue_overfilled_by_requeues_evicts_one_item_only():
    # requeue_nowait ignores maxsize, so the queue may hold more than maxsize: a put then
    # makes room for itself once and lands, it does not evict down to maxsize.
    dropped = []
    queue = PriorityQueue(1, overflow="evict-lowest", on_drop=lambda *a: dropped.append(a[0]))
    queue.put_nowait("a", priority=5)
    queue.requeue_nowait("b", priority=5)
    queue.put_nowait("c", priority=0)
    assert dropped == ["b"]
    assert drain(queue) == ["c", "a"]


async def test_evicted_items_do_not_hang_join():
    queue = PriorityQueue(2, overflow="evict-lowest")
    for priority in [9, 8, 1, 0]:
        queue.put_nowait(priority, priority=priority)
    while not queue.empty():
        await queue.get()
        queue.task_done()
    await asyncio.wait_for(queue.join(), 1)


async def test_switching_policy_releases_blocked_putters():
    dropped = []
    queue = PriorityQueue(1, on_drop=lambda *args: dropped.append(args))
    queue.put_nowait("kept", priority=1)
    to_reject = asyncio.create_task(queue.put("rejected", priority=3))
    await settle()
    queue.overflow = "reject"
    with pytest.raises(asyncio.QueueFull):
        await asyncio.wait_for(to_reject, 1)
    queue.overflow = Overflow.EVICT_LOWEST
    await asyncio.wait_for(queue.put("evicts", priority=0), 1)
    queue.overflow = "block"
    assert queue.stats().overflow == "block"
    assert dropped == [("rejected", 3, "rejected"), ("kept", 1, "evicted")]
    assert drain(queue) == ["evicts"]


async def test_failing_on_drop_is_logged_and_the_queue_stays_whole(caplog):
    def explode(item, priority, reason):
        raise RuntimeError("callback bug")

    queue = PriorityQueue(1, overflow="evict-lowest", on_drop=explode)
    queue.put_nowait("old", priority=5)
    with caplog.at_level(logging.ERROR, logger="engine.queue"):
        queue.put_nowait("new", priority=1)
    assert "on_drop callback failed" in caplog.text
    assert drain(queue) == ["new"]
    assert queue.stats().evicted == 1


# ------------------------------------------------------------------ aging


async def test_an_item_that_waits_long_enough_outranks_newer_better_ones():
    clock = FakeClock()
    queue = PriorityQueue(aging_rate=1.0, clock=clock)
    queue.put_nowait("old-low", priority=9)
    clock.advance(5)
    queue.put_nowait("new-high", priority=3)  # effective 9 - 5 = 4 > 3: behind
    assert [entry.item for entry in queue.top(2)] == ["new-high", "old-low"]
    clock.advance(2)
    queue.put_nowait("newest-high", priority=3)  # 9 - 7 = 2 < 3: the old item goes first
    clock.advance(10)
    entries = queue.top(3)
    assert [entry.item for entry in entries] == ["new-high", "old-low", "newest-high"]
    assert [entry.effective_priority for entry in entries] == [3 - 12, 9 - 17, 3 - 10]
    assert drain(queue) == ["new-high", "old-low", "newest-high"]


async def test_gets_follow_aging_across_levels():
    clock = FakeClock()
    queue = PriorityQueue(aging_rate=1.0, clock=clock)
    queue.put_nowait("a0", priority=0)  # key 0
    queue.put_nowait("b", priority=4)  # key 4
    clock.advance(6)
    queue.put_nowait("a1", priority=0)  # key 6: behind b although its priority is better
    clock.advance(1)
    queue.put_nowait("c", priority=-2)  # key 5: between b and a1
    assert [queue.get_nowait() for _ in range(4)] == ["a0", "b", "c", "a1"]


async def test_aging_off_never_reorders():
    clock = FakeClock()
    queue = PriorityQueue(clock=clock)
    queue.put_nowait("old-low", priority=9)
    clock.advance(10_000)
    queue.put_nowait("new-high", priority=0)
    assert drain(queue) == ["new-high", "old-low"]


async def test_changing_the_rate_re_keys_what_is_queued():
    clock = FakeClock()
    queue = PriorityQueue(clock=clock)
    queue.put_nowait("old-low", priority=9)
    clock.advance(10)
    queue.put_nowait("new-high", priority=1)
    assert queue.peek().item == "new-high"
    queue.aging_rate = 2.0  # old-low: 9 - 20 = -11 against 1 - 0
    assert queue.peek().item == "old-low"
    assert queue.stats().aging_rate == 2.0
    queue.aging_rate = 0.0
    assert drain(queue) == ["new-high", "old-low"]


async def test_aging_keeps_fifo_within_a_priority_and_evicts_the_worst_effective():
    clock = FakeClock()
    dropped = []
    queue = PriorityQueue(
        3, overflow="evict-lowest", aging_rate=1.0, clock=clock,
        on_drop=lambda *args: dropped.append(args[0]),
    )  # fmt: skip
    queue.put_nowait("a", priority=5)
    clock.advance(1)
    queue.put_nowait("b", priority=5)
    clock.advance(10)
    queue.put_nowait("c", priority=4)  # effective: a -6, b -5, c 4
    queue.put_nowait("d", priority=2)  # the worst effective now is c (4), not a or b (5)
    assert dropped == ["c"]
    assert drain(queue) == ["a", "b", "d"]


# ------------------------------------------------------------------ introspection


async def test_peek_and_top_show_entries_without_removing_them():
    clock = FakeClock()
    queue = PriorityQueue(clock=clock)
    assert queue.peek() is None and queue.top(5) == ()
    queue.put_nowait("b1", priority=2)
    clock.advance(1)
    queue.put_nowait("a1", priority=1)
    queue.put_nowait("b2", priority=2)
    clock.advance(2)
    assert queue.peek() == HeapEntry(
        item="a1", priority=1, effective_priority=1.0, seq=0, waited=2.0, item_repr="'a1'",
        first_arrival=101.0,
    )  # fmt: skip
    top = queue.top(10)
    assert [(e.item, e.priority, e.seq, e.waited) for e in top] == [
        ("a1", 1, 0, 2.0), ("b1", 2, 0, 3.0), ("b2", 2, 1, 2.0)
    ]  # fmt: skip
    assert queue.top(2) == top[:2] and queue.top(0) == ()
    assert queue.qsize() == 3
    assert queue.get_nowait() == "a1"
    assert queue.get_nowait() == "b1"
    assert queue.peek().seq == 1  # b2 is the second item ever queued at priority 2


async def test_top_matches_the_order_of_gets():
    clock = FakeClock()
    queue = PriorityQueue(aging_rate=0.25, clock=clock)
    for index in range(60):
        queue.put_nowait(index, priority=(index * 7) % 5)
        clock.advance(0.5)
    expected = [entry.item for entry in queue.top(60)]
    assert [queue.get_nowait() for _ in range(60)] == expected


async def test_depth_and_oldest_wait_per_priority():
    clock = FakeClock()
    queue = PriorityQueue(clock=clock)
    assert queue.oldest_wait() == 0.0 and queue.depth_by_priority() == {}
    queue.put_nowait("x", priority=3)
    clock.advance(4)
    queue.put_nowait("y", priority=1)
    queue.put_nowait("z", priority=3)
    clock.advance(1)
    assert queue.depth_by_priority() == {1: 1, 3: 2}
    assert list(queue.depth_by_priority()) == [1, 3]
    assert queue.oldest_wait() == 5.0
    assert queue.oldest_wait(3) == 5.0 and queue.oldest_wait(1) == 1.0
    assert queue.oldest_wait(7) == 0.0
    with pytest.raises(TypeError, match="'3'"):
        queue.oldest_wait("3")
    queue.get_nowait()  # y
    queue.get_nowait()  # x
    assert queue.oldest_wait(3) == 1.0 and queue.oldest_wait() == 1.0


async def test_stats_is_a_frozen_record_of_counts_and_waits():
    clock = FakeClock()
    queue = ExactQueue(4, clock=clock)
    for index in range(4):
        queue.put_nowait(index, priority=index % 2)
    clock.advance(2)
    queue.get_nowait()  # waited 2 at priority 0
    clock.advance(1)
    queue.get_nowait()  # waited 3 at priority 0
    stats = queue.stats()
    assert isinstance(stats, QueueStats)
    with pytest.raises(AttributeError):
        stats.depth = 0  # type: ignore[misc]
    assert (stats.depth, stats.maxsize, stats.peak_depth, stats.puts, stats.gets) == (2, 4, 4, 4, 2)
    assert stats.depth_ratio == 0.5
    assert stats.overflow == "block" and stats.aging_rate == 0.0
    assert stats.oldest_wait == 3.0
    assert [(p.priority, p.depth, p.oldest_wait) for p in stats.per_priority] == [
        (0, 0, 0.0), (1, 2, 3.0)
    ]  # fmt: skip
    zero = stats.per_priority[0]
    assert (zero.wait_p50, zero.wait_p99) == (2.5, pytest.approx(2.99))
    assert stats.per_priority[1].wait_p50 is None
    assert (stats.wait_p50, stats.wait_p99) == (2.5, pytest.approx(2.99))
    assert stats.blocked_putters == 0 and stats.blocked_getters == 0


async def test_stats_reports_blocked_time_of_puts_and_gets():
    clock = FakeClock()
    queue = ExactQueue(1, clock=clock)
    getter = asyncio.create_task(queue.get())
    await settle()
    clock.advance(4)
    await queue.put("a")  # the getter waited 4 s
    assert await getter == "a"
    await queue.put("b")
    putter = asyncio.create_task(queue.put("c"))
    await settle()
    assert queue.stats().blocked_putters == 1
    clock.advance(3)
    assert await queue.get() == "b"  # the put waited 3 s
    await putter
    assert await queue.get() == "c"
    stats = queue.stats()
    # puts: a, b (no wait), c (3 s); gets: getter (4 s), b, c (no wait)
    assert stats.put_block_p50 == 0.0 and stats.put_block_p99 == pytest.approx(2.94)
    assert stats.get_wait_p50 == 0.0 and stats.get_wait_p99 == pytest.approx(3.92)


async def test_latency_windows_take_one_in_n_and_stay_unbiased():
    clock = FakeClock()
    queue = PriorityQueue(clock=clock)
    every = PriorityQueue.WAIT_SAMPLE_EVERY
    assert every > 1
    gets = 400 * every
    for index in range(gets):  # a round-robin over `every` priorities, one item at a time
        queue.put_nowait(index, priority=index % every)
        clock.advance(1.0 + index % every)  # priority p waits 1 + p seconds
        queue.get_nowait()
    samples = queue._wait_all.samples()
    assert gets / every * 0.8 < len(samples) < gets / every * 1.2  # one get in `every`
    # The sample does not alias with the round-robin: every priority is in it, fairly.
    per_priority = {p.priority: p.wait_p50 for p in queue.stats().per_priority}
    assert per_priority == {p: 1.0 + p for p in range(every)}
    counts = [samples.count(1.0 + p) for p in range(every)]
    assert min(counts) > len(samples) / every / 2
    # Blocked time: puts numbered 0, N, 2N... are timed; the rest count as not timed.
    bounded = PriorityQueue(1, clock=clock)
    for index in range(4 * every):
        bounded.put_nowait(index)
        putter = asyncio.create_task(bounded.put(-index))
        await settle()
        clock.advance(2)
        bounded.get_nowait()
        await putter
        bounded.get_nowait()
    stats = bounded.stats()
    # Every other put blocked 2 s. A sample that aliased with that period would see only
    # one kind: all 0 (p99 0) or all 2 s (p50 2).
    assert stats.put_block_p99 == pytest.approx(2.0) and stats.put_block_p50 < 2.0


def test_sample_drawers_take_one_in_n_without_aliasing():
    draw_flag, draw_gap = flag_drawer(4), gap_drawer(4)
    flags = [draw_flag() for _ in range(2 * SAMPLE_TABLE)]
    gaps = [draw_gap() for _ in range(SAMPLE_TABLE)]
    assert flags[:SAMPLE_TABLE] == flags[SAMPLE_TABLE:]  # a fixed table, cycled
    assert 0.23 < sum(flags) / len(flags) < 0.27 and 3.9 < sum(gaps) / len(gaps) < 4.1
    assert set(gaps) == set(range(1, 8))
    # Every k-th event of a periodic workload is still sampled one time in 4.
    for period in (2, 3, 4, 8):
        for phase in range(period):
            picked = flags[phase::period]
            assert 0.2 < sum(picked) / len(picked) < 0.3, (period, phase)
    assert all(flag_drawer(1)() for _ in range(100)) and {gap_drawer(1)() for _ in range(9)} == {1}


async def test_repr_tells_the_state():
    queue = PriorityQueue(10, overflow="evict-lowest", aging_rate=0.5)
    queue.put_nowait("job", priority=2)
    getter_free = repr(queue)
    for fragment in ("PriorityQueue", "maxsize=10", "depth=1", "'job'@2", "evict-lowest", "0.5"):
        assert fragment in getter_free
    queue.shutdown()
    assert "shutdown" in repr(queue)


async def test_log_every_n_operations(caplog):
    queue = PriorityQueue(log_every=3)
    with caplog.at_level(logging.INFO, logger="engine.queue"):
        for index in range(4):
            queue.put_nowait(index, priority=index)
        await queue.get()
        queue.get_with_priority_nowait()
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2
    assert "depth=3" in lines[0] and "root=0@0" in lines[0] and "ops=3" in lines[0]
    assert "ops=6" in lines[1]


async def test_logging_off_costs_no_wrapper():
    quiet = PriorityQueue()
    assert "put_nowait" not in vars(quiet) and "get_nowait" not in vars(quiet)
    assert "put_nowait" in vars(PriorityQueue(log_every=5))


# ------------------------------------------------------------------ latency windows


def test_latency_window_slides_and_interpolates():
    window = LatencyWindow(4)
    assert window.percentiles(50, 99) == (None, None)
    for value in [10.0, 1.0, 2.0, 3.0, 4.0]:
        window.record(value)
    assert window.samples() == [1.0, 2.0, 3.0, 4.0]  # 10.0 slid out
    assert window.percentile(50) == 2.5
    assert window.percentiles(0, 100) == (1.0, 4.0)
    assert window.percentile(99) == pytest.approx(3.97)
    with pytest.raises(ValueError, match="101"):
        window.percentile(101)
    with pytest.raises(ValueError, match="0"):
        LatencyWindow(0)


def test_sparse_window_counts_unrecorded_events_as_zero():
    window = SparseLatencyWindow(4)
    assert window.percentiles(0, 50) == (None,)
    window.record(1, 8.0)
    assert window.percentiles(4, 50, 100) == (0.0, 8.0)
    assert window.percentiles(6, 100) == (0.0,)  # event 1 slid out of the last four
    assert window.percentiles(1, 50) == (8.0,)
    assert not math.isnan(window.percentiles(100, 99)[0])


# ------------------------------------------------------------------ the WorkQueue protocol


async def test_is_a_work_queue_whose_deliveries_tell_their_arrival():
    clock = FakeClock()
    queue = PriorityQueue(clock=clock)
    assert isinstance(queue, WorkQueue) and queue.acks_on_get
    queue.put_nowait("a", priority=3)
    clock.advance(2)
    delivery = await queue.get_delivery()
    assert delivery == ("a", 3, delivery[2], 100.0, 0, None)  # a plain tuple laid out as Delivery
    assert Delivery._make(delivery).first_arrival == 100.0
    assert queue.empty()
    await queue.ack(delivery)  # nothing to do, nothing changes
    assert queue.qsize() == 0 and queue.stats().gets == 1
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_delivery_nowait()


async def test_requeue_with_its_token_goes_back_at_its_original_place():
    clock = FakeClock()
    queue = ExactQueue(clock=clock)
    for name in ("a", "b", "c", "d"):
        queue.put_nowait(name, priority=2)
        clock.advance(1)
    first, second = queue.get_delivery_nowait(), queue.get_delivery_nowait()
    queue.put_nowait("late", priority=2)
    clock.advance(10)
    # Back in the opposite order: each still lands at its own first-arrival place.
    queue.requeue_nowait("b", priority=2, arrival=second[2])
    queue.requeue_nowait("a", priority=2, arrival=first[2])
    top = queue.top(5)
    assert [e.item for e in top] == ["a", "b", "c", "d", "late"]
    assert [e.seq for e in top] == [0, 1, 2, 3, 4]
    assert [e.first_arrival for e in top] == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert top[0].waited == 14.0 and queue.oldest_wait() == queue.oldest_wait(2) == 14.0
    assert queue.stats().per_priority[0].oldest_wait == 14.0
    assert [queue.get_nowait() for _ in range(5)] == ["a", "b", "c", "d", "late"]
    # The waits recorded count from the first arrival too.
    assert queue._wait_all.samples()[-5:] == [14.0, 13.0, 12.0, 11.0, 10.0]


async def test_requeue_without_token_goes_to_the_tail_now():
    clock = FakeClock()
    queue = PriorityQueue(clock=clock)
    queue.put_nowait("a", priority=1)
    queue.put_nowait("b", priority=1)
    got = queue.get_nowait()
    clock.advance(5)
    queue.requeue_nowait(got, priority=1)
    assert [(e.item, e.waited) for e in queue.top(2)] == [("b", 5.0), ("a", 0.0)]


async def test_requeued_item_keeps_its_aging_and_outranks_newer_better_ones():
    clock = FakeClock()
    queue = PriorityQueue(aging_rate=1.0, clock=clock)
    queue.put_nowait("old", priority=5)
    delivery = queue.get_delivery_nowait()
    clock.advance(4)
    queue.put_nowait("new", priority=2)
    queue.requeue_nowait("old", priority=5, arrival=delivery[2])
    # old: 5 - 4 s = 1.0 effective, ahead of new at 2.0.
    assert [(e.item, e.effective_priority) for e in queue.top(2)] == [("old", 1.0), ("new", 2.0)]
    assert queue.get_nowait() == "old"


async def test_a_token_from_another_priority_places_by_first_arrival():
    clock = FakeClock()
    queue = PriorityQueue(clock=clock)
    queue.put_nowait("moved", priority=1)
    clock.advance(1)
    queue.put_nowait("later", priority=4)
    delivery = queue.get_delivery_nowait()
    queue.requeue_nowait("moved", priority=4, arrival=delivery[2])
    assert [(e.item, e.priority) for e in queue.top(2)] == [("moved", 4), ("later", 4)]
    with pytest.raises(TypeError, match="arrival"):
        queue.requeue_nowait("x", priority=4, arrival=(1.0, 2))


async def test_requeues_are_counted_apart_from_puts():
    queue = PriorityQueue(2)
    queue.put_nowait("a", priority=1)
    queue.put_nowait("b", priority=1)
    delivery = queue.get_delivery_nowait()
    queue.requeue_nowait("a", priority=1, arrival=delivery[2])
    queue.requeue_nowait("extra", priority=1)  # overfills: requeues ignore maxsize
    stats = queue.stats()
    assert (queue.puts, stats.puts, queue.requeues, stats.requeues) == (2, 2, 2, 2)
    assert (stats.depth, stats.gets) == (3, 1)
    assert "requeues=2" in repr(queue)


async def test_nack_puts_back_now_or_after_the_delay():
    clock = FakeClock()
    queue = PriorityQueue(clock=clock)
    queue.put_nowait("x", priority=1)
    queue.put_nowait("y", priority=1)
    delivery = await queue.get_delivery()
    await queue.nack(delivery)
    assert queue.get_nowait() == "x"
    await queue.nack(delivery, delay=0.01)
    assert [e.item for e in queue.top(5)] == ["y"]
    await until(lambda: queue.qsize() == 2, "the delayed nack")
    assert [e.item for e in queue.top(5)] == ["x", "y"]
    with pytest.raises(ValueError, match="delay"):
        await queue.nack(delivery, delay=-1)


async def test_drop_listeners_hear_every_drop_beside_on_drop():
    heard, users = [], []
    queue = PriorityQueue(1, overflow="evict-lowest", on_drop=lambda *d: users.append(d))
    remove = queue.add_drop_listener(lambda *d: heard.append(d))
    queue.put_nowait("low", priority=9)
    queue.put_nowait("high", priority=0)  # evicts low
    queue.overflow = "reject"
    with pytest.raises(asyncio.QueueFull):
        queue.put_nowait("refused", priority=0)
    assert heard == users == [("low", 9, "evicted"), ("refused", 0, "rejected")]
    remove()
    remove()  # twice is harmless
    with pytest.raises(asyncio.QueueFull):
        queue.put_nowait("again", priority=0)
    assert len(heard) == 2 and len(users) == 3


async def test_on_drop_gets_a_wrapped_items_payload_and_listeners_the_wrapper():
    class Box(Wrapped):
        __slots__ = ("item",)

        def __init__(self, item: object) -> None:
            self.item = item

    heard, users = [], []
    queue = PriorityQueue(1, overflow="evict-lowest", on_drop=lambda *d: users.append(d))
    queue.add_drop_listener(lambda *d: heard.append(d))
    low = Box("low")
    queue.put_nowait(low, priority=9)
    queue.put_nowait(Box("high"), priority=0)  # evicts low
    assert users == [("low", 9, "evicted")]
    assert heard == [(low, 9, "evicted")]


async def test_item_repr_hook_and_top_of_one_priority():
    queue = PriorityQueue(item_repr=lambda item: f"<job {item['id']}>")
    for index in range(6):
        queue.put_nowait({"id": index, "secret": "s3cret"}, priority=index % 2)
    entries = queue.top(2, priority=1)
    assert [e.item_repr for e in entries] == ["<job 1>", "<job 3>"]
    assert [e.seq for e in entries] == [0, 1]
    assert queue.top(5, priority=7) == ()
    assert "s3cret" not in repr(queue) and "<job 0>" in repr(queue)
    assert queue.peek().item_repr == "<job 0>"


async def test_float_maxsize_is_asyncios():
    for maxsize, capacity, reported in ((2.5, 3, 3), (math.inf, None, 0), (-0.5, None, 0)):
        queue, reference = PriorityQueue(maxsize), asyncio.Queue(maxsize)
        for index in range(5):
            assert queue.full() == reference.full()
            try:
                reference.put_nowait(index)
            except asyncio.QueueFull:
                with pytest.raises(asyncio.QueueFull):
                    queue.put_nowait(index)
            else:
                queue.put_nowait(index)
        assert queue.qsize() == reference.qsize() == (capacity or 5)
        assert queue.maxsize == maxsize and queue.stats().maxsize == reported
    with pytest.raises(ValueError, match="nan"):
        PriorityQueue(float("nan"))
