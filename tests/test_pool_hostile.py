"""Hostile handlers: handlers that swallow, fake or ignore cancellation, outlive their timeout,
raise GeneratorExit or block the loop. Whatever they do, every submitted item gets exactly one
fate, no worker disappears silently and a shutdown keeps its deadlines."""

from __future__ import annotations

import asyncio

from waiting import until

from engine.pool import WorkerPool
from engine.queue import PriorityQueue


def worker_task(name: str) -> asyncio.Task:
    (task,) = [t for t in asyncio.all_tasks() if t.get_name() == name]
    return task


async def test_a_swallowed_outside_cancel_then_an_own_cancelled_error_loses_no_worker() -> None:
    """The swallowed cancel stops that worker (it is replaced); the handler's own later
    CancelledError is a failure of that attempt, not a reason for a worker to vanish."""
    calls: list[str] = []

    async def handler(item: str, priority: float) -> None:
        calls.append(item)
        if item == "a" and calls.count("a") == 1:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                return  # swallowed
        if item == "b":
            raise asyncio.CancelledError  # its own, not the worker's

    pool = WorkerPool(PriorityQueue(), handler, workers=1, max_attempts=1)
    async with pool:
        pool.submit_nowait("a")
        await until(lambda: calls == ["a"])
        worker_task("worker-1").cancel()
        await until(lambda: pool.accounting().in_flight == 0)
        pool.submit_nowait("b")
        await until(lambda: "b" in calls and pool.accounting().in_flight == 0)
        assert pool.snapshot().live_workers == 1, "the pool lost its only worker"
        await until(lambda: pool.accounting().dead_lettered == 1, "b to fail")
        assert calls.count("a") == 2  # the cancelled attempt did not count: it ran again
        accounting = pool.accounting()
        assert (accounting.completed, accounting.late_completions) == (1, 1)
    assert [letter.item for letter in pool.dead_letters] == ["b"]
    assert pool.report.accounting.lost == 0


async def test_cancel_grace_zero_does_not_wait_forever_for_a_handler_that_ignores_it() -> None:
    release = False

    async def stubborn(item: object, priority: float) -> None:
        while not release:
            try:
                await asyncio.sleep(0.005)
            except asyncio.CancelledError:
                pass

    pool = WorkerPool(PriorityQueue(), stubborn, workers=1, cancel_grace=0)
    await pool.start()
    pool.submit_nowait("x")
    await until(lambda: pool.accounting().in_flight == 1)
    shutdown = asyncio.ensure_future(pool.shutdown(drain_timeout=0))
    try:
        done, _ = await asyncio.wait([shutdown], timeout=1.0)
        assert shutdown in done, "shutdown(drain_timeout=0) with cancel_grace=0 hung"
        report = shutdown.result()
        ((returned),) = report.returned
        assert (returned.item, returned.where, returned.abandoned) == ("x", "in-flight", True)
    finally:
        release = True
        await shutdown
    assert report.accounting.lost == 0


async def test_a_handler_that_swallows_the_shutdowns_cancel_and_returns_keeps_one_fate() -> None:
    returns: list[str] = []
    go_on = asyncio.Event()

    async def handler(item: str, priority: float) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await go_on.wait()  # past the grace: the pool gives up, then it returns
        returns.append(item)

    pool = WorkerPool(PriorityQueue(), handler, workers=1, cancel_grace=0.01)
    await pool.start()
    pool.submit_nowait("x")
    await until(lambda: pool.accounting().in_flight == 1)
    report = await pool.shutdown(drain_timeout=0)
    assert [r.item for r in report.returned] == ["x"]
    go_on.set()
    await until(lambda: returns == ["x"], "the late return")
    await asyncio.sleep(0.01)
    accounting = pool.accounting()
    assert (accounting.completed, accounting.returned, accounting.duplicated) == (0, 1, 0)
    assert accounting.late_completions == 1 and accounting.lost == 0
    assert [(r.item, r.abandoned) for r in report.returned] == [("x", True)]
