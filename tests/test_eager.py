"""The engine under asyncio's eager task factory (3.12+), as Textual's `App.run` sets it and as a
service may: a task's body runs inside `create_task`, up to its first suspension, before the
caller has the task in hand. tests/conftest.py runs this module on such a loop."""

from __future__ import annotations

import asyncio

import pytest
from test_runtime import QUICK
from waiting import until

from engine.pool import WorkerPool
from engine.queue import PriorityQueue
from engine.runtime import Engine
from engine.scenario import parse_scenario
from engine.snapshots import EventKind, WorkerState
from engine.watchdog import Watchdog

pytestmark = pytest.mark.skipif(
    not hasattr(asyncio, "eager_task_factory"), reason="asyncio has eager tasks from 3.12"
)


async def test_the_loop_here_is_eager() -> None:
    assert asyncio.get_running_loop().get_task_factory() is asyncio.eager_task_factory


async def test_a_pool_keeps_its_workers_and_accounts_for_every_item() -> None:
    done: list[int] = []

    async def handler(item: int, priority: float) -> None:
        if item % 3:
            await asyncio.sleep(0)
        if item % 17 == 0 and item not in done:
            done.append(item)
            raise ValueError("once")  # a failure: retried, not a dead worker
        done.append(item)

    queue = PriorityQueue()
    for item in range(60):  # waiting before any worker exists: the first runs eagerly on them
        queue.put_nowait(item, priority=item % 5)
    crashes: list[BaseException] = []
    pool = WorkerPool(queue, handler, workers=4, max_attempts=3, backoff_base=0.001,
                      backoff_cap=0.002, on_crash=lambda _, error: crashes.append(error))
    async with pool:
        for item in range(60, 120):
            await pool.submit(item, priority=item % 5)
        await until(lambda: pool.accounting().completed == 120)
        snapshot = pool.snapshot()
        assert snapshot.live_workers == 4
        assert not [w for w in snapshot.workers if w.state is WorkerState.CRASHED]
        report = await pool.shutdown(drain_timeout=5)
    assert crashes == []
    assert report.accounting.lost == 0 and report.accounting.duplicated == 0
    assert sorted(set(done)) == list(range(120))


async def test_a_worker_added_and_one_cancelled_leave_the_items_to_the_one_left() -> None:
    gate = asyncio.Event()

    async def handler(item: int, priority: float) -> None:
        await gate.wait()

    queue = PriorityQueue()
    pool = WorkerPool(queue, handler, workers=1)
    async with pool:
        pool.add_worker()
        for item in range(4):
            pool.submit_nowait(item)
        await until(lambda: pool.snapshot().busy_workers == 2)
        busy = pool.busiest_worker()
        assert busy is not None and pool.cancel_worker(busy)
        await until(lambda: pool.snapshot().live_workers == 1)  # cancelled, not replaced
        assert pool.accounting().in_flight == 1  # its item went back
        gate.set()
        await until(lambda: pool.accounting().completed == 4)
        report = await pool.shutdown(drain_timeout=5)
    assert report.accounting.lost == 0 and report.accounting.duplicated == 0


async def test_a_watched_engine_runs_its_scenario_to_a_balanced_report() -> None:
    scenario = parse_scenario(QUICK, name="eager")  # 3 workers, failures, bursts, a watchdog
    engine = Engine(scenario)
    await engine.start()
    await until(lambda: engine.load.done)
    snapshot = engine.snapshot()
    assert snapshot.pool.live_workers == 3
    report = await engine.shutdown(drain_timeout=5)
    assert report.accounting.completed > 0
    assert report.accounting.lost == 0 and report.accounting.duplicated == 0
    kinds = {event.kind for event in engine.snapshot().events}
    assert not kinds & {EventKind.WORKER_DIED, EventKind.WORKER_CANCELLED, EventKind.WORKER_REPLACED}


async def test_a_watchdog_samples_on_an_eager_loop() -> None:
    queue = PriorityQueue()
    alerts = []
    async with Watchdog(queue, sla=0.05, interval=0.01, loop_block_ms=None,
                        on_alert=alerts.append):
        queue.put_nowait("low", priority=9)
        queue.put_nowait("high", priority=0)
        await until(lambda: len(alerts) == 2)  # nobody takes them: both starve
    assert sorted(alert.priority for alert in alerts) == [0, 9]
