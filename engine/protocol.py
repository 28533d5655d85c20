"""The contract between a queue and the `WorkerPool` that consumes it.

The pool needs only this from a queue, so a second implementation (a queue shared through
Redis) plugs in beside the in-process `PriorityQueue`:

    delivery = await queue.get_delivery()      # or get_delivery_nowait()
    item, priority, arrival, first_arrival, attempt, deadline = delivery
    ...run the handler...
    await queue.ack(delivery)                  # done: the queue forgets it
    await queue.nack(delivery, delay=2.0)      # not done: back at its original place, later

A delivery is a tuple laid out as `Delivery`, read by position or unpacking: a queue may hand
out the `Delivery` itself (Redis, whose deliveries are read by name too) or a plain tuple of
the same six fields (the in-process queue: building a NamedTuple costs about three times a
plain tuple, a third of a put+get pair's cost). `Delivery._make(delivery)` names any of them.

A queue whose `acks_on_get` is true (the in-process one) has already forgotten the delivery
when `get_delivery` returns: the pool does not call `ack` at all, so acking costs nothing, and
puts an item back with `requeue_nowait(item, priority=..., arrival=delivery.arrival)`.

A handler may take a third parameter, a `HandlerContext`; two-parameter handlers keep working.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

from engine.snapshots import QueueStats

__all__ = ["Delivery", "DeliveryTuple", "HandlerContext", "WorkQueue", "Wrapped"]


class Delivery(NamedTuple):
    """One item handed to a consumer, with names: the layout every delivery has."""

    item: Any
    priority: float
    arrival: Any
    """Opaque to the consumer: the item's place in arrival order. Giving it back on a requeue
    puts the item back at its original place (its wait still counting)."""
    first_arrival: float
    """Seconds on the queue's clock when the item first arrived."""
    attempt: int = 0
    """Deliveries of this item before this one, where the queue counts them (Redis); else 0."""
    deadline: float | None = None
    """Lease deadline on the queue's clock (None: no lease, the in-process queue)."""


DeliveryTuple = tuple[Any, float, Any, float, int, float | None]
"""What `get_delivery` returns: a `Delivery`, or a plain tuple laid out as one."""


class Wrapped:
    """Base of what a consumer wraps an item in before queueing it (the pool's `Job`).

    The queue holds the wrapper, but the user's own callbacks (`on_drop`) get what the user
    gave, `.item`; the consumer's listeners (`add_drop_listener`) get the wrapper itself.
    `top(unwrap=True)` shows the payload with the wrapper's `id` and `attempts`.
    """

    __slots__ = ()
    item: Any
    id: int
    attempts: int


@runtime_checkable
class WorkQueue(Protocol):
    """What `WorkerPool` consumes. `engine.queue.PriorityQueue` is one."""

    acks_on_get: bool

    async def put(self, item: Any, *, priority: float = ...) -> None: ...

    def put_nowait(self, item: Any, *, priority: float = ...) -> None: ...

    async def get_delivery(self) -> DeliveryTuple: ...

    def get_delivery_nowait(self) -> DeliveryTuple: ...

    async def ack(self, delivery: DeliveryTuple) -> None: ...

    async def nack(self, delivery: DeliveryTuple, *, delay: float = 0.0) -> None: ...

    def qsize(self) -> int: ...

    def stats(self) -> QueueStats: ...

    def shutdown(self, immediate: bool = False) -> Any: ...


@dataclass(slots=True)
class HandlerContext:
    """What a three-parameter handler is told about the attempt it runs:
    `async def handler(item, priority, ctx)`.
    """

    job_id: int
    attempt: int
    """1 for the first attempt, 2 for the first retry..."""
    first_arrival: float
    """Seconds on the queue's clock when the item first arrived."""
    deadline: float | None
    """When this attempt times out, on the pool's clock (None: no timeout)."""
    priority: float

    async def extend(self, seconds: float | None = None) -> None:
        """Extend the item's lease (a queue with leases); nothing to do in-process."""
