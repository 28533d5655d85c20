"""`RedisPriorityQueue`'s readers and its stored settings: a mixin, kept apart so that each
module reads in one sitting.

`stats()`, `accounting()`, `dead_letters()`, `top()` and `lease_holders()` read the shared
queue (one script each); `set_aging()` and `set_overflow()` change the settings stored for
every process, atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.checks import check_choice, check_count, check_rate
from engine.reprs import describe
from engine.snapshots import Accounting, DeadLetter, HeapEntry, PriorityStats, QueueStats

__all__ = ["LeaseHolder", "QueueReading", "RedisQueueStats"]

TOP_REPR = 80
"""Characters of a payload's repr in `top()` (as the in-process pool shows them)."""


@dataclass(frozen=True, slots=True)
class RedisQueueStats(QueueStats):
    """`QueueStats` of the shared queue (read in one script), plus what leases add.

    Meaningless for the queue as a whole, as they are this process's own: blocked_putters,
    blocked_getters, every wait/put_block/get_wait percentile (per_priority's too) and
    is_shutdown. The rest is shared by every process (docs/redis.md).
    """

    leased: int = 0
    """Items leased and not yet acked (what `Accounting.in_flight` calls in flight)."""
    retry_scheduled: int = 0
    """Nacked items waiting for their delay before they go back."""
    submitted: int = 0
    completed: int = 0
    dead_lettered: int = 0
    redelivered: int = 0
    """Deliveries that followed an expired lease."""
    expired: int = 0
    """Leases the reaper found past their deadline."""
    stale_acks: int = 0
    """Acks, nacks and extends refused because their lease had been reaped."""


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """The leases one consumer (a host) holds now, from `lease_holders()`."""

    consumer: str
    leased: int
    soonest: float
    """Seconds until the first of its leases runs out (server clock; < 0: past already)."""
    latest: float
    """Seconds until the last of them runs out: all of its items are back by then."""


_SHARED = ("puts", "gets", "evicted", "rejected", "submitted", "completed", "dead_lettered",
           "redelivered", "expired", "stale_acks")  # fmt: skip


class QueueReading:
    """The reading half of `RedisPriorityQueue` (it provides the attributes below)."""

    __slots__ = ()
    _call: Any
    _retrying: Any
    _redis: Any
    _prefix: str
    _codec: Any
    _item_repr: Any
    _rate: float
    _overflow: Any
    _depth: int
    _maxsize: int
    _blocked: list[int]
    _is_shutdown: bool
    _waits: Any
    _wait_series: Any
    _put_blocked: Any
    _get_waited: Any
    _member: Any

    async def stats(self) -> RedisQueueStats:
        """The shared queue's figures read in one script (O(P)), plus this process's waits."""
        reply = await self._call("STATS")
        now = float(reply[0])
        self._adopt_settings(reply[4], reply[5])
        bar = reply.index(b"|")
        counters = {k.decode(): int(v) for k, v in zip(reply[6:bar:2], reply[7:bar:2], strict=True)}
        self._depth = counters.get("depth", 0)
        levels = []
        oldest = 0.0
        for i in range(bar + 1, len(reply), 3):
            priority = float(reply[i])
            wait = max(0.0, now - float(reply[i + 2].split(b":")[1]))
            oldest = max(oldest, wait)
            window = self._wait_series.get(priority)
            p50, p99 = window.percentiles(50, 99) if window is not None else (None, None)
            levels.append(PriorityStats(priority, int(reply[i + 1]), wait, p50, p99))
        seen = {level.priority for level in levels}
        for priority, window in self._wait_series.items():
            if priority not in seen and len(window):
                levels.append(PriorityStats(priority, 0, 0.0, *window.percentiles(50, 99)))
        levels.sort(key=lambda level: level.priority)
        wait_p50, wait_p99 = self._waits.percentiles(50, 99)
        put_p50, put_p99 = self._put_blocked.percentiles(50, 99)
        get_p50, get_p99 = self._get_waited.percentiles(50, 99)
        return RedisQueueStats(
            depth=self._depth, maxsize=self._maxsize, peak_depth=counters.get("peak", 0),
            blocked_putters=self._blocked[0], blocked_getters=self._blocked[1],
            overflow=self._overflow.value, aging_rate=self._rate, oldest_wait=oldest,
            per_priority=tuple(levels), wait_p50=wait_p50, wait_p99=wait_p99,
            put_block_p50=put_p50, put_block_p99=put_p99, get_wait_p50=get_p50,
            get_wait_p99=get_p99, is_shutdown=self._is_shutdown, leased=int(reply[1]),
            retry_scheduled=int(reply[2]), **{name: counters.get(name, 0) for name in _SHARED},
        )  # fmt: skip

    async def accounting(self) -> Accounting:
        """Every submitted item's one fate, read atomically: `lost` must be 0."""
        s = await self.stats()
        return Accounting(
            s.submitted, s.completed, s.dead_lettered, s.evicted, s.rejected,
            queued=s.depth, in_flight=s.leased, retry_scheduled=s.retry_scheduled,
        )  # fmt: skip

    async def dead_letters(self, limit: int = 100) -> tuple[DeadLetter, ...]:
        """The newest `limit` dead letters, oldest first (they stay in Redis)."""
        check_count("limit", limit, 1)
        records = await self._retrying(lambda: self._redis.lrange(self._prefix + "dead", -limit, -1))
        out = []
        for record in records:
            head, payload = record.split(b"\n", 1)
            job_id, priority, attempts, _, at, reason = head.decode().split("|", 5)
            item = self._codec.decode(payload)
            text = describe(item, 80, self._item_repr)
            out.append(
                DeadLetter(text, float(priority), int(attempts), reason, float(at), item, int(job_id))
            )
        return tuple(out)

    async def top(self, k: int, priority: float | None = None) -> tuple[HeapEntry, ...]:
        """The best `k` queued entries (at `priority` only, if given), best first, in one
        script: O(log P + k log k). Entries carry no payload: `item` is None, `item_repr` the
        payload through the `item_repr` hook, `seq` and `job_id` the arrival number."""
        check_count("k", k, 1)
        member = "" if priority is None else self._member(priority)
        reply = await self._call("TOP", k, member)
        now = float(reply[0])
        decode, hook, out = self._codec.decode, self._item_repr, []
        for i in range(1, len(reply), 3):
            level = float(reply[i])
            job_id, enqueued, attempt, _ = reply[i + 1].split(b":")
            first, text = float(enqueued), "<undecodable>"
            try:
                text = describe(decode(reply[i + 2]), TOP_REPR, hook)
            except Exception:  # a payload another process wrote with another codec
                pass
            waited = max(0.0, now - first)
            out.append(HeapEntry(None, level, level - self._rate * waited, int(job_id), waited,
                                 text, int(job_id), int(attempt), first))  # fmt: skip
        return tuple(out)

    async def lease_holders(self) -> tuple[LeaseHolder, ...]:
        """Who holds leases now, by consumer name (leases taken without one are not listed):
        O(leases). A host that died keeps its leases until they run out and the reaper
        returns them; `latest` says when."""
        reply = await self._call("LEASES")
        now = float(reply[0])
        return tuple(
            LeaseHolder(reply[i].decode(), int(reply[i + 1]), float(reply[i + 2]) - now,
                        float(reply[i + 3]) - now)
            for i in range(1, len(reply), 4)
        )  # fmt: skip

    # ------------------------------------------------------------------ stored settings

    async def set_aging(self, rate: float) -> float:
        """Store a new aging rate for every process, rescoring the levels atomically (O(P))."""
        reply = await self._call("SETTINGS", "aging_rate", repr(check_rate("rate", rate)))
        self._adopt_settings(*reply)
        return self._rate

    async def set_overflow(self, policy: Any) -> str:
        """Store a new overflow policy for every process; the next put anywhere applies it."""
        from engine.queue import Overflow

        value = check_choice("overflow", policy, Overflow).value
        self._adopt_settings(*await self._call("SETTINGS", "overflow", value))
        return self._overflow.value

    def _adopt_settings(self, rate: bytes, overflow: bytes) -> None:
        from engine.queue import Overflow

        self._rate = float(rate)
        if overflow:
            self._overflow = Overflow(overflow.decode())
