"""The loop-block monitor: caught from its own thread, named by the stack, once per block.

These tests block a real event loop on purpose. The 60 s idle check of the issue lives in
`benchmarks/bench_watchdog.py --idle 60`; here a short idle run keeps the file fast.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from engine.loopmonitor import LoopMonitor
from engine.pool import WorkerPool
from engine.queue import PriorityQueue
from engine.snapshots import AlertKind
from engine.watchdog import Watchdog


def monitor_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "heapwatch-loop-monitor"]


async def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def test_a_handler_that_sleeps_on_the_loop_is_named_every_time():
    blocks = 3
    queue = PriorityQueue()
    alerts = []

    async def sleepy_handler(item, priority):
        time.sleep(0.5)  # the bug under test: a blocking call on the event loop

    pool = WorkerPool(queue, sleepy_handler, workers=1)
    watchdog = Watchdog(queue, pool, on_alert=alerts.append)
    async with watchdog:
        await pool.start()
        for index in range(blocks):
            await pool.submit(index)
            await wait_for(lambda n=index: pool.accounting().completed == n + 1)
            await asyncio.sleep(0.05)  # let the late heartbeat resolve the alert
        await pool.shutdown(drain_timeout=5)
    raised = [a for a in alerts if a.kind is AlertKind.LOOP_BLOCKED and a.active]
    resolved = [a for a in alerts if a.kind is AlertKind.LOOP_BLOCKED and not a.active]
    assert len(raised) == blocks
    assert len(resolved) == blocks
    for alert in raised:
        assert alert.culprit is not None and alert.culprit.startswith("test_a_handler_that_sleeps")
        assert "sleepy_handler" in alert.culprit
        assert "tests/test_loopmonitor.py:" in alert.culprit
        assert alert.loop_stack[-1] == alert.culprit
        assert alert.wait > alert.threshold == pytest.approx(0.1)
        assert "sleepy_handler" in alert.message
    for alert in resolved:
        assert alert.peak_wait >= 0.4  # the full block, measured by the late heartbeat
        # The alert starts when the loop stopped answering, not when the thread noticed it,
        # so once resolved it spans the whole 0.5 s block.
        assert alert.resolved_at - alert.started_at >= 0.4
        # The task stacks, read on the loop once the block is over, come with it.
        workers = [group for group in alert.stacks if "worker-1" in group.task_names]
        assert workers and workers[0].frames, alert.stacks
    starts = {alert.id: alert.started_at for alert in raised}
    assert all(alert.started_at == starts[alert.id] for alert in resolved)
    snapshot = watchdog.snapshot()
    assert snapshot.loop_lag_max >= 0.4
    assert snapshot.loop_lag_p50 <= snapshot.loop_lag_p99 <= snapshot.loop_lag_max


async def test_a_cpu_bound_callback_is_caught_while_it_runs():
    caught = []
    monitor = LoopMonitor(threshold=0.05, on_block=caught.append)
    monitor.start()

    def spin_on_the_loop():
        deadline = time.perf_counter() + 0.3
        while time.perf_counter() < deadline:
            pass

    try:
        await asyncio.sleep(0.1)
        asyncio.get_running_loop().call_soon(spin_on_the_loop)
        await wait_for(lambda: caught)
    finally:
        monitor.stop()
    (block,) = caught
    assert block.culprit.startswith("test_a_cpu_bound_callback_is_caught_while_it_runs.")
    assert "spin_on_the_loop" in block.culprit
    assert block.late_by > 0.05
    assert monitor.blocks == 1


async def test_a_healthy_idle_loop_raises_nothing_and_records_lag():
    alerts = []
    queue = PriorityQueue()
    async with Watchdog(queue, interval=0.1, on_alert=alerts.append) as watchdog:
        assert len(monitor_threads()) == 1
        for _ in range(20):  # 2 s of small, honest work on the loop
            queue.put_nowait("tick")
            await asyncio.sleep(0.1)
            queue.get_nowait()
    assert alerts == []
    snapshot = watchdog.snapshot()
    assert snapshot.loop_lag_p50 is not None
    assert snapshot.loop_lag_p50 <= snapshot.loop_lag_p99 <= snapshot.loop_lag_max
    assert snapshot.loop_lag_max < 0.1


async def test_stop_joins_the_thread_and_is_idempotent():
    before = len(monitor_threads())
    monitor = LoopMonitor()
    monitor.start()
    assert monitor.running and len(monitor_threads()) == before + 1
    with pytest.raises(RuntimeError, match="already started"):
        monitor.start()
    await asyncio.sleep(0.2)
    monitor.stop()
    monitor.stop()
    assert not monitor.running
    assert len(monitor_threads()) == before
    samples = monitor.lag_samples
    await asyncio.sleep(0.2)
    assert monitor.lag_samples == samples  # the heartbeat stopped too


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [({"threshold": 0}, "threshold"), ({"period": -1}, "period"), ({"lag_window": 0}, "lag")],
)
def test_bad_settings_are_refused_by_name(kwargs, named):
    with pytest.raises(ValueError, match=named):
        LoopMonitor(**kwargs)
