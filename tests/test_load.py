"""The load generator and the simulated handler against a real queue and pool."""

from __future__ import annotations

import asyncio

import pytest
from waiting import until

from engine.load import LoadGenerator, SimulatedHandler, attempt_fate
from engine.pool import WorkerPool
from engine.queue import PriorityQueue
from engine.scenario import HandlerSettings, Latency, Producer


def load_tasks() -> dict[str, asyncio.Task]:
    return {
        task.get_name(): task
        for task in asyncio.all_tasks()
        if task.get_name().startswith("producer-")
    }


@pytest.mark.parametrize("policy", ["reject", "evict-lowest"])
async def test_blocked_producers_go_on_when_the_policy_stops_blocking(policy: str) -> None:
    """Blocked in submit() on a full 'block' queue, the producers (and a waiting burst) live on
    when the policy changes: every item they hand over is counted, none is lost."""
    queue = PriorityQueue(4)
    pool = WorkerPool(queue, SimulatedHandler(HandlerSettings()), workers=0)
    await pool.start()
    load = LoadGenerator([Producer(name="p", rate=2000.0)], pool, queue, seed=1)
    await load.start()
    await until(lambda: queue.blocked_putters == 1)
    assert load.burst(6).waiting == 6  # all six wait for room in the background
    await until(lambda: queue.blocked_putters == 2)
    tasks = load_tasks()
    assert set(tasks) == {"producer-p", "producer-burst"}

    queue.overflow = policy
    before = load.submitted
    await until(lambda: load.submitted > before + 20)  # the producer goes on

    assert not tasks["producer-p"].done()
    assert tasks["producer-burst"].done() and tasks["producer-burst"].exception() is None
    a = pool.accounting()
    assert a.rejected + a.evicted >= 6 and queue.qsize() == 4
    assert a.lost == 0 and a.duplicated == 0
    assert load.submitted == a.submitted
    await load.stop()
    await pool.shutdown(drain_timeout=0)
    assert pool.accounting().lost == 0


async def test_burst_returns_only_what_the_queue_took() -> None:
    queue = PriorityQueue(5, overflow="reject")
    pool = WorkerPool(queue, SimulatedHandler(HandlerSettings()), workers=0)
    await pool.start()
    load = LoadGenerator([], pool, queue, seed=1)
    result = load.burst(20)
    assert (result.accepted, result.rejected, result.waiting, result.evicted) == (5, 15, 0, 0)
    a = pool.accounting()
    assert (a.queued, a.rejected, a.submitted) == (5, 15, 20)
    assert load.submitted == a.submitted  # handed over, taken or not
    await pool.shutdown(drain_timeout=0)


async def cancel_while_busy(pool: WorkerPool) -> None:
    await until(lambda: pool.busiest_worker() is not None)
    assert pool.cancel_worker(pool.busiest_worker())
    pool.add_worker()


async def test_a_cancelled_attempt_does_not_move_the_handlers_attempt_count() -> None:
    """The pool does not count an attempt its worker's cancellation cut short; the handler
    must not either, or it draws later fates for the wrong attempt number."""
    settings = HandlerSettings(latency=Latency(50, 50), failure_rate=1.0)
    handler = SimulatedHandler(settings, seed=2, max_attempts=3)
    queue = PriorityQueue()
    pool = WorkerPool(queue, handler, workers=1, max_attempts=3, backoff_base=0.001)
    await pool.start()
    pool.submit_nowait("x-1")
    await cancel_while_busy(pool)
    await until(lambda: pool.accounting().dead_lettered == 1)
    [dead] = pool.dead_letters
    assert dead.attempts == 3 and "(attempt 3)" in dead.error
    assert handler.calls == 4
    await pool.shutdown(drain_timeout=0)


async def test_a_timed_out_attempt_counts_and_a_cancelled_one_does_not() -> None:
    seed, hang_rate = 5, 0.5
    # An item whose first attempt hangs and whose second succeeds.
    item = next(
        f"h-{i}"
        for i in range(1000)
        if attempt_fate(seed, f"h-{i}", 1) < hang_rate <= attempt_fate(seed, f"h-{i}", 2)
    )
    handler = SimulatedHandler(
        HandlerSettings(latency=Latency(0, 0), hang_rate=hang_rate), seed=seed, max_attempts=3
    )
    queue = PriorityQueue()
    pool = WorkerPool(queue, handler, workers=1, timeout=0.5, backoff_base=0.001)
    await pool.start()
    pool.submit_nowait(item)
    await cancel_while_busy(pool)  # attempt 1 cut short: not an attempt
    await until(lambda: pool.accounting().completed == 1)
    # Attempt 1 hangs again and times out (an attempt), attempt 2 succeeds.
    assert (handler.calls, handler.hangs) == (3, 2)
    await pool.shutdown(drain_timeout=0)


async def test_finished_burst_tasks_are_not_kept() -> None:
    queue = PriorityQueue(3)
    pool = WorkerPool(queue, SimulatedHandler(HandlerSettings()), workers=2)
    await pool.start()
    load = LoadGenerator([Producer(name="p", rate=0.0, stop=0.0)], pool, queue, seed=1)
    await load.start()
    for _ in range(50):  # each burst overflows the 'block' queue: a task waits for room
        assert load.burst(5).waiting > 0
    assert len(load._bursts) == 50
    await until(lambda: pool.accounting().completed == 250, "every burst item served")
    await until(lambda: not load._bursts, "the finished burst tasks dropped")
    assert all(task.get_name() == "producer-p" for task in load._tasks)
    assert load.done  # the producers' own tasks are kept: `done` reads them
    await load.stop()
    await pool.shutdown(drain_timeout=0)
