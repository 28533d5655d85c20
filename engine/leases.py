"""What `WorkerPool` does differently over a queue with leases (`acks_on_get` false: Redis).

The in-process queue forgets an item when it hands it out, so the pool keeps the retries, the
put-backs and the dead letters itself. A queue with leases keeps them: another process may
serve the item next, so this process's part in an item ends with the lease. Here:

- `submit` puts the payload itself (a `Job` is a local object no codec encodes);
  `submit_nowait` queues it in a local outbox that one task sends in batches.
- Every delivery becomes a local job of this process (`accounting()` counts this process's
  deliveries: `returned` is what it handed back to the shared queue). A success is acked; a
  failure is nacked with the pool's backoff as the delay (the queue's `max_attempts` decides
  the dead letter, since it also counts expired leases); an interrupted attempt (a cancelled
  worker, a shutdown) is released back to its place without counting an attempt.
- While a handler runs, its lease is extended every third of the lease, so a long handler is
  not run twice; only a dead process, a partition or a loop blocked past the lease lets it
  expire (the watchdog's "redelivery possible" alert).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.protocol import Delivery, HandlerContext
from engine.queue import QueueShutDown

if TYPE_CHECKING:
    from engine.ledger import Job

__all__ = ["LeaseContext", "LeaseCounts", "Leases"]

_log = logging.getLogger("engine.pool")

OUTBOX_LIMIT = 10_000
"""Items `submit_nowait` holds for the sender at most; past it, QueueFull (a producer that
blocks then awaits `submit`)."""


@dataclass(frozen=True, slots=True)
class LeaseCounts:
    """This process's part in a shared queue, counted by its pool (the queue's global counters
    are in `RedisQueueStats`)."""

    submitted: int = 0
    """Items this process put on the shared queue."""
    deliveries: int = 0
    redeliveries: int = 0
    """Deliveries of an item delivered before (after an expired lease or a nack)."""
    acked: int = 0
    stale_acks: int = 0
    """Acks, nacks and releases refused: the lease had been reaped (the item went to another
    delivery). A refused extend is counted in `leases_lost` (the server counts both)."""
    nacked: int = 0
    """Failed attempts handed back for a retry after the backoff."""
    released: int = 0
    """Interrupted attempts (a cancel, a shutdown) handed back without counting an attempt."""
    dead_lettered: int = 0
    extended: int = 0
    leases_lost: int = 0
    """Leases found reaped while their handler still ran (an extend refused)."""


class LeaseContext(HandlerContext):
    """A `HandlerContext` whose `extend()` extends the delivery's lease.

    `deadline` stays the pool's timeout (None: none); `lease_deadline` is the lease's, on the
    queue server's clock.
    """

    __slots__ = ("lease_deadline", "_queue", "_delivery")

    def __init__(
        self, queue: Any, delivery: Delivery, job_id: int, deadline: float | None = None
    ) -> None:
        d = delivery
        super().__init__(job_id, d.attempt + 1, d.first_arrival, deadline, d.priority)
        self.lease_deadline = d.deadline
        self._queue = queue
        self._delivery = delivery

    async def extend(self, seconds: float | None = None) -> None:
        self._delivery = await self._queue.extend(self._delivery, seconds)
        self.lease_deadline = self._delivery.deadline


class Leases:
    """The pool's lease glue: one per `WorkerPool` over a queue with leases."""

    def __init__(
        self,
        queue: Any,
        ledger: Any,
        on_dead: Callable[[Job, int, str], None],
        on_settled: Callable[[], None],
        on_retried: Callable[[int], None],
    ) -> None:
        self.queue = queue
        self.lease = float(getattr(queue, "lease", 30.0))
        self._on_dead = on_dead
        self._on_retried = on_retried
        self._on_settled = on_settled
        self._ledger = ledger
        self._counts: dict[str, int] = defaultdict(int)
        self._pending: set[asyncio.Task[None]] = set()
        self._outbox: dict[float, list[Any]] = {}
        self._outboxed = 0
        self._sender: asyncio.Task[None] | None = None

    def counts(self) -> LeaseCounts:
        return LeaseCounts(**self._counts)

    # ------------------------------------------------------------------ submit

    async def submit(self, item: Any, priority: float) -> int:
        await self.queue.put(item, priority=priority)
        self._counts["submitted"] += 1
        return self._counts["submitted"]

    def submit_nowait(self, item: Any, priority: float) -> int:
        """Queue `item` for the sender task (puts need the network); its local number."""
        if self._outboxed >= OUTBOX_LIMIT:
            raise asyncio.QueueFull
        payload = self.queue.encode(item)  # an item the codec refuses fails here, not later
        self._outbox.setdefault(priority, []).append(payload)
        self._outboxed += 1
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(
                self._send(), name="heapwatch-lease-sender"
            )
        return self._counts["submitted"] + self._outboxed

    async def _send(self) -> None:
        while self._outbox:
            priority, items = self._outbox.popitem()
            try:
                queued = await self.queue.put_many(items, priority=priority, encoded=True)
            except QueueShutDown:  # flush() ran out of time (a full queue under 'block')
                _log.warning("%d items were not sent: the queue shut down first", len(items))
                queued = 0
            except Exception:
                _log.exception("sending %d items to the shared queue failed", len(items))
                queued = 0
            finally:
                self._outboxed -= len(items)
            self._counts["submitted"] += queued

    # ------------------------------------------------------------------ one delivery

    def context(self, job: Job, delivery: Delivery, deadline: float | None) -> LeaseContext:
        self._counts["deliveries"] += 1
        if delivery.attempt:
            self._counts["redeliveries"] += 1
        return LeaseContext(self.queue, delivery, job.id, deadline)

    def wrap(self, handler: Callable[..., Awaitable[object]], with_ctx: bool) -> Any:
        """`handler` as a three-parameter handler that keeps its lease extended while it runs."""

        async def leased(item: Any, priority: float, ctx: LeaseContext) -> object:
            keeper = asyncio.get_running_loop().create_task(self._keep(ctx))
            try:
                if with_ctx:
                    return await handler(item, priority, ctx)
                return await handler(item, priority)
            finally:
                keeper.cancel()

        leased.__wrapped__ = handler  # type: ignore[attr-defined]
        return leased

    async def _keep(self, ctx: LeaseContext) -> None:
        """Extend every third of the lease: two extends may fail before it runs out."""
        from engine.redis_queue import LeaseLost

        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                await ctx.extend()
            except LeaseLost:
                self._counts["leases_lost"] += 1
                _log.warning("job %d: its lease was reaped while its handler ran", ctx.job_id)
                return
            except Exception:  # Redis away: the next third tries again
                _log.warning("job %d: extending its lease failed", ctx.job_id, exc_info=True)
            else:
                self._counts["extended"] += 1

    async def ack(self, delivery: Delivery) -> None:
        if await self.queue.ack(delivery):
            self._counts["acked"] += 1
        else:
            self._counts["stale_acks"] += 1

    # ------------------------------------------------------------------ handing back

    def failed(self, job: Job, worker_id: int, error: str, delay: float) -> None:
        """A failed attempt: nacked with `delay`; the job stays in flight until Redis answers."""
        self._spawn(self._nack(job, worker_id, error, delay))

    def release(self, job: Job) -> None:
        """An interrupted attempt: back to its place now, the attempt not counted."""
        self._ledger.returned(job)
        self._spawn(self._release(job))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro, name="heapwatch-lease-settle")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    @staticmethod
    def _delivery(job: Job) -> Delivery:
        return Delivery(job.item, job.priority, job.arrival, 0.0, max(job.attempts - 1, 0))

    async def _nack(self, job: Job, worker_id: int, error: str, delay: float) -> None:
        try:
            fate = await self.queue.nack(self._delivery(job), delay=delay, error=error)
        except Exception:  # its lease runs out and the reaper returns it: not lost
            _log.exception("nack of job %d failed; its lease will expire", job.id)
            fate = "stale"
        if fate == "dead-lettered":
            self._counts["dead_lettered"] += 1
            self._on_dead(job, worker_id, error)
        else:
            self._counts["stale_acks" if fate == "stale" else "nacked"] += 1
            self._ledger.returned(job)
            if fate != "stale":  # queued again, or waiting out its backoff in Redis
                self._on_retried(worker_id)
        self._on_settled()

    async def _release(self, job: Job) -> None:
        try:
            fate = await self.queue.release(self._delivery(job))
        except Exception:
            _log.exception("release of job %d failed; its lease will expire", job.id)
            fate = "stale"
        self._counts["stale_acks" if fate == "stale" else "released"] += 1

    async def flush(self, timeout: float) -> None:
        """Wait (up to `timeout`, or a second at least) for the sender to put what
        `submit_nowait` took: the pool shuts the queue after this, so they land."""
        if self._sender is not None and not self._sender.done():
            await asyncio.wait([self._sender], timeout=max(timeout, 1.0))

    async def settled(self, timeout: float) -> None:
        """Wait (up to `timeout`, or a second at least) for the sender and the nacks in flight."""
        tasks = [*self._pending, *([self._sender] if self._sender else [])]
        if tasks:
            await asyncio.wait(tasks, timeout=max(timeout, 1.0))
