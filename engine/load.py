"""Simulated load: producers that submit items, and the handler that "works" on them.

Everything random is seeded from the scenario's seed, so that what timing does not decide is
the same from run to run:

- each producer draws its arrival times (Poisson at `rate`) and its priorities (by weight)
  from its own `random.Random(f"{seed}:{name}")`, on a virtual schedule that starts when the
  producer does: with a `stop`, a burst-only producer submits the same items every run;
- the handler's fate for an attempt (fail, hang, block or succeed) is a pure function of
  (seed, item, attempt number), so the same items fail, retry and dead-letter every run.

Only the latency draws and the interleaving of producers and workers depend on the clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
import time
from bisect import bisect
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import Any

from engine.pool import RateMeter, WorkerPool
from engine.protocol import HandlerContext
from engine.queue import Overflow, PriorityQueue, QueueShutDown
from engine.scenario import HandlerSettings, Producer
from engine.snapshots import BurstResult

__all__ = [
    "HandlerFailure",
    "LoadGenerator",
    "PriorityPicker",
    "SimulatedHandler",
    "attempt_fate",
    "blocking_handler_step",
    "hanging_handler_step",
]

_log = logging.getLogger(__name__)
_TWO_64 = float(2**64)
STEP = 256
"""Most items a producer submits between two yields to the loop."""


class HandlerFailure(Exception):
    """The simulated handler's failure (the pool retries it, then dead-letters it)."""


def attempt_fate(seed: int, item: object, attempt: int) -> float:
    """A uniform number in [0, 1) that depends only on (seed, item, attempt).

    Not `hash()`: string hashing is salted per process, and the point is the same fate in
    every run.
    """
    digest = hashlib.blake2b(f"{seed}:{item}:{attempt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / _TWO_64


def blocking_handler_step(seconds: float) -> None:
    """Hold the event loop: synchronous work inside an async handler (the classic bug)."""
    time.sleep(seconds)


async def hanging_handler_step() -> None:
    """Wait for something that never comes: only a timeout or a cancellation ends this."""
    await asyncio.get_running_loop().create_future()


class SimulatedHandler:
    """`await handler(item, priority)`: sleeps a lognormal latency, or fails, hangs or blocks.

    Args:
        settings: the scenario's [handler] section.
        seed: decides each attempt's fate (see `attempt_fate`).
        max_attempts: the pool's (kept for callers; the attempt number now comes from the
            pool's `HandlerContext`).
        rng: draws the latencies.
    """

    def __init__(
        self,
        settings: HandlerSettings,
        *,
        seed: int = 0,
        max_attempts: int = 3,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.seed = seed
        self.max_attempts = max_attempts
        self.rng = rng if rng is not None else random.Random(seed)
        self._mu = settings.latency.mu
        self._sigma = settings.latency.sigma
        self._fail_below = settings.failure_rate
        self._hang_below = self._fail_below + settings.hang_rate
        self._block_below = self._hang_below + settings.block_rate
        self._chaotic = self._block_below > 0
        self.block_next: float | None = None
        """Seconds the next call blocks the loop for (set by `Engine.block_loop_once`)."""
        self.calls = 0
        self.failures = 0
        self.hangs = 0
        self.blocks = 0

    def latency(self) -> float:
        """One latency draw, in seconds."""
        if self._mu == -math.inf:
            return 0.0
        if self._sigma == 0:
            return math.exp(self._mu)
        return self.rng.lognormvariate(self._mu, self._sigma)

    async def __call__(
        self, item: Any, priority: float, ctx: HandlerContext | None = None
    ) -> None:
        """One attempt; the pool's `ctx.attempt` picks its fate (called without a context,
        every call is a first attempt)."""
        self.calls += 1
        if self.block_next is not None:
            seconds, self.block_next = self.block_next, None
            self.blocks += 1
            blocking_handler_step(seconds)
        if not self._chaotic:
            # sleep(0) still yields: without it a worker would drain the queue in one step.
            await asyncio.sleep(self.latency())
            return
        attempt = ctx.attempt if ctx is not None else 1
        fate = attempt_fate(self.seed, item, attempt)
        if fate < self._fail_below:
            self.failures += 1
            await asyncio.sleep(self.latency())
            raise HandlerFailure(f"simulated failure of {item} (attempt {attempt})")
        if fate < self._hang_below:
            self.hangs += 1
            await hanging_handler_step()
        elif fate >= self._block_below:
            await asyncio.sleep(self.latency())
        else:
            self.blocks += 1
            blocking_handler_step(self.settings.block_ms / 1000)


class PriorityPicker:
    """Draws priorities by weight with one `random()` call and a bisect."""

    def __init__(self, weights: Sequence[tuple[float, float]], rng: random.Random) -> None:
        self.priorities = [p for p, w in weights if w > 0]
        self.cumulative = list(accumulate(w for _, w in weights if w > 0))
        self.total = self.cumulative[-1]
        self.rng = rng

    def __call__(self) -> float:
        if len(self.priorities) == 1:
            return self.priorities[0]
        index = bisect(self.cumulative, self.rng.random() * self.total)
        return self.priorities[min(index, len(self.priorities) - 1)]


class LoadGenerator:
    """Runs the scenario's producers against a pool, and submits key-triggered bursts.

    Producer `name` makes items `'name-1'`, `'name-2'`, ...; a full 'block' queue makes it
    wait in `submit()` (a blocked putter the watchdog sees); 'reject' and 'evict-lowest'
    never wait (the pool counts what the queue drops).

    Args:
        on_burst: `on_burst(producer_name, result)` after each scheduled burst's first pass
            (the engine turns it into an event). Key bursts return their result instead.
        on_error: `on_error(message)` when a producer or a burst task fails (it is logged too).
    """

    def __init__(
        self,
        producers: Sequence[Producer],
        pool: WorkerPool,
        queue: PriorityQueue,
        *,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
        on_burst: Callable[[str, BurstResult], None] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.producers = tuple(producers)
        self.pool = pool
        self.queue = queue
        self.seed = seed
        self.clock = clock
        self.on_burst = on_burst
        """Told of every scheduled burst (key bursts return their `BurstResult` instead)."""
        self.on_error = on_error
        """Told of a producer or burst task that failed (the run goes on)."""
        self.submitted = 0
        """Items the producers and bursts handed to the pool (accepted or not)."""
        self.submitted_by_priority: dict[float, int] = {}
        self.meter = RateMeter(clock())
        self._tasks: list[asyncio.Task[None]] = []
        """One per producer (kept when finished: `done` reads them)."""
        self._bursts: set[asyncio.Task[None]] = set()
        self._waiting = 0
        """Items held here that found no room under 'block' and are not yet on the queue."""
        """Key bursts still waiting for room; each leaves the set when it finishes."""
        self._paused = False
        self._resumed: asyncio.Event | None = None
        self._stopped = False
        self._burst_rng = random.Random(f"{seed}:bursts")
        self._burst_count = 0
        weights: dict[float, float] = {}
        for producer in self.producers:
            for priority, weight in producer.priorities:
                weights[priority] = weights.get(priority, 0.0) + weight
        self.mix = tuple(sorted((p, 1.0) for p in weights)) or ((5, 1.0),)
        """Every priority the producers make, equally weighted: what `burst()` draws from."""
        self.lowest = max(p for p, _ in self.mix)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start one task per producer on the running loop."""
        loop = asyncio.get_running_loop()
        self._resumed = asyncio.Event()
        if not self._paused:
            self._resumed.set()
        for producer in self.producers:
            task = loop.create_task(self._produce(producer), name=f"producer-{producer.name}")
            self._tasks.append(task)

    async def stop(self) -> None:
        """Stop every producer (a producer waiting for room gives its item up: never counted)."""
        self._stopped = True
        tasks, self._tasks = [*self._tasks, *self._bursts], []
        self._bursts.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        self._paused = True
        if self._resumed is not None:
            self._resumed.clear()

    def resume(self) -> None:
        self._paused = False
        if self._resumed is not None:
            self._resumed.set()

    @property
    def done(self) -> bool:
        """True when every producer has run to its `stop`."""
        return bool(self._tasks) and all(task.done() for task in self._tasks)

    # ------------------------------------------------------------------ producing

    async def _produce(self, producer: Producer) -> None:
        loop = asyncio.get_running_loop()
        rng = random.Random(f"{self.seed}:{producer.name}")
        pick = PriorityPicker(producer.priorities, rng)
        pick_burst = PriorityPicker(
            producer.priorities, random.Random(f"{self.seed}:{producer.name}:burst")
        )
        rate = producer.rate
        burst = producer.burst
        begin = loop.time() + producer.start
        stop_at = math.inf if producer.stop is None else loop.time() + producer.stop
        next_arrival = begin + rng.expovariate(rate) if rate > 0 else math.inf
        next_burst = begin + burst.every if burst is not None else math.inf
        sequence = 0
        name = producer.name
        try:
            while True:
                if self._paused:
                    assert self._resumed is not None
                    while self._paused:
                        await self._resumed.wait()
                    # Arrivals missed while paused are skipped, not replayed as a flood.
                    now = loop.time()
                    if rate > 0:
                        next_arrival = max(next_arrival, now + rng.expovariate(rate))
                    if burst is not None:
                        next_burst = max(next_burst, now + burst.every)
                    continue
                now = loop.time()
                due = min(next_arrival, next_burst)
                if due >= stop_at:
                    return
                if due > now:
                    await asyncio.sleep(due - now)
                    continue
                batch: list[float] = []
                while next_arrival <= now and next_arrival < stop_at and len(batch) < STEP:
                    batch.append(pick())
                    next_arrival += rng.expovariate(rate)
                for priority in batch:
                    sequence += 1
                    if not await self._submit(f"{name}-{sequence}", priority):
                        return
                while next_burst <= now and next_burst < stop_at:
                    assert burst is not None
                    numbers = range(sequence + 1, sequence + burst.size + 1)
                    items = [(f"{name}-{number}", pick_burst()) for number in numbers]
                    sequence += burst.size
                    next_burst += burst.every
                    if not await self._scheduled_burst(name, items):
                        return
                # A step is at most STEP items: a fast or late producer must not hold the loop.
                await asyncio.sleep(0)
        except QueueShutDown:
            return
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self._report_failure(f"producer {name} failed", error)

    def _report_failure(self, what: str, error: Exception) -> None:
        _log.error("%s", what, exc_info=error)
        if self.on_error is not None:
            self.on_error(f"{what}: {type(error).__name__}: {error}")

    async def _submit(self, item: str, priority: float) -> bool:
        """Submit one item, waiting for room under 'block'; False once the pool shut down.

        An item the queue refuses is handed over all the same (the pool counts it as
        rejected), so it is counted here too, and the caller goes on with the next one.
        """
        pool = self.pool
        try:
            try:
                pool.submit_nowait(item, priority=priority)
            except asyncio.QueueFull:
                # 'reject' has counted it already; 'block' waits for room like a real client.
                if self.queue.overflow is Overflow.BLOCK:
                    self._waiting += 1
                    try:
                        await pool.submit(item, priority=priority)
                    finally:
                        self._waiting -= 1
        except asyncio.QueueFull:
            # The policy left 'block' while this one waited: the queue woke it to be refused
            # under 'reject' (counted by the pool as any refusal is).
            pass
        except QueueShutDown:
            return False
        self._count(priority)
        return True

    def _count(self, priority: float) -> None:
        self.submitted += 1
        self.submitted_by_priority[priority] = self.submitted_by_priority.get(priority, 0) + 1
        self.meter.tick(self.clock())

    # ------------------------------------------------------------------ bursts on demand

    def burst(
        self, size: int, *, priorities: Sequence[tuple[float, float]] | None = None
    ) -> BurstResult:
        """Submit `size` items now (mixed priorities by default); what became of them.

        Under 'block' the items that do not fit wait in a background task, as a client would;
        under 'reject' they are refused (the pool counts them as rejected, and so does
        `submitted`); under 'evict-lowest' each one is taken, and the worst item (maybe the
        newcomer itself) is evicted.
        """
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"burst size must be an integer >= 0, not {size!r}")
        if self._stopped:
            raise QueueShutDown("the engine is shutting down: no burst")
        pick = PriorityPicker(priorities or self.mix, self._burst_rng)
        items = []
        for _ in range(size):
            self._burst_count += 1
            items.append((f"key-{self._burst_count}", pick()))
        evicted = self.pool.accounting().evicted
        first_waiting, accepted, rejected = self._offer_all(items, 0, size)
        if first_waiting < size:
            task = asyncio.get_running_loop().create_task(
                self._submit_all(items[first_waiting:]), name="producer-burst"
            )
            self._bursts.add(task)
            task.add_done_callback(self._bursts.discard)
        return BurstResult(
            requested=size,
            accepted=accepted,
            waiting=size - first_waiting,
            rejected=rejected,
            evicted=self.pool.accounting().evicted - evicted,
            priority=priorities[0][0] if priorities and len(priorities) == 1 else None,
        )

    async def _scheduled_burst(self, producer: str, items: list[tuple[str, float]]) -> bool:
        """One scheduled burst: a pass without waiting (STEP items between yields), reported
        through `on_burst`, then the items with no room waited for in this producer's task.
        False once the pool has shut down."""
        evicted = self.pool.accounting().evicted
        index = accepted = rejected = 0
        while index < len(items):
            stop = min(index + STEP, len(items))
            index, taken, refused = self._offer_all(items, index, stop)
            accepted, rejected = accepted + taken, rejected + refused
            if index < stop:
                break  # no room under 'block': this item and the rest wait
            if index < len(items):
                await asyncio.sleep(0)  # a big burst must not hold the loop
        if self.on_burst is not None:
            self.on_burst(producer, BurstResult(
                requested=len(items),
                accepted=accepted,
                waiting=len(items) - index,
                rejected=rejected,
                evicted=self.pool.accounting().evicted - evicted,
            ))
        return await self._submit_backlog(items[index:])

    async def _submit_backlog(self, items: Sequence[tuple[str, float]]) -> bool:
        """Submit `items` in order, each waiting for room; until its turn each one counts in
        `waiting_for_room`. False once the pool has shut down."""
        left = len(items)
        self._waiting += left
        try:
            for item, priority in items:
                self._waiting -= 1
                left -= 1
                if not await self._submit(item, priority):
                    return False
        finally:
            self._waiting -= left
        return True

    @property
    def waiting_for_room(self) -> int:
        """Items (not tasks) that bursts and producers hold because the queue has no room."""
        return self._waiting

    def _offer_all(
        self, items: Sequence[tuple[str, float]], start: int, stop: int
    ) -> tuple[int, int, int]:
        """Offer `items[start:stop]` without waiting: (index of the first that found no room
        under 'block', or `stop`; how many were taken; how many refused)."""
        accepted = rejected = 0
        for index in range(start, stop):
            item, priority = items[index]
            try:
                self.pool.submit_nowait(item, priority=priority)
            except asyncio.QueueFull:
                if self.queue.overflow is Overflow.BLOCK:
                    return index, accepted, rejected
                rejected += 1  # handed over and refused: counted, not taken
            else:
                accepted += 1
            self._count(priority)
        return stop, accepted, rejected

    async def _submit_all(self, items: list[tuple[str, float]]) -> None:
        try:
            await self._submit_backlog(items)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            # Reported here: nobody awaits this task before `stop()`.
            self._report_failure("burst producer failed", error)
