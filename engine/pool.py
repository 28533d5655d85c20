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
import logging
import random
import signal
import time
import traceback
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial
from itertools import count
from typing import TYPE_CHECKING, Any

from engine.checks import check_count, check_seconds
from engine.events import EventLog
from engine.leases import Leases
from engine.ledger import DONE, QUEUED, RUNNING, CountRate, Job, Ledger, RateMeter, job_text
from engine.pool_reading import SNAPSHOT_LIMIT, PoolReading
from engine.protocol import DeliveryTuple, HandlerContext, WorkQueue
from engine.queue import PriorityQueue, QueueShutDown
from engine.reprs import ItemRepr, describe
from engine.retries import Backoff, DeadLetters, RetryTimers
from engine.shutdown import ShutdownSteps
from engine.signals import GRACEFUL_SIGNALS, TwoStageSignals, cut_drain_short
from engine.snapshots import (
    DeadLetter,
    EventKind,
    ReturnedItem,
    ShutdownPhase,
    WorkerState,
)
from engine.workers import LiveControl, Replacements, Worker, park, retrieve, takes_context, wake

if TYPE_CHECKING:
    from engine.snapshots import Accounting, ShutdownReport

__all__ = ["SNAPSHOT_LIMIT", "Handler", "Job", "RateMeter", "WorkerPool"]

Handler = Callable[..., Awaitable[object]]
"""`handler(item, priority)` or `handler(item, priority, ctx: HandlerContext)`: async;
returning means done, raising means failed."""

_log = logging.getLogger(__name__)

_IDLE, _PAUSED = WorkerState.IDLE, WorkerState.PAUSED


class _SwallowedTimeout(TimeoutError):
    """A handler that returned after its timeout had cancelled it."""


class WorkerPool(LiveControl, ShutdownSteps, PoolReading):
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
        "_paused", "_phase", "_phases", "_queue", "_rate_window", "_replacements",
        "_report", "_resume_waiters", "_retired", "_retired_linger", "_retries",
        "_returned_items", "_signal_drain_timeout", "_signals", "_signal_task",
        "_started", "_timeout", "_with_ctx", "_worker_ids", "_workers", "_unlisten",
        "_task_done", "_ack", "_fatal", "_leases", "__weakref__",
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
        self._replacements = Replacements(
            check_count("replacements_per_minute", replacements_per_minute, 0)
        )
        self._queue = queue
        self._handler = handler
        self._with_ctx = takes_context(handler)
        self._on_crash = on_crash
        self._clock = clock
        self._events = events
        self._item_repr = item_repr
        self._ledger = Ledger()
        self._retries = RetryTimers(clock, self._retry_due)
        self._worker_ids = count(1)
        self._workers: dict[int, Worker] = {}
        self._retired: deque[Worker] = deque(maxlen=16)
        self._crashed: deque[Worker] = deque(maxlen=16)
        self._returned_items: list[ReturnedItem] = []
        self._meter = CountRate(clock(), rate_window)
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
        self._signals: TwoStageSignals | None = None
        self._signal_drain_timeout = 10.0
        self._signal_task: asyncio.Task[ShutdownReport] | None = None
        # The in-process queue forgets a delivery when it hands it out: no ack, only the
        # asyncio.Queue join() bookkeeping.
        self._ack = None if queue.acks_on_get else queue.ack
        self._task_done = getattr(queue, "task_done", None) if queue.acks_on_get else None
        listen = getattr(queue, "add_drop_listener", None)  # a queue that never drops has none
        self._unlisten = listen(self._on_drop) if listen is not None else lambda: None
        # A shared queue keeps the retries and the dead letters itself (engine/leases.py).
        self._leases: Leases | None = None
        if not queue.acks_on_get:
            self._leases = Leases(
                queue, self._ledger, self._dead, partial(wake, self._drain_waiters), self._retried
            )
            self._handler, self._with_ctx = self._leases.wrap(handler, self._with_ctx), True
            self._ack = self._leases.ack

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

    def _spawn(self) -> int:
        assert self._loop is not None
        worker = Worker(next(self._worker_ids), self._clock(), self._rate_window)
        worker.hold = self._paused
        self._workers[worker.id] = worker
        worker.task = self._loop.create_task(self._work(worker), name=worker.name)
        worker.task.add_done_callback(partial(self._ended, worker))
        return worker.id

    def _ended(self, worker: Worker, task: asyncio.Task[None]) -> None:
        retrieve(task)
        if self._workers.get(worker.id) is worker:  # ended before its body could say so
            error = None if task.cancelled() else task.exception()
            if error is None:
                self._stopped(worker, worker.reason or "outside")
            else:
                self._stopped(worker, "crash", error)

    def _emit(self, kind: EventKind, message: str, **fields: Any) -> None:
        if self._events is not None:
            self._events.emit(kind, message, **fields)

    def _repr(self, job: Job) -> str:
        return job_text(job.id, job.item, self._item_repr)

    def _describe(self, item: Any, limit: int = 80) -> str:
        return describe(item, limit, self._item_repr)

    # ------------------------------------------------------------------ submit

    def submit_nowait(self, item: Any, *, priority: float = PriorityQueue.DEFAULT_PRIORITY) -> int:
        """Queue `item` at `priority` without waiting; return its job id.

        Raises as the queue's `put_nowait` does; an item refused under 'reject' is counted.
        """
        if self._phase is not ShutdownPhase.RUNNING:
            raise QueueShutDown(f"the pool is shutting down: {self._describe(item)} not accepted")
        if self._leases is not None:
            return self._leases.submit_nowait(item, priority)
        job = self._ledger.new_job(item, priority)
        self._queue.put_nowait(job, priority=priority)
        self._ledger.landed(job)
        return job.id

    async def submit(self, item: Any, *, priority: float = PriorityQueue.DEFAULT_PRIORITY) -> int:
        """Queue `item` at `priority`, waiting for room under the 'block' policy; return its id."""
        if self._phase is not ShutdownPhase.RUNNING:
            raise QueueShutDown(f"the pool is shutting down: {self._describe(item)} not accepted")
        if self._leases is not None:
            return await self._leases.submit(item, priority)
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

    async def _work(self, worker: Worker) -> None:
        ledger = self._ledger
        handler = self._handler
        clock = self._clock
        # One test an item for the attempt's shape (timeout and arity are fixed at
        # construction), and the job class and states as locals, not globals: in paired runs at
        # 20k items, 0.99x the loop's time on 3.11, 0.97x on 3.12 (small, but free).
        plain = self._timeout is None and not self._with_ctx
        job_class, queued, running, done = Job, QUEUED, RUNNING, DONE
        # Not `worker.task`: under an eager task factory (Textual's App.run sets one on 3.12+)
        # this body runs inside create_task, before `_spawn` has stored the task.
        task = asyncio.current_task()
        assert task is not None
        ack = self._ack
        task_done = self._task_done or (lambda: None)
        cancelling = task.cancelling
        drain_waiters = self._drain_waiters  # the same list for the pool's life
        get_nowait = self._queue.get_delivery_nowait
        try:
            while True:
                try:
                    if worker.hold:
                        raise asyncio.QueueEmpty
                    delivery = get_nowait()  # the hot path: no coroutine when items wait
                except asyncio.QueueEmpty:
                    if worker.stop_requested:
                        break
                    delivery = await self._wait_for_item(worker, task)
                    if delivery is None:
                        continue
                except QueueShutDown:
                    if not (len(self._retries) or ledger.in_flight):
                        break
                    await self._wait(worker, task, drain_waiters)  # a retry may come back
                    continue
                job = delivery[0]  # a delivery is read by position (engine.protocol)
                if type(job) is not job_class:
                    job = ledger.adopt(job, delivery[1])
                    job.attempts = delivery[4]  # a shared queue counts them (else 0)
                # The hot path inlines the ledger's `started` and `finished` arrows and reads
                # the clock once (rates are sampled from the counters when read): in paired
                # runs at 20k items that took the pool's cost over a plain get_delivery loop
                # from ~0.8 to ~0.5 us an item. The state checks stay: a wrong state goes to
                # the ledger's arrow, which refuses it.
                if job.state is not queued:
                    ledger.started(job)  # refuses
                job.state = running
                job.attempts += 1
                ledger.started_count += 1
                job.arrival = delivery[2]
                worker.job = job
                worker.started = clock()
                try:
                    if plain:
                        await handler(job.item, job.priority)
                    elif self._timeout is None:
                        ctx = self._context(job, delivery, worker.started)
                        await handler(job.item, job.priority, ctx)
                    else:
                        await self._timed(job, delivery, worker.started)
                except asyncio.CancelledError as exc:
                    if task.cancelling():
                        raise  # the worker itself is being cancelled
                    error: BaseException | None = exc  # the handler's own: a failure
                except (KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as exc:
                    error = exc
                else:
                    if worker.job is job and not cancelling():
                        worker.job = None
                        if job.state is not running:
                            ledger.finished(job)  # refuses
                        job.state = done
                        ledger.completed += 1
                        worker.done += 1
                        if ack is not None:
                            await ack(delivery)
                        task_done()
                        if drain_waiters:
                            wake(drain_waiters)
                        continue
                    error = None
                if not self._settle(worker, task, job, error):
                    break
        except asyncio.CancelledError:
            self._release(worker)
            self._stopped(worker, worker.reason or "outside")
            raise
        except BaseException as exc:  # KeyboardInterrupt, SystemExit, or the pool's own bug
            self._release(worker)
            self._stopped(worker, "crash", exc)
            raise
        else:
            self._stopped(worker, "stopped" if worker.job is None else "abandoned")

    async def _timed(self, job: Job, delivery: DeliveryTuple, now: float) -> None:
        handler = self._handler
        async with asyncio.timeout(self._timeout) as deadline:
            if self._with_ctx:
                await handler(job.item, job.priority, self._context(job, delivery, now))
            else:
                await handler(job.item, job.priority)
        if deadline.expired():
            raise _SwallowedTimeout  # it swallowed the timeout's cancel and returned

    def _settle(
        self, worker: Worker, task: asyncio.Task[None], job: Job, error: BaseException | None
    ) -> bool:
        """An attempt that did not simply succeed; False: the worker stops."""
        returned = error is None or isinstance(error, _SwallowedTimeout)
        if worker.job is not job:  # abandoned by a shutdown while its handler ran
            if returned:
                self._late(job, worker)
            return False
        if task.cancelling():  # it swallowed the worker's cancel: the cancel decides
            if returned:
                self._late(job, worker)
            raise asyncio.CancelledError
        worker.job = None
        worker.idle_since = self._clock()
        if isinstance(error, _SwallowedTimeout):
            self._late(job, worker)
            error = TimeoutError()
        assert error is not None
        self._fail(worker, job, error)
        if self._task_done is not None:
            self._task_done()
        wake(self._drain_waiters)
        return True

    def _context(self, job: Job, delivery: DeliveryTuple, now: float) -> HandlerContext:
        deadline = None if self._timeout is None else now + self._timeout
        if self._leases is not None:
            return self._leases.context(job, delivery, deadline)
        return HandlerContext(job.id, job.attempts, delivery[3], deadline, job.priority)

    def _late(self, job: Job, worker: Worker) -> None:
        self._ledger.late_completion(job)
        text = self._repr(job)
        self._emit(
            EventKind.LATE_COMPLETION,
            f"{worker.name}: {text} returned after the pool gave up on it",
            worker_id=worker.id,
            job_id=job.id,
            item_repr=text,
            item=job.item,
        )

    def _release(self, worker: Worker) -> None:
        """The worker is stopping mid-item: its item goes back, the attempt does not count."""
        job = worker.job
        if job is None:
            return
        worker.job = None
        if self._leases is not None or self._phase is ShutdownPhase.CANCELLING:
            self._return(job)
        else:
            self._ledger.put_back(job)
            self._requeue(job)
        if self._task_done is not None:
            self._task_done()
        wake(self._drain_waiters)

    def _return(self, job: Job, abandoned: bool = False) -> None:
        if self._leases is not None:  # back to the shared queue: not this process's to keep
            return self._leases.release(job)
        where = self._ledger.returned(job)
        self._returned_items.append(
            ReturnedItem(job.item, job.priority, job.attempts, where, abandoned, job.id)
        )

    async def _wait_for_item(self, worker: Worker, task: asyncio.Task[None]) -> DeliveryTuple | None:
        """Wait on the queue, or while paused; None: look again (paused, interrupted)."""
        if self._paused:
            worker.become(_PAUSED, self._clock())
            await self._wait(worker, task, self._resume_waiters)
            worker.become(_IDLE, self._clock())
            return None
        worker.waiting = True
        worker.idle_since = self._clock()
        try:
            return await self._queue.get_delivery()
        except QueueShutDown:
            return None  # the next look sees it
        except asyncio.CancelledError:
            # A pause or a removal interrupts a waiting worker with a cancel of its own,
            # taken back here; any other cancel goes on.
            if not worker.interrupted or task.uncancel():
                raise
            worker.interrupted = False
            return None
        finally:
            worker.waiting = False

    async def _wait(
        self, worker: Worker, task: asyncio.Task[None], waiters: list[asyncio.Future[None]]
    ) -> None:
        worker.waiting = True
        try:
            await park(waiters)
        except asyncio.CancelledError:
            if not worker.interrupted or task.uncancel():
                raise
            worker.interrupted = False
        finally:
            worker.waiting = False

    # ------------------------------------------------------------------ retries, dead letters

    def backoff_delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1 for the first failure)."""
        return self._backoff.delay(attempt)

    def _fail(self, worker: Worker, job: Job, error: BaseException) -> None:
        worker.failed += 1
        text = describe(error, 200)
        worker.last_error = text
        worker.last_traceback = "".join(traceback.format_exception(error))[-4000:]
        if self._leases is not None:
            return self._leases.failed(job, worker.id, text, self._backoff.delay(job.attempts))
        if job.attempts < self._max_attempts:
            assert self._loop is not None
            self._ledger.retrying(job)
            delay = self._backoff.delay(job.attempts)
            self._retries.schedule(self._loop, job, worker.id, delay, text)
            worker.retried += 1
            return
        self._dead(job, worker.id, text)

    def _retried(self, worker_id: int) -> None:
        """A shared queue took a failed attempt back for a retry (its nack's answer): the
        worker's `retried`, which the in-process path counts in `_fail`."""
        worker = self._workers.get(worker_id) or next(
            (w for w in self._retired if w.id == worker_id), None)
        if worker is not None:
            worker.retried += 1

    def _dead(self, job: Job, worker_id: int, text: str) -> None:
        self._ledger.dead(job)
        letter = DeadLetter(
            self._repr(job), job.priority, job.attempts, text, self._clock(), job.item, job.id
        )
        self._emit(
            EventKind.DEAD_LETTER,
            f"{letter.item_repr} dead-lettered after {job.attempts} attempts: {text}",
            worker_id=worker_id,
            job_id=job.id,
            item_repr=letter.item_repr,
            item=job.item,
        )
        self._dead_letters.add(letter)

    def _retry_due(self, job: Job) -> None:
        self._ledger.put_back(job)
        self._requeue(job)
        wake(self._drain_waiters)

    @property
    def queue(self) -> Any:
        """The queue the pool consumes (a monitor given only the pool watches it too)."""
        return self._queue

    @property
    def events(self) -> EventLog | None:
        """Where the pool's events go (None: nowhere); a monitor serves them."""
        return self._events

    @property
    def dead_letters(self) -> tuple[DeadLetter, ...]:
        """The kept dead letters, oldest first (at most `dead_letter_limit`)."""
        return tuple(self._dead_letters)

    # ------------------------------------------------------------------ signals

    def install_signal_handlers(self, *, drain_timeout: float = 10.0) -> None:
        """SIGINT/SIGTERM start a graceful shutdown; a second signal cuts its drain short
        (`engine.signals.TwoStageSignals`, as the heapwatch command). Call on the running loop
        (Unix, main thread); once the pool stops, the handlers that were there come back."""
        self._signal_drain_timeout = check_seconds("drain_timeout", drain_timeout)
        if self._signals is not None:  # installed already (by run(handle_signals=True)?)
            return
        signals = TwoStageSignals(GRACEFUL_SIGNALS)
        if not signals.install(self._on_first_signal, self._on_signal_again):
            raise RuntimeError("signal handlers need the main thread's running loop, on Unix")
        self._signals = signals

    def _on_first_signal(self, sig: signal.Signals) -> None:
        if self._phase is not ShutdownPhase.RUNNING:
            return  # a shutdown is already under way: a second signal cuts it short
        _log.warning("%s: shutting the pool down gracefully", sig.name)
        self._signal_task = asyncio.get_running_loop().create_task(
            self.shutdown(self._signal_drain_timeout), name="pool-shutdown"
        )

    def _on_signal_again(self, sig: signal.Signals) -> None:
        _log.warning("%s again: cancelling what is left", sig.name)
        cut_drain_short(self)

    def _remove_signal_handlers(self) -> None:
        signals, self._signals = self._signals, None
        if signals is not None:
            signals.restore()

    # ------------------------------------------------------------------ reading

    def accounting(self) -> Accounting:
        """Every item's fate, counted now (O(1))."""
        return self._ledger.accounting()

    def __repr__(self) -> str:
        a = self.accounting()
        return (
            f"<WorkerPool {self._phase.value} workers={len(self._workers)}"
            f"{' paused' if self._paused else ''} submitted={a.submitted}"
            f" completed={a.completed} in_flight={a.in_flight} queued={a.queued}"
            f" retries={a.retry_scheduled} dead={a.dead_lettered}>"
        )
