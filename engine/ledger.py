"""`Job` and `Ledger`: the one owner of every job's fate, and of the counters that sum them.

A job's `state` changes only in a `Ledger` method, and each method is one arrow of this
diagram. An arrow that does not start at the job's current state raises `InvalidJobState`
where it happens (as `asyncio.Future.set_result` raises `InvalidStateError` on a done future),
so a second completion or a lost put-back is a loud bug, not a quiet miscount.

    pending --landed--> queued --started--> running --finished--> done
       |                  |  ^                 |  |--retrying--> retry --put_back--> queued
       +----dropped-------+  +----put_back-----+  |--dead------> dead
                          |                    |
                          +---returned---------+--returned--> returned  (also from retry)

`late_completion` is not an arrow: a handler the pool had given up on (a timeout, a cancelled
worker, an abandoning shutdown) returned anyway. The item keeps the fate it has; the late
return is counted apart (`Accounting.late_completions`).

Counted at every moment:

    submitted = completed + dead_lettered + evicted + rejected
                + queued + in_flight + retry_scheduled + returned
"""

from __future__ import annotations

from collections import deque
from dataclasses import fields
from itertools import count
from typing import Any

from engine.checks import check_count
from engine.protocol import Wrapped
from engine.reprs import ItemRepr, describe
from engine.snapshots import Accounting

__all__ = ["CountRate", "InvalidJobState", "Job", "Ledger", "RateMeter", "job_text"]

# Job states: module constants compared with `is` (the hot path pays no enum lookups).
PENDING = "pending"
QUEUED = "queued"
RUNNING = "running"
RETRY = "retry"
DONE = "done"
DEAD = "dead"
DROPPED = "dropped"
RETURNED = "returned"


class InvalidJobState(RuntimeError):
    """An arrow of the job state diagram was taken from a state it does not start at."""


class Job(Wrapped):
    """One submitted item and its fate: what the queue holds for the pool.

    Its repr is what the dashboard shows: `#42 {'order': 7}`, cut to fit.
    """

    __slots__ = ("id", "item", "priority", "attempts", "state", "arrival")

    REPR_LIMIT = 48

    def __init__(self, id: int, item: Any, priority: float, attempts: int = 0) -> None:
        self.id = id
        self.item = item
        self.priority = priority
        self.attempts = attempts
        """Attempts made so far (an attempt interrupted by a cancellation is not one)."""
        self.state = PENDING
        self.arrival: Any = None
        """The queue's token for the job's original place (from its last delivery)."""

    def __repr__(self) -> str:
        return job_text(self.id, self.item)


def job_text(job_id: int, item: Any, hook: ItemRepr | None = None) -> str:
    """'#id payload', the payload through `hook`: how a job is shown (worker rows, retries,
    dead letters, events)."""
    return f"#{job_id} {describe(item, Job.REPR_LIMIT, hook)}"


def _refuse(job: Job, arrow: str, allowed: str) -> InvalidJobState:
    return InvalidJobState(f"{arrow}: job #{job.id} is {job.state}, not {allowed}")


class Ledger:
    """Jobs' states and the fate counters; `accounting()` is the reader's view.

    Each arrow counts itself (`started`, `completed`, ...), and the populations (queued, in
    flight, waiting for a retry) are derived from the arrows into and out of them: the hot path
    pays one `+= 1` per arrow, and the identity holds by construction.
    """

    # The counts, each an int from 0. `dropped_new`: dropped before they were ever queued
    # (refused or evicted on arrival, or put on the queue directly and dropped before the pool
    # saw them).
    COUNTS = (
        "landed_count", "dropped_new", "dropped_queued", "evicted", "rejected",
        "started_count", "completed", "put_back_running", "retrying_count", "retries_due",
        "dead_lettered", "returned_queued", "returned_running", "returned_retry",
        "late_completions",
    )  # fmt: skip
    __slots__ = ("_ids", *COUNTS)

    def __init__(self) -> None:
        self._ids = count(1)
        for name in self.COUNTS:
            setattr(self, name, 0)

    @property
    def submitted(self) -> int:
        return self.landed_count + self.dropped_new

    @property
    def queued(self) -> int:
        into = self.landed_count + self.put_back_running + self.retries_due
        return into - self.started_count - self.dropped_queued - self.returned_queued

    @property
    def in_flight(self) -> int:
        out = self.completed + self.put_back_running + self.retrying_count + self.dead_lettered
        return self.started_count - out - self.returned_running

    @property
    def retry_scheduled(self) -> int:
        return self.retrying_count - self.retries_due - self.returned_retry

    @property
    def returned_count(self) -> int:
        return self.returned_queued + self.returned_running + self.returned_retry

    def new_job(self, item: Any, priority: float) -> Job:
        """A job about to be put on the queue: not counted until it lands (or is dropped)."""
        return Job(next(self._ids), item, priority)

    def adopt(self, item: Any, priority: float) -> Job:
        """An item put on the queue directly, now seen: submitted and queued from now on."""
        job = Job(next(self._ids), item, priority)
        self.landed(job)
        return job

    # ---------------------------------------------------------------- the arrows

    def landed(self, job: Job) -> None:
        """pending -> queued. A job the queue dropped on arrival stays dropped."""
        if job.state is PENDING:
            job.state = QUEUED
            self.landed_count += 1
        elif job.state is not DROPPED:
            raise _refuse(job, "landed", PENDING)

    def dropped(self, job: Job | None, reason: str) -> None:
        """pending or queued -> dropped by the queue's overflow policy ('evicted'/'rejected').

        None: an item put on the queue directly, dropped before the pool saw it.
        """
        if job is None or job.state is PENDING:
            self.dropped_new += 1
        elif job.state is QUEUED:
            self.dropped_queued += 1
        else:
            raise _refuse(job, "dropped", "pending or queued")
        if job is not None:
            job.state = DROPPED
        if reason == "rejected":
            self.rejected += 1
        else:
            self.evicted += 1

    @staticmethod
    def _move(job: Job, arrow: str, source: str, target: str) -> None:
        """The one-source arrows' check: refuse `arrow` unless `job` is at `source`."""
        if job.state is not source:
            raise _refuse(job, arrow, source)
        job.state = target

    def started(self, job: Job) -> None:
        """queued -> running: one more attempt."""
        self._move(job, "started", QUEUED, RUNNING)
        job.attempts += 1
        self.started_count += 1

    def finished(self, job: Job) -> None:
        """running -> done."""
        self._move(job, "finished", RUNNING, DONE)
        self.completed += 1

    def put_back(self, job: Job) -> None:
        """running -> queued (its attempt was interrupted: it does not count), or
        retry -> queued (its backoff is over)."""
        if job.state is RUNNING:
            job.attempts -= 1
            self.put_back_running += 1
        elif job.state is RETRY:
            self.retries_due += 1
        else:
            raise _refuse(job, "put back", "running or retry")
        job.state = QUEUED

    def retrying(self, job: Job) -> None:
        """running -> retry: the attempt failed and another is due after a backoff."""
        self._move(job, "retrying", RUNNING, RETRY)
        self.retrying_count += 1

    def dead(self, job: Job) -> None:
        """running -> dead: the last attempt failed."""
        self._move(job, "dead", RUNNING, DEAD)
        self.dead_lettered += 1

    def returned(self, job: Job) -> str:
        """queued, running or retry -> returned by a shutdown; says where it was.

        An interrupted attempt does not count.
        """
        state = job.state
        if state is QUEUED:
            self.returned_queued += 1
            where = "queued"
        elif state is RUNNING:
            job.attempts -= 1
            self.returned_running += 1
            where = "in-flight"
        elif state is RETRY:
            self.returned_retry += 1
            where = "retry"
        else:
            raise _refuse(job, "returned", "queued, running or retry")
        job.state = RETURNED
        return where

    def late_completion(self, job: Job) -> None:
        """A given-up attempt's handler returned: counted apart, the job's state unchanged."""
        self.late_completions += 1

    # ---------------------------------------------------------------- reading

    def accounting(self) -> Accounting:
        """Every item's fate, counted now (O(1))."""
        counts = {name: getattr(self, name) for name in _SAME_NAMES}
        return Accounting(**counts, returned=self.returned_count)


# Accounting's counts the ledger holds under the same name (`returned` is an arrow here, and
# the ledger never counts an item twice: `duplicated` stays 0).
_SAME_NAMES = tuple(
    spec.name for spec in fields(Accounting) if spec.name not in ("returned", "duplicated")
)


class RateMeter:
    """Events per second over the last `window` seconds, from per-second buckets.

    `tick(now)` is O(1) and allocation-free within a second; `rate(now)` reads `window`
    buckets at most.
    """

    __slots__ = ("window", "second", "count", "history", "since")

    def __init__(self, now: float, window: int = 5) -> None:
        self.window = check_count("rate window (seconds)", window, 1)
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


class CountRate:
    """Events per second over about the last `window` seconds, from a running count sampled
    when the rate is read: the counting side pays nothing but its `+= 1`.

    Read at least once a window (the dashboard and the watchdog read far more often); read
    less often, the rate spans the time since the last read instead.
    """

    __slots__ = ("window", "_samples")

    def __init__(self, now: float, window: int = 5) -> None:
        self.window = check_count("rate window (seconds)", window, 1)
        self._samples: deque[tuple[float, int]] = deque([(now, 0)], maxlen=1024)

    def rate(self, now: float, count: int) -> float:
        """Events per second up to `now`, `count` being the running total now."""
        samples = self._samples
        if now > samples[-1][0]:
            samples.append((now, count))
        start = now - self.window
        while len(samples) > 2 and samples[1][0] <= start:
            samples.popleft()  # keep one sample at or before the window's start
        since, then = samples[0]
        if since < start < samples[1][0]:  # the count at the window's start, interpolated
            later, after = samples[1]
            then += (after - then) * (start - since) / (later - since)
            since = start
        return (count - then) / (now - since) if now > since else 0.0
