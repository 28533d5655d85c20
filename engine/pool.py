"""`WorkerPool`: asyncio workers consuming a `PriorityQueue`, and never losing an item.

Every submitted item is wrapped in a `Job` (id, item, priority, attempts) whose `state` is its
fate, so the pool can count fates at every moment and catch a second completion:

    submitted = completed + dead_lettered + evicted + rejected
                + queued + in_flight + retry_scheduled + returned

Items a user puts on the queue directly (not through `submit`) are counted as submitted when
a worker first gets them (or when the queue drops them, or a shutdown returns them).

Workers are named tasks (`worker-1`, ...). A handler failure (any exception, a timeout, a
BaseException subclass, a CancelledError that did not target the worker) is contained: the
item is retried with exponential backoff and jitter, scheduled on the loop so the worker is
free meanwhile, and dead-lettered after `max_attempts`. Only KeyboardInterrupt and
SystemExit pass through: the worker is then CRASHED (its item goes back to the queue first).

A cancelled worker (`cancel_worker`, or a cancel from outside) puts its in-flight item back
at its priority; that interrupted attempt is not counted. Stopped workers stay in the
snapshot as STOPPED for `retired_linger` seconds so the dashboard shows the transition;
crashed ones stay (the last 16) so a crash stays visible.

`shutdown(drain_timeout)` goes STOPPING_INTAKE -> DRAINING -> (CANCELLING) -> STOPPED. The
drain waits for the queue, the in-flight items and the scheduled retries. At the deadline (or
on `abort()`, or a second signal) the workers are cancelled and every item still queued, in
flight or waiting for a retry is handed back in `ShutdownReport.returned`. The CANCELLING
phase only appears when something was left to cancel or return.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable
from itertools import count, islice
from typing import Any

from engine.checks import check_count, check_seconds
from engine.queue import PriorityQueue, QueueShutDown
from engine.snapshots import (
    Accounting,
    DeadLetter,
    PhaseTiming,
    PoolSnapshot,
    RetrySnapshot,
    ReturnedItem,
    ShutdownPhase,
    ShutdownReport,
    WorkerSnapshot,
    WorkerState,
)

__all__ = ["Handler", "Job", "RateMeter", "WorkerPool"]

Handler = Callable[[Any, float], Awaitable[object]]
"""`handler(item, priority)`: an async callable; returning means done, raising means failed."""

_log = logging.getLogger(__name__)

# Job states (module constants compared with `is`: the hot path pays no enum lookups).
_PUTTING = "putting"
_QUEUED = "queued"
_RUNNING = "running"
_RETRY = "retry"
_DONE = "done"
_DEAD = "dead"
_DROPPED = "dropped"
_RETURNED = "returned"

_IDLE = WorkerState.IDLE
_BUSY = WorkerState.BUSY
_CANCELLING = WorkerState.CANCELLING
_STOPPED = WorkerState.STOPPED
_CRASHED = WorkerState.CRASHED

_SIGNALS = (signal.SIGINT, signal.SIGTERM)

SNAPSHOT_LIMIT = 100
"""Retries and dead letters a snapshot carries at most (a snapshot stays cheap at any backlog)."""


def _describe(value: object, limit: int) -> str:
    """`repr(value)` cut to `limit` characters; a repr that raises is not our crash."""
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__} (repr failed)>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Job:
    """One submitted item and its fate: what the queue holds for the pool.

    Its repr is what the dashboard's heap panel shows: `#42 {'order': 7}`, cut to fit.
    """

    __slots__ = ("id", "item", "priority", "attempts", "state")

    REPR_LIMIT = 48

    def __init__(self, id: int, item: Any, priority: float, attempts: int = 0) -> None:
        self.id = id
        self.item = item
        self.priority = priority
        self.attempts = attempts
        """Attempts made so far (an attempt interrupted by a worker's cancellation is not one)."""
        self.state = _PUTTING

    def __repr__(self) -> str:
        return f"#{self.id} {_describe(self.item, self.REPR_LIMIT)}"


class RateMeter:
    """Events per second over the last `window` seconds, from per-second buckets.

    `tick(now)` is O(1) and allocation-free within a second; `rate(now)` reads `window`
    buckets at most.
    """

    __slots__ = ("window", "second", "count", "history", "since")

    def __init__(self, now: float, window: int = 5) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"rate window must be an int >= 1 (seconds), not {window!r}")
        self.window = window
        self.second = now // 1
        self.count = 0
        self.history: deque[tuple[float, int]] = deque(maxlen=window)
        self.since = now

    def tick(self, now: float) -> None:
        second = now // 1
        if second != self.second:
            self.roll(second)
        self.count += 1

    def roll(self, second: float) -> None:
        if self.count:
            self.history.append((self.second, self.count))
        self.second = second
        self.count = 0

    def rate(self, now: float) -> float:
        """Events per second in the window ending at `now` (0.0 before any time has passed)."""
        first = now // 1 - self.window + 1
        total = sum(n for second, n in self.history if second >= first)
        if self.second >= first:
            total += self.count
        elapsed = min(self.window - 1 + now % 1, now - self.since)
        return total / elapsed if elapsed > 0 else 0.0


class _Worker:
    __slots__ = (
        "id",
        "name",
        "task",
        "state",
        "job",
        "started",
        "done",
        "failed",
        "retried",
        "meter",
        "stop_requested",
        "stopped_at",
    )

    def __init__(self, worker_id: int, now: float, rate_window: int) -> None:
        self.id = worker_id
        self.name = f"worker-{worker_id}"
        self.task: asyncio.Task[None] | None = None
        self.state = _IDLE
        self.job: Job | None = None
        self.started = 0.0
        self.done = 0
        self.failed = 0
        self.retried = 0
        self.meter = RateMeter(now, rate_window)
        self.stop_requested = False
        self.stopped_at = 0.0


class _Retry:
    __slots__ = ("job", "worker_id", "due", "error", "handle")

    def __init__(self, job: Job, worker_id: int, due: float, error: str) -> None:
        self.job = job
        self.worker_id = worker_id
        self.due = due
        self.error = error
        self.handle: asyncio.TimerHandle | None = None


class WorkerPool:
    """A pool of worker tasks running `handler(item, priority)` on a `PriorityQueue`'s items.

    Args:
        queue: the queue to consume (its `on_drop` is chained: set yours before this).
        handler: `async def handler(item, priority)`.
        workers: workers `start()` spawns.
        max_attempts: attempts per item before it is dead-lettered (1: no retry).
        backoff_base, backoff_cap: retry n waits about `min(cap, base * 2**(n-1))`, jittered
            to between half and all of that ("equal jitter").
        timeout: seconds per attempt (None: no limit); a timeout is a failure.
        dead_letter_limit: dead letters kept in `dead_letters` (the oldest fall out).
        on_dead_letter: `on_dead_letter(letter: DeadLetter)`, the item in `letter.item`.
        on_crash: `on_crash(worker_id, exception)` when a worker task dies.
        clock: seconds, monotonic. Leave as default unless testing.
        rng: the `random.Random` for the jitter (seeded in tests).
        retired_linger: seconds a stopped worker stays in the snapshot as STOPPED.
        cancel_grace: seconds a shutdown waits for cancelled workers before abandoning them.
        rate_window: seconds of history behind the completion rates.
    """

    # Slots keep attribute access on the workers' hot path fast: 48 attributes would
    # overflow CPython's shared-key instance dict (30 keys), as in engine.queue.
    __slots__ = (
        "_backoff_base", "_backoff_cap", "_cancel_grace", "_clock", "_closed", "_completed",
        "_crashed", "_dead_letter_limit", "_dead_lettered", "_dead_letters", "_drain_waiters",
        "_duplicated", "_evicted", "_force", "_handler", "_ids", "_in_flight",
        "_initial_workers", "_last_drain_time", "_loop", "_max_attempts", "_meter",
        "_on_crash", "_on_dead_letter", "_paused", "_phase", "_phases", "_queue", "_queued",
        "_rate_window", "_rejected", "_report", "_resume_waiters", "_retired",
        "_retired_linger", "_retries", "_returned", "_returned_items", "_rng",
        "_signal_drain_timeout", "_signal_loop", "_signal_task", "_started", "_submitted",
        "_timeout", "_user_on_drop", "_worker_ids", "_workers", "__weakref__",
    )  # fmt: skip

    def __init__(
        self,
        queue: PriorityQueue,
        handler: Handler,
        *,
        workers: int = 4,
        max_attempts: int = 3,
        backoff_base: float = 0.1,
        backoff_cap: float = 5.0,
        timeout: float | None = None,
        dead_letter_limit: int = 1000,
        on_dead_letter: Callable[[DeadLetter], object] | None = None,
        on_crash: Callable[[int, BaseException], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        retired_linger: float = 2.0,
        cancel_grace: float = 1.0,
        rate_window: int = 5,
    ) -> None:
        if not isinstance(queue, PriorityQueue):
            raise TypeError(f"queue must be an engine.queue.PriorityQueue, not {queue!r}")
        if not callable(handler):
            raise TypeError(f"handler must be an async callable, not {handler!r}")
        self._initial_workers = check_count("workers", workers, 0)
        self._max_attempts = check_count("max_attempts", max_attempts, 1)
        self._backoff_base = check_seconds("backoff_base", backoff_base)
        self._backoff_cap = check_seconds("backoff_cap", backoff_cap)
        if self._backoff_cap < self._backoff_base:
            raise ValueError(
                f"backoff_cap ({backoff_cap!r}) must be >= backoff_base ({backoff_base!r})"
            )
        self._timeout = (
            None if timeout is None else check_seconds("timeout", timeout, allow_zero=False)
        )
        self._dead_letter_limit = check_count("dead_letter_limit", dead_letter_limit, 0)
        self._retired_linger = check_seconds("retired_linger", retired_linger)
        self._cancel_grace = check_seconds("cancel_grace", cancel_grace)
        self._rate_window = check_count("rate_window", rate_window, 1)
        self._queue = queue
        self._handler = handler
        self._on_dead_letter = on_dead_letter
        self._on_crash = on_crash
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()

        self._ids = count(1)
        self._worker_ids = count(1)
        self._workers: dict[int, _Worker] = {}
        self._retired: deque[_Worker] = deque(maxlen=16)
        self._crashed: deque[_Worker] = deque(maxlen=16)
        self._retries: dict[int, _Retry] = {}
        self._dead_letters: deque[DeadLetter] = deque(maxlen=dead_letter_limit)
        self._returned_items: list[ReturnedItem] = []
        self._meter = RateMeter(clock(), rate_window)

        self._submitted = 0
        self._completed = 0
        self._dead_lettered = 0
        self._evicted = 0
        self._rejected = 0
        self._queued = 0
        self._in_flight = 0
        self._returned = 0
        self._duplicated = 0

        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False
        self._paused = False
        self._resume_waiters: list[asyncio.Future[None]] = []
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._phase = ShutdownPhase.RUNNING
        self._phases: list[list[Any]] = []
        self._closed: asyncio.Future[ShutdownReport] | None = None
        self._force: asyncio.Future[None] | None = None
        self._report: ShutdownReport | None = None
        self._last_drain_time: float | None = None
        self._signal_loop: asyncio.AbstractEventLoop | None = None
        self._signal_drain_timeout = 10.0
        self._signal_task: asyncio.Task[ShutdownReport] | None = None

        self._user_on_drop = queue.on_drop
        queue.on_drop = self._on_drop

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Spawn `worker-1` ... `worker-N` on the running loop."""
        if self._phase is not ShutdownPhase.RUNNING:
            raise RuntimeError("the pool was shut down: make a new one")
        if self._started:
            raise RuntimeError("the pool was already started")
        self._started = True
        self._loop = asyncio.get_running_loop()
        if self._closed is None:
            self._closed = self._loop.create_future()
        for _ in range(self._initial_workers):
            self._spawn()

    async def __aenter__(self) -> WorkerPool:
        await self.start()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            await self.shutdown()
        else:
            # Leaving on an error or a cancellation: no drain, return what is left.
            await self._close_now()

    async def run(
        self, *, drain_timeout: float = 10.0, handle_signals: bool = False
    ) -> ShutdownReport:
        """Start if needed, then wait until a shutdown (a signal, another task) finishes.

        Returns its report. When the task running this is cancelled (a TaskGroup going
        down), the pool shuts down at once, returning what is left, and the cancel goes on.
        """
        if not self._started:
            await self.start()
        if handle_signals:
            self.install_signal_handlers(drain_timeout=drain_timeout)
        assert self._closed is not None
        try:
            return await asyncio.shield(self._closed)
        except asyncio.CancelledError:
            await self._close_now()
            raise

    async def wait_closed(self) -> ShutdownReport:
        """Wait for the pool's shutdown to finish; return its report."""
        if self._closed is None:
            self._closed = asyncio.get_running_loop().create_future()
        return await asyncio.shield(self._closed)

    async def _close_now(self) -> None:
        if self._phase is ShutdownPhase.RUNNING:
            await self.shutdown(drain_timeout=0)
        elif self._closed is not None and not self._closed.done():
            self.abort()
            await asyncio.shield(self._closed)

    def _spawn(self) -> int:
        assert self._loop is not None
        worker = _Worker(next(self._worker_ids), self._clock(), self._rate_window)
        self._workers[worker.id] = worker
        task = self._loop.create_task(self._work(worker), name=worker.name)
        worker.task = task
        task.add_done_callback(self._worker_finished)
        return worker.id

    # ------------------------------------------------------------------ submit

    def submit_nowait(self, item: Any, *, priority: float = PriorityQueue.DEFAULT_PRIORITY) -> int:
        """Queue `item` at `priority` without waiting; return its job id.

        Raises as the queue's `put_nowait` does (QueueFull, QueueShutDown, a bad priority);
        an item the queue refused under 'reject' is counted as rejected, any other refusal
        leaves no trace.
        """
        if self._phase is not ShutdownPhase.RUNNING:
            raise QueueShutDown(f"the pool is shutting down: {item!r} not accepted")
        job = Job(next(self._ids), item, priority)
        self._queue.put_nowait(job, priority=priority)
        return self._landed(job)

    async def submit(self, item: Any, *, priority: float = PriorityQueue.DEFAULT_PRIORITY) -> int:
        """Queue `item` at `priority`, waiting for room under the 'block' policy; return its id."""
        if self._phase is not ShutdownPhase.RUNNING:
            raise QueueShutDown(f"the pool is shutting down: {item!r} not accepted")
        job = Job(next(self._ids), item, priority)
        # put() returns right after its synchronous put_nowait: nothing runs in between, so
        # the job is counted before any worker can get it.
        await self._queue.put(job, priority=priority)
        return self._landed(job)

    def _landed(self, job: Job) -> int:
        if job.state is _PUTTING:  # not evicted on arrival
            job.state = _QUEUED
            self._submitted += 1
            self._queued += 1
        return job.id

    def _on_drop(self, item: Any, priority: float, reason: str) -> None:
        if type(item) is Job:
            if item.state is _QUEUED:
                self._queued -= 1
            else:  # refused or evicted on arrival: submitted and dropped at once
                self._submitted += 1
            item.state = _DROPPED
            payload = item.item
        else:
            self._submitted += 1
            payload = item
        if reason == "rejected":
            self._rejected += 1
        else:
            self._evicted += 1
        if self._user_on_drop is not None:
            self._user_on_drop(payload, priority, reason)

    def _adopt(self, item: Any, priority: float) -> Job:
        """Wrap an item that was put on the queue directly; it is submitted from now on."""
        self._submitted += 1
        return Job(next(self._ids), item, priority)

    # ------------------------------------------------------------------ the worker

    async def _work(self, worker: _Worker) -> None:
        queue = self._queue
        handler = self._handler
        clock = self._clock
        timeout = self._timeout
        meter = self._meter
        wmeter = worker.meter
        task = worker.task
        drain_waiters = self._drain_waiters  # the same list for the pool's life
        try:
            while True:
                if worker.stop_requested:
                    break
                if self._paused:
                    await self._park(self._resume_waiters)
                    continue
                try:
                    item, priority = await queue.get_with_priority()
                except QueueShutDown:
                    if self._retries or self._in_flight:
                        # Draining: a retry or a cancelled item may still come back.
                        await self._park(self._drain_waiters)
                        continue
                    break
                if type(item) is Job:
                    job = item
                    self._queued -= 1
                else:
                    job = self._adopt(item, priority)
                if self._paused or worker.stop_requested:
                    # Got while pausing or being removed: hand it back, not an attempt.
                    job.state = _QUEUED
                    self._queued += 1
                    queue.requeue_nowait(job, priority=job.priority)
                    queue.task_done()
                    continue
                job.state = _RUNNING
                job.attempts += 1
                worker.job = job
                worker.state = _BUSY
                worker.started = clock()
                self._in_flight += 1
                error: BaseException | None = None
                try:
                    if timeout is None:
                        await handler(job.item, job.priority)
                    else:
                        async with asyncio.timeout(timeout):
                            await handler(job.item, job.priority)
                except asyncio.CancelledError as exc:
                    if task is None or task.cancelling():
                        raise  # the worker itself is being cancelled
                    error = exc  # the handler's own work was cancelled: a failure
                except (KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as exc:
                    error = exc
                if worker.job is not job:
                    # An abandoning shutdown already returned this item while the handler
                    # ignored its cancellation: finishing it now is a duplicate.
                    if error is None:
                        self._duplicated += 1
                    break
                worker.job = None
                worker.state = _IDLE
                self._in_flight -= 1
                if error is None:
                    now = clock()
                    if job.state is _RUNNING:
                        job.state = _DONE
                        self._completed += 1
                        worker.done += 1
                        second = now // 1  # RateMeter.tick, inlined for the hot path
                        if second != wmeter.second:
                            wmeter.roll(second)
                        wmeter.count += 1
                        if second != meter.second:
                            meter.roll(second)
                        meter.count += 1
                    else:
                        self._duplicated += 1
                else:
                    self._fail(worker, job, error)
                queue.task_done()
                if drain_waiters:
                    self._wake(drain_waiters)
        except asyncio.CancelledError:
            self._release(worker)
            worker.state = _STOPPED
            raise
        except BaseException as exc:
            self._release(worker)
            worker.state = _CRASHED
            _log.error("%s crashed: %r", worker.name, exc)
            if self._on_crash is not None:
                try:
                    self._on_crash(worker.id, exc)
                except Exception:
                    _log.exception("on_crash callback failed for %s", worker.name)
            raise
        else:
            worker.state = _STOPPED
        finally:
            worker.job = None
            if self._workers.pop(worker.id, None) is not None:
                worker.stopped_at = clock()
                (self._crashed if worker.state is _CRASHED else self._retired).append(worker)

    def _release(self, worker: _Worker) -> None:
        """The worker is stopping mid-item: its item goes back, the attempt does not count."""
        job = worker.job
        if job is None:
            return
        worker.job = None
        self._in_flight -= 1
        job.attempts -= 1
        if self._phase is ShutdownPhase.CANCELLING:
            self._return(job, "in-flight")
        else:
            job.state = _QUEUED
            self._queued += 1
            self._queue.requeue_nowait(job, priority=job.priority)
        self._queue.task_done()
        if self._drain_waiters:
            self._wake(self._drain_waiters)

    def _return(self, job: Job, where: str) -> None:
        job.state = _RETURNED
        self._returned += 1
        self._returned_items.append(ReturnedItem(job.item, job.priority, job.attempts, where))

    def _worker_finished(self, task: asyncio.Task[None]) -> None:
        # Retrieve the outcome so a crashed worker never logs "exception was never retrieved"
        # (the crash was already logged and reported to on_crash).
        if not task.cancelled():
            task.exception()

    async def _park(self, waiters: list[asyncio.Future[None]]) -> None:
        assert self._loop is not None
        waiter = self._loop.create_future()
        waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in waiters:
                waiters.remove(waiter)

    @staticmethod
    def _wake(waiters: list[asyncio.Future[None]]) -> None:
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        waiters.clear()

    # ------------------------------------------------------------------ retries, dead letters

    def backoff_delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1 for the first failure).

        `min(cap, base * 2**(attempt-1))`, jittered uniformly to between half and all of it.
        """
        ceiling = min(self._backoff_cap, self._backoff_base * 2.0 ** min(attempt - 1, 64))
        return ceiling / 2 + self._rng.random() * ceiling / 2

    def _fail(self, worker: _Worker, job: Job, error: BaseException) -> None:
        worker.failed += 1
        text = _describe(error, 200)
        if job.attempts < self._max_attempts:
            assert self._loop is not None
            delay = self.backoff_delay(job.attempts)
            job.state = _RETRY
            retry = _Retry(job, worker.id, self._clock() + delay, text)
            retry.handle = self._loop.call_later(delay, self._fire_retry, retry)
            self._retries[job.id] = retry
            worker.retried += 1
            return
        job.state = _DEAD
        self._dead_lettered += 1
        letter = DeadLetter(
            item_repr=repr(job),
            priority=job.priority,
            attempts=job.attempts,
            error=text,
            at=self._clock(),
            item=job.item,
            job_id=job.id,
        )
        self._dead_letters.append(letter)
        if self._on_dead_letter is not None:
            try:
                self._on_dead_letter(letter)
            except Exception:
                _log.exception("on_dead_letter callback failed for %r", job)

    def _fire_retry(self, retry: _Retry) -> None:
        if self._retries.pop(retry.job.id, None) is not retry:
            return
        job = retry.job
        job.state = _QUEUED
        self._queued += 1
        self._queue.requeue_nowait(job, priority=job.priority)
        if self._drain_waiters:
            self._wake(self._drain_waiters)

    @property
    def dead_letters(self) -> tuple[DeadLetter, ...]:
        """The kept dead letters, oldest first (at most `dead_letter_limit`)."""
        return tuple(self._dead_letters)

    # ------------------------------------------------------------------ live control

    def _live(self, worker_id: int) -> _Worker | None:
        worker = self._workers.get(worker_id)
        if worker is None or worker.state is _CANCELLING or worker.stop_requested:
            return None
        return worker

    def cancel_worker(self, worker_id: int) -> bool:
        """Cancel a worker now; its in-flight item goes back to the queue at its priority.

        False if there is no such running worker (unknown, stopped or already stopping).
        """
        worker = self._live(worker_id)
        if worker is None or worker.task is None or worker.task.done():
            return False
        worker.state = _CANCELLING
        worker.task.cancel()
        return True

    def busiest_worker(self) -> int | None:
        """The id of the worker that has been on its current item the longest (None: none busy)."""
        busy = [w for w in self._workers.values() if w.job is not None and w.state is _BUSY]
        if not busy:
            return None
        return min(busy, key=lambda w: w.started).id

    def add_worker(self) -> int:
        """Spawn one more worker; return its id."""
        if not self._started:
            raise RuntimeError("start() the pool before adding workers")
        if self._phase is not ShutdownPhase.RUNNING:
            raise RuntimeError("the pool is shutting down: no new workers")
        return self._spawn()

    def remove_worker(self, worker_id: int | None = None) -> int | None:
        """Stop a worker gracefully (it finishes its current item); return its id.

        Without an id: an idle worker if there is one, else the newest. None if there is no
        such running worker.
        """
        if worker_id is None:
            live = [w for w in self._workers.values() if self._live(w.id) is not None]
            if not live:
                return None
            idle = [w for w in live if w.job is None]
            worker = (idle or live)[-1]
        else:
            worker = self._live(worker_id)
            if worker is None:
                return None
        worker.stop_requested = True
        if worker.job is None and worker.task is not None:
            worker.task.cancel()  # idle: nothing in flight, stop it where it waits
        return worker.id

    @property
    def paused(self) -> bool:
        """True while consumption is paused (busy workers finish their current item)."""
        return self._paused

    def pause(self) -> None:
        """Stop taking items from the queue; items in flight finish."""
        self._paused = True

    def resume(self) -> None:
        """Take items from the queue again."""
        self._paused = False
        self._wake(self._resume_waiters)

    # ------------------------------------------------------------------ shutdown

    async def shutdown(self, drain_timeout: float | None = 10.0) -> ShutdownReport:
        """Stop intake, drain for up to `drain_timeout` seconds, cancel what is left; report.

        Nothing is lost: what is still queued, in flight or waiting for a retry at the
        deadline is in the report's `returned`. A second call waits for the first's report.
        None waits for the drain without a deadline. A paused pool is resumed to drain.
        """
        if drain_timeout is not None:
            drain_timeout = check_seconds("drain_timeout", drain_timeout)
        loop = asyncio.get_running_loop()
        if self._closed is None:
            self._closed = loop.create_future()
        if self._phase is not ShutdownPhase.RUNNING:
            return await asyncio.shield(self._closed)
        self._loop = self._loop or loop
        self._force = loop.create_future()
        began = self._clock()
        interrupted = False
        self._enter(ShutdownPhase.STOPPING_INTAKE)
        self._queue.shutdown()
        self.resume()
        self._enter(ShutdownPhase.DRAINING)
        try:
            drained = await self._drain(drain_timeout)
        except asyncio.CancelledError:
            interrupted, drained = True, False
        if self._workers or self._retries or self._queue.qsize():
            self._enter(ShutdownPhase.CANCELLING)
            try:
                await self._cancel_workers()
            except asyncio.CancelledError:
                interrupted = True
            self._abandon_workers()
            self._return_leftovers()
        self._enter(ShutdownPhase.STOPPED)
        drain_time = self._clock() - began
        self._remove_signal_handlers()
        self._report = ShutdownReport(
            phases=self._phase_timings(),
            accounting=self.accounting(),
            returned=tuple(self._returned_items),
            drain_time=drain_time,
            deadline_hit=not drained,
        )
        self._last_drain_time = drain_time
        self._closed.set_result(self._report)
        if interrupted:
            raise asyncio.CancelledError
        return self._report

    def abort(self) -> bool:
        """Cut a shutdown's drain short: cancel what is left now. False if none is draining."""
        draining = (ShutdownPhase.STOPPING_INTAKE, ShutdownPhase.DRAINING)
        if self._force is None or self._force.done() or self._phase not in draining:
            return False
        self._force.set_result(None)
        return True

    async def _drain(self, drain_timeout: float | None) -> bool:
        """Wait for the workers to finish everything; False if cut short."""
        assert self._force is not None
        loop = asyncio.get_running_loop()
        end = None if drain_timeout is None else loop.time() + drain_timeout
        while True:
            tasks = [w.task for w in self._workers.values() if w.task and not w.task.done()]
            if not tasks:
                return not (self._retries or self._queue.qsize())
            remaining = None if end is None else end - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            await asyncio.wait(
                [*tasks, self._force], timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            if self._force.done():
                return False

    async def _cancel_workers(self) -> None:
        tasks = []
        for worker in self._workers.values():
            if worker.task is not None and not worker.task.done():
                worker.state = _CANCELLING
                worker.task.cancel()
                tasks.append(worker.task)
        if tasks:
            await asyncio.wait(tasks, timeout=self._cancel_grace or None)

    def _abandon_workers(self) -> None:
        """Workers whose handler ignores cancellation: return their items, stop waiting."""
        for worker in list(self._workers.values()):
            if worker.task is not None and worker.task.done():
                continue
            _log.warning("%s ignored its cancellation; its item is returned", worker.name)
            del self._workers[worker.id]
            worker.state = _STOPPED
            worker.stopped_at = self._clock()
            self._retired.append(worker)
            job = worker.job
            if job is not None:
                worker.job = None
                self._in_flight -= 1
                job.attempts -= 1
                self._return(job, "in-flight")
                self._queue.task_done()  # its get is over: join() must not wait for it

    def _return_leftovers(self) -> None:
        for retry in list(self._retries.values()):
            if retry.handle is not None:
                retry.handle.cancel()
            self._return(retry.job, "retry")
        self._retries.clear()
        for item, priority in self._queue.drain_nowait():
            if type(item) is Job:
                self._queued -= 1
                job = item
            else:
                job = self._adopt(item, priority)
            self._return(job, "queued")
            self._queue.task_done()

    def _enter(self, phase: ShutdownPhase) -> None:
        now = self._clock()
        if self._phases:
            current = self._phases[-1]
            current[2] = now - current[1]
        self._phases.append([phase, now, 0.0 if phase is ShutdownPhase.STOPPED else None])
        self._phase = phase

    def _phase_timings(self) -> tuple[PhaseTiming, ...]:
        return tuple(
            PhaseTiming(phase, started, duration) for phase, started, duration in self._phases
        )

    # ------------------------------------------------------------------ signals

    def install_signal_handlers(self, *, drain_timeout: float = 10.0) -> None:
        """SIGINT/SIGTERM start a graceful shutdown; a second signal cancels what is left.

        Call on the running loop (Unix). The handlers are removed once the pool stops.
        """
        self._signal_drain_timeout = check_seconds("drain_timeout", drain_timeout)
        loop = asyncio.get_running_loop()
        for sig in _SIGNALS:
            loop.add_signal_handler(sig, self._on_signal, sig)
        self._signal_loop = loop

    def _on_signal(self, sig: int) -> None:
        if self._phase is ShutdownPhase.RUNNING:
            _log.warning("%s: shutting the pool down gracefully", signal.Signals(sig).name)
            assert self._signal_loop is not None
            self._signal_task = self._signal_loop.create_task(
                self.shutdown(self._signal_drain_timeout), name="pool-shutdown"
            )
        elif self.abort():
            _log.warning("%s again: cancelling what is left", signal.Signals(sig).name)

    def _remove_signal_handlers(self) -> None:
        if self._signal_loop is None:
            return
        for sig in _SIGNALS:
            self._signal_loop.remove_signal_handler(sig)
        self._signal_loop = None

    # ------------------------------------------------------------------ reading

    @property
    def phase(self) -> ShutdownPhase:
        """RUNNING until a shutdown starts, then its current phase."""
        return self._phase

    @property
    def report(self) -> ShutdownReport | None:
        """The report of the finished shutdown (None before)."""
        return self._report

    def accounting(self) -> Accounting:
        """Every item's fate, counted now (O(1))."""
        return Accounting(
            submitted=self._submitted,
            completed=self._completed,
            dead_lettered=self._dead_lettered,
            evicted=self._evicted,
            rejected=self._rejected,
            queued=self._queued,
            in_flight=self._in_flight,
            retry_scheduled=len(self._retries),
            returned=self._returned,
            duplicated=self._duplicated,
        )

    def _retry_snapshots(self, now: float) -> tuple[RetrySnapshot, ...]:
        soonest = heapq.nsmallest(SNAPSHOT_LIMIT, self._retries.values(), key=lambda r: r.due)
        return tuple(
            RetrySnapshot(
                item_repr=repr(retry.job),
                priority=retry.job.priority,
                attempt=retry.job.attempts + 1,
                due_in=max(0.0, retry.due - now),
                worker_id=retry.worker_id,
                last_error=retry.error,
            )
            for retry in soonest
        )

    def _worker_snapshot(
        self,
        worker: _Worker,
        now: float,
        backoff: tuple[RetrySnapshot, ...],
        *,
        backing_off: bool = False,
    ) -> WorkerSnapshot:
        state = worker.state
        job = worker.job
        if state is _IDLE:
            if self._paused:
                state = WorkerState.PAUSED
            elif backing_off:
                state = WorkerState.BACKOFF
        return WorkerSnapshot(
            id=worker.id,
            name=worker.name,
            state=state,
            item_repr=repr(job) if job is not None else None,
            priority=job.priority if job is not None else None,
            busy_for=max(0.0, now - worker.started) if job is not None else 0.0,
            attempt=job.attempts if job is not None else 0,
            done=worker.done,
            failed=worker.failed,
            retried=worker.retried,
            throughput=worker.meter.rate(now),
            backoff=backoff,
        )

    def snapshot(self) -> PoolSnapshot:
        """What the pool looks like now: workers, accounting, retries, dead letters, phases.

        Live workers come first, by id, then the recently stopped (for `retired_linger`
        seconds) and the last crashed ones. Retries (the soonest due) and dead letters (the
        latest) are cut to `SNAPSHOT_LIMIT` each; `accounting()` counts them all.
        """
        now = self._clock()
        retries = self._retry_snapshots(now)
        by_worker: dict[int, list[RetrySnapshot]] = {}
        for retry in retries:
            by_worker.setdefault(retry.worker_id, []).append(retry)
        waiting = {retry.worker_id for retry in self._retries.values()}
        workers = [
            self._worker_snapshot(
                w, now, tuple(by_worker.get(w.id, ())), backing_off=w.id in waiting
            )
            for w in list(self._workers.values())
        ]
        for w in self._retired:
            if now - w.stopped_at <= self._retired_linger:
                workers.append(self._worker_snapshot(w, now, ()))
        workers.extend(self._worker_snapshot(w, now, ()) for w in self._crashed)
        return PoolSnapshot(
            workers=tuple(workers),
            phase=self._phase,
            phases=self._phase_timings(),
            paused=self._paused,
            accounting=self.accounting(),
            completion_rate=self._meter.rate(now),
            retries=retries,
            dead_letters=tuple(islice(reversed(self._dead_letters), SNAPSHOT_LIMIT))[::-1],
            last_drain_time=self._last_drain_time,
            report=self._report,
        )

    def __repr__(self) -> str:
        a = self.accounting()
        return (
            f"<WorkerPool {self._phase.value} workers={len(self._workers)}"
            f"{' paused' if self._paused else ''} submitted={a.submitted}"
            f" completed={a.completed} in_flight={a.in_flight} queued={a.queued}"
            f" retries={a.retry_scheduled} dead={a.dead_lettered}>"
        )
