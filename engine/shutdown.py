"""The steps of `WorkerPool.shutdown`: STOPPING_INTAKE -> DRAINING -> (CANCELLING) -> STOPPED.

The drain waits for the queue, the in-flight items and the scheduled retries, up to
`drain_timeout`. Then (or on `abort()`) the workers are cancelled and given `cancel_grace`
seconds; a handler that would not stop by then is abandoned: its item is returned, marked
`abandoned`, and counted once (a later return of that handler is a late completion). Whatever is
still queued or waiting for a retry is returned too. Both are deadlines: the shutdown returns
within them, plus the longest stretch a handler holds the loop for.

A mixin of `WorkerPool` (engine/pool.py), kept apart so that each module reads in one sitting.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from engine.checks import check_seconds
from engine.ledger import Job
from engine.snapshots import EventKind, PhaseTiming, ShutdownPhase, ShutdownReport, WorkerState

__all__ = ["ShutdownSteps"]

_log = logging.getLogger("engine.pool")
_CANCELLING, _STOPPED = WorkerState.CANCELLING, WorkerState.STOPPED


class ShutdownSteps:
    """`shutdown()`, `abort()` and their steps, on the pool's own state."""

    __slots__ = ()
    _cancel_grace: float
    _closed: asyncio.Future[ShutdownReport] | None
    _force: asyncio.Future[None] | None
    _phase: ShutdownPhase
    _phases: list[list[Any]]
    _report: ShutdownReport | None
    _last_drain_time: float | None
    _loop: asyncio.AbstractEventLoop | None
    _returned_items: list[Any]
    _task_done: Any
    _workers: dict[int, Any]
    _retries: Any
    _retired: Any
    _queue: Any
    _ledger: Any
    _clock: Any
    _unlisten: Any
    _started: bool
    _leases: Any

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

    @property
    def phase(self) -> ShutdownPhase:
        """RUNNING until a shutdown starts, then its current phase."""
        return self._phase

    @property
    def report(self) -> ShutdownReport | None:
        """The report of the finished shutdown (None before)."""
        return self._report

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
        if self._leases is not None:  # what submit_nowait took goes out before the queue shuts
            await self._leases.flush(self._cancel_grace)
        self._queue.shutdown()
        self.resume()
        self._enter(ShutdownPhase.DRAINING, limit=drain_timeout)
        try:
            drained = await self._drain(drain_timeout)
        except asyncio.CancelledError:
            interrupted, drained = True, False
        cut_short = self._force.done()
        if self._workers or len(self._retries) or self._queue.qsize():
            self._enter(ShutdownPhase.CANCELLING, limit=self._cancel_grace)
            try:
                await self._cancel_workers()
            except asyncio.CancelledError:
                interrupted = True
            self._abandon_workers()
            self._return_leftovers()
        if self._leases is not None:  # what this process hands back to a shared queue
            await self._leases.settled(self._cancel_grace)
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
            cut_short=cut_short,
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

    def _enter(self, phase: ShutdownPhase, limit: float | None = None) -> None:
        now = self._clock()
        if self._phases:
            current = self._phases[-1]
            current[2] = now - current[1]
        done = 0.0 if phase is ShutdownPhase.STOPPED else None
        self._phases.append([phase, now, done, limit])
        self._phase = phase
        self._emit(EventKind.SHUTDOWN_PHASE, f"pool shutdown: {phase.value}", phase=phase.value)

    def _phase_timings(self) -> tuple[PhaseTiming, ...]:
        return tuple(PhaseTiming(*timing) for timing in self._phases)

