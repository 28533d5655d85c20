"""`Level`: the queued items of one distinct priority, for `engine.queue.PriorityQueue`.

Arrivals go to two parallel deques (enqueue times and items): a FIFO, so that two puts in the
same clock tick need no nudging, and 8 bytes a pointer per item. A FIFO item's seq, its place
in arrival order, is `served` plus its index.

An item got and given back with its arrival token, (first arrival, seq, tie, level), goes to
`back`, a min-heap of (first arrival, seq, tie, item), small because it holds only the items
that went out and came back. The level serves the earlier, by (time, seq), of the FIFO's
head and `back`'s top, so a returned item is served at its original place: O(log R), never an
insertion into the middle of a deque. A requeue at the tail takes seq `n - 0.5` (between the
FIFO's last item and the next one) and a fresh tie, so requeues there stay FIFO too.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from heapq import heapify, merge
from itertools import count, repeat
from typing import Any

__all__ = ["Level"]


class Level:
    """The items of one distinct priority: a FIFO of arrivals plus a heap of returned items."""

    __slots__ = ("priority", "times", "items", "back", "head", "served", "record_wait")

    def __init__(self, priority: float, record_wait: Callable[[float], None]) -> None:
        self.priority = priority
        self.times: deque[float] = deque()
        self.items: deque[Any] = deque()
        self.back: list[tuple[float, int, int, Any]] = []
        self.head: tuple[float, float, Level] | None = None
        """This level's live entry in the head heap (entries that are not it are stale)."""
        self.served = 0
        """Items that left the FIFO from the front: the seq of the FIFO's current head."""
        self.record_wait = record_wait

    def __lt__(self, other: Level) -> bool:
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
