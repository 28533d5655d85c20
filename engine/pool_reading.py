"""`WorkerPool`'s readers, `top()` and `snapshot()`: a mixin, kept apart so that each module
reads in one sitting. They read the pool's state and change nothing."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from engine.ledger import job_text
from engine.reprs import ItemRepr
from engine.snapshots import PoolSnapshot

if TYPE_CHECKING:
    from engine.leases import LeaseCounts
    from engine.snapshots import HeapEntry, RetrySnapshot

__all__ = ["SNAPSHOT_LIMIT", "PoolReading"]

SNAPSHOT_LIMIT = 100
"""Retries and dead letters a snapshot carries at most (a snapshot stays cheap at any backlog)."""


class PoolReading:
    """`top` and `snapshot`, on the pool's own state."""

    __slots__ = ()
    _queue: Any
    _clock: Any
    _retries: Any
    _workers: dict[int, Any]
    _retired: Any
    _retired_linger: float
    _crashed: Any
    _phase: Any
    _paused: bool
    _meter: Any
    _ledger: Any
    _dead_letters: Any
    _last_drain_time: float | None
    _report: Any
    _item_repr: ItemRepr | None
    _phase_timings: Any
    accounting: Any
    _leases: Any

    def lease_counts(self) -> LeaseCounts | None:
        """This process's part in a shared queue (None: an in-process queue)."""
        return None if self._leases is None else self._leases.counts()

    def top(
        self, k: int, priority: float | None = None, *, item_repr: ItemRepr | None = None
    ) -> tuple[HeapEntry, ...]:
        """The best `k` queued entries (at `priority` only, if given), with each job unwrapped:
        `item` is the payload, `item_repr` through the pool's hook (or `item_repr`, given),
        `job_id` and `attempt` set."""
        if not self._queue.acks_on_get:
            return ()  # a shared queue's entries are in Redis: engine.shared's view reads them
        hook = item_repr or self._item_repr or repr  # the pool's hook, not the queue's
        return self._queue.top(k, priority, item_repr=hook, unwrap=True)

    def snapshot(self, *, item_repr: ItemRepr | None = None) -> PoolSnapshot:
        """What the pool looks like now: workers, accounting, retries, dead letters, phases.

        Live workers come first, by id, then the recently stopped (for `retired_linger`
        seconds) and the last crashed ones. Retries (the soonest due) and dead letters (the
        latest) are cut to `SNAPSHOT_LIMIT` each; `accounting()` counts them all. Every repr
        is made through the pool's hook, or through `item_repr` when given (a monitor's).
        """
        now = self._clock()
        hook = self._item_repr if item_repr is None else item_repr

        def show(job: Any) -> str:
            return job_text(job.id, job.item, hook)

        letters = self._dead_letters.latest(SNAPSHOT_LIMIT)
        if item_repr is not None:
            letters = tuple(
                replace(letter, item_repr=job_text(letter.job_id, letter.item, item_repr))
                for letter in letters
            )
        retries = self._retries.snapshots(now, SNAPSHOT_LIMIT, show)
        by_worker: dict[int, list[RetrySnapshot]] = {}
        for retry in retries:
            by_worker.setdefault(retry.worker_id, []).append(retry)
        waiting = self._retries.worker_ids()
        workers = [
            w.snapshot(now, show, tuple(by_worker.get(w.id, ())), w.id in waiting)
            for w in list(self._workers.values())
        ]
        for w in self._retired:
            if now - w.stopped_at <= self._retired_linger:
                workers.append(w.snapshot(now, show))
        workers.extend(w.snapshot(now, show) for w in self._crashed)
        return PoolSnapshot(
            workers=tuple(workers),
            phase=self._phase,
            phases=self._phase_timings(),
            paused=self._paused,
            accounting=self.accounting(),
            completion_rate=self._meter.rate(now, self._ledger.completed),
            retries=retries,
            dead_letters=letters,
            last_drain_time=self._last_drain_time,
            report=self._report,
        )
