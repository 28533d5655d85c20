"""The pool's workers: one record per worker task (its counters, recent states and last error),
the live controls of `WorkerPool` (cancel, add, remove, pause, resume: a mixin, kept apart so
that each module reads in one sitting) and the small helpers the workers share."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from engine.ledger import CountRate, Job
from engine.records import builder
from engine.snapshots import EventKind, RetrySnapshot, ShutdownPhase, WorkerSnapshot, WorkerState

__all__ = ["LiveControl", "Replacements", "Worker", "park", "retrieve", "takes_context", "wake"]

_IDLE, _BUSY, _BACKOFF = WorkerState.IDLE, WorkerState.BUSY, WorkerState.BACKOFF
_CANCELLING, _STOPPED, _CRASHED = WorkerState.CANCELLING, WorkerState.STOPPED, WorkerState.CRASHED
_worker_snapshot = builder(WorkerSnapshot)  # a row per worker per tick: see engine.records

_log = logging.getLogger("engine.pool")

HISTORY = 6
"""(state, since) pairs a worker snapshot carries."""


def takes_context(handler: Callable[..., Any]) -> bool:
    """Whether `handler` takes a third positional argument (the `HandlerContext`)."""
    try:
        parameters = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):
        return False
    kinds = [p.kind for p in parameters]
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return inspect.Parameter.VAR_POSITIONAL in kinds or sum(k in positional for k in kinds) >= 3


class Worker:
    """One worker task's record. The hot path only sets `job`, `started` and `idle_since`
    (busy is read from `job`); the rarer transitions go through `become`, into `history`."""

    __slots__ = (
        "id", "name", "task", "state", "job", "started", "idle_since", "done", "failed",
        "retried", "meter", "stop_requested", "hold", "stopped_at", "waiting", "interrupted",
        "reason", "history", "last_error", "last_traceback",
    )  # fmt: skip

    def __init__(self, worker_id: int, now: float, rate_window: int) -> None:
        self.id = worker_id
        self.name = f"worker-{worker_id}"
        self.task: asyncio.Task[None] | None = None
        self.state = _IDLE
        self.job: Job | None = None
        self.started = self.idle_since = self.stopped_at = now
        self.done = self.failed = self.retried = 0
        self.meter = CountRate(now, rate_window)
        self.stop_requested = False
        self.hold = False
        """Take no next item (paused, or stopping): one flag for the hot path to read."""
        self.waiting = False
        """Suspended in a get or a park: where a pause or a removal may interrupt it."""
        self.interrupted = False
        """The pool cancelled its wait to wake it (a pause, a removal), not to stop it."""
        self.reason: str | None = None
        """Why the pool cancelled it ('cancelled', 'shutdown'); None: nobody in the pool did."""
        self.history: deque[tuple[WorkerState, float]] = deque(maxlen=HISTORY)
        self.last_error: str | None = None
        self.last_traceback: str | None = None

    def become(self, state: WorkerState, now: float) -> None:
        self.state = state
        self.history.append((state, now))

    def snapshot(
        self,
        now: float,
        describe_job: Callable[[Job], str],
        backoff: tuple[RetrySnapshot, ...] = (),
        backing_off: bool = False,
    ) -> WorkerSnapshot:
        state = self.state
        job = self.job
        if state is _IDLE:
            state = _BUSY if job is not None else _BACKOFF if backing_off else _IDLE
        return _worker_snapshot(
            id=self.id,
            name=self.name,
            state=state,
            item_repr=describe_job(job) if job is not None else None,
            priority=job.priority if job is not None else None,
            busy_for=max(0.0, now - self.started) if job is not None else 0.0,
            attempt=job.attempts if job is not None else 0,
            done=self.done,
            failed=self.failed,
            retried=self.retried,
            throughput=self.meter.rate(now, self.done),
            backoff=backoff,
            history=self._history(),
            last_error=self.last_error,
            last_traceback=self.last_traceback,
        )

    def _history(self) -> tuple[tuple[WorkerState, float], ...]:
        """The recorded transitions with the two hot-path flips (busy at `started`, idle at
        `idle_since`) merged in by time, the last HISTORY of them.

        The record is already in time order and the flips are nearly always the newest, so a
        merge from the end costs a step or two where a sort of the whole list cost far more.
        Ties keep the order a stable sort gave: record first, then busy, then idle.
        """
        first, second = (_BUSY, self.started), (_IDLE, self.idle_since)
        if second[1] < first[1]:
            first, second = second, first
        record = self.history
        if not record or record[-1][1] <= first[1]:  # the flips are the newest: no merge
            return (*record, first, second)[-HISTORY:]
        history = list(record)
        for flip in (first, second):
            at = len(history)
            while at and history[at - 1][1] > flip[1]:
                at -= 1
            history.insert(at, flip)
        return tuple(history[-HISTORY:])


class LiveControl:
    """`cancel_worker`, `add_worker`, `remove_worker`, `pause`, `resume`, on the pool's state."""

    __slots__ = ()
    _workers: dict[int, Worker]
    _started: bool
    _paused: bool
    _phase: ShutdownPhase
    _resume_waiters: list[asyncio.Future[None]]
    _clock: Callable[[], float]
    _spawn: Callable[[], int]
    _emit: Callable[..., None]
    _crashed: deque[Worker]
    _retired: deque[Worker]
    _on_crash: Callable[[int, BaseException], object] | None
    _fatal: bool
    _loop: asyncio.AbstractEventLoop | None
    _replacements: Replacements

    def _live(self, worker_id: int) -> Worker | None:
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
        held = ": its item goes back to the queue" if worker.job is not None else ""
        self._emit(EventKind.WORKER_CANCELLED, f"{worker.name} cancelled{held}",
                   worker_id=worker.id)
        return True

    def busiest_worker(self) -> int | None:
        """The id of the worker that has been on its current item the longest (None: none busy)."""
        busy = [w for w in self._workers.values() if w.job is not None and w.state is _IDLE]
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
        worker.stop_requested = worker.hold = True
        self._interrupt(worker)
        self._emit(
            EventKind.WORKER_REMOVED,
            f"{worker.name} {'stopping after its current item' if worker.job else 'removed'}",
            worker_id=worker.id,
        )
        return worker.id

    def _interrupt(self, worker: Worker) -> None:
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
            worker.hold = True
            self._interrupt(worker)
        self._emit(EventKind.POLICY_CHANGED, "workers paused: taking no new items")

    def resume(self) -> None:
        """Take items from the queue again."""
        if not self._paused:
            return
        self._paused = False
        for worker in self._workers.values():
            worker.hold = worker.stop_requested
        wake(self._resume_waiters)
        self._emit(EventKind.POLICY_CHANGED, "workers resumed")

    def _stopped(self, worker: Worker, why: str, error: BaseException | None = None) -> None:
        """Every way a worker ends comes here once: who is told, and whether it is replaced."""
        now = self._clock()
        if self._workers.pop(worker.id, None) is None:
            return  # already abandoned by a shutdown
        worker.stopped_at = now
        worker.become(_CRASHED if why == "crash" else _STOPPED, now)
        (self._crashed if why == "crash" else self._retired).append(worker)
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
                message = f"{worker.name} {cause}"
                self._emit(EventKind.WORKER_CANCELLED, message, worker_id=worker.id)
            # Decided on the next pass of the loop, once every cancel given in this one is
            # known: asyncio.run's cleanup cancels every task at once, and is not answered
            # with new workers.
            self._loop.call_soon(self._replace, worker, cause)

    def _replace(self, worker: Worker, cause: str) -> None:
        if self._phase is not ShutdownPhase.RUNNING:
            return
        if self._fatal or all(task.cancelling() for task in asyncio.all_tasks(self._loop)):
            why_not = "the program is stopping"
        elif not self._replacements.allow(self._clock()):
            why_not = f"{self._replacements.per_minute} replacements in the last minute"
        else:
            new_id = self._spawn()
            message = f"{worker.name} {cause}; worker-{new_id} replaces it"
            _log.warning("%s", message)
            self._emit(EventKind.WORKER_REPLACED, message, worker_id=new_id)
            return
        message = f"{worker.name} {cause}; not replaced: {why_not}"
        _log.error("%s", message)
        self._emit(EventKind.WORKER_DIED, message, worker_id=worker.id)


class Replacements:
    """At most `per_minute` dead workers replaced in any 60 seconds."""

    __slots__ = ("per_minute", "_times")

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._times: deque[float] = deque()

    def allow(self, now: float) -> bool:
        """Count one replacement now if the limit allows it."""
        while self._times and now - self._times[0] > 60.0:
            self._times.popleft()
        if len(self._times) >= self.per_minute:
            return False
        self._times.append(now)
        return True


async def park(waiters: list[asyncio.Future[None]]) -> None:
    """Wait until `wake(waiters)`."""
    waiter = asyncio.get_running_loop().create_future()
    waiters.append(waiter)
    try:
        await waiter
    finally:
        if waiter in waiters:
            waiters.remove(waiter)


def wake(waiters: list[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)
    waiters.clear()


def retrieve(task: asyncio.Task[None]) -> None:
    """A worker task's done callback: a crash was already logged and reported, so the task
    never logs 'exception was never retrieved'."""
    if not task.cancelled():
        task.exception()
