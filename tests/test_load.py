"""The load generator and the simulated handler against a real queue and pool."""

from __future__ import annotations

import asyncio

import pytest

from engine.load import LoadGenerator, SimulatedHandler
from engine.pool import WorkerPool
from engine.queue import PriorityQueue
from engine.scenario import HandlerSettings, Producer


async def wait_until(predicate, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


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
    await wait_until(lambda: queue.blocked_putters == 1)
    assert load.burst(6) == 0  # all six wait for room in the background
    await wait_until(lambda: queue.blocked_putters == 2)
    tasks = load_tasks()
    assert set(tasks) == {"producer-p", "producer-burst"}

    queue.overflow = policy
    before = load.submitted
    await wait_until(lambda: load.submitted > before + 20)  # the producer goes on

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
    assert load.burst(20) == 5
    a = pool.accounting()
    assert (a.queued, a.rejected, a.submitted) == (5, 15, 20)
    assert load.submitted == a.submitted  # handed over, taken or not
    await pool.shutdown(drain_timeout=0)
