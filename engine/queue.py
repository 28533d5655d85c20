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

Eviction. The worst item is always some level's tail (its newest item), so `evict-lowest`
keeps a lazily validated max-heap over level tails: O(log P) amortised, never a scan of the
items.

Blocking behaviour is CPython 3.11's `asyncio.Queue` (futures in `_getters`/`_putters`,
`_wakeup_next`, the same cancellation handling, `join()`/`task_done()`), plus the
`shutdown(immediate=False)` that Python 3.13 added.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from heapq import heapify, heappop, heappush, heapreplace, merge
from itertools import islice
from typing import Any

from engine.checks import check_choice, check_priority, check_rate
from engine.latency import LatencyWindow, SparseLatencyWindow
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
    """The FIFO of one distinct priority: enqueue times and items, in two parallel deques."""

    __slots__ = ("priority", "times", "items", "head", "served", "record_wait")

    def __init__(self, priority: float, record_wait: Callable[[float], None]) -> None:
        self.priority = priority
        self.times: deque[float] = deque()
        self.items: deque[Any] = deque()
        self.head: tuple[float, float, _Level] | None = None
        """This level's live entry in the head heap (entries that are not it are stale)."""
        self.served = 0
        """Items that left from the front: the sequence number of the current head."""
        self.record_wait = record_wait

    def __lt__(self, other: _Level) -> bool:
        # Heap entries tie-break on unique times first; this only keeps a freak tie from
        # raising TypeError.
        return id(self) < id(other)

    def __repr__(self) -> str:
        return f"<level {self.priority!r} depth={len(self.items)}>"


def _ignore_sample(_: float) -> None:
    """Wait recorder for priorities beyond the per-priority series cap."""


class PriorityQueue(asyncio.Queue):
    """A priority queue that is a real `asyncio.Queue`: lower priority numbers are served first.

    `put(item, priority=5)` / `get()` behave like `asyncio.Queue` (maxsize backpressure,
    `QueueFull`/`QueueEmpty`, `join()`/`task_done()`, cancellation) and `get()` returns the
    item itself. Equal priorities come out FIFO; items are never compared, so any object can be
    queued.

    Args:
        maxsize: 0 (or less) for unbounded, as in asyncio.
        overflow: what a full queue does: 'block' (default), 'reject' or 'evict-lowest'.
        aging_rate: priority points an item gains per second of waiting (0.0: off).
        on_drop: `on_drop(item, priority, reason)` for every item evicted ('evicted') or refused
            by the 'reject' policy ('rejected'); exceptions it raises are logged, not raised.
        clock: seconds; must never go backwards. Leave as default unless testing.
        log_every: log depth, root and operation count every N operations (0: off, and free).
        logger: where that diagnostic goes (default: this module's logger).
        window: samples kept per latency series for the sliding-window percentiles.
    """

    # Slots keep attribute access on the hot path fast: asyncio.Queue's own attributes
    # plus ours would overflow CPython's shared-key instance dict (30 keys).
    __slots__ = (
        "_aging_rate", "_clock", "_dirty_tails", "_discarded", "_epoch", "_evicted",
        "_get_waited", "_heads", "_is_shutdown", "_levels", "_log_every", "_logged_ops",
        "_logger", "_overflow", "_peak", "_prune_at", "_put_blocked", "_puts", "_record_wait",
        "_rejected", "_size", "_stale_heads", "_tails", "_track_tails", "_victims", "_wait_all",
        "_wait_series", "_window", "on_drop",
    )  # fmt: skip

    DEFAULT_PRIORITY = 5
    """The priority of a `put` that does not give one."""
    MAX_PRIORITY_SERIES = 256
    """Distinct priorities that get their own wait-time series (beyond: overall only)."""
    _LEVEL_PRUNE_AT = 1024

    def __init__(
        self,
        maxsize: int = 0,
        *,
        overflow: Overflow | str = Overflow.BLOCK,
        aging_rate: float = 0.0,
        on_drop: DropCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
        log_every: int = 0,
        logger: logging.Logger | None = None,
        window: int = 1024,
    ) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int):
            raise TypeError(f"maxsize must be an int, not {maxsize!r}")
        if isinstance(log_every, bool) or not isinstance(log_every, int) or log_every < 0:
            raise ValueError(f"log_every must be an int >= 0, not {log_every!r}")
        self._overflow = check_choice("overflow", overflow, Overflow)
        self._aging_rate = check_rate("aging_rate", aging_rate)
        self._window = LatencyWindow(window).size
        self.on_drop = on_drop
        self._clock = clock
        self._epoch = clock()
        super().__init__(maxsize)
        self._log_every = log_every
        self._logger = logger if logger is not None else _log
        self._logged_ops = 0
        if log_every:
            # Instance attributes shadow the methods only when logging is on, so the
            # unlogged hot path pays nothing for the feature.
            for name in ("put_nowait", "get_nowait", "get_with_priority_nowait"):
                setattr(self, name, self._with_log(getattr(self, name)))

    # ------------------------------------------------------------------ asyncio.Queue hooks

    def _init(self, maxsize: int) -> None:
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
        times = level.times
        if not times:
            rate = self._aging_rate
            entry = (
                (level.priority + rate * (t - self._epoch) if rate else level.priority),
                t,
                level,
            )
            level.head = entry
            heappush(self._heads, entry)
        times.append(t)
        level.items.append(item)
        if self._track_tails:
            self._dirty_tails.add(level)
        size = self._size + 1
        self._size = size
        if size > self._peak:
            self._peak = size
        self._puts += 1
        if not self._unfinished_tasks:
            self._finished.clear()
        self._unfinished_tasks += 1
        if self._getters:
            self._wakeup_next(self._getters)

    def requeue_nowait(self, item: Any, *, priority: float) -> None:
        """Put `item` back at the tail of its priority, ignoring maxsize, overflow and shutdown.

        For an item that was got but could not be processed (a cancelled worker): it is never
        dropped. Like any put it adds one unfinished task; `task_done()` the get it replaces.
        """
        level = self._level_for(priority)
        t = self._clock()
        self._insert(level, item, t)

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
        new_key = self._key(level.priority, t)
        if worst is None or new_key >= -worst[0]:
            # The newcomer is the worst (ties: it is the newest), so it is the one dropped.
            self._evicted += 1
            self._notify_drop(item, level.priority, "evicted")
            return
        victim_level = worst[2]
        heappop(self._tails)
        victim = victim_level.items.pop()
        victim_level.times.pop()
        self._size -= 1
        self._victims += 1
        if self._unfinished_tasks > 0:  # it will never be got, so never task_done()
            self._unfinished_tasks -= 1
        if victim_level.items:
            self._dirty_tails.add(victim_level)
        else:
            self._retire_head(victim_level)
        self._evicted += 1
        self._insert(level, item, t)
        self._notify_drop(victim, victim_level.priority, "evicted")

    def _insert(self, level: _Level, item: Any, t: float) -> None:
        times = level.times
        if not times:
            entry = (self._key(level.priority, t), t, level)
            level.head = entry
            heappush(self._heads, entry)
        times.append(t)
        level.items.append(item)
        if self._track_tails:
            self._dirty_tails.add(level)
        self._size += 1
        if self._size > self._peak:
            self._peak = self._size
        self._puts += 1
        if not self._unfinished_tasks:
            self._finished.clear()
        self._unfinished_tasks += 1
        if self._getters:
            self._wakeup_next(self._getters)

    def _notify_drop(self, item: Any, priority: float, reason: str) -> None:
        if self.on_drop is None:
            return
        try:
            self.on_drop(item, priority, reason)
        except Exception:
            # The queue's state is already consistent; a failing callback must not undo a
            # put or lose the item the caller is holding.
            self._logger.exception("on_drop callback failed for %s item %r", reason, item)

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
        item = level.items.popleft()
        t = times.popleft()
        level.served += 1
        if times:
            if self._aging_rate:
                rate = self._aging_rate
                head_t = times[0]
                entry = (level.priority + rate * (head_t - self._epoch), head_t, level)
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

    def drain_nowait(self) -> list[tuple[Any, float]]:
        """Remove every item at once, best first, as `(item, priority)` pairs.

        Counts as that many gets (call `task_done()` for each if you use `join()`), frees
        that many slots for blocked putters, and works after `shutdown()` too.
        """
        drained = [(item, priority) for _, _, _, priority, item in self._merged()]
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
            discarded = [(item, priority) for _, _, _, priority, item in self._merged()]
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
        """Items that entered the queue (puts and requeues) since start; refused ones do not count.

        `stats().puts` without the rest of `stats()`: O(1), for samplers that only need the count.
        """
        return self._puts

    @property
    def gets(self) -> int:
        """Items removed by gets and drains (every put ends as a get, a victim or a discard)."""
        return self._puts - self._size - self._victims - self._discarded

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
        now = self._clock()
        return self._entry(level.priority, level.times[0], level.served, level.items[0], now)

    def top(self, k: int) -> tuple[HeapEntry, ...]:
        """The best `k` entries in serving order, without removing them. O(P + k log P)."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValueError(f"k must be an int >= 0, not {k!r}")
        now = self._clock()
        return tuple(
            self._entry(priority, t, seq, item, now)
            for _, t, seq, priority, item in islice(self._merged(), k)
        )

    def depth_by_priority(self) -> dict[float, int]:
        """Items waiting at each priority that has any, sorted by priority. O(P)."""
        levels = sorted(self._live_levels(), key=lambda level: level.priority)
        return {level.priority: len(level.items) for level in levels}

    def oldest_wait(self, priority: float | None = None) -> float:
        """Seconds the oldest waiting item (overall or at `priority`) has waited; 0.0 if none.

        A level's oldest item is its head, so this reads P heads at most, whatever the depth.
        """
        if priority is None:
            heads = [level.times[0] for level in self._live_levels()]
            if not heads:
                return 0.0
            return max(0.0, self._clock() - min(heads))
        check_priority(priority)
        level = self._levels.get(priority)
        if level is None or not level.times:
            return 0.0
        return max(0.0, self._clock() - level.times[0])

    def stats(self) -> QueueStats:
        """A frozen snapshot of the queue: counts, waits and latency percentiles.

        Cost: O(P) for the levels plus one sort per latency window, independent of depth.
        """
        now = self._clock()
        live = {level.priority: level for level in self._live_levels()}
        oldest = min((level.times[0] for level in live.values()), default=None)
        per_priority = []
        for priority in sorted(live.keys() | self._sampled_priorities()):
            level = live.get(priority)
            window = self._wait_series.get(priority)
            p50, p99 = window.percentiles(50, 99) if window is not None else (None, None)
            per_priority.append(
                PriorityStats(
                    priority=priority,
                    depth=len(level.items) if level is not None else 0,
                    oldest_wait=max(0.0, now - level.times[0]) if level is not None else 0.0,
                    wait_p50=p50,
                    wait_p99=p99,
                )
            )
        wait_p50, wait_p99 = self._wait_all.percentiles(50, 99)
        put_p50, put_p99 = self._put_blocked.percentiles(self._puts, 50, 99)
        get_p50, get_p99 = self._get_waited.percentiles(self.gets, 50, 99)
        return QueueStats(
            depth=self._size,
            maxsize=max(self._maxsize, 0),
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
        )

    def _sampled_priorities(self) -> set[float]:
        return {priority for priority, window in self._wait_series.items() if len(window)}

    def _entry(self, priority: float, t: float, seq: int, item: Any, now: float) -> HeapEntry:
        waited = max(0.0, now - t)
        return HeapEntry(
            item=item,
            priority=priority,
            effective_priority=priority - self._aging_rate * waited,
            seq=seq,
            waited=waited,
        )

    def _merged(self) -> Iterator[tuple[float, float, int, float, Any]]:
        """Every queued item in serving order: a k-way merge of the levels (lazy)."""
        return merge(*(self._level_entries(level) for level in self._live_levels()))

    def _level_entries(self, level: _Level) -> Iterator[tuple[float, float, int, float, Any]]:
        priority = level.priority
        rate = self._aging_rate
        epoch = self._epoch
        seq = level.served
        for t, item in zip(level.times, level.items, strict=True):
            yield (priority + rate * (t - epoch) if rate else priority), t, seq, priority, item
            seq += 1

    def _format(self) -> str:
        parts = [f"maxsize={self._maxsize!r}", f"depth={self._size}"]
        if self._size:
            root = self._heads[0][2]
            parts.append(f"root={root.items[0]!r}@{root.priority!r}")
            parts.append(f"levels={len(self._heads) - self._stale_heads}")
        parts.append(f"overflow={self._overflow.value}")
        if self._aging_rate:
            parts.append(f"aging_rate={self._aging_rate!r}")
        parts.append(f"puts={self._puts} gets={self.gets}")
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
            self._levels = {p: level for p, level in self._levels.items() if level.items}
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
            t = level.times[0]
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
            if level.times:
                t = level.times[-1]
                heappush(tails, (-self._key(level.priority, t), -t, level))
        self._dirty_tails.clear()
        if len(tails) > 64 + 2 * len(self._heads):
            live = self._live_levels()
            tails[:] = [(-self._key(lv.priority, lv.times[-1]), -lv.times[-1], lv) for lv in live]
            heapify(tails)
        while tails:
            entry = tails[0]
            level = entry[2]
            if level.times and level.times[-1] == -entry[1]:
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
                    "-" if root is None else f"{root.item!r}@{root.priority!r}",
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
