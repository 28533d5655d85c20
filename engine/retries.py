"""Retries and dead letters: backoff with jitter, the timers that bring a job back, the kept
dead letters. The `Ledger` still owns each job's state; this module only keeps time."""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from engine.checks import check_count, check_seconds
from engine.ledger import Job
from engine.snapshots import DeadLetter, RetrySnapshot

__all__ = ["Backoff", "DeadLetters", "RetryTimers"]

_log = logging.getLogger("engine.pool")


class Backoff:
    """Retry n waits about `min(cap, base * 2**(n-1))`, jittered to between half and all of it
    ("equal jitter": retries spread out, yet never come back sooner than half the ceiling)."""

    __slots__ = ("base", "cap", "rng")

    def __init__(self, base: float, cap: float, rng: random.Random | None = None) -> None:
        self.base = check_seconds("backoff_base", base)
        self.cap = check_seconds("backoff_cap", cap)
        if self.cap < self.base:
            raise ValueError(f"backoff_cap ({cap!r}) must be >= backoff_base ({base!r})")
        self.rng = rng if rng is not None else random.Random()

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1 for the first failure)."""
        ceiling = min(self.cap, self.base * 2.0 ** min(attempt - 1, 64))
        return ceiling / 2 + self.rng.random() * ceiling / 2


class Retry:
    """A job waiting out its backoff."""

    __slots__ = ("job", "worker_id", "due", "error", "handle")

    def __init__(self, job: Job, worker_id: int, due: float, error: str) -> None:
        self.job = job
        self.worker_id = worker_id
        self.due = due
        self.error = error
        self.handle: asyncio.TimerHandle | None = None


class RetryTimers:
    """The scheduled retries, by job id; `fire(job)` runs when a backoff is over."""

    __slots__ = ("_clock", "_fire", "_retries")

    def __init__(self, clock: Callable[[], float], fire: Callable[[Job], None]) -> None:
        self._clock = clock
        self._fire = fire
        self._retries: dict[int, Retry] = {}

    def schedule(
        self, loop: asyncio.AbstractEventLoop, job: Job, worker_id: int, delay: float, error: str
    ) -> None:
        retry = Retry(job, worker_id, self._clock() + delay, error)
        retry.handle = loop.call_later(delay, self._due, retry)
        self._retries[job.id] = retry

    def _due(self, retry: Retry) -> None:
        if self._retries.pop(retry.job.id, None) is retry:
            self._fire(retry.job)

    def cancel_all(self) -> list[Job]:
        """Stop every timer; the jobs that were waiting, soonest due first."""
        retries = sorted(self._retries.values(), key=lambda r: r.due)
        self._retries.clear()
        for retry in retries:
            if retry.handle is not None:
                retry.handle.cancel()
        return [retry.job for retry in retries]

    def soonest(self, n: int) -> list[Retry]:
        return heapq.nsmallest(n, self._retries.values(), key=lambda r: r.due)

    def snapshots(
        self, now: float, n: int, describe_job: Callable[[Job], str]
    ) -> tuple[RetrySnapshot, ...]:
        """The `n` soonest due, soonest first."""
        return tuple(
            RetrySnapshot(describe_job(r.job), r.job.priority, r.job.attempts + 1,
                          max(0.0, r.due - now), r.worker_id, r.error)
            for r in self.soonest(n)
        )  # fmt: skip

    def worker_ids(self) -> set[int]:
        """Workers with at least one failed job waiting for its retry."""
        return {retry.worker_id for retry in self._retries.values()}

    def __len__(self) -> int:
        return len(self._retries)

    def __iter__(self) -> Iterator[Retry]:
        return iter(list(self._retries.values()))


class DeadLetters:
    """The last `limit` dead letters, and the user's sink (a failing sink is logged)."""

    __slots__ = ("_letters", "_sink")

    def __init__(self, limit: int, sink: Callable[[DeadLetter], Any] | None) -> None:
        self._letters: deque[DeadLetter] = deque(maxlen=check_count("dead_letter_limit", limit, 0))
        self._sink = sink

    def add(self, letter: DeadLetter) -> None:
        self._letters.append(letter)
        if self._sink is not None:
            try:
                self._sink(letter)
            except Exception:
                _log.exception("on_dead_letter callback failed for %s", letter.item_repr)

    def latest(self, n: int) -> tuple[DeadLetter, ...]:
        letters = self._letters
        return tuple(letters)[max(0, len(letters) - n) :]

    def __iter__(self) -> Iterator[DeadLetter]:
        return iter(tuple(self._letters))

    def __len__(self) -> int:
        return len(self._letters)
