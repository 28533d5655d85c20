"""Behaviour of engine.watchdog.Watchdog: starvation, depth, stacks, memory, sizing."""

from __future__ import annotations

import asyncio
import math
import time
import tracemalloc

import pytest

from engine.events import EventLog
from engine.pool import WorkerPool
from engine.queue import PriorityQueue
from engine.snapshots import AlertKind, EventKind, TaskRole
from engine.stacks import capture_task_stacks
from engine.watchdog import HYSTERESIS, Watchdog


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def watched(**kwargs):
    clock = FakeClock()
    queue = PriorityQueue(kwargs.pop("maxsize", 0), clock=clock)
    alerts = []
    watchdog = Watchdog(
        queue, clock=clock, loop_block_ms=None, on_alert=alerts.append, **kwargs
    )
    return clock, queue, watchdog, alerts


async def test_starvation_below_the_root_raises_once_and_resolves():
    clock, queue, watchdog, alerts = watched(sla=2.0)
    queue.put_nowait("background", priority=9)
    clock.advance(2.5)
    queue.put_nowait("urgent", priority=0)
    clock.advance(0.5)
    watchdog.sample()
    # The root (priority 0) is fresh; the item below it has waited past the SLA.
    assert [(a.kind, a.priority) for a in alerts] == [(AlertKind.STARVATION, 9)]
    alert = alerts[0]
    assert alert.active
    assert alert.wait == pytest.approx(3.0)
    assert alert.depth == 1
    assert alert.threshold == 2.0
    assert alert.started_at == clock.now
    assert "priority 9" in alert.message

    for _ in range(4):  # still starving: no storm (and the root stays within its SLA)
        clock.advance(0.25)
        watchdog.sample()
    assert len(alerts) == 1
    assert watchdog.snapshot().alerts[0].peak_wait == pytest.approx(4.0)

    assert queue.get_nowait() == "urgent"
    watchdog.sample()
    assert len(alerts) == 1  # the root was served; the starving item is still there
    assert queue.get_nowait() == "background"
    watchdog.sample()
    assert len(alerts) == 2
    resolved = alerts[1]
    assert resolved.id == alert.id and resolved.resolved_at == clock.now
    assert not watchdog.active_alerts
    assert watchdog.snapshot().alerts == (resolved,)


async def test_per_priority_sla_overrides_the_default():
    clock, queue, watchdog, alerts = watched(sla=10.0, sla_by_priority={0: 0.1})
    queue.put_nowait("urgent", priority=0)
    queue.put_nowait("normal", priority=5)
    clock.advance(1.0)
    watchdog.sample()
    assert [(a.priority, a.threshold) for a in alerts] == [(0, 0.1)]
    assert watchdog.snapshot().sla_by_priority == ((0, 0.1),)


async def test_hysteresis_keeps_an_alert_until_the_wait_really_falls_back():
    clock, queue, watchdog, alerts = watched(sla=1.0)
    queue.put_nowait("old", priority=3)
    clock.advance(1.5)
    queue.put_nowait("newer", priority=3)
    watchdog.sample()
    assert len(alerts) == 1
    # The old item leaves; the next oldest is just under the threshold, above the hysteresis line.
    queue.get_nowait()
    clock.advance(1.0 * (1 + HYSTERESIS) / 2)
    watchdog.sample()
    assert watchdog.active_alerts
    queue.get_nowait()
    watchdog.sample()
    assert not watchdog.active_alerts
    assert len(alerts) == 2


async def test_alert_history_is_bounded():
    clock, queue, watchdog, alerts = watched(sla=1.0, history=3)
    for round_ in range(10):
        queue.put_nowait(round_, priority=1)
        clock.advance(2.0)
        watchdog.sample()
        queue.get_nowait()
        watchdog.sample()
    assert len(alerts) == 20  # every raise and every resolve was reported
    snapshot = watchdog.snapshot()
    assert len(snapshot.alerts) == 3
    assert [a.id for a in snapshot.alerts] == [10, 9, 8]  # newest resolved first
    assert watchdog.alerts_raised()[AlertKind.STARVATION] == 10


async def test_depth_alert_over_the_ratio_of_maxsize():
    clock, queue, watchdog, alerts = watched(maxsize=10, depth_ratio=0.9, sla=100.0)
    for index in range(9):
        queue.put_nowait(index)
    watchdog.sample()
    assert alerts == []  # 9 is not over 0.9 x 10
    queue.put_nowait(9)
    watchdog.sample()
    assert [(a.kind, a.depth, a.threshold) for a in alerts] == [(AlertKind.DEPTH, 10, 9.0)]
    queue.get_nowait()
    watchdog.sample()
    assert len(alerts) == 1  # 9 is within the hysteresis band
    queue.get_nowait()
    queue.get_nowait()
    watchdog.sample()
    assert alerts[-1].kind is AlertKind.DEPTH and not alerts[-1].active


async def test_depth_alert_carries_the_stacks_of_the_producers_it_blocks():
    clock, queue, watchdog, alerts = watched(maxsize=2, depth_ratio=0.5, sla=100.0)
    queue.put_nowait("a")
    queue.put_nowait("b")
    blocked = [asyncio.create_task(queue.put(n), name=f"client-{n}") for n in range(3)]
    await asyncio.sleep(0)
    watchdog.sample()
    (alert,) = alerts
    assert alert.kind is AlertKind.DEPTH
    (group,) = [g for g in alert.stacks if g.role is TaskRole.PRODUCER_BLOCKED]
    assert group.count == 3
    assert set(group.task_names) == {"client-0", "client-1", "client-2"}
    for task in blocked:
        task.cancel()
    await asyncio.gather(*blocked, return_exceptions=True)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"interval": 0}, "interval"),
        ({"sla": -1}, "sla"),
        ({"sla": float("nan")}, "sla"),
        ({"sla_by_priority": {3: 0}}, "sla_by_priority[3]"),
        ({"depth_ratio": 1.5}, "depth_ratio"),
        ({"loop_block_ms": -5}, "loop_block_ms"),
        ({"history": -1}, "history"),
    ],
)
def test_bad_settings_are_refused_by_name(kwargs, named):
    with pytest.raises((ValueError, TypeError), match=named.replace("[", r"\[")):
        Watchdog(PriorityQueue(), **kwargs)


async def test_stacks_group_identical_workers_and_label_roles():
    empty = PriorityQueue()
    full = PriorityQueue(1)
    full.put_nowait("filler")

    async def worker_loop(queue):
        while True:
            await queue.get()

    async def producer(queue):
        await queue.put("more", priority=1)

    async def getter(queue):
        return await queue.get()

    tasks = [asyncio.create_task(worker_loop(empty), name=f"worker-{n}") for n in range(1, 201)]
    tasks += [asyncio.create_task(producer(full), name=f"producer-{n}") for n in range(7)]
    tasks += [asyncio.create_task(getter(empty), name=f"getter-{n}") for n in range(3)]
    await asyncio.sleep(0)
    try:
        groups = {group.role: group for group in capture_task_stacks()}
        workers = groups[TaskRole.WORKER]
        assert workers.count == 200
        assert len(workers.task_names) <= 5
        assert workers.frames[0].startswith("test_stacks_group_identical_workers_and_label_roles")
        assert any("PriorityQueue.get (engine/queue.py:" in frame for frame in workers.frames)
        assert groups[TaskRole.PRODUCER_BLOCKED].count == 7
        assert "producer" in groups[TaskRole.PRODUCER_BLOCKED].frames[0]
        assert groups[TaskRole.GETTER_WAITING].count == 3
        for group in groups.values():
            for frame in group.frames:
                assert frame.endswith(")") and " (" in frame and not frame.split(" (")[1][0] == "/"
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_starvation_alert_carries_the_stacks_of_that_moment():
    clock, queue, watchdog, alerts = watched(sla=1.0)

    async def stuck_worker():
        await asyncio.Event().wait()

    tasks = [asyncio.create_task(stuck_worker(), name=f"worker-{n}") for n in range(1, 4)]
    await asyncio.sleep(0)
    try:
        queue.put_nowait("waiting", priority=7)
        clock.advance(2.0)
        watchdog.sample()
        (alert,) = alerts
        worker_groups = [g for g in alert.stacks if g.role is TaskRole.WORKER]
        assert [g.count for g in worker_groups] == [3]
        assert any("stuck_worker" in frame for frame in worker_groups[0].frames)
        assert watchdog.snapshot().stacks == alert.stacks
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_memory_profile_separates_payload_from_queue_overhead():
    queue = PriorityQueue()
    payload_size = 4000
    for index in range(50):
        queue.put_nowait(bytearray(payload_size), priority=index % 3)
    watchdog = Watchdog(queue, loop_block_ms=None)
    served = []

    async def worker():
        while True:
            served.append(await queue.get())
            await asyncio.sleep(0)

    consumer = asyncio.create_task(worker(), name="worker-1")
    was_tracing = tracemalloc.is_tracing()
    try:
        profile = await watchdog.memory_profile(sample_items=500)
        await asyncio.sleep(0.05)
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
    assert tracemalloc.is_tracing() == was_tracing
    assert profile.payload_bytes_per_item >= payload_size
    # Overhead per item is a few machine words, nowhere near the payload.
    assert 0 < profile.bytes_per_item < payload_size / 10
    assert profile.sample_items == 500
    assert profile.top_sites and profile.top_sites[0].size > 0
    assert any(site.where.startswith("engine/queue.py:") for site in profile.top_sites)
    assert watchdog.snapshot().memory == profile
    assert len(served) == 50  # the worker kept going
    with pytest.raises(ValueError, match="sample_items"):
        await watchdog.memory_profile(sample_items=0)


async def test_sizing_advice_is_littles_law_from_measured_figures():
    clock, queue, watchdog, _ = watched(sla=100.0, sizing_window=30.0, sizing_headroom=2.0)
    per_second = 12
    waited = 0.25
    watchdog.sample()
    assert watchdog.sizing_advice() is None  # no traffic yet
    for _ in range(20):
        for index in range(per_second):
            queue.put_nowait(index)
        clock.advance(waited)
        for _ in range(per_second):
            queue.get_nowait()
        clock.advance(1.0 - waited)
        watchdog.sample()
    advice = watchdog.snapshot().sizing
    assert advice is not None
    assert advice.arrival_rate == pytest.approx(per_second)
    assert advice.wait_p50 == pytest.approx(waited)
    assert advice.time_in_system == pytest.approx(waited)
    assert advice.suggested_maxsize == math.ceil(per_second * waited * 2.0)
    assert str(advice.suggested_maxsize) in advice.explanation


class StatsCountingQueue(PriorityQueue):
    """The real queue, counting its full `stats()` reads (each sorts every latency window)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stats_calls = 0

    def stats(self):
        self.stats_calls += 1
        return super().stats()


async def test_samples_read_counters_and_a_snapshot_reads_stats_once():
    clock = FakeClock()
    queue = StatsCountingQueue(clock=clock)
    watchdog = Watchdog(queue, clock=clock, loop_block_ms=None, sla=100.0)
    for second in range(5):
        for index in range(3):
            queue.put_nowait(index, priority=index)
        clock.advance(0.5)
        queue.get_nowait()
        clock.advance(0.5)
        watchdog.sample()
        assert queue.puts == queue.stats().puts == 3 * (second + 1)
    queue.stats_calls = 0
    for _ in range(10):
        watchdog.sample()
    assert queue.stats_calls == 0  # a sample costs O(levels), not a sort per latency window
    snapshot = watchdog.snapshot()
    assert snapshot.sizing is not None and snapshot.sizing.arrival_rate > 0
    assert queue.stats_calls == 1


async def test_running_watchdog_samples_on_its_own_and_stops():
    queue = PriorityQueue()
    alerts = []
    broken_calls = []

    def on_alert(alert):
        alerts.append(alert)
        broken_calls.append(alert)
        raise RuntimeError("a subscriber bug must not stop the watchdog")

    queue.put_nowait("late", priority=4)
    async with Watchdog(queue, interval=0.02, sla=0.05, on_alert=on_alert) as watchdog:
        assert watchdog.running
        for _ in range(200):
            if alerts:
                break
            await asyncio.sleep(0.02)
        queue.get_nowait()
        for _ in range(200):
            if len(alerts) == 2:
                break
            await asyncio.sleep(0.02)
    assert not watchdog.running
    assert [(a.kind, a.active) for a in alerts] == [
        (AlertKind.STARVATION, True),
        (AlertKind.STARVATION, False),
    ]
    assert watchdog.snapshot().sample_cost > 0


async def test_stacks_of_a_real_pool_read_as_a_few_counted_entries():
    queue = PriorityQueue(5)
    release = asyncio.Event()

    async def handler(item, priority):
        await release.wait()

    pool = WorkerPool(queue, handler, workers=50)
    watchdog = Watchdog(queue, pool, loop_block_ms=None)
    await pool.start()
    await asyncio.sleep(0)
    (idle,) = watchdog.capture_stacks()
    assert (idle.role, idle.count) == (TaskRole.WORKER, 50)
    assert idle.task_names == ("worker-1", "worker-2", "worker-3", "worker-4", "worker-5")
    producers = [
        asyncio.create_task(pool.submit(index), name=f"producer-{index}") for index in range(70)
    ]
    # Settled: 50 items taken by the workers, 5 queued, the other producers blocked on room.
    async def settled() -> None:
        while not (queue.qsize() == 5 and sum(task.done() for task in producers) == 55):
            await asyncio.sleep(0.001)

    await asyncio.wait_for(settled(), 10)
    await asyncio.sleep(0)
    groups = watchdog.capture_stacks()
    by_role = {group.role: group for group in groups}
    # 50 items in the handlers, 5 queued, the other 15 producers wait on the full queue.
    assert by_role[TaskRole.WORKER].count == 50
    assert any("handler" in frame for frame in by_role[TaskRole.WORKER].frames)
    assert by_role[TaskRole.PRODUCER_BLOCKED].count == 70 - 50 - queue.maxsize
    assert watchdog.snapshot().stacks == groups
    release.set()
    await asyncio.gather(*producers)
    await pool.shutdown(drain_timeout=5)


async def test_a_reported_crash_raises_one_alert_per_worker():
    clock, queue, watchdog, alerts = watched()
    first = watchdog.report_crash(3, SystemExit(2))
    assert first is not None and first.kind is AlertKind.WORKER_CRASHED
    assert "worker-3" in first.message and "SystemExit" in first.message
    assert watchdog.report_crash(3, SystemExit(2)) is None  # no storm for the same worker
    watchdog.report_crash(4, KeyboardInterrupt())
    assert [a.message.split(":")[0] for a in alerts] == ["worker-3 crashed", "worker-4 crashed"]
    assert dict(watchdog.snapshot().alerts_raised)[AlertKind.WORKER_CRASHED] == 2


async def test_alerts_raised_and_resolved_are_events_with_the_alert_id():
    clock = FakeClock()
    queue = PriorityQueue(clock=clock)
    events = EventLog(clock=clock)
    watchdog = Watchdog(queue, clock=clock, loop_block_ms=None, sla=1.0, events=events)
    queue.put_nowait("late", priority=9)
    clock.advance(1.5)
    watchdog.sample()
    (raised,) = events.since(0)
    alert = watchdog.active_alerts[0]
    assert (raised.kind, raised.alert_id, raised.message) == (
        EventKind.ALERT_RAISED, alert.id, alert.message)
    assert raised.at == clock.now
    clock.advance(0.5)
    queue.get_nowait()
    watchdog.sample()
    (resolved,) = events.since(raised.seq)
    assert (resolved.kind, resolved.alert_id, resolved.seq) == (
        EventKind.ALERT_RESOLVED, alert.id, raised.seq + 1)
    assert resolved.message.startswith("resolved after 500 ms: priority 9 starving")


async def test_snapshot_is_stamped_with_the_watchdog_clock_and_the_wall_clock():
    clock = FakeClock()
    watchdog = Watchdog(PriorityQueue(clock=clock), clock=clock, loop_block_ms=None)
    before = time.time()
    snapshot = watchdog.snapshot()
    assert snapshot.taken_at == clock.now
    assert before <= snapshot.wall_time <= time.time()
