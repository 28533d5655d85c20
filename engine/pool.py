"""`WorkerPool`: asyncio workers consuming a `WorkQueue`, never losing an item.

Every submitted item is wrapped in a `Job`; its fate is changed only by the pool's `Ledger`
(engine/ledger.py, which draws the state diagram), so `accounting()` sums the fates at any
moment. Items a user puts on the queue directly are counted when a worker first gets them.

Workers are named tasks (`worker-1`, ...). A handler failure (any exception, a timeout,
GeneratorExit, a CancelledError of the handler's own) is contained: the item is retried after
a jittered backoff and dead-lettered after `max_attempts`. KeyboardInterrupt and SystemExit
pass through, as asyncio expects, once the item is back on the queue and counted.

A cancellation the pool gives (a timeout, `cancel_worker`, a shutdown) or one from outside
decides that attempt: a handler that swallows it and returns has its return counted as a late
completion (its side effect did run), and the item goes where the cancellation sends it (a
retry, back to the queue, the shutdown report). A worker that stops without being asked to
(an outside cancel, a crash) is replaced, up to `replacements_per_minute`; past that a
WORKER_DIED event says so and the live count shows it.

`shutdown(drain_timeout)` goes STOPPING_INTAKE -> DRAINING -> (CANCELLING) -> STOPPED.
`drain_timeout` and `cancel_grace` are deadlines: a handler that would not stop is abandoned,
its item returned (`ReturnedItem.abandoned`) and counted once.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import signal
import time
import traceback
from collections import deque
from collections.abc import Awaitable, Callable
from itertools import count
from typing import Any

from engine.checks import check_count, check_seconds
from engine.events import EventLog
from engine.ledger import RUNNING, Job, Ledger, RateMeter
from engine.protocol import Delivery, HandlerContext, WorkQueue
from engine.queue import PriorityQueue, QueueShutDown
from engine.reprs import ItemRepr, describe
from engine.retries import Backoff, DeadLetters, RetryTimers
from engine.snapshots import (
    Accounting,
    DeadLetter,
    EventKind,
    HeapEntry,
    PhaseTiming,
    PoolSnapshot,
    RetrySnapshot,
    ReturnedItem,
    ShutdownPhase,
    ShutdownReport,
    WorkerSnapshot,
    WorkerState,
)  # fmt: skip

__all__ = ["Handler", "Job", "RateMeter", "WorkerPool"]

Handler = Callable[..., Awaitable[object]]
"""`handler(item, priority)` or `handler(item, priority, ctx: HandlerContext)`: async;
returning means done, raising means failed."""

_log = logging.getLogger(__name__)

_IDLE, _BUSY, _PAUSED = WorkerState.IDLE, WorkerState.BUSY, WorkerState.PAUSED
_CANCELLING, _STOPPED, _CRASHED = WorkerState.CANCELLING, WorkerState.STOPPED, WorkerState.CRASHED
_SIGNALS = (signal.SIGINT, signal.SIGTERM)

SNAPSHOT_LIMIT = 100
"""Retries and dead letters a snapshot carries at most (a snapshot stays cheap at any backlog)."""
HISTORY = 6
"""(state, since) pairs a worker snapshot carries."""


def _takes_context(handler: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):
        return False
    kinds = [p.kind for p in parameters]
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return inspect.Parameter.VAR_POSITIONAL in kinds or sum(k in positional for k in kinds) >= 3


class _Worker:
    __slots__ = (
        "id", "name", "task", "state", "job", "started", "idle_since", "done", "failed",
        "retried", "meter", "stop_requested", "stopped_at", "waiting", "interrupted", "reason",
        "history", "last_error", "last_traceback",
    )  # fmt: skip

    def __init__(self, worker_id: int, now: float, rate_window: int) -> None:
        self.id = worker_id
        self.name = f"worker-{worker_id}"
        self.task: asyncio.Task[None] | None = None
        self.state = _IDLE
        self.job: Job | None = None
        self.started = self.idle_since = self.stopped_at = now
        self.done = self.failed = self.retried = 0
        self.meter = RateMeter(now, rate_window)
        self.stop_requested = False
        self.waiting = False
        """Suspended in a get or a park: where a pause or a removal may interrupt it."""
        self.interrupted = False
        self.reason: str | None = None
        """Why the pool cancelled it ('cancelled', 'shutdown'); None: nobody in the pool did."""
        self.history: deque[tuple[WorkerState, float]] = deque(maxlen=HISTORY)
        self.last_error: str | None = None
        self.last_traceback: str | None = None

    def become(self, state: WorkerState, now: float) -> None:
        """A transition off the hot path (the busy/idle flip is read from started/idle_since)."""
        self.state = state
        self.history.append((state, now))


class WorkerPool:
    """A pool of worker tasks running `handler` on a `WorkQueue`'s items.

    Args:
        queue: the queue to consume (any `engine.protocol.WorkQueue`).
        handler: `async def handler(item, priority)`, or with a third parameter that gets a
            `HandlerContext` (arity read once, here).
        workers: workers `start()` spawns.
        max_attempts: attempts per item before it is dead-lettered (1: no retry).
        backoff_base, backoff_cap: retry n waits about `min(cap, base * 2**(n-1))`, jittered.
        timeout: seconds per attempt (None: no limit); a timeout is a failure.
        dead_letter_limit: dead letters kept in `dead_letters` (the oldest fall out).
        on_dead_letter: `on_dead_letter(letter: DeadLetter)`, the item in `letter.item`.
        on_crash: `on_crash(worker_id, exception)` when a worker task dies of an exception.
        clock: seconds, monotonic. Leave as default unless testing.
        rng: the `random.Random` for the jitter (seeded in tests).
        retired_linger: seconds a stopped worker stays in the snapshot as STOPPED.
        cancel_grace: seconds a shutdown waits for cancelled workers before abandoning them.
        rate_window: seconds of history behind the completion rates.
        events: where WORKER_*, DEAD_LETTER, LATE_COMPLETION, SHUTDOWN_PHASE and
            POLICY_CHANGED events go (None: nowhere).
        item_repr: `item_repr(item) -> str`, how every repr the pool hands out shows an item.
        replacements_per_minute: dead workers replaced per minute at most.
    """

    # Slots keep attribute access on the workers' hot path fast, as in engine.queue.
    __slots__ = (
        "_backoff", "_cancel_grace", "_clock", "_closed", "_crashed", "_dead_letters",
        "_drain_waiters", "_events", "_force", "_handler", "_initial_workers", "_item_repr",
        "_last_drain_time", "_ledger", "_loop", "_max_attempts", "_meter", "_on_crash",
        "_paused", "_phase", "_phases", "_queue", "_rate_window", "_replaced", "_replacements",
        "_report", "_resume_waiters", "_retired", "_retired_linger", "_retries",
        "_returned_items", "_signal_drain_timeout", "_signal_loop", "_signal_task",
        "_started", "_timeout", "_with_ctx", "_worker_ids", "_workers", "_unlisten",
        "_task_done", "_ack", "_fatal", "__weakref__",
    )  # fmt: skip

    def __init__(
        self,
        queue: WorkQueue,
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
        events: EventLog | None = None,
        item_repr: ItemRepr | None = None,
        replacements_per_minute: int = 10,
    ) -> None:
        if not isinstance(queue, WorkQueue):
            raise TypeError(f"queue must be an engine.protocol.WorkQueue, not {queue!r}")
        if not callable(handler):
            raise TypeError(f"handler must be an async callable, not {handler!r}")
        self._initial_workers = check_count("workers", workers, 0)
        self._max_attempts = check_count("max_attempts", max_attempts, 1)
        self._backoff = Backoff(backoff_base, backoff_cap, rng)
        self._timeout = (
            None if timeout is None else check_seconds("timeout", timeout, allow_zero=False)
        )
        self._dead_letters = DeadLetters(dead_letter_limit, on_dead_letter)
        self._retired_linger = check_seconds("retired_linger", retired_linger)
        self._cancel_grace = check_seconds("cancel_grace", cancel_grace)
        self._rate_window = check_count("rate_window", rate_window, 1)
        self._replacements = check_count("replacements_per_minute", replacements_per_minute, 0)
        self._queue = queue
        self._handler = handler
        self._with_ctx = _takes_context(handler)
        self._on_crash = on_crash
        self._clock = clock
        self._events = events
        self._item_repr = item_repr
        self._ledger = Ledger()
        self._retries = RetryTimers(clock, self._retry_due)
        self._worker_ids = count(1)
        self._workers: dict[int, _Worker] = {}
        self._retired: deque[_Worker] = deque(maxlen=16)
        self._crashed: deque[_Worker] = deque(maxlen=16)
        self._replaced: deque[float] = deque()
        self._returned_items: list[ReturnedItem] = []
        self._meter = RateMeter(clock(), rate_window)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = self._paused = self._fatal = False
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
        # The in-process queue forgets a delivery when it hands it out: no ack, only the
        # asyncio.Queue join() bookkeeping.
        self._ack = None if queue.acks_on_get else queue.ack
        self._task_done = getattr(queue, "task_done", None) if queue.acks_on_get else None
        self._unlisten = queue.add_drop_listener(self._on_drop)

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
            await self._close_now()  # leaving on an error or a cancel: no drain

    async def run(
        self, *, drain_timeout: float = 10.0, handle_signals: bool = False
    ) -> ShutdownReport:
        """Start if needed, then wait until a shutdown (a signal, another task) finishes.

        When the task running this is cancelled (a TaskGroup going down), the pool shuts
        down at once, returning what is left, and the cancel goes on.
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
        worker.task = self._loop.create_task(self._work(worker), name=worker.name)
        worker.task.add_done_callback(_retrieve)
        return worker.id

    def _emit(self, kind: EventKind, message: str, **fields: Any) -> None:
        if self._events is not None:
            self._events.emit(kind, message, **fields)

    def _repr(self, job: Job) -> str:
        return f"#{job.id} {describe(job.item, Job.REPR_LIMIT, self._item_repr)}"

    # ------------------------------------------------------------------ submit

    def submit_nowait(self, item: Any, *, priority: float = PriorityQueue.DEFAULT_PRIORITY) -> int:
        """Queue `item` at `priority` without waiting; return its job id.

        Raises as the queue's `put_nowait` does; an item refused under 'reject' is counted.
        """
        if self._phase is not ShutdownPhase.RUNNING:
            raise QueueShutDown(f"the pool is shutting down: {item!r} not accepted")
        job = self._ledger.new_job(item, priority)
        self._queue.put_nowait(job, priority=priority)
        self._ledger.landed(job)
        return job.id

    async def submit(self, item: Any, *, priority: float = PriorityQueue.DEFAULT_PRIORITY) -> int:
        """Queue `item` at `priority`, waiting for room under the 'block' policy; return its id."""
        if self._phase is not ShutdownPhase.RUNNING:
            raise QueueShutDown(f"the pool is shutting down: {item!r} not accepted")
        job = self._ledger.new_job(item, priority)
        # put() returns right after its synchronous put_nowait: nothing runs in between, so
        # the job is counted before any worker can get it.
        await self._queue.put(job, priority=priority)
        self._ledger.landed(job)
        return job.id

    def _on_drop(self, item: Any, priority: float, reason: str) -> None:
        self._ledger.dropped(item if type(item) is Job else None, reason)

    def _requeue(self, job: Job) -> None:
        self._queue.requeue_nowait(job, priority=job.priority, arrival=job.arrival)

    # ------------------------------------------------------------------ the worker

    async def _work(self, worker: _Worker) -> None:
        get = self._queue.get_delivery
        ledger = self._ledger
        handler = self._handler
        with_ctx = self._with_ctx
        clock = self._clock
        timeout = self._timeout
        meter = self._meter
        wmeter = worker.meter
        task = worker.task
        assert task is not None
        ack = self._ack
        task_done = self._task_done
        drain_waiters = self._drain_waiters  # the same list for the pool's life
        parked: list[asyncio.Future[None]] | None = None
        try:
            while not worker.stop_requested:
                worker.waiting = True
                try:
                    if self._paused:
                        worker.become(_PAUSED, clock())
                        await self._park(self._resume_waiters)
                        worker.become(_IDLE, clock())
                        continue
                    if parked is not None:
                        parked = None
                        await self._park(drain_waiters)
                        continue
                    delivery = await get()
                except QueueShutDown:
                    if not (len(self._retries) or ledger.in_flight):
                        break
                    parked = drain_waiters  # draining: a retry or a put-back may still come
                    continue
                except asyncio.CancelledError:
                    # A pause or a removal interrupts a waiting worker with a cancel of its
                    # own, taken back here; any other cancel goes on.
                    if not worker.interrupted or task.uncancel():
                        raise
                    worker.interrupted = False
                    continue
                finally:
                    worker.waiting = False
                job = delivery.item
                if type(job) is not Job:
                    job = ledger.adopt(job, delivery.priority)
                job.arrival = delivery.arrival
                ledger.started(job)
                worker.job = job
                worker.state = _BUSY
                worker.started = now = clock()
                error: BaseException | None = None
                late = False
                try:
                    if timeout is None:
                        if with_ctx:
                            await handler(job.item, job.priority, self._context(job, delivery, now))
                        else:
                            await handler(job.item, job.priority)
                    else:
                        async with asyncio.timeout(timeout) as deadline:
                            if with_ctx:
                                await handler(job.item, job.priority, self._context(job, delivery, now))
                            else:
                                await handler(job.item, job.priority)
                        if deadline.expired():  # it swallowed the timeout's cancel
                            error, late = TimeoutError(), True
                except asyncio.CancelledError as exc:
                    if task.cancelling():
                        raise  # the worker itself is being cancelled
                    error = exc  # the handler's own CancelledError: a failure
                except (KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as exc:
                    error = exc
                if worker.job is not job:  # abandoned by a shutdown while its handler ran
                    if error is None:
                        self._late(job, worker)
                    break
                if task.cancelling():  # it swallowed the worker's cancel: that decides
                    if error is None:
                        self._late(job, worker)
                    raise asyncio.CancelledError
                worker.job = None
                worker.state = _IDLE
                if error is None:
                    # The hot path: the ledger's `finished` arrow and RateMeter.tick, inlined
                    # (bench_pool: the calls cost ~10% at 20k items).
                    if job.state is not RUNNING:
                        ledger.finished(job)  # raises InvalidJobState
                    job.state = "done"
                    ledger.in_flight -= 1
                    ledger.completed += 1
                    worker.done += 1
                    worker.idle_since = now = clock()
                    second = now // 1
                    if second != wmeter.second:
                        wmeter.roll(second)
                    wmeter.count += 1
                    if second != meter.second:
                        meter.roll(second)
                    meter.count += 1
                    if ack is not None:
                        await ack(delivery)
                else:
                    worker.idle_since = clock()
                    if late:
                        self._late(job, worker)
                    self._fail(worker, job, error)
                if task_done is not None:
                    task_done()
                if drain_waiters:
                    _wake(drain_waiters)
        except asyncio.CancelledError:
            self._release(worker)
            self._stopped(worker, worker.reason or "outside")
            raise
        except (KeyboardInterrupt, SystemExit) as exc:
            self._release(worker)
            self._stopped(worker, "crash", exc)
            raise
        except BaseException as exc:
            self._release(worker)
            self._stopped(worker, "crash", exc)
            raise
        else:
            self._stopped(worker, "stopped" if worker.job is None else "abandoned")

    def _context(self, job: Job, delivery: Delivery, now: float) -> HandlerContext:
        deadline = None if self._timeout is None else now + self._timeout
        return HandlerContext(job.id, job.attempts, delivery.first_arrival, deadline, job.priority)

    def _late(self, job: Job, worker: _Worker) -> None:
        self._ledger.late_completion(job)
        self._emit(
            EventKind.LATE_COMPLETION,
            f"{worker.name}: {self._repr(job)} returned after the pool gave up on it",
            worker_id=worker.id,
            job_id=job.id,
        )

    def _release(self, worker: _Worker) -> None:
        """The worker is stopping mid-item: its item goes back, the attempt does not count."""
        job = worker.job
        if job is None:
            return
        worker.job = None
        if self._phase is ShutdownPhase.CANCELLING:
            self._return(job)
        else:
            self._ledger.put_back(job)
            self._requeue(job)
        if self._task_done is not None:
            self._task_done()
        _wake(self._drain_waiters)

    def _return(self, job: Job, abandoned: bool = False) -> None:
        where = self._ledger.returned(job)
        self._returned_items.append(
            ReturnedItem(job.item, job.priority, job.attempts, where, abandoned, job.id)
        )

    def _stopped(self, worker: _Worker, why: str, error: BaseException | None = None) -> None:
        """Every way a worker ends comes here once: who is told, and whether it is replaced."""
        now = self._clock()
        if self._workers.pop(worker.id, None) is None:
            return  # already abandoned by a shutdown
        worker.stopped_at = now
        worker.become(_CRASHED if why == "crash" else _STOPPED, now)
        (self._crashed if why == "crash" else self._retired).append(worker)
        if why == "cancelled":
            self._emit(EventKind.WORKER_CANCELLED, f"{worker.name} cancelled", worker_id=worker.id)
        if why == "crash":
            _log.error("%s crashed: %r", worker.name, error)
            if self._on_crash is not None:
                try:
                    self._on_crash(worker.id, error)  # type: ignore[arg-type]
                except Exception:
                    _log.exception("on_crash callback failed for %s", worker.name)
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            self._fatal = True
        if why in ("outside", "crash") and self._loop is not None:
            cause = "cancelled from outside" if error is None else f"died: {error!r}"
            if why == "outside":
                self._emit(EventKind.WORKER_CANCELLED, f"{worker.name} {cause}", worker_id=worker.id)
            # Decided on the next pass of the loop, once every cancel given in this one is
            # known: asyncio.run's cleanup cancels every task at once, and is not answered
            # with new workers.
            self._loop.call_soon(self._replace, worker, cause)

    def _replace(self, worker: _Worker, cause: str) -> None:
        now = self._clock()
        while self._replaced and now - self._replaced[0] > 60.0:
            self._replaced.popleft()
        if self._phase is not ShutdownPhase.RUNNING:
            return
        if self._fatal or all(task.cancelling() for task in asyncio.all_tasks(self._loop)):
            why_not = "the program is stopping"
        elif len(self._replaced) >= self._replacements:
            why_not = f"{self._replacements} replacements in the last minute"
        else:
            self._replaced.append(now)
            new_id = self._spawn()
            message = f"{worker.name} {cause}; worker-{new_id} replaces it"
            _log.warning("%s", message)
            self._emit(EventKind.WORKER_REPLACED, message, worker_id=new_id)
            return
        message = f"{worker.name} {cause}; not replaced: {why_not}"
        _log.error("%s", message)
        self._emit(EventKind.WORKER_DIED, message, worker_id=worker.id)

    async def _park(self, waiters: list[asyncio.Future[None]]) -> None:
        assert self._loop is not None
        waiter = self._loop.create_future()
        waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in waiters:
                waiters.remove(waiter)

    # ------------------------------------------------------------------ retries, dead letters

    def backoff_delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1 for the first failure)."""
        return self._backoff.delay(attempt)

    def _fail(self, worker: _Worker, job: Job, error: BaseException) -> None:
        worker.failed += 1
        text = describe(error, 200)
        worker.last_error = text
        worker.last_traceback = "".join(traceback.format_exception(error))[-4000:]
        if job.attempts < self._max_attempts:
            assert self._loop is not None
            self._ledger.retrying(job)
            delay = self._backoff.delay(job.attempts)
            self._retries.schedule(self._loop, job, worker.id, delay, text)
            worker.retried += 1
            return
        self._ledger.dead(job)
        letter = DeadLetter(
            self._repr(job), job.priority, job.attempts, text, self._clock(), job.item, job.id
        )
        self._emit(
            EventKind.DEAD_LETTER,
            f"{letter.item_repr} dead-lettered after {job.attempts} attempts: {text}",
            worker_id=worker.id,
            job_id=job.id,
        )
        self._dead_letters.add(letter)

    def _retry_due(self, job: Job) -> None:
        self._ledger.put_back(job)
        self._requeue(job)
        _wake(self._drain_waiters)

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
        """Cancel a worker now; its in-flight item goes back to the queue at its place.

        False if there is no such running worker (unknown, stopped or already stopping).
        """
        worker = self._live(worker_id)
        if worker is None or worker.task is None or worker.task.done():
            return False
        worker.reason = "cancelled"
        worker.become(_CANCELLING, self._clock())
        worker.task.cancel()
        return True

    def busiest_worker(self) -> int | None:
        """The id of the worker that has been on its current item the longest (None: none busy)."""
        busy = [w for w in self._workers.values() if w.job is not None and w.state is _BUSY]
        return min(busy, key=lambda w: w.started).id if busy else None

    def add_worker(self) -> int:
        """Spawn one more worker; return its id."""
        if not self._started:
            raise RuntimeError("start() the pool before adding workers")
        if self._phase is not ShutdownPhase.RUNNING:
            raise RuntimeError("the pool is shutting down: no new workers")
        worker_id = self._spawn()
        self._emit(EventKind.WORKER_ADDED, f"worker-{worker_id} added", worker_id=worker_id)
        return worker_id

    def remove_worker(self, worker_id: int | None = None) -> int | None:
        """Stop a worker gracefully (it finishes its current item); return its id.

        Without an id: an idle worker if there is one, else the newest. None if there is no
        such running worker.
        """
        if worker_id is None:
            live = [w for w in self._workers.values() if self._live(w.id) is not None]
            if not live:
                return None
            worker = ([w for w in live if w.job is None] or live)[-1]
        else:
            found = self._live(worker_id)
            if found is None:
                return None
            worker = found
        worker.stop_requested = True
        self._interrupt(worker)
        self._emit(
            EventKind.WORKER_REMOVED,
            f"{worker.name} stopping after its current item" if worker.job else f"{worker.name} removed",
            worker_id=worker.id,
        )
        return worker.id

    def _interrupt(self, worker: _Worker) -> None:
        """Wake a worker waiting on the queue or parked, without taking an item."""
        if worker.waiting and not worker.interrupted and worker.task is not None:
            worker.interrupted = True
            worker.task.cancel()

    @property
    def paused(self) -> bool:
        """True while consumption is paused (busy workers finish their current item)."""
        return self._paused

    def pause(self) -> None:
        """Stop taking items from the queue; items in flight finish. Waiting workers stop
        waiting on the queue (they take nothing to put back)."""
        if self._paused:
            return
        self._paused = True
        for worker in list(self._workers.values()):
            self._interrupt(worker)
        self._emit(EventKind.POLICY_CHANGED, "workers paused: taking no new items")

    def resume(self) -> None:
        """Take items from the queue again."""
        if not self._paused:
            return
        self._paused = False
        _wake(self._resume_waiters)
        self._emit(EventKind.POLICY_CHANGED, "workers resumed")

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
        if self._workers or len(self._retries) or self._queue.qsize():
            self._enter(ShutdownPhase.CANCELLING)
            try:
                await self._cancel_workers()
            except asyncio.CancelledError:
                interrupted = True
            self._abandon_workers()
            self._return_leftovers()
        self._enter(ShutdownPhase.STOPPED)
        self._unlisten()
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
                return not (len(self._retries) or self._queue.qsize())
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
        now = self._clock()
        for worker in self._workers.values():
            if worker.task is not None and not worker.task.done():
                worker.reason = "shutdown"
                worker.become(_CANCELLING, now)
                worker.task.cancel()
                tasks.append(worker.task)
        if not tasks:
            return
        if self._cancel_grace > 0:
            await asyncio.wait(tasks, timeout=self._cancel_grace)
        else:
            await asyncio.sleep(0)  # one step for the workers that honour the cancel

    def _abandon_workers(self) -> None:
        """Workers whose handler ignores cancellation: return their items, stop waiting."""
        for worker in list(self._workers.values()):
            if worker.task is not None and worker.task.done():
                continue
            _log.warning("%s ignored its cancellation; its item is returned", worker.name)
            del self._workers[worker.id]
            worker.become(_STOPPED, self._clock())
            worker.stopped_at = self._clock()
            self._retired.append(worker)
            job = worker.job
            if job is not None:
                worker.job = None
                self._return(job, abandoned=True)
                if self._task_done is not None:
                    self._task_done()  # its get is over: join() must not wait for it

    def _return_leftovers(self) -> None:
        for job in self._retries.cancel_all():
            self._return(job)
        for item, priority in self._queue.drain_nowait():
            job = item if type(item) is Job else self._ledger.adopt(item, priority)
            self._return(job)
            if self._task_done is not None:
                self._task_done()

    def _enter(self, phase: ShutdownPhase) -> None:
        now = self._clock()
        if self._phases:
            current = self._phases[-1]
            current[2] = now - current[1]
        self._phases.append([phase, now, 0.0 if phase is ShutdownPhase.STOPPED else None])
        self._phase = phase
        self._emit(EventKind.SHUTDOWN_PHASE, f"pool shutdown: {phase.value}", phase=phase.value)

    def _phase_timings(self) -> tuple[PhaseTiming, ...]:
        return tuple(PhaseTiming(phase, at, duration) for phase, at, duration in self._phases)

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
        return self._ledger.accounting()

    def top(self, k: int, priority: float | None = None) -> tuple[HeapEntry, ...]:
        """The best `k` queued entries (at `priority` only, if given), with each job unwrapped:
        `item` is the payload, `item_repr` through the pool's hook, `job_id` and `attempt` set."""
        hook = self._item_repr
        unwrapped = []
        for entry in self._queue.top(k, priority):
            job = entry.item
            item, job_id, attempt = (
                (job.item, job.id, job.attempts) if type(job) is Job else (job, None, 0)
            )
            unwrapped.append(
                HeapEntry(
                    item, entry.priority, entry.effective_priority, entry.seq, entry.waited,
                    describe(item, 80, hook), job_id, attempt, entry.first_arrival,
                )  # fmt: skip
            )
        return tuple(unwrapped)

    def _worker_snapshot(
        self, worker: _Worker, now: float, backoff: tuple[RetrySnapshot, ...], backing_off: bool
    ) -> WorkerSnapshot:
        state = worker.state
        job = worker.job
        if state is _IDLE and backing_off:
            state = WorkerState.BACKOFF
        history = sorted([*worker.history, (_BUSY, worker.started), (_IDLE, worker.idle_since)],
                         key=lambda pair: pair[1])[-HISTORY:]  # fmt: skip
        return WorkerSnapshot(
            id=worker.id,
            name=worker.name,
            state=state,
            item_repr=self._repr(job) if job is not None else None,
            priority=job.priority if job is not None else None,
            busy_for=max(0.0, now - worker.started) if job is not None else 0.0,
            attempt=job.attempts if job is not None else 0,
            done=worker.done,
            failed=worker.failed,
            retried=worker.retried,
            throughput=worker.meter.rate(now),
            backoff=backoff,
            history=tuple(history),
            last_error=worker.last_error,
            last_traceback=worker.last_traceback,
        )

    def snapshot(self) -> PoolSnapshot:
        """What the pool looks like now: workers, accounting, retries, dead letters, phases.

        Live workers come first, by id, then the recently stopped (for `retired_linger`
        seconds) and the last crashed ones. Retries (the soonest due) and dead letters (the
        latest) are cut to `SNAPSHOT_LIMIT` each; `accounting()` counts them all.
        """
        now = self._clock()
        retries = tuple(
            RetrySnapshot(self._repr(r.job), r.job.priority, r.job.attempts + 1,
                          max(0.0, r.due - now), r.worker_id, r.error)
            for r in self._retries.soonest(SNAPSHOT_LIMIT)
        )  # fmt: skip
        by_worker: dict[int, list[RetrySnapshot]] = {}
        for retry in retries:
            by_worker.setdefault(retry.worker_id, []).append(retry)
        waiting = self._retries.worker_ids()
        workers = [
            self._worker_snapshot(w, now, tuple(by_worker.get(w.id, ())), w.id in waiting)
            for w in list(self._workers.values())
        ]
        for w in self._retired:
            if now - w.stopped_at <= self._retired_linger:
                workers.append(self._worker_snapshot(w, now, (), False))
        workers.extend(self._worker_snapshot(w, now, (), False) for w in self._crashed)
        return PoolSnapshot(
            workers=tuple(workers),
            phase=self._phase,
            phases=self._phase_timings(),
            paused=self._paused,
            accounting=self.accounting(),
            completion_rate=self._meter.rate(now),
            retries=retries,
            dead_letters=self._dead_letters.latest(SNAPSHOT_LIMIT),
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


def _wake(waiters: list[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)
    waiters.clear()


def _retrieve(task: asyncio.Task[None]) -> None:
    # A crashed worker was already logged and reported: never "exception was never retrieved".
    if not task.cancelled():
        task.exception()
