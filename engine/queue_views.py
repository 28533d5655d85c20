"""`QueueViews`: what `engine.queue.PriorityQueue` tells about itself, read-only.

Counters, `peek()`/`top()` heap entries, per-priority depths and waits, the frozen `stats()`
snapshot, the repr and the diagnostic log line. A mixin of `PriorityQueue` only: it reads the
queue's levels and counters and changes nothing. Each view costs O(P) or O(k log P) for P
distinct priorities, never O(depth).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from heapq import merge
from itertools import islice
from typing import Any

from engine.checks import check_priority
from engine.protocol import Wrapped
from engine.queue_level import Level
from engine.records import builder
from engine.reprs import ItemRepr, describe
from engine.snapshots import HeapEntry, PriorityStats, QueueStats

__all__ = ["QueueViews"]

_heap_entry = builder(HeapEntry)  # made by the dozen per snapshot: see engine.records
_priority_stats = builder(PriorityStats)


class QueueViews:
    """The read-only half of `PriorityQueue` (see engine.queue for the attributes it reads)."""

    __slots__ = ()
    REPR_LIMIT = 80
    """Characters of a payload's repr kept in heap entries and the queue's repr."""

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
        return self._entry(level.priority, t, seq, item, self._clock(), self.item_repr)

    def top(
        self,
        k: int,
        priority: float | None = None,
        *,
        item_repr: ItemRepr | None = None,
        unwrap: bool = False,
    ) -> tuple[HeapEntry, ...]:
        """The best `k` entries in serving order, without removing them.

        Over the whole queue: O(P + k log P). With `priority`: the best `k` of that priority
        alone, O(k + R log R), R its items put back; the queue is not scanned. `item_repr`:
        the hook of these entries' reprs (default: the queue's). `unwrap`: a `Wrapped` item
        (the pool's job) is shown as its payload, with its job id and attempt.
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
        hook = self.item_repr if item_repr is None else item_repr
        return tuple(
            self._entry(priority, t, seq, item, now, hook, unwrap)
            for _, t, seq, _, priority, item in entries
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
                _priority_stats(
                    priority=priority,
                    depth=len(level) if level is not None else 0,
                    oldest_wait=max(0.0, now - firsts[priority]) if level is not None else 0.0,
                    wait_p50=p50,
                    wait_p99=p99,
                )
            )
        oldest = min(firsts.values(), default=None)
        wait_p50, wait_p99 = self._wait_all.percentiles(50, 99)
        every = self._sample_every  # the sampled events are numbered ordinal // every
        put_p50, put_p99 = self._put_blocked.percentiles(-(-self._puts // every), 50, 99)
        get_p50, get_p99 = self._get_waited.percentiles(-(-self.gets // every), 50, 99)
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

    def _entry(
        self, priority: float, t: float, seq: int, item: Any, now: float,
        hook: ItemRepr | None, unwrap: bool = False,
    ) -> HeapEntry:
        waited = max(0.0, now - t)
        job_id, attempt = None, 0
        if unwrap and isinstance(item, Wrapped):
            job_id, attempt, item = item.id, item.attempts, item.item
        return _heap_entry(
            item=item,
            priority=priority,
            effective_priority=priority - self._aging_rate * waited,
            seq=math.ceil(seq),  # a tail requeue sits between two FIFO seqs (n - 0.5)
            waited=waited,
            item_repr=describe(item, self.REPR_LIMIT, hook),
            job_id=job_id,
            attempt=attempt,
            first_arrival=t,
        )

    def _merged(self) -> Iterator[tuple[float, float, int, int, float, Any]]:
        """Every queued item in serving order: a k-way merge of the levels (lazy)."""
        return merge(*(self._level_entries(level) for level in self._live_levels()))

    def _level_entries(self, level: Level) -> Iterator[tuple[float, float, int, int, float, Any]]:
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
