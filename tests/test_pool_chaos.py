"""Chaos: random failures, hangs, cancellations, bursts, resizing and a shutdown at a random
moment. Whatever happens, the accounting identity holds at every step, no item completes
twice, and every accepted item ends with exactly one known fate."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from engine.pool import WorkerPool
from engine.queue import PriorityQueue, QueueShutDown


class Weird(BaseException):
    """A BaseException that is neither Exception nor a cancellation."""


OUTCOMES = ("ok", "ok", "ok", "fail", "weird", "hang", "inner-cancel", "slow")

burst = st.tuples(st.just("burst"), st.integers(1, 12), st.integers(0, 9))
step = st.one_of(
    burst,
    burst,
    burst,
    st.tuples(st.just("direct"), st.integers(1, 4), st.integers(0, 9)),
    st.tuples(st.just("sleep"), st.integers(0, 4), st.just(0)),
    st.tuples(st.just("sleep"), st.integers(0, 4), st.just(0)),
    st.tuples(st.just("cancel"), st.integers(0, 7), st.just(0)),
    st.tuples(st.just("add"), st.just(0), st.just(0)),
    st.tuples(st.just("remove"), st.integers(0, 7), st.just(0)),
    st.tuples(st.just("pause"), st.just(0), st.just(0)),
    st.tuples(st.just("resume"), st.just(0), st.just(0)),
)


@dataclass
class Run:
    accepted: list[str] = field(default_factory=list)
    successes: Counter[str] = field(default_factory=Counter)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)


def check(pool: WorkerPool, run: Run, where: str) -> None:
    accounting = pool.accounting()
    if accounting.lost or accounting.duplicated:
        run.violations.append(f"{where}: {accounting}")


async def scenario(
    seed: int,
    workers: int,
    max_attempts: int,
    timeout: float | None,
    bounded: tuple[int, str],
    steps: list[tuple[str, int, int]],
    shutdown_at: int,
    drain_timeout: float,
) -> tuple[Run, WorkerPool]:
    run = Run()
    rng = random.Random(seed)
    maxsize, overflow = bounded
    queue = PriorityQueue(
        maxsize=maxsize,
        overflow=overflow,
        # The user's callback gets the submitted item itself (not the pool's Job).
        on_drop=lambda item, priority, reason: run.dropped.append((item, reason)),
    )

    async def handler(item: str, priority: float) -> None:
        outcome = rng.choice(OUTCOMES)
        if outcome == "fail":
            raise ValueError(item)
        if outcome == "weird":
            raise Weird(item)
        if outcome == "hang":
            await asyncio.Event().wait()
        if outcome == "inner-cancel":
            inner = asyncio.ensure_future(asyncio.sleep(1))
            inner.cancel()
            await inner
        await asyncio.sleep(0.002 if outcome == "slow" else 0)
        run.successes[item] += 1

    pool = WorkerPool(
        queue,
        handler,
        workers=workers,
        max_attempts=max_attempts,
        timeout=timeout,
        backoff_base=0.001,
        backoff_cap=0.004,
        rng=random.Random(seed + 1),
        cancel_grace=1.0,
    )
    await pool.start()
    stop = asyncio.Event()

    async def watch() -> None:
        while not stop.is_set():
            check(pool, run, "watcher")
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    shutdown: asyncio.Task | None = None
    serial = 0
    for index, (kind, n, priority) in enumerate(steps):
        if index == shutdown_at:
            shutdown = asyncio.create_task(pool.shutdown(drain_timeout=drain_timeout))
        live = [
            w.id for w in pool.snapshot().workers if w.state.value not in ("stopped", "crashed")
        ]
        if kind in ("burst", "direct"):
            for _ in range(n):
                serial += 1
                name = f"{kind[0]}{serial}"
                try:
                    if kind == "burst":
                        pool.submit_nowait(name, priority=priority)
                    else:
                        queue.put_nowait(name, priority=priority)
                except (asyncio.QueueFull, QueueShutDown):
                    if (name, "rejected") in run.dropped:
                        run.accepted.append(name)
                else:
                    run.accepted.append(name)
        elif kind == "sleep":
            await asyncio.sleep(0.001 * n)
        elif kind == "cancel" and live:
            pool.cancel_worker(live[n % len(live)])
        elif kind == "add":
            try:
                pool.add_worker()
            except RuntimeError:
                assert shutdown is not None  # only refused once shutting down
        elif kind == "remove" and live:
            pool.remove_worker(live[n % len(live)] if n % 2 else None)
        elif kind == "pause":
            pool.pause()
        elif kind == "resume":
            pool.resume()
        check(pool, run, f"after {kind}")
        await asyncio.sleep(0)
    if shutdown is None:
        shutdown = asyncio.create_task(pool.shutdown(drain_timeout=drain_timeout))
    await shutdown
    stop.set()
    await watcher
    return run, pool


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    seed=st.integers(0, 2**16),
    workers=st.sampled_from([0, 1, 2, 2, 3, 4, 4]),
    max_attempts=st.integers(1, 3),
    timeout=st.one_of(st.none(), st.sampled_from([0.003, 0.01])),
    bounded=st.one_of(
        st.just((0, "block")),
        st.tuples(st.integers(1, 8), st.sampled_from(["block", "reject", "evict-lowest"])),
    ),
    steps=st.tuples(burst, st.lists(step, max_size=25)).map(lambda s: [s[0], *s[1]]),
    shutdown_at=st.integers(1, 30),
    drain_timeout=st.sampled_from([0.0, 0.01, 0.05, 0.05]),
)
def test_every_item_has_exactly_one_fate(
    seed, workers, max_attempts, timeout, bounded, steps, shutdown_at, drain_timeout
) -> None:
    run, pool = asyncio.run(
        scenario(seed, workers, max_attempts, timeout, bounded, steps, shutdown_at, drain_timeout)
    )
    report = pool.report
    assert report is not None
    accounting = report.accounting
    assert run.violations == []
    assert accounting.lost == 0 and accounting.duplicated == 0, accounting
    assert accounting.queued == accounting.in_flight == accounting.retry_scheduled == 0

    completed = [item for item, times in run.successes.items() if times]
    assert all(times == 1 for times in run.successes.values()), run.successes
    dead = [letter.item for letter in pool.dead_letters]
    dropped = [item for item, _ in run.dropped]
    returned = [r.item for r in report.returned]
    fates = Counter(completed + dead + dropped + returned)
    assert sorted(fates) == sorted(run.accepted)
    assert all(count == 1 for count in fates.values()), fates

    assert accounting.submitted == len(run.accepted)
    assert accounting.completed == len(completed)
    assert accounting.dead_lettered == len(dead)
    assert accounting.evicted == sum(1 for _, reason in run.dropped if reason == "evicted")
    assert accounting.rejected == sum(1 for _, reason in run.dropped if reason == "rejected")
    assert accounting.returned == len(returned)
    assert all(r.where in ("queued", "in-flight", "retry") for r in report.returned)
    assert report.deadline_hit or not returned
    for fate, items in [("completed", completed), ("dead", dead), ("dropped", dropped)]:
        event(f"some {fate}" if items else f"no {fate}")
    for where in ("queued", "in-flight", "retry"):
        if any(r.where == where for r in report.returned):
            event(f"returned {where}")
