"""Hostile handlers: handlers that swallow, fake or ignore cancellation, outlive their timeout,
raise GeneratorExit or block the loop. Whatever they do, every submitted item gets exactly one
fate, no worker disappears silently and a shutdown keeps its deadlines."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest
from waiting import until

from engine.events import EventLog
from engine.pool import WorkerPool
from engine.queue import PriorityQueue
from engine.snapshots import EventKind


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


# ---------------------------------------------------------------------------- under random control

BEHAVIOURS = (
    "ok", "ok", "fail", "swallow-return", "swallow-raise-own", "own-cancel", "ignore",
    "overrun", "generator-exit", "block",
)  # fmt: skip


@dataclass
class Book:
    """The test's own ledger: what was submitted, what each handler call did, what the pool's
    callbacks and report said. Nothing here is read from the pool's counters."""

    submitted: list[str] = field(default_factory=list)
    completions: Counter[str] = field(default_factory=Counter)
    late: Counter[str] = field(default_factory=Counter)
    dead: list[str] = field(default_factory=list)
    active: int = 0
    longest_block: float = 0.0


def hostile_handler(book: Book, rng: random.Random, stop: asyncio.Event):
    async def handler(item: str, priority: float) -> None:
        behaviour = rng.choice(BEHAVIOURS)
        saw_cancel = False
        book.active += 1
        try:
            if behaviour == "fail":
                await asyncio.sleep(0)
                raise ValueError(item)
            if behaviour == "own-cancel":
                raise asyncio.CancelledError  # its own: a failure of this attempt
            if behaviour == "generator-exit":
                raise GeneratorExit
            if behaviour == "block":
                started = time.perf_counter()
                time.sleep(0.003)  # holds the loop
                book.longest_block = max(book.longest_block, time.perf_counter() - started)
            elif behaviour in ("swallow-return", "swallow-raise-own", "overrun"):
                try:
                    await asyncio.sleep(0.02 if behaviour == "overrun" else 10)
                except asyncio.CancelledError:
                    saw_cancel = True
                    await asyncio.sleep(0.005)  # goes on a while after it was told to stop
                    if behaviour == "swallow-raise-own":
                        raise asyncio.CancelledError from None
            elif behaviour == "ignore":
                # Ignores every cancel until it has worked 30 ms (or the test ends).
                end = asyncio.get_running_loop().time() + 0.03
                while asyncio.get_running_loop().time() < end and not stop.is_set():
                    try:
                        await asyncio.sleep(0.002)
                    except asyncio.CancelledError:
                        saw_cancel = True
            else:
                await asyncio.sleep(rng.choice((0, 0, 0.001)))
            (book.late if saw_cancel else book.completions)[item] += 1
        finally:
            book.active -= 1

    return handler


async def hostile_run(seed: int, cancel_grace: float, timeout: float | None) -> None:
    rng = random.Random(seed)
    book = Book()
    stop = asyncio.Event()
    events = EventLog()
    queue = PriorityQueue()
    pool = WorkerPool(
        queue,
        hostile_handler(book, random.Random(seed + 1), stop),
        workers=3,
        max_attempts=3,
        timeout=timeout,
        backoff_base=0.001,
        backoff_cap=0.004,
        cancel_grace=cancel_grace,
        on_dead_letter=lambda letter: book.dead.append(letter.item),
        events=events,
        replacements_per_minute=1000,
        rng=random.Random(seed + 2),
    )
    await pool.start()
    serial = 0
    removed: set[int | None] = set()
    for _ in range(60):
        action = rng.choice(("submit", "submit", "submit", "sleep", "cancel", "add", "remove",
                             "pause", "resume", "outside-cancel"))  # fmt: skip
        live = [
            w.id for w in pool.snapshot().workers
            if w.state.value not in ("stopped", "crashed", "cancelling") and w.id not in removed
        ]  # fmt: skip
        if action == "submit":
            for _ in range(rng.randint(1, 5)):
                serial += 1
                name = f"i{serial}"
                pool.submit_nowait(name, priority=rng.randint(0, 3))
                book.submitted.append(name)
        elif action == "sleep":
            await asyncio.sleep(rng.choice((0, 0.001, 0.005)))
        elif action == "cancel" and len(live) > 1:
            pool.cancel_worker(rng.choice(live))
        elif action == "add":
            pool.add_worker()
        elif action == "remove" and len(live) > 1:
            removed.add(pool.remove_worker(rng.choice(live)))
        elif action == "pause":
            pool.pause()
        elif action == "resume":
            pool.resume()
        elif action == "outside-cancel" and live:
            name = f"worker-{rng.choice(live)}"
            for task in [t for t in asyncio.all_tasks() if t.get_name() == name]:
                task.cancel()  # (none: it has just ended, its done callback is due)
        await asyncio.sleep(0)
        # No worker disappears silently: with the limit out of reach, one is always live.
        await until(lambda: pool.snapshot().live_workers > 0, "a live worker")
    drain_timeout = rng.choice((0.0, 0.01, 0.05))
    loop = asyncio.get_running_loop()
    began = loop.time()
    report = await pool.shutdown(drain_timeout=drain_timeout)
    took = loop.time() - began
    # Deadlines: drain, then the grace, plus what a handler held the loop for (and slack for
    # a shared machine: the bound still fails a shutdown that waits for a stubborn handler).
    assert took <= drain_timeout + cancel_grace + book.longest_block + 0.25, took
    abandoned = [r.item for r in report.returned if r.abandoned]
    await until(lambda: book.active == 0, "the abandoned handlers to end", limit=5.0)
    stop.set()
    await asyncio.sleep(0.01)

    completed = list(book.completions)
    assert all(n == 1 for n in book.completions.values()), book.completions
    returned = [r.item for r in report.returned]
    fates = Counter(completed + book.dead + returned)
    assert sorted(fates) == sorted(book.submitted), set(book.submitted) ^ set(fates)
    assert all(n == 1 for n in fates.values()), [i for i, n in fates.items() if n > 1]
    late = sum(book.late.values())
    accounting = pool.accounting()
    assert accounting.late_completions == late
    assert (accounting.completed, accounting.dead_lettered, accounting.returned) == (
        len(completed), len(book.dead), len(returned)
    )
    assert accounting.lost == 0 and accounting.duplicated == 0
    late_events = [e for e in events.since(0) if e.kind is EventKind.LATE_COMPLETION]
    assert len(late_events) == late
    assert set(abandoned) <= set(returned)


@pytest.mark.parametrize("seed", range(8))
async def test_hostile_handlers_under_random_control_keep_one_fate_per_item(seed: int) -> None:
    await hostile_run(seed, cancel_grace=(0.0, 0.01, 0.05)[seed % 3],
                      timeout=(None, 0.01)[seed % 2])  # fmt: skip
