"""`PriorityQueue`: an `asyncio.Queue` that serves the lowest priority number first.

Layout. Real workloads use a handful of distinct priorities, so the queue keeps one FIFO
*level* per distinct priority (two parallel deques: enqueue times and items) and a small
binary heap over the non-empty levels' heads. With P distinct priorities waiting, `put` and
`get` cost O(log P) and do not depend on depth; the oldest item of a priority is its level's
head; `top(k)` is a k-way merge of level heads.

One clock reading per put is the enqueue time (for waits and aging). Heap entries are (key,
enqueue time, level); equal keys and times mean the same level. Payloads are never compared.

Aging. An item's effective priority is `priority - rate * waited`
`= (priority + rate * t_enq) - rate * now`. The static key `priority + rate * t_enq` orders
items the same way for every `now`, and inside a level keys still increase with `t_enq`, so
the head heap stays valid without any periodic re-heapify. Changing the rate re-keys the
head heap once (O(P)).

Requeues. A delivery's arrival token given back to `requeue_nowait` (or `nack`) serves
the item at its original place with its first arrival (`engine.queue_level`). Eviction: the
worst item is some level's newest, found in a lazily validated max-heap of level tails.

Blocking behaviour is CPython's `asyncio.Queue` (futures in `_getters`/`_putters`, the same
wake-ups and cancellation handling, `join()`/`task_done()`, a float maxsize), plus the
`shutdown(immediate=...)` of Python 3.13: tests/test_queue_differential.py checks it against
the real one. The read-only views live in `engine.queue_views`, a level in `engine.queue_level`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from heapq import heapify, heappop, heappush, heapreplace
from typing import Any

from engine.checks import check_choice, check_priority, check_rate, check_seconds
from engine.latency import LatencyWindow, SparseLatencyWindow, flag_drawer, gap_drawer
from engine.protocol import DeliveryTuple, Wrapped
from engine.queue_level import Level
from engine.queue_views import QueueViews
from engine.reprs import ItemRepr

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
_get_running_loop = asyncio._get_running_loop  # what asyncio's _get_loop() reads first
_log = logging.getLogger(__name__)


def _named(function: Callable[..., Any], name: str, doc: str) -> Callable[..., Any]:
    """A method made by a factory, named as if written out (what tracebacks and stacks show)."""
    qualname = f"PriorityQueue.{name}"
    function.__code__ = function.__code__.replace(co_name=name, co_qualname=qualname)
    function.__name__, function.__qualname__, function.__doc__ = name, qualname, doc
    return function


def _ignore_sample(_: float) -> None:
    """Wait recorder for priorities beyond the per-priority series cap."""


class PriorityQueue(QueueViews, asyncio.Queue):
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
        on_drop: `on_drop(item, priority, reason)` for every item (a pool's: the one submitted)
            evicted ('evicted') or refused under 'reject' ('rejected'); its exceptions are logged.
        item_repr: how a payload is shown in `peek()`/`top()`/repr (default: `repr`).
        clock: seconds; must never go backwards. Leave as default unless testing.
        log_every: log depth, root and operation count every N operations (0: off, and free).
        logger: where that diagnostic goes (default: this module's logger).
        window: samples kept per latency series for the sliding-window percentiles.
    """

    # Slots keep attribute access on the hot path fast (a shared-key instance dict holds 30
    # keys at most); asyncio.Queue's own attributes are declared again to be slots too.
    __slots__ = (
        "_aging_rate", "_clock", "_dirty_tails", "_discarded", "_drop_listeners", "_epoch",
        "_evicted", "_get_waited", "_heads", "_is_shutdown", "_levels", "_limit", "_log_every",
        "_logged_ops", "_logger", "_next_flag", "_next_gap", "_overflow", "_peak", "_prune_at",
        "_put_blocked", "_puts", "_record_wait", "_rejected", "_requeues", "_sample_due",
        "_sample_every", "_size", "_stale_heads", "_tails", "_track_tails", "_victims",
        "_wait_all", "_wait_limit", "_wait_series", "_window", "item_repr", "on_drop",
        "_finished", "_getters", "_maxsize", "_putters", "_unfinished_tasks",
    )  # fmt: skip

    DEFAULT_PRIORITY = 5
    """The priority of a `put` that does not give one."""
    MAX_PRIORITY_SERIES = 256
    """Distinct priorities that get their own wait-time series (beyond: overall only)."""
    WAIT_SAMPLE_EVERY = 8
    """Latency percentiles are taken on a sample: one get in N on average (random gaps)
    reads the clock for the wait-time windows, and one blocked put (get) in N, also at random
    gaps, times its blocking; neither aliases with a periodic workload. The rest cost a
    countdown."""
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
        self._levels: dict[float, Level] = {}
        self._prune_at = self._LEVEL_PRUNE_AT
        self._heads: list[tuple[float, float, Level]] = []
        """Min-heap over non-empty levels by (key of head, time of head)."""
        self._stale_heads = 0
        self._tails: list[tuple[float, float, Level]] = []
        """Min-heap of (-key, -time) of level tails, lazily validated (evict-lowest only)."""
        self._dirty_tails: set[Level] = set()
        self._track_tails = self._overflow is Overflow.EVICT_LOWEST
        self._size = 0
        self._limit = maxsize if maxsize > 0 else math.inf
        """put_nowait's one test for its slow path: maxsize, or -1 once shut down."""
        self._wait_limit = self._limit if self._overflow is _BLOCK else math.inf
        """put()'s one test for waiting: the limit under 'block', else never (-1: shut down)."""
        self._sample_every = self.WAIT_SAMPLE_EVERY
        self._next_gap = gap_drawer(self._sample_every)
        self._next_flag = flag_drawer(self._sample_every)
        self._sample_due = 1  # the first get is sampled
        self._peak = 0
        self._puts = 0
        self._requeues = 0
        self._victims = 0  # evicted items that had been queued (not refused newcomers)
        self._discarded = 0  # items removed by shutdown(immediate=True)
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
        if not self._is_shutdown:
            self._wait_limit = self._limit if policy is _BLOCK else math.inf
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

        For the engine's own consumers (the pool): they get the item as queued (a `Job`), the
        user's `on_drop`, called first, gets a `Wrapped` item's payload. Exceptions are logged.
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
        if self._size >= self._wait_limit:  # full under 'block', or shut down
            if priority.__class__ is not int or priority not in self._levels:
                self._level_for(priority)  # a bad priority fails now, not after the wait
            # asyncio.Queue.put's wait loop, inlined rather than a nested coroutine: in a
            # hand-off every item waits here. Only the sampled puts read the clock.
            in_sample = self._next_flag  # a callable in a slot: called from a local
            started = self._clock() if in_sample() else None
            try:
                while True:  # the test at the bottom: the one above already failed once
                    if self._is_shutdown:
                        raise QueueShutDown
                    loop = _get_running_loop()
                    if loop is not self._loop:
                        loop = self._get_loop()  # binds the queue to its loop, or refuses
                    putter = loop.create_future()
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
                    if self._size < self._wait_limit:
                        break
            finally:
                if started is not None:  # numbered as the put it is (it lands next)
                    blocked = self._clock() - started
                    self._put_blocked.record(self._puts // self._sample_every, blocked)
        self.put_nowait(item, priority=priority)

    def put_nowait(self, item: Any, *, priority: float = DEFAULT_PRIORITY) -> None:
        """Put `item` at `priority` (default 5) without waiting.

        A full queue applies the overflow policy: 'block' raises QueueFull (asyncio's
        behaviour), 'reject' counts the item, calls `on_drop(item, priority, 'rejected')` and
        raises QueueFull, 'evict-lowest' drops the worst item (maybe this one) to `on_drop`.
        """
        # The one path by which an item joins a level's FIFO, inline in one frame: it is
        # the hot path of every producer.
        if priority.__class__ is bool:  # True would find level 1
            check_priority(priority)
        try:
            level = self._levels[priority]
        except (KeyError, TypeError):
            level = self._new_level(priority)
        clock = self._clock  # a callable in a slot: called from a local, it is a fast call
        t = clock()
        victim = None
        if self._size >= self._limit:  # full, or shut down (the limit is then -1)
            if self._is_shutdown:
                raise QueueShutDown
            victim = self._make_room(item, level, t)
            if victim is None:
                return  # the newcomer itself was the one dropped
        if level.head is None:
            # `_key` inlined (with aging off the key is the priority): once per put into an
            # empty level, so on every item of a hand-off.
            rate = self._aging_rate
            key = level.priority + rate * (t - self._epoch) if rate else level.priority
            entry = level.head = (key, t, level)
            heappush(self._heads, entry)
        level.times.append(t)
        level.items.append(item)
        if self._track_tails:
            self._dirty_tails.add(level)
        size = self._size = self._size + 1
        if size > self._peak:
            self._peak = size
        self._puts += 1
        unfinished = self._unfinished_tasks
        if not unfinished:
            self._finished.clear()
        self._unfinished_tasks = unfinished + 1
        getters = self._getters  # asyncio's `_wakeup_next` inline: a hand-off's every put wakes
        if getters:
            getter = getters.popleft()
            if not getter.done():
                getter.set_result(t)  # a getter's wait ends when its item arrives
            else:
                self._wakeup_next(getters)  # that one was cancelled: the next (wait timed now)
        if victim is not None:  # told once the newcomer is in (a put from on_drop finds it full)
            self._notify_drop(*victim, "evicted")

    def requeue_nowait(self, item: Any, *, priority: float, arrival: Any = None) -> None:
        """Put a got item back, ignoring maxsize, overflow and shutdown: it is never dropped.

        With `arrival` (the token of its delivery) the item goes back at its original place:
        its first-arrival order among `priority`'s items, its wait still counting (waits, aging
        and starvation see the first arrival). A token from another priority places it by its
        first-arrival time. Without a token it goes to the tail of `priority`, arriving now.

        Counted in `requeues`, not in `puts`. Like a put it adds one unfinished task:
        `task_done()` the get it replaces. O(log R), R the items put back and not yet got.
        """
        level = self._level_for(priority)
        self._requeues += 1
        if arrival is None:
            # The tail, now: between the FIFO's last item and the next one put, and after
            # the items put back there before it.
            t, seq, tie = self._clock(), level.served + len(level.items) - 0.5, self._requeues
        else:
            try:
                t, seq, tie, origin = arrival
            except (TypeError, ValueError):
                origin = None
            if origin.__class__ is not Level:
                self._requeues -= 1
                raise TypeError(f"arrival must be a delivery's arrival token, not {arrival!r}")
            if origin is not level:
                # Not this level's numbering: first among its items of the same time.
                seq, tie = -1, self._requeues
        back = level.back
        head = level.head
        if head is None or (self._aging_rate and (t, seq) < level.front()[:2]):
            # It becomes the level's head: a new head entry (an old one goes stale where it
            # sits). With aging off a level's key is its priority, whoever its head.
            entry = level.head = (self._key(level.priority, t), t, level)
            heappush(self._heads, entry)
            if head is not None:
                self._stale_heads += 1
        heappush(back, (t, seq, tie, item))
        if self._track_tails:
            self._dirty_tails.add(level)
        size = self._size = self._size + 1
        if size > self._peak:
            self._peak = size
        if not self._unfinished_tasks:
            self._finished.clear()
        self._unfinished_tasks += 1
        if self._getters:
            self._wakeup_next(self._getters)

    def _make_room(self, item: Any, level: Level, t: float) -> tuple[Any, float] | None:
        """put_nowait on a full queue: raise QueueFull, drop the newcomer (None) or evict the
        worst item, returned as (item, priority) for `on_drop` once the newcomer is in."""
        policy = self._overflow
        if policy is Overflow.BLOCK:
            raise asyncio.QueueFull
        if policy is Overflow.REJECT:
            self._rejected += 1
            self._notify_drop(item, level.priority, "rejected")
            raise asyncio.QueueFull
        self._evicted += 1
        worst = self._worst_tail()
        if worst is None or self._key(level.priority, t) >= -worst[0]:
            # The newcomer is the worst (ties: it is the newest), so it is the one dropped.
            self._notify_drop(item, level.priority, "evicted")
            return None
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
        return victim, victim_level.priority

    def _notify_drop(self, item: Any, priority: float, reason: str) -> None:
        payload = item.item if isinstance(item, Wrapped) else item  # the user's, not its Job
        for callback in (self.on_drop, *self._drop_listeners):
            try:
                if callback is not None:
                    callback(payload if callback is self.on_drop else item, priority, reason)
            except Exception:
                # The queue's state is already consistent; a failing callback must not undo a
                # put or lose the item the caller is holding.
                self._logger.exception(
                    "on_drop callback failed for %s item %s", reason, self._describe(item)
                )

    # ------------------------------------------------------------------ get

    def _blocking_get(name: str, part: slice | None, doc: str) -> Callable[..., Any]:  # type: ignore[misc]
        """The blocking gets: asyncio.Queue.get's wait loop, then the item (`part` None) or
        `part` of a delivery.

        Each of the three is this coroutine function itself, the loop in its own frame rather
        than in a nested coroutine: in a hand-off or a pool of idle consumers every get waits,
        and a nested coroutine would cost a frame a resume. Only sampled gets read the clock.
        """

        async def get(self: PriorityQueue) -> Any:
            if not self._size:
                started = self._clock() if self._next_flag() else None
                arrived = None
                try:
                    while True:  # the test at the bottom, as in put()
                        if self._is_shutdown:
                            raise QueueShutDown
                        loop = _get_running_loop()
                        if loop is not self._loop:
                            loop = self._get_loop()
                        getter = loop.create_future()
                        self._getters.append(getter)
                        try:
                            arrived = await getter  # put_nowait's clock reading, else None
                        except BaseException:
                            self._drop_getter(getter)
                            raise
                        if self._size:
                            break
                finally:
                    if started is not None:  # numbered as the get it is (it is made next)
                        ended = self._clock() if arrived is None else arrived
                        self._get_waited.record(self.gets // self._sample_every, ended - started)
            if part is None:  # get(): the item alone, with no delivery built
                return self.get_nowait()
            return self.get_delivery_nowait()[part]

        return _named(get, name, doc)

    get = _blocking_get(
        "get",
        None,
        """Remove and return the best item, waiting while the queue is empty.

        A cancelled get never loses an item. After `shutdown()` it still returns what is
        queued, then raises QueueShutDown.
        """,
    )
    get_with_priority = _blocking_get(
        "get_with_priority", slice(2), """Like `get()`, but return `(item, priority)`."""
    )
    get_delivery = _blocking_get(
        "get_delivery",
        slice(None),
        """Like `get()`, but return a delivery: a plain tuple laid out as `Delivery`.""",
    )
    del _blocking_get

    def _drop_getter(self, getter: asyncio.Future[Any]) -> None:
        """A waiting get was interrupted (cancelled): asyncio's cleanup."""
        getter.cancel()  # in case it is not done yet
        try:
            self._getters.remove(getter)
        except ValueError:
            pass  # put_nowait() already took it off the deque to wake it
        if self._size and not getter.cancelled():
            self._wakeup_next(self._getters)  # woken for an item we will not take: pass it on

    def _removal(name: str, delivery: bool, doc: str) -> Callable[..., Any]:  # type: ignore[misc]
        """The path by which an item leaves, inline in one frame: `get_nowait` (the item: the
        hot path of get() and every consumer) or `get_delivery_nowait` (the pool's).

        One body for both, specialised by `delivery`: a shared helper would cost every get a
        frame, a delivery built and cut down two tuples. test_queue_model checks both.
        """

        def take(self: PriorityQueue) -> Any:
            if not self._size:
                if self._is_shutdown:
                    raise QueueShutDown
                raise asyncio.QueueEmpty
            heads = self._heads
            level = heads[0][2]
            times = level.times
            back = level.back
            if back and level.back_first():
                t, seq, tie, item = heappop(back)
            else:
                item = level.items.popleft()
                t = times.popleft()
                seq = level.served
                level.served = seq + 1
                tie = 0
            if times or back:
                if self._aging_rate:
                    head_t = level.front()[0]
                    entry = level.head = (self._key(level.priority, head_t), head_t, level)
                    heapreplace(heads, entry)
                    if self._stale_heads:
                        self._clean_heads()
            else:
                level.head = None
                heappop(heads)
                if self._stale_heads:
                    self._clean_heads()
            self._size -= 1
            due = self._sample_due - 1
            if due:
                self._sample_due = due
            else:
                self._sample_due = self._next_gap()
                waited = self._clock() - t
                level.record_wait(waited)
                self._record_wait(waited)
            putters = self._putters  # asyncio's `_wakeup_next`, its common case inline
            if putters:
                putter = putters.popleft()
                if not putter.done():
                    putter.set_result(None)
                else:
                    self._wakeup_next(putters)  # that one was cancelled: the next
            if delivery:  # a plain tuple: a `Delivery` (NamedTuple) would cost three times as much
                return (item, level.priority, (t, seq, tie, level), t, 0, None)
            return item

        return _named(take, name, doc)

    get_nowait = _removal(
        "get_nowait",
        False,
        "Remove and return the best item; raise QueueEmpty (QueueShutDown once shut down).",
    )
    get_delivery_nowait = _removal(
        "get_delivery_nowait",
        True,
        """Like `get_nowait()`, but return a delivery, a plain tuple laid out as `Delivery`:
        `(item, priority, arrival, first_arrival, 0, None)`; `arrival` goes to `nack`/requeue.
        """,
    )
    del _removal

    def get_with_priority_nowait(self) -> tuple[Any, float]:
        """Like `get_nowait()`, but return `(item, priority)`."""
        return self._take()[:2]  # not hot: the delivery's first two fields

    _take = get_delivery_nowait
    """For internal callers: never the logging wrapper, so a get is never counted twice."""

    async def ack(self, delivery: DeliveryTuple) -> None:
        """Nothing to do: this queue forgot the item when it was got (`acks_on_get`)."""

    async def nack(self, delivery: DeliveryTuple, delay: float = 0.0) -> None:
        """Put a delivery back at its original place, now or after `delay` seconds.

        The item is back in the queue (and counts as an unfinished task again) when it lands:
        `task_done()` its get as for any get.
        """
        delay = check_seconds("delay", delay)
        if not math.isfinite(delay):
            raise ValueError(f"delay must be finite, not {delay!r}")
        item, priority, arrival = delivery[:3]
        requeue = partial(self.requeue_nowait, item, priority=priority, arrival=arrival)
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
        """Shut the queue down, as Python 3.13's `asyncio.Queue.shutdown`: puts (blocked ones
        too) raise QueueShutDown; gets drain what is queued, then raise it. `immediate=True`
        removes the items at once (releasing `join()`) and returns them, best first, as
        `(item, priority)` pairs, so that nothing vanishes."""
        self._is_shutdown = True
        self._limit = self._wait_limit = -1
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

    # ------------------------------------------------------------------ internals

    def _key(self, priority: float, t: float) -> float:
        """The static aging key: `priority - rate * waited` plus `rate * now`, the same for all."""
        rate = self._aging_rate
        return priority + rate * (t - self._epoch) if rate else priority

    def _level_for(self, priority: float) -> Level:
        if priority is True or priority is False:
            check_priority(priority)
        try:
            return self._levels[priority]
        except (KeyError, TypeError):
            return self._new_level(priority)

    def _new_level(self, priority: object) -> Level:
        check_priority(priority)
        if len(self._levels) >= self._prune_at:
            # Many distinct priorities came and went: forget the empty levels (their stale
            # heap entries are skipped lazily). The threshold doubles with the live levels
            # so that pruning stays amortised O(1) per new level.
            self._levels = {p: level for p, level in self._levels.items() if len(level)}
            self._prune_at = max(self._LEVEL_PRUNE_AT, 2 * len(self._levels))
        level = Level(priority, self._wait_recorder(priority))  # type: ignore[arg-type]
        self._levels[priority] = level  # type: ignore[index]
        return level

    def _wait_recorder(self, priority: float) -> Callable[[float], None]:
        window = self._wait_series.get(priority)
        if window is None:
            if len(self._wait_series) >= self.MAX_PRIORITY_SERIES:
                return _ignore_sample
            window = self._wait_series[priority] = LatencyWindow(self._window)
        return window.record

    def _live_levels(self) -> list[Level]:
        return [entry[2] for entry in self._heads if entry[2].head is entry]

    def _retire_head(self, level: Level) -> None:
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

    def _worst_tail(self) -> tuple[float, float, Level] | None:
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
