"""WorkerPool behaviour: states, retries, dead letters, live control, shutdown, accounting."""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import warnings

import pytest
from waiting import until

from engine.pool import Job, RateMeter, WorkerPool
from engine.queue import PriorityQueue, QueueShutDown
from engine.snapshots import ShutdownPhase, WorkerState


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def assert_balanced(pool: WorkerPool) -> None:
    accounting = pool.accounting()
    assert accounting.lost == 0, accounting
    assert accounting.duplicated == 0, accounting


def states(pool: WorkerPool) -> dict[int, WorkerState]:
    return {w.id: w.state for w in pool.snapshot().workers}


class Gate:
    """A handler that records calls and blocks each one until released."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, float]] = []
        self.done: list[object] = []
        self.release = asyncio.Event()

    async def __call__(self, item: object, priority: float) -> None:
        self.calls.append((item, priority))
        await self.release.wait()
        self.done.append(item)


# ---------------------------------------------------------------------------- Job, meter


def test_job_repr_reads_well_and_is_cut() -> None:
    assert repr(Job(42, {"order": 7}, 5)) == "#42 {'order': 7}"
    long = repr(Job(1, "x" * 500, 5))
    assert long.startswith("#1 'xxx") and long.endswith("…")
    assert len(long) <= len("#1 ") + Job.REPR_LIMIT


def test_job_repr_survives_a_failing_item_repr() -> None:
    class Nasty:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert repr(Job(3, Nasty(), 1)) == "#3 <Nasty (repr failed)>"


def test_rate_meter_counts_the_recent_window() -> None:
    meter = RateMeter(100.0, window=5)
    for i in range(50):
        meter.tick(100.0 + i * 0.1)  # 10 per second for 5 s
    assert meter.rate(104.95) == pytest.approx(50 / 4.95)
    assert meter.rate(120.0) == 0.0  # everything fell out of the window
    with pytest.raises(ValueError, match="0"):
        RateMeter(0.0, window=0)


# ---------------------------------------------------------------------------- basics


async def test_items_complete_in_priority_order_and_accounting_holds() -> None:
    queue = PriorityQueue()
    order: list[int] = []

    async def handler(item: int, priority: float) -> None:
        order.append(item)

    pool = WorkerPool(queue, handler, workers=1)
    for i in range(10):
        pool.submit_nowait(i, priority=9 - i)
    async with pool:
        await queue.join()
        names = {t.get_name() for t in asyncio.all_tasks()}
        assert "worker-1" in names
    assert order == list(range(9, -1, -1))
    accounting = pool.report.accounting
    assert accounting.submitted == accounting.completed == 10
    assert_balanced(pool)


async def test_workers_are_named_tasks_and_idle_when_the_queue_is_empty() -> None:
    pool = WorkerPool(PriorityQueue(), Gate(), workers=3)
    async with pool:
        await asyncio.sleep(0)
        names = sorted(t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("w"))
        assert names == ["worker-1", "worker-2", "worker-3"]
        assert states(pool) == {1: WorkerState.IDLE, 2: WorkerState.IDLE, 3: WorkerState.IDLE}


async def test_busy_state_shows_the_item_priority_and_time_on_it() -> None:
    clock = FakeClock()
    gate = Gate()
    pool = WorkerPool(PriorityQueue(), gate, workers=1, clock=clock)
    async with pool:
        pool.submit_nowait({"order": 7}, priority=2)
        await until(lambda: gate.calls, "the handler to start")
        clock.now += 1.5
        (worker,) = pool.snapshot().workers
        assert worker.state is WorkerState.BUSY
        assert worker.item_repr == "#1 {'order': 7}"
        assert worker.priority == 2
        assert worker.busy_for == 1.5
        assert worker.attempt == 1
        assert pool.accounting().in_flight == 1
        assert pool.busiest_worker() == 1
        assert_balanced(pool)
        gate.release.set()
        await until(lambda: pool.accounting().completed == 1)
        (worker,) = pool.snapshot().workers
        assert (worker.state, worker.item_repr, worker.busy_for, worker.done) == (
            WorkerState.IDLE,
            None,
            0.0,
            1,
        )
        # One completion 1.5 s after the worker started: 1 / 1.5 per second.
        assert worker.throughput == pytest.approx(1 / 1.5)
        assert pool.snapshot().completion_rate == pytest.approx(1 / 1.5)
        assert pool.busiest_worker() is None


async def test_items_put_on_the_queue_directly_are_counted_when_got() -> None:
    queue = PriorityQueue()
    seen: list[object] = []

    async def handler(item: object, priority: float) -> None:
        seen.append((item, priority))

    pool = WorkerPool(queue, handler, workers=2)
    queue.put_nowait("direct", priority=1)
    assert pool.accounting().submitted == 0  # not ours yet
    async with pool:
        await queue.join()
    assert seen == [("direct", 1)]
    assert pool.accounting().submitted == pool.accounting().completed == 1
    assert_balanced(pool)


async def test_submit_waits_for_room_and_counts_only_what_landed() -> None:
    queue = PriorityQueue(maxsize=1)
    pool = WorkerPool(queue, Gate(), workers=0)
    pool.submit_nowait("a")
    with pytest.raises(asyncio.QueueFull):
        pool.submit_nowait("b")
    blocked = asyncio.create_task(pool.submit("c"))
    await asyncio.sleep(0.01)
    assert pool.accounting().submitted == 1
    blocked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocked
    assert pool.accounting().submitted == pool.accounting().queued == 1
    assert_balanced(pool)


async def test_bad_priority_is_refused_and_changes_nothing() -> None:
    pool = WorkerPool(PriorityQueue(), Gate(), workers=0)
    with pytest.raises(TypeError, match="'high'"):
        pool.submit_nowait("a", priority="high")
    with pytest.raises(ValueError, match="nan"):
        await pool.submit("a", priority=float("nan"))
    assert pool.accounting().submitted == 0
    assert_balanced(pool)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"workers": -1}, "workers must be an int >= 0, not -1"),
        ({"max_attempts": 0}, "max_attempts must be an int >= 1, not 0"),
        ({"backoff_base": -0.5}, "backoff_base must be >= 0 seconds, not -0.5"),
        ({"backoff_base": 2.0, "backoff_cap": 1.0}, "backoff_cap \\(1.0\\) must be >="),
        ({"timeout": 0}, "timeout must be > 0 seconds, not 0"),
        ({"timeout": "5"}, "timeout must be a number of seconds, not '5'"),
        ({"dead_letter_limit": True}, "dead_letter_limit must be an int >= 0, not True"),
    ],
)
def test_bad_arguments_name_the_bad_value(kwargs: dict, message: str) -> None:
    queue = PriorityQueue()
    with pytest.raises((ValueError, TypeError), match=message):
        WorkerPool(queue, Gate(), **kwargs)
    assert queue.on_drop is None  # a refused pool hooked nothing


def test_pool_needs_a_work_queue() -> None:
    with pytest.raises(TypeError, match="WorkQueue"):
        WorkerPool(asyncio.Queue(), Gate())


# ---------------------------------------------------------------------------- retries


async def test_failures_retry_at_the_original_priority_then_dead_letter() -> None:
    queue = PriorityQueue()
    attempts: list[tuple[str, float]] = []
    letters = []

    async def handler(item: str, priority: float) -> None:
        attempts.append((item, priority))
        raise ValueError(f"bad {item}")

    pool = WorkerPool(
        queue,
        handler,
        workers=1,
        max_attempts=3,
        backoff_base=0.001,
        backoff_cap=0.002,
        on_dead_letter=letters.append,
    )
    async with pool:
        pool.submit_nowait("x", priority=3)
        await until(lambda: pool.accounting().dead_lettered == 1)
    assert attempts == [("x", 3), ("x", 3), ("x", 3)]
    (letter,) = letters
    assert (letter.item, letter.priority, letter.attempts) == ("x", 3, 3)
    assert letter.error == "ValueError('bad x')"
    assert letter.item_repr == "#1 'x'"
    assert pool.dead_letters == (letter,)
    worker = pool.snapshot().workers[0]
    assert (worker.done, worker.failed, worker.retried) == (0, 3, 2)
    assert_balanced(pool)


async def test_a_failing_handler_never_kills_its_worker() -> None:
    queue = PriorityQueue()

    class Weird(BaseException):
        pass

    failures = [ValueError("v"), Weird("w"), KeyError("k"), asyncio.CancelledError()]

    async def handler(item: int, priority: float) -> None:
        if item < len(failures):
            raise failures[item]

    pool = WorkerPool(queue, handler, workers=1, max_attempts=1)
    async with pool:
        for i in range(6):
            pool.submit_nowait(i)
        await queue.join()
        assert [w.state for w in pool.snapshot().workers] == [WorkerState.IDLE]
    errors = [letter.error for letter in pool.dead_letters]
    assert errors == ["ValueError('v')", "Weird('w')", "KeyError('k')", "CancelledError()"]
    assert pool.report.accounting.completed == 2
    assert_balanced(pool)


async def test_a_handler_that_hangs_times_out_as_a_failure() -> None:
    async def hang(item: object, priority: float) -> None:
        await asyncio.Event().wait()

    pool = WorkerPool(PriorityQueue(), hang, workers=1, max_attempts=1, timeout=0.01)
    async with pool:
        pool.submit_nowait("stuck")
        await until(lambda: pool.accounting().dead_lettered == 1)
    assert pool.dead_letters[0].error == "TimeoutError()"
    assert_balanced(pool)


def test_backoff_is_exponential_jittered_and_capped() -> None:
    pool = WorkerPool(
        PriorityQueue(), Gate(), backoff_base=0.5, backoff_cap=3.0, rng=random.Random(7)
    )
    twin = random.Random(7)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (9, 3.0), (5000, 3.0)]:
        delay = pool.backoff_delay(attempt)
        assert ceiling / 2 <= delay <= ceiling
        assert delay == pytest.approx(ceiling / 2 + twin.random() * ceiling / 2)


async def test_a_worker_is_free_during_backoff_and_shows_backoff() -> None:
    clock = FakeClock()
    queue = PriorityQueue()
    ran: list[str] = []

    async def handler(item: str, priority: float) -> None:
        ran.append(item)
        if item == "fails":
            raise RuntimeError("boom")

    pool = WorkerPool(queue, handler, workers=1, backoff_base=60.0, backoff_cap=60.0, clock=clock)
    async with pool:
        pool.submit_nowait("fails", priority=1)
        await until(lambda: pool.accounting().retry_scheduled == 1)
        pool.submit_nowait("next")
        await until(lambda: "next" in ran, "the worker to take the next item meanwhile")
        snap = pool.snapshot()
        (worker,) = snap.workers
        assert worker.state is WorkerState.BACKOFF
        (retry,) = worker.backoff
        assert retry == snap.retries[0]
        assert (retry.item_repr, retry.priority, retry.attempt) == ("#1 'fails'", 1, 2)
        assert retry.last_error == "RuntimeError('boom')"
        assert retry.worker_id == 1 and 30.0 <= retry.due_in <= 60.0
        clock.now += 10.0
        assert pool.snapshot().retries[0].due_in == pytest.approx(retry.due_in - 10.0)
        assert_balanced(pool)
        report = await pool.shutdown(drain_timeout=0)
    (returned,) = report.returned
    assert (returned.item, returned.priority, returned.attempts, returned.where) == (
        "fails",
        1,
        1,
        "retry",
    )
    assert report.accounting.retry_scheduled == 0 and report.accounting.returned == 1
    assert_balanced(pool)


async def test_dead_letters_are_bounded() -> None:
    async def fail(item: int, priority: float) -> None:
        raise ValueError(item)

    queue = PriorityQueue()
    pool = WorkerPool(queue, fail, workers=2, max_attempts=1, dead_letter_limit=3)
    async with pool:
        for i in range(10):
            pool.submit_nowait(i)
        await queue.join()
    assert [letter.item for letter in pool.dead_letters] == [7, 8, 9]
    assert pool.report.accounting.dead_lettered == 10


async def test_a_failing_dead_letter_callback_is_logged_not_raised(caplog) -> None:
    def sink(letter) -> None:
        raise RuntimeError("sink down")

    async def fail(item: int, priority: float) -> None:
        raise ValueError(item)

    queue = PriorityQueue()
    pool = WorkerPool(queue, fail, workers=1, max_attempts=1, on_dead_letter=sink)
    with caplog.at_level(logging.ERROR, logger="engine.pool"):
        async with pool:
            pool.submit_nowait(1)
            pool.submit_nowait(2)
            await queue.join()
    assert pool.report.accounting.dead_lettered == 2
    assert "on_dead_letter callback failed" in caplog.text
    assert_balanced(pool)


# ---------------------------------------------------------------------------- live control


async def test_cancel_worker_puts_its_item_back_once() -> None:
    clock = FakeClock()
    queue = PriorityQueue()
    gate = Gate()
    pool = WorkerPool(queue, gate, workers=2, clock=clock, retired_linger=2.0)
    async with pool:
        pool.submit_nowait("job", priority=4)
        await until(lambda: gate.calls)
        busy = pool.busiest_worker()
        assert pool.cancel_worker(busy) is True
        assert states(pool)[busy] is WorkerState.CANCELLING
        assert pool.cancel_worker(busy) is False  # already stopping
        await until(lambda: len(gate.calls) == 2, "the other worker to take the item")
        assert gate.calls == [("job", 4), ("job", 4)]
        snap = {w.id: w for w in pool.snapshot().workers}
        assert snap[busy].state is WorkerState.STOPPED
        other = next(i for i in snap if i != busy)
        assert snap[other].attempt == 1  # the interrupted attempt did not count
        assert_balanced(pool)
        gate.release.set()
        await queue.join()
        assert gate.done == ["job"]
        clock.now += 2.5
        assert busy not in states(pool)  # gone once the linger is over
    assert pool.report.accounting.completed == 1
    assert pool.cancel_worker(999) is False
    assert_balanced(pool)


async def test_a_worker_cancelled_from_outside_is_replaced_and_its_item_goes_back() -> None:
    queue = PriorityQueue()
    gate = Gate()
    pool = WorkerPool(queue, gate, workers=1)
    async with pool:
        pool.submit_nowait("job")
        await until(lambda: gate.calls)
        (task,) = [t for t in asyncio.all_tasks() if t.get_name() == "worker-1"]
        task.cancel()
        await until(lambda: len(gate.calls) == 2, "the replacement to take the item")
        snap = {w.name: w for w in pool.snapshot().workers}
        assert snap["worker-1"].state is WorkerState.STOPPED
        assert snap["worker-2"].state is WorkerState.BUSY
        assert snap["worker-2"].attempt == 1  # the interrupted attempt did not count
        gate.release.set()
        await queue.join()
    assert gate.done == ["job"]
    assert_balanced(pool)


async def test_add_and_remove_workers() -> None:
    queue = PriorityQueue()
    gate = Gate()
    pool = WorkerPool(queue, gate, workers=2)
    with pytest.raises(RuntimeError, match="start"):
        pool.add_worker()
    async with pool:
        assert pool.add_worker() == 3
        pool.submit_nowait("a")
        await until(lambda: gate.calls)
        busy = pool.busiest_worker()
        # Without an id, an idle worker goes first (the newest of them).
        idle_newest = max(i for i in (1, 2, 3) if i != busy)
        assert pool.remove_worker() == idle_newest
        await until(lambda: states(pool)[idle_newest] is WorkerState.STOPPED)
        # A busy worker finishes its item, then stops.
        assert pool.remove_worker(busy) == busy
        assert states(pool)[busy] is WorkerState.BUSY
        gate.release.set()
        await until(lambda: states(pool)[busy] is WorkerState.STOPPED)
        assert gate.done == ["a"]
        assert pool.remove_worker(busy) is None
        assert pool.remove_worker(12345) is None
    assert_balanced(pool)


async def test_pause_holds_items_and_resume_releases_them() -> None:
    queue = PriorityQueue()
    seen: list[str] = []

    async def handler(item: str, priority: float) -> None:
        seen.append(item)

    pool = WorkerPool(queue, handler, workers=2)
    async with pool:
        pool.pause()
        assert pool.paused
        for name in "abc":
            pool.submit_nowait(name)
        await asyncio.sleep(0.01)
        assert seen == []
        assert set(states(pool).values()) == {WorkerState.PAUSED}
        assert pool.snapshot().paused
        assert pool.accounting().queued == 3
        assert_balanced(pool)
        pool.resume()
        await queue.join()
    assert sorted(seen) == ["a", "b", "c"]
    assert_balanced(pool)


# ---------------------------------------------------------------------------- overflow


async def test_dropped_items_are_counted_and_passed_to_the_users_callback() -> None:
    dropped: list[tuple[object, float, str]] = []
    queue = PriorityQueue(maxsize=2, overflow="evict-lowest")
    pool = WorkerPool(queue, Gate(), workers=0)
    # Set after the pool is built: the pool counts drops through its own channel, and the
    # user's callback gets the user's items, never the pool's Job around them.
    queue.on_drop = lambda item, priority, reason: dropped.append((item, priority, reason))
    pool.submit_nowait("keep", priority=1)
    pool.submit_nowait("low", priority=9)
    pool.submit_nowait("urgent", priority=0)  # evicts "low"
    pool.submit_nowait("worst", priority=9)  # the newcomer is the worst: evicted on arrival
    queue.put_nowait("direct", priority=9)  # a direct put evicted on arrival
    queue.overflow = "reject"
    with pytest.raises(asyncio.QueueFull):
        pool.submit_nowait("refused", priority=0)
    assert dropped == [
        ("low", 9, "evicted"),
        ("worst", 9, "evicted"),
        ("direct", 9, "evicted"),
        ("refused", 0, "rejected"),
    ]
    assert not any(isinstance(item, Job) for item, _, _ in dropped)
    accounting = pool.accounting()
    assert (accounting.submitted, accounting.evicted, accounting.rejected) == (6, 3, 1)
    assert accounting.queued == 2
    assert_balanced(pool)


# ---------------------------------------------------------------------------- shutdown


async def test_graceful_shutdown_drains_with_phases() -> None:
    clock = FakeClock()
    queue = PriorityQueue()
    seen: list[int] = []
    phases_seen: list[ShutdownPhase] = []

    async def handler(item: int, priority: float) -> None:
        phases_seen.append(pool.snapshot().phase)
        await asyncio.sleep(0)
        clock.now += 0.25
        seen.append(item)

    pool = WorkerPool(queue, handler, workers=2, clock=clock)
    await pool.start()
    for i in range(4):
        pool.submit_nowait(i)
    report = await pool.shutdown(drain_timeout=30)
    assert sorted(seen) == [0, 1, 2, 3]
    assert ShutdownPhase.DRAINING in phases_seen
    assert [p.phase for p in report.phases] == [
        ShutdownPhase.STOPPING_INTAKE,
        ShutdownPhase.DRAINING,
        ShutdownPhase.STOPPED,
    ]
    assert all(p.duration is not None for p in report.phases)
    assert report.phases[1].duration == pytest.approx(1.0)
    assert report.drain_time == pytest.approx(1.0)
    assert not report.deadline_hit and report.returned == ()
    snap = pool.snapshot()
    assert snap.phase is ShutdownPhase.STOPPED
    assert snap.report is report and snap.last_drain_time == report.drain_time
    assert snap.workers and all(w.state is WorkerState.STOPPED for w in snap.workers)
    with pytest.raises(QueueShutDown):
        pool.submit_nowait("late")
    with pytest.raises(RuntimeError, match="shutting down"):
        pool.add_worker()
    assert await pool.shutdown() is report  # a second call gets the same report
    assert report.accounting.completed == 4
    assert_balanced(pool)


async def test_shutdown_at_the_deadline_returns_everything_left() -> None:
    queue = PriorityQueue()
    started: list[str] = []

    async def handler(item: str, priority: float) -> None:
        started.append(item)
        if item == "flaky":
            raise OSError("later")
        await asyncio.Event().wait()

    pool = WorkerPool(queue, handler, workers=2, backoff_base=60, backoff_cap=60)
    await pool.start()
    pool.submit_nowait("flaky", priority=0)
    await until(lambda: pool.accounting().retry_scheduled == 1)
    pool.submit_nowait("a", priority=1)
    pool.submit_nowait("b", priority=2)
    pool.submit_nowait("c", priority=3)
    queue.put_nowait("direct", priority=4)
    await until(lambda: len(started) == 3, "both workers to be stuck")

    live_phases: list[ShutdownPhase] = []

    async def watch() -> None:
        while pool.phase is not ShutdownPhase.STOPPED:
            snap = pool.snapshot()
            live_phases.append(snap.phase)
            assert snap.accounting.lost == 0
            if snap.phases:
                assert snap.phases[-1].phase is snap.phase
                assert snap.phases[-1].duration is None or snap.phase is ShutdownPhase.STOPPED
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    report = await pool.shutdown(drain_timeout=0.05)
    await watcher
    assert ShutdownPhase.DRAINING in live_phases
    assert report.deadline_hit
    assert [p.phase for p in report.phases][-2:] == [
        ShutdownPhase.CANCELLING,
        ShutdownPhase.STOPPED,
    ]
    returned = {(r.item, r.where, r.attempts) for r in report.returned}
    assert returned == {
        ("a", "in-flight", 0),
        ("b", "in-flight", 0),
        ("flaky", "retry", 1),
        ("c", "queued", 0),
        ("direct", "queued", 0),
    }
    accounting = report.accounting
    assert accounting.returned == 5 and accounting.submitted == 5
    assert accounting.queued == accounting.in_flight == accounting.retry_scheduled == 0
    assert queue.qsize() == 0
    assert_balanced(pool)
    assert [t for t in asyncio.all_tasks() if t.get_name().startswith("worker-")] == []


async def test_abort_cuts_the_drain_short() -> None:
    async def hang(item: object, priority: float) -> None:
        await asyncio.Event().wait()

    pool = WorkerPool(PriorityQueue(), hang, workers=1)
    await pool.start()
    assert pool.abort() is False  # nothing to abort yet
    pool.submit_nowait("stuck")
    shutdown = asyncio.create_task(pool.shutdown(drain_timeout=3600))
    await until(lambda: pool.phase is ShutdownPhase.DRAINING)
    assert pool.abort() is True
    report = await shutdown
    assert report.deadline_hit
    assert [(r.item, r.where) for r in report.returned] == [("stuck", "in-flight")]
    assert_balanced(pool)


async def test_shutdown_waits_for_retries_due_within_the_deadline() -> None:
    queue = PriorityQueue()
    calls: list[int] = []

    async def flaky_once(item: int, priority: float) -> None:
        calls.append(item)
        if calls.count(item) == 1:
            raise RuntimeError("first try fails")

    pool = WorkerPool(queue, flaky_once, workers=3, backoff_base=0.01, backoff_cap=0.01)
    await pool.start()
    for i in range(3):
        pool.submit_nowait(i)
    report = await pool.shutdown(drain_timeout=30)
    assert not report.deadline_hit and report.returned == ()
    assert report.accounting.completed == 3
    assert sorted(calls) == [0, 0, 1, 1, 2, 2]


async def test_a_handler_that_ignores_cancellation_is_abandoned_and_flagged(caplog) -> None:
    release = asyncio.Event()

    async def stubborn(item: object, priority: float) -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue

    queue = PriorityQueue()
    pool = WorkerPool(queue, stubborn, workers=1, cancel_grace=0.01)
    await pool.start()
    pool.submit_nowait("x")
    await until(lambda: pool.accounting().in_flight == 1)
    with caplog.at_level(logging.WARNING, logger="engine.pool"):
        report = await pool.shutdown(drain_timeout=0)
    assert "ignored its cancellation" in caplog.text
    assert [(r.item, r.where) for r in report.returned] == [("x", "in-flight")]
    assert report.accounting.duplicated == 0 and report.accounting.lost == 0
    try:
        await asyncio.wait_for(queue.join(), 1.0)  # the returned item's get is finished too
    finally:
        release.set()
    await until(lambda: pool.accounting().late_completions == 1, "the late return to be counted")
    accounting = pool.accounting()
    assert (accounting.completed, accounting.duplicated, accounting.lost) == (0, 0, 0)


async def test_shutdown_resumes_a_paused_pool_to_drain() -> None:
    queue = PriorityQueue()
    seen: list[int] = []

    async def handler(item: int, priority: float) -> None:
        seen.append(item)

    pool = WorkerPool(queue, handler, workers=1)
    await pool.start()
    pool.pause()
    pool.submit_nowait(1)
    report = await pool.shutdown(drain_timeout=30)
    assert seen == [1] and not report.deadline_hit


async def test_bad_drain_timeout_is_refused_before_anything_changes() -> None:
    pool = WorkerPool(PriorityQueue(), Gate(), workers=1)
    async with pool:
        with pytest.raises(ValueError, match="-1"):
            await pool.shutdown(drain_timeout=-1)
        assert pool.phase is ShutdownPhase.RUNNING


# ---------------------------------------------------------------------------- TaskGroup


def test_cancelling_a_task_group_shuts_the_pool_down_cleanly(caplog) -> None:
    """No pending task left behind, no 'never retrieved' exception, nothing lost."""
    handler_errors: list[dict] = []
    outcome: dict = {}

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: handler_errors.append(ctx))
        queue = PriorityQueue()
        gate = Gate()
        pool = WorkerPool(queue, gate, workers=3)

        async def produce() -> None:
            for i in range(20):
                await pool.submit(i, priority=i % 3)
            await asyncio.Event().wait()

        async def group() -> None:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(pool.run())
                tg.create_task(produce())

        runner = asyncio.create_task(group())
        await until(lambda: len(gate.calls) == 3 and pool.accounting().submitted == 20)
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
        outcome["report"] = pool.report
        outcome["left"] = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.DEBUG):
        warnings.simplefilter("always")
        asyncio.run(main())
        gc.collect()
    assert outcome["left"] == []
    assert handler_errors == []
    assert "never retrieved" not in caplog.text
    assert "destroyed but it is pending" not in caplog.text
    assert not [w for w in caught if "never awaited" in str(w.message)]
    report = outcome["report"]
    assert report.accounting.submitted == 20 and report.accounting.returned == 20
    assert sorted(r.item for r in report.returned) == list(range(20))
    assert report.accounting.lost == 0 and report.accounting.duplicated == 0


async def test_a_stopped_pool_cannot_restart_and_abort_is_a_no_op() -> None:
    pool = WorkerPool(PriorityQueue(), Gate(), workers=1)
    async with pool:
        pass
    assert pool.abort() is False
    with pytest.raises(RuntimeError, match="shut down"):
        await pool.start()


async def test_snapshots_carry_a_bounded_tail_of_dead_letters_and_retries() -> None:
    from engine.pool import SNAPSHOT_LIMIT

    async def fail(item: int, priority: float) -> None:
        raise ValueError(item)

    queue = PriorityQueue()
    pool = WorkerPool(queue, fail, workers=2, max_attempts=1)
    async with pool:
        for i in range(SNAPSHOT_LIMIT + 20):
            pool.submit_nowait(i)
        await queue.join()
        letters = pool.snapshot().dead_letters
        assert [d.item for d in letters] == list(range(20, SNAPSHOT_LIMIT + 20))
        assert len(pool.dead_letters) == SNAPSHOT_LIMIT + 20

    flaky = PriorityQueue()
    retrying = WorkerPool(flaky, fail, workers=1, backoff_base=60, backoff_cap=60)
    async with retrying:
        for i in range(SNAPSHOT_LIMIT + 5):
            retrying.submit_nowait(i)
        await until(lambda: retrying.accounting().retry_scheduled == SNAPSHOT_LIMIT + 5)
        snap = retrying.snapshot()
        assert len(snap.retries) == SNAPSHOT_LIMIT
        dues = [r.due_in for r in snap.retries]
        assert dues == sorted(dues)
        assert snap.workers[0].state is WorkerState.BACKOFF
        await retrying.shutdown(drain_timeout=0)
    assert retrying.report.accounting.returned == SNAPSHOT_LIMIT + 5
