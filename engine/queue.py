"""`PriorityQueue`: an `asyncio.Queue` that serves the lowest priority number first.

Layout. Real workloads use a handful of distinct priorities, so the queue keeps one FIFO
*level* per distinct priority (two parallel deques: enqueue times and items) and a small
binary heap over the non-empty levels' heads. With P distinct priorities waiting, `put` and
`get` cost O(log P) and do not depend on depth; the oldest item of a priority is its level's
head; `top(k)` is a k-way merge of level heads.

One clock reading per put is the enqueue time (for waits and aging) and the tie-breaker
between levels: FIFO among equal priorities is the level's deque order, so two puts in the
same clock tick need no nudging. Heap entries are (key, enqueue time, level); equal keys and
times mean equal priorities, that is the same level. The payload is never compared.

Aging. An item's effective priority is `priority - rate * waited`
`= (priority + rate * t_enq) - rate * now`. The static key `priority + rate * t_enq` orders
items the same way for every `now`, and inside a level keys still increase with `t_enq`, so
the head heap stays valid without any periodic re-heapify. Changing the rate re-keys the
head heap once (O(P)).

Requeues. An item got with `get_delivery()` carries an arrival token, (first arrival, seq,
level). Given back to `requeue_nowait(..., arrival=token)` (or `nack`), the item goes to its
level's `back`, a small heap of returned items merged with the FIFO by (time, seq): it is
served at its original place and keeps its first arrival for waits and aging. O(log R) with R
items out and back, never an insertion into the middle of a deque.

Eviction. The worst item is always some level's newest item, so `evict-lowest` keeps a lazily
validated max-heap over level tails: O(log P) amortised, never a scan of the items.

Blocking behaviour is CPython 3.11's `asyncio.Queue` (futures in `_getters`/`_putters`,
`_wakeup_next`, the same cancellation handling, `join()`/`task_done()`), plus the
`shutdown(immediate=False)` that Python 3.13 added.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from functools import partial
from heapq import heapify, heappop, heappush, heapreplace, merge
from itertools import count, islice, repeat
from typing import Any

from engine.checks import check_choice, check_priority, check_rate, check_seconds
from engine.latency import LatencyWindow, SparseLatencyWindow
from engine.protocol import Delivery
from engine.reprs import ItemRepr, describe
from engine.snapshots import HeapEntry, PriorityStats, QueueStats

__all__ = ["DropCallback", "Overflow", "PriorityQueue", "QueueShutDown"]

if hasattr(asyncio, "QueueShutDown"):  # Python 3.13+
    QueueShutDown = asyncio.QueueShutDown
else:

    class QueueShutDown(Exception):  # type: ignore[no-redef]
        """Raised by put/get on a queue that was shut down (asyncio.QueueShutDown on 3.13+)."""


class Overflow(enum.StrEnum):
    """What a full bounded queue does with one more item."""

    BLOCK = "block"
    """`put()` waits for a free slot, `put_nowait()` raises QueueFull (asyncio's behaviour)."""
    REJECT = "reject"
    """Fail at once with QueueFull; the item is counted and handed to `on_drop`."""
    EVICT_LOWEST = "evict-lowest"
    """Drop the worst (then newest) item to make room, the new item itself if it is the worst."""


DropCallback = Callable[[Any, float, str], object]
"""`on_drop(item, priority, reason)`, reason 'evicted' or 'rejected'."""

_BLOCK = Overflow.BLOCK
_log = logging.getLogger(__name__)


class _Level:
    """The items of one distinct priority: a FIFO of arrivals plus a heap of returned items.

    Arrivals go to two parallel deques (enqueue times and items); a FIFO item's seq is `served`
    plus its index. An item put back with its arrival token goes to `back`, a min-heap of
    (first arrival, seq, tie, item): the level serves the earlier, by (time, seq), of the
    FIFO's head and `back`'s top.
    """

    __slots__ = ("priority", "times", "items", "back", "head", "served", "record_wait")

    def __init__(self, priority: float, record_wait: Callable[[float], None]) -> None:
        self.priority = priority
        self.times: deque[float] = deque()
        self.items: deque[Any] = deque()
        self.back: list[tuple[float, int, int, Any]] = []
        self.head: tuple[float, float, _Level] | None = None
        """This level's live entry in the head heap (entries that are not it are stale)."""
        self.served = 0
        """Items that left the FIFO from the front: the seq of the FIFO's current head."""
        self.record_wait = record_wait

    def __lt__(self, other: _Level) -> bool:
        # Heap entries tie-break on times first; this only keeps a freak tie from raising.
        return id(self) < id(other)

    def __len__(self) -> int:
        return len(self.items) + len(self.back)

    def __repr__(self) -> str:
        return f"<level {self.priority!r} depth={len(self)}>"

    def back_first(self) -> bool:
        """True when the next item to serve is a returned one."""
        back = self.back
        if not back:
            return False
        if not self.times:
            return True
        t = self.times[0]
        return back[0][0] < t or (back[0][0] == t and back[0][1] < self.served)

    def front(self) -> tuple[float, int, Any]:
        """(first arrival, seq, item) of the next item to serve; the level is not empty."""
        if self.back_first():
            t, seq, _, item = self.back[0]
            return t, seq, item
        return self.times[0], self.served, self.items[0]

    def _newest_back(self) -> int | None:
        """Index in `back` of the level's newest item, None when the FIFO's tail is newer."""
        back = self.back
        if not back:
            return None
        index = max(range(len(back)), key=back.__getitem__)
        t, seq = back[index][:2]
        if self.times and (t, seq) < (self.times[-1], self.served + len(self.times) - 1):
            return None
        return index

    def newest(self) -> float | None:
        """First arrival of the item served last (the eviction candidate); None when empty."""
        index = self._newest_back()
        if index is not None:
            return self.back[index][0]
        return self.times[-1] if self.times else None

    def pop_newest(self) -> Any:
        """Remove and return the item served last; the level is not empty."""
        index = self._newest_back()
        if index is None:
            self.times.pop()
            return self.items.pop()
        back = self.back
        item = back[index][3]
        back[index] = back[-1]
        back.pop()
        heapify(back)
        return item

    def entries(self) -> Iterator[tuple[float, int, int, Any]]:
        """Every item in serving order, as (first arrival, seq, tie, item); lazy over the FIFO."""
        fifo = zip(self.times, count(self.served), repeat(0), self.items)
        return merge(fifo, sorted(self.back)) if self.back else fifo


def _ignore_sample(_: float) -> None:
    """Wait recorder for priorities beyond the per-priority series cap."""


class PriorityQueue(asyncio.Queue):
    """A priority queue that is a real `asyncio.Queue`: lower priority numbers are served first.

    `put(item, priority=5)` / `get()` behave like `asyncio.Queue` (maxsize backpressure,
    `QueueFull`/`QueueEmpty`, `join()`/`task_done()`, cancellation) and `get()` returns the
    item itself. Equal priorities come out FIFO; items are never compared, so any object can be
    queued. It is also an `engine.protocol.WorkQueue` (`get_delivery`, `ack`, `nack`).

    Args:
        maxsize: as in asyncio: 0 (or less) for unbounded; a float bound (2.5, math.inf) is
            full once the depth reaches it (2.5: at 3 items; inf: never).
        overflow: what a full queue does: 'block' (default), 'reject' or 'evict-lowest'.
        aging_rate: priority points an item gains per second of waiting (0.0: off).
        on_drop: `on_drop(item, priority, reason)` for every item evicted ('evicted') or refused
            by the 'reject' policy ('rejected'); exceptions it raises are logged, not raised.
        item_repr: how a payload is shown in `peek()`/`top()`/repr (default: `repr`).
        clock: seconds; must never go backwards. Leave as default unless testing.
        log_every: log depth, root and operation count every N operations (0: off, and free).
        logger: where that diagnostic goes (default: this module's logger).
        window: samples kept per latency series for the sliding-window percentiles.
    """

    # Slots keep attribute access on the hot path fast: asyncio.Queue's own attributes
    # plus ours would overflow CPython's shared-key instance dict (30 keys).
    __slots__ = (
        "_aging_rate", "_clock", "_dirty_tails", "_discarded", "_drop_listeners", "_epoch",
        "_evicted", "_get_waited", "_heads", "_is_shutdown", "_levels", "_log_every",
        "_logged_ops", "_logger", "_overflow", "_peak", "_prune_at", "_put_blocked", "_puts",
        "_record_wait", "_rejected", "_requeues", "_size", "_stale_heads", "_tails",
        "_track_tails", "_victims", "_wait_all", "_wait_series", "_window", "item_repr",
        "on_drop",
    )  # fmt: skip

    DEFAULT_PRIORITY = 5
    """The priority of a `put` that does not give one."""
    MAX_PRIORITY_SERIES = 256
    """Distinct priorities that get their own wait-time series (beyond: overall only)."""
    REPR_LIMIT = 80
    """Characters of a payload's repr kept in heap entries and the queue's repr."""
    acks_on_get = True
    """A got item is forgotten at once: `ack` is free; `nack`/`requeue_nowait` put it back."""
    _LEVEL_PRUNE_AT = 1024

    def __init__(
        self,
        maxsize: float = 0,
        *,
        overflow: Overflow | str = Overflow.BLOCK,
        aging_rate: float = 0.0,
        on_drop: DropCallback | None = None,
        item_repr: ItemRepr | None = None,
        clock: Callable[[], float] = time.monotonic,
        log_every: int = 0,
        logger: logging.Logger | None = None,
        window: int = 1024,
    ) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int | float):
            raise TypeError(f"maxsize must be an int or a float, not {maxsize!r}")
        if maxsize != maxsize:
            raise ValueError(f"maxsize must be a number, not {maxsize!r}")
        if isinstance(log_every, bool) or not isinstance(log_every, int) or log_every < 0:
            raise ValueError(f"log_every must be an int >= 0, not {log_every!r}")
        self._overflow = check_choice("overflow", overflow, Overflow)
        self._aging_rate = check_rate("aging_rate", aging_rate)
        self._window = LatencyWindow(window).size
        self.on_drop = on_drop
        self.item_repr = item_repr
        self._drop_listeners: list[DropCallback] = []
        self._clock = clock
        self._epoch = clock()
        super().__init__(maxsize)  # type: ignore[arg-type]
        self._log_every = log_every
        self._logger = logger if logger is not None else _log
        self._logged_ops = 0
        if log_every:
            # Instance attributes shadow the methods only when logging is on, so the
            # unlogged hot path pays nothing for the feature.
            for name in (
                "put_nowait", "get_nowait", "get_with_priority_nowait", "get_delivery_nowait"
            ):  # fmt: skip
                setattr(self, name, self._with_log(getattr(self, name)))

    # ------------------------------------------------------------------ asyncio.Queue hooks

    def _init(self, maxsize: float) -> None:
        self._levels: dict[float, _Level] = {}
        self._prune_at = self._LEVEL_PRUNE_AT
        self._heads: list[tuple[float, float, _Level]] = []
        """Min-heap over non-empty levels by (key of head, time of head)."""
        self._stale_heads = 0
        self._tails: list[tuple[float, float, _Level]] = []
        """Min-heap of (-key, -time) of level tails, lazily validated (evict-lowest only)."""
        self._dirty_tails: set[_Level] = set()
        self._track_tails = self._overflow is Overflow.EVICT_LOWEST
        self._size = 0
        self._peak = 0
        self._puts = 0
        self._requeues = 0
        self._victims = 0
        """Evicted items that had been queued (not newcomers refused on arrival)."""
        self._discarded = 0
        """Items removed by shutdown(immediate=True)."""
        self._evicted = 0
        self._rejected = 0
        self._is_shutdown = False
        self._wait_all = LatencyWindow(self._window)
        self._record_wait = self._wait_all.record
        self._wait_series: dict[float, LatencyWindow] = {}
        # Most puts and gets never wait: only the ones that do are recorded.
        self._put_blocked = SparseLatencyWindow(self._window)
        self._get_waited = SparseLatencyWindow(self._window)

    # ------------------------------------------------------------------ size

    def qsize(self) -> int:
        """Number of items in the queue."""
        return self._size

    def empty(self) -> bool:
        """True if the queue holds no item."""
        return not self._size

    def full(self) -> bool:
        """True if a bounded queue holds maxsize items (or more, after `requeue_nowait`)."""
        return 0 < self._maxsize <= self._size

    # ------------------------------------------------------------------ settings

    @property
    def overflow(self) -> Overflow:
        """The overflow policy; settable at run time (putters blocked under 'block' retry)."""
        return self._overflow

    @overflow.setter
    def overflow(self, value: Overflow | str) -> None:
        policy = check_choice("overflow", value, Overflow)
        if policy is self._overflow:
            return
        self._overflow = policy
        self._track_tails = policy is Overflow.EVICT_LOWEST
        self._tails = []
        self._dirty_tails = set(self._live_levels()) if self._track_tails else set()
        if policy is not Overflow.BLOCK:
            # Blocked putters must now reject or evict instead of waiting.
            self._wake_all(self._putters)

    @property
    def aging_rate(self) -> float:
        """Priority points per second of waiting; settable at run time (re-keys once, O(P))."""
        return self._aging_rate

    @aging_rate.setter
    def aging_rate(self, value: float) -> None:
        rate = check_rate("aging_rate", value)
        if rate == self._aging_rate:
            return
        self._aging_rate = rate
        self._rebuild_heads()
        if self._track_tails:
            self._tails = []
            self._dirty_tails = set(self._live_levels())

    @property
    def clock(self) -> Callable[[], float]:
        """The clock the queue stamps items with."""
        return self._clock

    @property
    def is_shutdown(self) -> bool:
        """True once `shutdown()` was called."""
        return self._is_shutdown

    def add_drop_listener(self, listener: DropCallback) -> Callable[[], None]:
        """Also call `listener(item, priority, reason)` for every drop; returns its remover.

        For the engine's own consumers (the pool): `on_drop` stays the user's. Both are called,
        `on_drop` first; exceptions are logged, not raised.
        """
        self._drop_listeners.append(listener)

        def remove() -> None:
            if listener in self._drop_listeners:
                self._drop_listeners.remove(listener)

        return remove

    # ------------------------------------------------------------------ put

    async def put(self, item: Any, *, priority: float = DEFAULT_PRIORITY) -> None:
        """Put `item` at `priority` (default `DEFAULT_PRIORITY`, 5; lower is served first).

        On a full queue with the 'block' policy, wait for a free slot; 'reject' raises
        QueueFull at once and 'evict-lowest' never waits. A cancelled put never lands.
        Raises QueueShutDown after `shutdown()`, TypeError/ValueError on a bad priority.
        """
        if self._size >= self._maxsize > 0 and self._overflow is _BLOCK:
            self._level_for(priority)  # a bad priority fails now, not after the wait
            await self._wait_for_room()
        self.put_nowait(item, priority=priority)

    async def _wait_for_room(self) -> None:
        started = self._clock()
        try:
            while self._size >= self._maxsize > 0 and self._overflow is Overflow.BLOCK:
                if self._is_shutdown:
                    raise QueueShutDown
                putter = self._get_loop().create_future()
                self._putters.append(putter)
                try:
                    await putter
                except BaseException:
                    putter.cancel()  # in case it is not done yet
                    try:
                        self._putters.remove(putter)
                    except ValueError:
                        # get_nowait() already took it off the deque to wake it.
                        pass
                    if not self.full() and not putter.cancelled():
                        # We were woken for a free slot we will not take: pass it on.
                        self._wakeup_next(self._putters)
                    raise
        finally:
            self._put_blocked.record(self._puts, self._clock() - started)

    def put_nowait(self, item: Any, *, priority: float = DEFAULT_PRIORITY) -> None:
        """Put `item` at `priority` (default 5) without waiting.

        A full queue applies the overflow policy: 'block' raises QueueFull (asyncio's
        behaviour), 'reject' counts the item, calls `on_drop(item, priority, 'rejected')` and
        raises QueueFull, 'evict-lowest' drops the worst item (maybe this one) to `on_drop`.
        """
        if priority is True or priority is False:
            check_priority(priority)
        try:
            level = self._levels[priority]
        except (KeyError, TypeError):
            level = self._new_level(priority)
        if self._is_shutdown:
            raise QueueShutDown
        t = self._clock()
        if self._size >= self._maxsize > 0:
            self._put_full(item, level, t)
            return
        self._puts += 1
        self._append(level, item, t)

    def requeue_nowait(self, item: Any, *, priority: float, arrival: Any = None) -> None:
        """Put a got item back, ignoring maxsize, overflow and shutdown: it is never dropped.

        With `arrival` (the token of its `Delivery`) the item goes back at its original place:
        its first-arrival order among `priority`'s items, its wait still counting (waits, aging
        and starvation see the first arrival). A token from another priority places it by its
        first-arrival time. Without a token it goes to the tail of `priority`, arriving now.

        Counted in `requeues`, not in `puts`. Like a put it adds one unfinished task:
        `task_done()` the get it replaces. O(log R), R the items put back and not yet got.
        """
        level = self._level_for(priority)
        self._requeues += 1
        if arrival is None:
            self._append(level, item, self._clock())
            return
        if not (type(arrival) is tuple and len(arrival) == 3 and isinstance(arrival[2], _Level)):
            raise TypeError(f"arrival must be a Delivery's arrival token, not {arrival!r}")
        t, seq, origin = arrival
        if origin is not level:
            seq = -1  # not this level's numbering: first among the items of the same time
        before = level.front()[:2] if len(level) else None
        heappush(level.back, (t, seq, self._requeues, item))
        if before is None or (t, seq) < before:
            # Its own first arrival makes it the level's head: a new head entry (the old one,
            # if any, goes stale where it sits).
            entry = (self._key(level.priority, t), t, level)
            if level.head is not None:
                self._stale_heads += 1
            level.head = entry
            heappush(self._heads, entry)
        self._added(level)

    def _append(self, level: _Level, item: Any, t: float) -> None:
        """The one insertion path: `item` joins the tail of `level`, arriving at `t`."""
        if level.head is None:
            rate = self._aging_rate
            # Inlined `_key` (with aging off the key is the priority): this runs once per put
            # into an empty level, on every item of a hand-off.
            entry = (
                level.priority + rate * (t - self._epoch) if rate else level.priority,
                t,
                level,
            )
            level.head = entry
            heappush(self._heads, entry)
        level.times.append(t)
        level.items.append(item)
        self._added(level)

    def _added(self, level: _Level) -> None:
        if self._track_tails:
            self._dirty_tails.add(level)
        size = self._size + 1
        self._size = size
        if size > self._peak:
            self._peak = size
        if not self._unfinished_tasks:
            self._finished.clear()
        self._unfinished_tasks += 1
        if self._getters:
            self._wakeup_next(self._getters)

    def _put_full(self, item: Any, level: _Level, t: float) -> None:
        """put_nowait on a full queue: apply the overflow policy."""
        policy = self._overflow
        if policy is Overflow.BLOCK:
            raise asyncio.QueueFull
        if policy is Overflow.REJECT:
            self._rejected += 1
            self._notify_drop(item, level.priority, "rejected")
            raise asyncio.QueueFull
        worst = self._worst_tail()
        if worst is None or self._key(level.priority, t) >= -worst[0]:
            # The newcomer is the worst (ties: it is the newest), so it is the one dropped.
            self._evicted += 1
            self._notify_drop(item, level.priority, "evicted")
            return
        victim_level = worst[2]
        heappop(self._tails)
        victim = victim_level.pop_newest()
        self._size -= 1
        self._victims += 1
        if self._unfinished_tasks > 0:  # it will never be got, so never task_done()
            self._unfinished_tasks -= 1
        if len(victim_level):
            self._dirty_tails.add(victim_level)
        else:
            self._retire_head(victim_level)
        self._evicted += 1
        self._puts += 1
        self._append(level, item, t)
        self._notify_drop(victim, victim_level.priority, "evicted")

    def _notify_drop(self, item: Any, priority: float, reason: str) -> None:
        for callback in (self.on_drop, *self._drop_listeners):
            if callback is None:
                continue
            try:
                callback(item, priority, reason)
            except Exception:
                # The queue's state is already consistent; a failing callback must not undo a
                # put or lose the item the caller is holding.
                self._logger.exception(
                    "on_drop callback failed for %s item %s", reason, self._describe(item)
                )

    # ------------------------------------------------------------------ get

    async def get(self) -> Any:
        """Remove and return the best item, waiting while the queue is empty.

        A cancelled get never loses an item. After `shutdown()` it still returns what is
        queued, then raises QueueShutDown.
        """
        if not self._size:
            await self._wait_for_item()
        return self.get_nowait()

    async def get_with_priority(self) -> tuple[Any, float]:
        """Like `get()`, but return `(item, priority)`."""
        if not self._size:
            await self._wait_for_item()
        return self.get_with_priority_nowait()

    async def get_delivery(self) -> Delivery:
        """Like `get()`, but return a `Delivery` (item, priority, arrival token, first arrival)."""
        if not self._size:
            await self._wait_for_item()
        return self.get_delivery_nowait()

    async def _wait_for_item(self) -> None:
        started = self._clock()
        try:
            while not self._size:
                if self._is_shutdown:
                    raise QueueShutDown
                getter = self._get_loop().create_future()
                self._getters.append(getter)
                try:
                    await getter
                except BaseException:
                    getter.cancel()  # in case it is not done yet
                    try:
                        self._getters.remove(getter)
                    except ValueError:
                        # put_nowait() already took it off the deque to wake it.
                        pass
                    if self._size and not getter.cancelled():
                        # We were woken for an item we will not take: pass it on.
                        self._wakeup_next(self._getters)
                    raise
        finally:
            self._get_waited.record(self.gets, self._clock() - started)

    def get_nowait(self) -> Any:
        """Remove and return the best item; raise QueueEmpty (QueueShutDown once shut down)."""
        # The hot path: everything inline, one frame.
        if not self._size:
            if self._is_shutdown:
                raise QueueShutDown
            raise asyncio.QueueEmpty
        heads = self._heads
        level = heads[0][2]
        times = level.times
        back = level.back
        if back and level.back_first():
            t, _, _, item = heappop(back)
        else:
            item = level.items.popleft()
            t = times.popleft()
            level.served += 1
        if times or back:
            if self._aging_rate:
                head_t = level.front()[0]
                entry = (self._key(level.priority, head_t), head_t, level)
                level.head = entry
                heapreplace(heads, entry)
                if self._stale_heads:
                    self._clean_heads()
        else:
            level.head = None
            heappop(heads)
            if self._stale_heads:
                self._clean_heads()
        self._size -= 1
        waited = self._clock() - t
        level.record_wait(waited)
        self._record_wait(waited)
        if self._putters:
            self._wakeup_next(self._putters)
        return item

    _take_item = get_nowait
    """get_nowait() for internal callers: never the logging wrapper, so never counted twice."""

    def get_with_priority_nowait(self) -> tuple[Any, float]:
        """Like `get_nowait()`, but return `(item, priority)`."""
        level = self._heads[0][2] if self._size else None
        item = self._take_item()
        return item, level.priority  # type: ignore[union-attr]

    def get_delivery_nowait(self) -> Delivery:
        """Like `get_nowait()`, but return a `Delivery`; its `arrival` goes to `nack`/requeue."""
        if not self._size:
            return self._take_item()  # raises QueueEmpty or QueueShutDown
        level = self._heads[0][2]
        t, seq, _ = level.front()
        return Delivery(self._take_item(), level.priority, (t, seq, level), t)

    async def ack(self, delivery: Delivery) -> None:
        """Nothing to do: this queue forgot the item when it was got (`acks_on_get`)."""

    async def nack(self, delivery: Delivery, delay: float = 0.0) -> None:
        """Put a delivery back at its original place, now or after `delay` seconds.

        The item is back in the queue (and counts as an unfinished task again) when it lands:
        `task_done()` its get as for any get.
        """
        delay = check_seconds("delay", delay)
        if not math.isfinite(delay):
            raise ValueError(f"delay must be finite, not {delay!r}")
        requeue = partial(
            self.requeue_nowait, delivery.item, priority=delivery.priority,
            arrival=delivery.arrival,
        )  # fmt: skip
        if delay > 0:
            self._get_loop().call_later(delay, requeue)
        else:
            requeue()

    def drain_nowait(self) -> list[tuple[Any, float]]:
        """Remove every item at once, best first, as `(item, priority)` pairs.

        Counts as that many gets (call `task_done()` for each if you use `join()`), frees
        that many slots for blocked putters, and works after `shutdown()` too.
        """
        drained = [(item, priority) for *_, priority, item in self._merged()]
        self._clear()
        for _ in range(len(drained)):
            if not self._putters:
                break
            self._wakeup_next(self._putters)
        return drained

    def _clear(self) -> None:
        for level in self._levels.values():
            level.served += len(level.items)
            level.items.clear()
            level.times.clear()
            level.back.clear()
            level.head = None
        self._heads = []
        self._stale_heads = 0
        self._tails = []
        self._dirty_tails = set()
        self._size = 0

    # ------------------------------------------------------------------ shutdown

    def shutdown(self, immediate: bool = False) -> list[tuple[Any, float]]:
        """Shut the queue down, as Python 3.13's `asyncio.Queue.shutdown`.

        Puts raise QueueShutDown from now on (blocked putters too). Getters keep draining
        what is queued and raise QueueShutDown once it is empty. With `immediate=True` the
        queued items are removed at once (their unfinished tasks released for `join()`) and,
        so that nothing vanishes, returned best first as `(item, priority)` pairs.
        """
        self._is_shutdown = True
        discarded: list[tuple[Any, float]] = []
        if immediate:
            discarded = [(item, priority) for *_, priority, item in self._merged()]
            self._clear()
            self._discarded += len(discarded)
            self._unfinished_tasks = max(0, self._unfinished_tasks - len(discarded))
            if self._unfinished_tasks == 0:
                self._finished.set()
        self._wake_all(self._getters)
        self._wake_all(self._putters)
        return discarded

    @staticmethod
    def _wake_all(waiters: deque[asyncio.Future[None]]) -> None:
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    # ------------------------------------------------------------------ introspection

    @property
    def puts(self) -> int:
        """Items that entered the queue by a put since start; refused ones and requeues do not.

        `stats().puts` without the rest of `stats()`: O(1), for samplers that only need the count.
        """
        return self._puts

    @property
    def requeues(self) -> int:
        """Items put back by `requeue_nowait`/`nack` since start (not counted in `puts`)."""
        return self._requeues

    @property
    def gets(self) -> int:
        """Items removed by gets and drains (every put or requeue ends as a get, a victim or a
        discard)."""
        return self._puts + self._requeues - self._size - self._victims - self._discarded

    @property
    def blocked_putters(self) -> int:
        """Tasks waiting in `put()` for a free slot."""
        return sum(1 for putter in self._putters if not putter.done())

    @property
    def blocked_getters(self) -> int:
        """Tasks waiting in `get()` for an item."""
        return sum(1 for getter in self._getters if not getter.done())

    def peek(self) -> HeapEntry | None:
        """The item `get()` would return now, without removing it (None when empty). O(1)."""
        if not self._size:
            return None
        level = self._heads[0][2]
        t, seq, item = level.front()
        return self._entry(level.priority, t, seq, item, self._clock())

    def top(self, k: int, priority: float | None = None) -> tuple[HeapEntry, ...]:
        """The best `k` entries in serving order, without removing them.

        Over the whole queue: O(P + k log P). With `priority`: the best `k` of that priority
        alone, O(k + R log R), R its items put back; the queue is not scanned.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValueError(f"k must be an int >= 0, not {k!r}")
        now = self._clock()
        if priority is None:
            entries = islice(self._merged(), k)
        else:
            check_priority(priority)
            level = self._levels.get(priority)
            entries = islice(self._level_entries(level), k) if level is not None else iter(())
        return tuple(
            self._entry(priority, t, seq, item, now) for _, t, seq, _, priority, item in entries
        )

    def depth_by_priority(self) -> dict[float, int]:
        """Items waiting at each priority that has any, sorted by priority. O(P)."""
        levels = sorted(self._live_levels(), key=lambda level: level.priority)
        return {level.priority: len(level) for level in levels}

    def oldest_wait(self, priority: float | None = None) -> float:
        """Seconds the oldest waiting item (overall or at `priority`) has waited; 0.0 if none.

        Waits count from an item's first arrival. A level's oldest item is its head, so this
        reads P heads at most, whatever the depth.
        """
        if priority is None:
            heads = [level.front()[0] for level in self._live_levels()]
            if not heads:
                return 0.0
            return max(0.0, self._clock() - min(heads))
        check_priority(priority)
        level = self._levels.get(priority)
        if level is None or not len(level):
            return 0.0
        return max(0.0, self._clock() - level.front()[0])

    def stats(self) -> QueueStats:
        """A frozen snapshot of the queue: counts, waits and latency percentiles.

        Cost: O(P) for the levels plus one sort per latency window, independent of depth.
        """
        now = self._clock()
        live = {level.priority: level for level in self._live_levels()}
        firsts = {priority: level.front()[0] for priority, level in live.items()}
        per_priority = []
        for priority in sorted(live.keys() | self._sampled_priorities()):
            level = live.get(priority)
            window = self._wait_series.get(priority)
            p50, p99 = window.percentiles(50, 99) if window is not None else (None, None)
            per_priority.append(
                PriorityStats(
                    priority=priority,
                    depth=len(level) if level is not None else 0,
                    oldest_wait=max(0.0, now - firsts[priority]) if level is not None else 0.0,
                    wait_p50=p50,
                    wait_p99=p99,
                )
            )
        oldest = min(firsts.values(), default=None)
        wait_p50, wait_p99 = self._wait_all.percentiles(50, 99)
        put_p50, put_p99 = self._put_blocked.percentiles(self._puts, 50, 99)
        get_p50, get_p99 = self._get_waited.percentiles(self.gets, 50, 99)
        return QueueStats(
            depth=self._size,
            maxsize=self._capacity(),
            peak_depth=self._peak,
            puts=self._puts,
            gets=self.gets,
            evicted=self._evicted,
            rejected=self._rejected,
            blocked_putters=self.blocked_putters,
            blocked_getters=self.blocked_getters,
            overflow=str(self._overflow),
            aging_rate=self._aging_rate,
            oldest_wait=max(0.0, now - oldest) if oldest is not None else 0.0,
            per_priority=tuple(per_priority),
            wait_p50=wait_p50,
            wait_p99=wait_p99,
            put_block_p50=put_p50,
            put_block_p99=put_p99,
            get_wait_p50=get_p50,
            get_wait_p99=get_p99,
            is_shutdown=self._is_shutdown,
            requeues=self._requeues,
        )

    def _capacity(self) -> int:
        """`stats().maxsize`: the depth at which the queue is full, 0 for unbounded.

        A float bound is full at its ceiling (2.5: 3 items); math.inf is never full, so 0.
        """
        maxsize = self._maxsize
        if not 0 < maxsize < math.inf:
            return 0
        return math.ceil(maxsize)

    def _sampled_priorities(self) -> set[float]:
        return {priority for priority, window in self._wait_series.items() if len(window)}

    def _describe(self, item: Any) -> str:
        return describe(item, self.REPR_LIMIT, self.item_repr)

    def _entry(self, priority: float, t: float, seq: int, item: Any, now: float) -> HeapEntry:
        waited = max(0.0, now - t)
        return HeapEntry(
            item=item,
            priority=priority,
            effective_priority=priority - self._aging_rate * waited,
            seq=seq,
            waited=waited,
            item_repr=self._describe(item),
            first_arrival=t,
        )

    def _merged(self) -> Iterator[tuple[float, float, int, int, float, Any]]:
        """Every queued item in serving order: a k-way merge of the levels (lazy)."""
        return merge(*(self._level_entries(level) for level in self._live_levels()))

    def _level_entries(self, level: _Level) -> Iterator[tuple[float, float, int, int, float, Any]]:
        """(key, first arrival, seq, tie, priority, item) of a level's items in serving order."""
        priority = level.priority
        for t, seq, tie, item in level.entries():
            yield self._key(priority, t), t, seq, tie, priority, item

    def _format(self) -> str:
        parts = [f"maxsize={self._maxsize!r}", f"depth={self._size}"]
        if self._size:
            root = self.peek()
            parts.append(f"root={root.item_repr}@{root.priority!r}")  # type: ignore[union-attr]
            parts.append(f"levels={len(self._heads) - self._stale_heads}")
        parts.append(f"overflow={self._overflow.value}")
        if self._aging_rate:
            parts.append(f"aging_rate={self._aging_rate!r}")
        parts.append(f"puts={self._puts} gets={self.gets}")
        if self._requeues:
            parts.append(f"requeues={self._requeues}")
        if self._evicted or self._rejected:
            parts.append(f"evicted={self._evicted} rejected={self._rejected}")
        if self._getters:
            parts.append(f"_getters[{len(self._getters)}]")
        if self._putters:
            parts.append(f"_putters[{len(self._putters)}]")
        if self._unfinished_tasks:
            parts.append(f"tasks={self._unfinished_tasks}")
        if self._is_shutdown:
            parts.append("shutdown")
        return " ".join(parts)

    # ------------------------------------------------------------------ internals

    def _key(self, priority: float, t: float) -> float:
        """The static aging key: `priority - rate * waited` plus `rate * now`, the same for all."""
        rate = self._aging_rate
        return priority + rate * (t - self._epoch) if rate else priority

    def _level_for(self, priority: float) -> _Level:
        if priority is True or priority is False:
            check_priority(priority)
        try:
            return self._levels[priority]
        except (KeyError, TypeError):
            return self._new_level(priority)

    def _new_level(self, priority: object) -> _Level:
        check_priority(priority)
        if len(self._levels) >= self._prune_at:
            # Many distinct priorities came and went: forget the empty levels (their stale
            # heap entries are skipped lazily). The threshold doubles with the live levels
            # so that pruning stays amortised O(1) per new level.
            self._levels = {p: level for p, level in self._levels.items() if len(level)}
            self._prune_at = max(self._LEVEL_PRUNE_AT, 2 * len(self._levels))
        level = _Level(priority, self._wait_recorder(priority))  # type: ignore[arg-type]
        self._levels[priority] = level  # type: ignore[index]
        return level

    def _wait_recorder(self, priority: float) -> Callable[[float], None]:
        window = self._wait_series.get(priority)
        if window is None:
            if len(self._wait_series) >= self.MAX_PRIORITY_SERIES:
                return _ignore_sample
            window = self._wait_series[priority] = LatencyWindow(self._window)
        return window.record

    def _live_levels(self) -> list[_Level]:
        return [entry[2] for entry in self._heads if entry[2].head is entry]

    def _retire_head(self, level: _Level) -> None:
        """`level` was emptied from its tail: its head entry goes stale where it sits."""
        level.head = None
        self._stale_heads += 1
        self._clean_heads()

    def _clean_heads(self) -> None:
        heads = self._heads
        while heads and heads[0][2].head is not heads[0]:
            heappop(heads)
            self._stale_heads -= 1
        if self._stale_heads > 32 + len(heads) // 2:
            self._rebuild_heads()

    def _rebuild_heads(self) -> None:
        heads = []
        for level in self._live_levels():
            t = level.front()[0]
            entry = (self._key(level.priority, t), t, level)
            level.head = entry
            heads.append(entry)
        heapify(heads)
        self._heads = heads
        self._stale_heads = 0

    def _worst_tail(self) -> tuple[float, float, _Level] | None:
        """The live tail entry with the largest (key, time), lazily validated."""
        tails = self._tails
        for level in self._dirty_tails:
            t = level.newest()
            if t is not None:
                heappush(tails, (-self._key(level.priority, t), -t, level))
        self._dirty_tails.clear()
        if len(tails) > 64 + 2 * len(self._heads):
            tails[:] = []
            for level in self._live_levels():
                t = level.newest()
                tails.append((-self._key(level.priority, t), -t, level))  # type: ignore[arg-type]
            heapify(tails)
        while tails:
            entry = tails[0]
            if entry[2].newest() == -entry[1]:
                return entry
            heappop(tails)
        return None

    def _with_log(self, method: Callable[..., Any]) -> Callable[..., Any]:
        every = self._log_every

        def logged(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            self._logged_ops += 1
            if self._logged_ops % every == 0:
                root = self.peek()
                self._logger.info(
                    "queue depth=%d root=%s ops=%d puts=%d gets=%d evicted=%d rejected=%d",
                    self._size,
                    "-" if root is None else f"{root.item_repr}@{root.priority!r}",
                    self._logged_ops,
                    self._puts,
                    self.gets,
                    self._evicted,
                    self._rejected,
                )
            return result

        logged.__name__ = method.__name__
        logged.__doc__ = method.__doc__
        return logged
