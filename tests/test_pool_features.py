"""WorkerPool's contract features: the ledger's refusals, events, the handler context, the
item_repr hook, top(), worker history and errors, pausing without taking, items back at their
original place, the replacement limit, KeyboardInterrupt and GeneratorExit."""

from __future__ import annotations

import asyncio

import pytest
from waiting import until

from engine.events import EventLog
from engine.ledger import InvalidJobState, Ledger
from engine.pool import WorkerPool
from engine.protocol import HandlerContext
from engine.queue import PriorityQueue
from engine.snapshots import EventKind, WorkerState


def kinds(events: EventLog) -> list[EventKind]:
    return [event.kind for event in events.since(0)]


def test_the_ledger_refuses_an_arrow_from_the_wrong_state() -> None:
    ledger = Ledger()
    job = ledger.new_job("x", 1)
    with pytest.raises(InvalidJobState, match="started: job #1 is pending, not queued"):
        ledger.started(job)
    ledger.landed(job)
    ledger.started(job)
    ledger.finished(job)
    with pytest.raises(InvalidJobState, match="finished: job #1 is done"):
        ledger.finished(job)  # a second completion is refused where it happens
    with pytest.raises(InvalidJobState, match="returned"):
        ledger.returned(job)
    accounting = ledger.accounting()
    assert (accounting.submitted, accounting.completed, accounting.lost) == (1, 1, 0)


async def test_a_worker_task_that_dies_before_its_body_runs_is_a_crash_and_replaced() -> None:
    """A task factory (a service's, or a library's) can make a worker's task fail before the
    worker's own code runs: the pool learns it from the task's end, calls it a crash with its
    exception (not "cancelled from outside"), and replaces the worker."""
    loop = asyncio.get_running_loop()
    previous = loop.get_task_factory()
    failed: list[str] = []

    def factory(loop: asyncio.AbstractEventLoop, coro, **kwargs):  # type: ignore[no-untyped-def]
        # The task's name is set after the factory returns: the coroutine tells a worker's.
        if not failed and getattr(coro, "__name__", "") == "_work":
            failed.append(coro.__qualname__)

            async def dies_first(work) -> None:  # type: ignore[no-untyped-def]
                work.close()  # the worker's body never starts
                raise RuntimeError("refused by the task factory")

            coro = dies_first(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    events = EventLog()
    crashes: list[tuple[int, BaseException]] = []

    async def handler(item: int, priority: float) -> None:
        await asyncio.sleep(0)

    loop.set_task_factory(factory)
    try:
        pool = WorkerPool(PriorityQueue(), handler, workers=2, events=events,
                          on_crash=lambda worker_id, error: crashes.append((worker_id, error)))  # fmt: skip
        async with pool:
            await until(lambda: EventKind.WORKER_REPLACED in kinds(events))
            for item in range(20):
                await pool.submit(item)
            await until(lambda: pool.accounting().completed == 20)
            snapshot = pool.snapshot()
            report = await pool.shutdown(drain_timeout=5)
    finally:
        loop.set_task_factory(previous)
    assert failed == ["WorkerPool._work"]
    [(worker_id, error)] = crashes
    assert worker_id == 1 and isinstance(error, RuntimeError), repr(error)
    [crashed] = [w for w in snapshot.workers if w.state is WorkerState.CRASHED]
    assert crashed.id == 1
    assert snapshot.live_workers == 2
    [replaced] = [e for e in events.since(0) if e.kind is EventKind.WORKER_REPLACED]
    assert "worker-1 died: RuntimeError('refused by the task factory')" in replaced.message
    assert EventKind.WORKER_CANCELLED not in kinds(events)
    assert report.accounting.lost == 0


async def test_events_tell_what_happened_to_workers_items_and_the_shutdown() -> None:
    events = EventLog()

    async def handler(item: str, priority: float) -> None:
        if item == "bad":
            raise ValueError(item)
        await asyncio.Event().wait()

    pool = WorkerPool(PriorityQueue(), handler, workers=1, max_attempts=1, events=events)
    await pool.start()
    added = pool.add_worker()
    pool.submit_nowait("bad", priority=0)
    await until(lambda: pool.accounting().dead_lettered == 1)
    pool.submit_nowait("hang")
    await until(lambda: pool.busiest_worker() is not None)
    busy = pool.busiest_worker()
    assert pool.cancel_worker(busy)
    await until(lambda: EventKind.WORKER_CANCELLED in kinds(events))
    pool.remove_worker()
    pool.pause()
    pool.resume()
    report = await pool.shutdown(drain_timeout=0)
    seen = kinds(events)
    for kind in (EventKind.WORKER_ADDED, EventKind.DEAD_LETTER, EventKind.WORKER_CANCELLED,
                 EventKind.WORKER_REMOVED, EventKind.POLICY_CHANGED):  # fmt: skip
        assert kind in seen, kind
    phases = [e.phase for e in events.since(0) if e.kind is EventKind.SHUTDOWN_PHASE]
    assert phases == [p.phase.value for p in report.phases]
    [letter] = [e for e in events.since(0) if e.kind is EventKind.DEAD_LETTER]
    assert letter.job_id == 1 and "#1 'bad'" in letter.message
    assert added == 2


async def test_an_outside_cancel_is_answered_with_a_replacement_up_to_the_limit() -> None:
    events = EventLog()
    pool = WorkerPool(
        PriorityQueue(), lambda i, p: asyncio.sleep(0), workers=1, events=events,
        replacements_per_minute=2,
    )  # fmt: skip
    async with pool:
        for expected_live in (1, 1, 0):
            (task,) = [t for t in asyncio.all_tasks() if t.get_name().startswith("worker-")]
            task.cancel()
            await until(task.done)
            await asyncio.sleep(0.01)
            assert pool.snapshot().live_workers == expected_live
        seen = kinds(events)
        assert seen.count(EventKind.WORKER_REPLACED) == 2
        [died] = [e for e in events.since(0) if e.kind is EventKind.WORKER_DIED]
        assert "not replaced: 2 replacements in the last minute" in died.message


async def test_a_three_parameter_handler_gets_its_context() -> None:
    contexts: list[HandlerContext] = []

    async def handler(item: str, priority: float, ctx: HandlerContext) -> None:
        contexts.append(ctx)
        if ctx.attempt == 1:
            raise RuntimeError("once")

    queue = PriorityQueue()
    pool = WorkerPool(queue, handler, workers=1, timeout=5.0, backoff_base=0.001)
    async with pool:
        job_id = pool.submit_nowait("x", priority=2)
        await until(lambda: pool.accounting().completed == 1)
    assert [(c.job_id, c.attempt, c.priority) for c in contexts] == [(job_id, 1, 2), (job_id, 2, 2)]
    assert contexts[0].first_arrival == contexts[1].first_arrival  # its wait still counts
    assert all(c.deadline is not None for c in contexts)


async def test_every_repr_goes_through_the_item_repr_hook() -> None:
    def redact(item: object) -> str:
        return "<redacted>"

    gate = asyncio.Event()

    async def handler(item: str, priority: float) -> None:
        if item == "fails":
            raise ValueError("no")
        await gate.wait()

    queue = PriorityQueue()
    pool = WorkerPool(queue, handler, workers=1, item_repr=redact, backoff_base=60,
                      backoff_cap=60)  # fmt: skip
    async with pool:
        pool.submit_nowait("fails", priority=0)
        await until(lambda: pool.accounting().retry_scheduled == 1)
        pool.submit_nowait("secret", priority=1)
        pool.submit_nowait("waiting", priority=3)
        await until(lambda: pool.accounting().in_flight == 1)
        snap = pool.snapshot()
        (worker,) = snap.workers
        assert worker.item_repr == "#2 <redacted>"
        assert snap.retries[0].item_repr == "#1 <redacted>"
        (entry,) = pool.top(5)
        assert (entry.item, entry.item_repr, entry.job_id, entry.attempt) == (
            "waiting", "<redacted>", 3, 0
        )
        assert pool.top(5, priority=1) == ()
        assert last_error_is(worker, "ValueError('no')")
        gate.set()
        await pool.shutdown(drain_timeout=0)


def last_error_is(worker, text: str) -> bool:
    return worker.last_error == text and "ValueError: no" in (worker.last_traceback or "")


async def test_worker_history_keeps_its_recent_states() -> None:
    gate = asyncio.Event()

    async def handler(item: str, priority: float) -> None:
        await gate.wait()

    pool = WorkerPool(PriorityQueue(), handler, workers=1)
    async with pool:
        pool.pause()
        await until(lambda: pool.snapshot().workers[0].state is WorkerState.PAUSED)
        pool.resume()
        pool.submit_nowait("x")
        await until(lambda: pool.snapshot().workers[0].state is WorkerState.BUSY)
        history = [state for state, _ in pool.snapshot().workers[0].history]
        assert history[-3:] == [WorkerState.PAUSED, WorkerState.IDLE, WorkerState.BUSY]
        times = [since for _, since in pool.snapshot().workers[0].history]
        assert times == sorted(times)
        gate.set()


async def test_pausing_takes_nothing_from_the_queue() -> None:
    seen: list[str] = []

    async def handler(item: str, priority: float) -> None:
        seen.append(item)

    queue = PriorityQueue()
    pool = WorkerPool(queue, handler, workers=3)
    async with pool:
        await asyncio.sleep(0)  # the workers wait on the empty queue
        pool.pause()
        for name in "abc":
            pool.submit_nowait(name)
        await asyncio.sleep(0.02)
        assert seen == [] and queue.gets == 0 and queue.stats().requeues == 0
        pool.resume()
        await queue.join()
    assert sorted(seen) == ["a", "b", "c"]


async def test_a_cancelled_workers_item_goes_back_at_its_original_place() -> None:
    order: list[str] = []
    gate = asyncio.Event()

    async def handler(item: str, priority: float) -> None:
        order.append(item)
        if len(order) == 1:
            await asyncio.Event().wait()
        await gate.wait()

    queue = PriorityQueue()
    pool = WorkerPool(queue, handler, workers=1)
    async with pool:
        pool.submit_nowait("first", priority=5)
        await until(lambda: order == ["first"])
        pool.submit_nowait("second", priority=5)
        pool.cancel_worker(1)
        # The item goes back once the cancel reaches the worker: a worker started before that
        # (at once, under an eager task factory) would rightly take "second" first.
        await until(lambda: pool.snapshot().live_workers == 0)
        pool.add_worker()
        gate.set()
        await queue.join()
    assert order == ["first", "first", "second"]  # back before what arrived after it


async def test_generator_exit_from_a_handler_is_a_failed_attempt() -> None:
    calls: list[str] = []

    async def handler(item: str, priority: float) -> None:
        calls.append(item)
        if len(calls) == 1:
            raise GeneratorExit

    pool = WorkerPool(PriorityQueue(), handler, workers=1, backoff_base=0.001)
    async with pool:
        pool.submit_nowait("x")
        await until(lambda: pool.accounting().completed == 1)
        assert pool.snapshot().live_workers == 1
    assert calls == ["x", "x"]


def test_keyboard_interrupt_stops_the_program_after_the_item_is_put_back() -> None:
    holder: dict[str, WorkerPool] = {}

    async def main() -> None:
        async def handler(item: str, priority: float) -> None:
            raise KeyboardInterrupt

        pool = holder["pool"] = WorkerPool(PriorityQueue(), handler, workers=1)
        await pool.start()
        pool.submit_nowait("x")
        await asyncio.sleep(5)

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(main())
    accounting = holder["pool"].accounting()
    assert (accounting.submitted, accounting.queued, accounting.in_flight) == (1, 1, 0)
    assert accounting.lost == 0
    states = [w.state for w in holder["pool"].snapshot().workers]
    assert states == [WorkerState.CRASHED]  # and nobody replaced it while the loop went down


def test_count_rate_reads_the_recent_window_from_a_running_count() -> None:
    from engine.ledger import CountRate

    rate = CountRate(100.0, window=5)
    assert rate.rate(100.0, 0) == 0.0
    for second in range(1, 11):
        assert rate.rate(100.0 + second, 10 * second) == pytest.approx(10.0)
    assert rate.rate(120.0, 100) == 0.0  # nothing in the last window
    assert rate.rate(121.0, 103) == pytest.approx(3 / 5)  # 3 in the last 5 s
    with pytest.raises(ValueError, match="0"):
        CountRate(0.0, window=0)
