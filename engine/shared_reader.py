"""`SharedQueueReader`: a shared queue seen from Redis alone, as one `EngineSnapshot`.

What `heapwatch attach redis://HOST:PORT/DB?name=Q` shows, kept free of the UI: the queue's
panels from its stats (one script), the heap's rows from `top()`, the workers of every process
from its heartbeat (grouped by host: `PoolSnapshot.hosts`), a host whose heartbeat expired as
lost with the leases it still holds and when they run out (Redis TIME), the alerts of every
host, and starvation from a `Watchdog` of this process over the shared queue's view.

It reads, and changes nothing but what `set_aging` / `set_overflow` store for every process.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from typing import Any

from engine.shared import Periodic, QueueTarget, SharedQueueError, SharedQueueView, read_heartbeats
from engine.snapshots import (
    Accounting,
    Alert,
    AlertKind,
    EngineSnapshot,
    HostSnapshot,
    PoolSnapshot,
    ProcessStats,
    ShutdownPhase,
    WorkerSnapshot,
    WorkerState,
)

__all__ = ["LOST_LINGER", "SharedQueueReader"]

LOST_LINGER = 60.0
"""Seconds a host whose heartbeat expired stays listed as lost once it holds no lease."""
TOP_ENTRIES = 20
DEAD_LETTERS = 20
RATE_WINDOW = 5.0
"""Seconds the completion and submission rates are measured over."""


def _no_stacks(task: Any, role: Any) -> bool:
    """The stacks of the processes on the queue are theirs; this one's would only mislead."""
    return False


class SharedQueueReader(Periodic):
    """Reads the shared queue at `target` every `interval` seconds; `snapshot()` is instant.

    `open()` says, as a `SharedQueueError` (one line), why it cannot: Redis unreachable, a
    refused password, no queue of that name. `clock`: leave as default unless testing.
    """

    what = "reading the shared queue"

    def __init__(self, target: QueueTarget, *, interval: float = 1.0, sla: float = 2.0,
                 clock: Any = time.monotonic) -> None:
        from engine.redis_queue import RedisPriorityQueue
        from engine.watchdog import Watchdog

        super().__init__(interval)
        self.target = target
        self.clock = clock
        self.client = target.client()
        # aging_rate=None: whatever every process agreed on (and a dashboard may change).
        self.queue = RedisPriorityQueue(self.client, target.name, aging_rate=None)
        self.view = SharedQueueView(self.queue, interval=interval, clock=clock, top=TOP_ENTRIES)
        self.watchdog = Watchdog(self.view, None, interval=min(0.5, interval), sla=sla,
                                 loop_block_ms=None, clock=clock, keep_task=_no_stacks)  # fmt: skip
        self._started = clock()
        self._beats: list[dict[str, Any]] = []
        self._holders: dict[str, Any] = {}
        self._dead: tuple[Any, ...] = ()
        self._seen: dict[str, tuple[float, dict[str, Any]]] = {}  # host -> (clock, last beat)
        self._ids: dict[str, int] = {}  # worker and alert keys present now -> their number
        self._last_id = 0
        self._alert_times: dict[str, tuple[float, float | None]] = {}
        self._counts: deque[tuple[float, int, int]] = deque()

    async def open(self) -> None:
        try:
            await self.target.check(self.client)
            if not await self.client.exists(f"heapwatch:{{{self.target.name}}}:meta"):
                raise SharedQueueError(
                    f"{self.target.shown}: no such queue (no process has used it)")
        except SharedQueueError:
            await self.client.aclose()
            raise
        await self.start()
        await self.watchdog.start()

    async def close(self) -> None:
        await self.watchdog.stop()
        await self.stop()
        await self.client.aclose()

    async def tick(self) -> None:
        """One reading: stats and top, heartbeats, who holds leases, the latest dead letters."""
        stats = await self.view.refresh()
        self._beats = await read_heartbeats(self.client, self.target.name)
        self._holders = {h.consumer: h for h in await self.queue.lease_holders()}
        self._dead = tuple(dataclasses.replace(d, item=None)
                           for d in await self.queue.dead_letters(DEAD_LETTERS))
        now = self.clock()
        for beat in self._beats:
            self._seen[beat["host"]] = (now, beat)
        self._prune(now)
        self._counts.append((now, stats.completed, stats.submitted))
        while len(self._counts) > 2 and now - self._counts[1][0] >= RATE_WINDOW:
            self._counts.popleft()

    async def set_aging(self, rate: float) -> float:
        rate = await self.queue.set_aging(rate)
        await self.view.refresh()
        return rate

    async def set_overflow(self, policy: str) -> str:
        policy = await self.queue.set_overflow(policy)
        await self.view.refresh()
        return policy

    # ------------------------------------------------------------------ the snapshot

    def _id(self, key: str) -> int:
        """A stable small number for a worker or an alert named by host (never reused)."""
        number = self._ids.get(key)
        if number is None:
            self._last_id += 1
            number = self._ids[key] = self._last_id
        return number

    def _prune(self, now: float) -> None:
        """Forget the workers, alerts and hosts that are gone: over a long attach, processes
        come and go, and what they named must not pile up here."""
        alerts = {str(a["id"]) for beat in self._beats for a in beat.get("alerts", ())}
        keys = {w["id"] for beat in self._beats for w in beat.get("workers", ())} | alerts
        keys |= {f"here#{a.id}" for a in self.watchdog.alerts}
        for key in self._ids.keys() - keys:
            del self._ids[key]
        for key in self._alert_times.keys() - alerts:
            del self._alert_times[key]
        for host, (seen_at, _) in list(self._seen.items()):
            if host not in self._holders and now - seen_at > LOST_LINGER:
                del self._seen[host]  # _hosts() no longer lists it

    def _rates(self) -> tuple[float, float]:
        if len(self._counts) < 2:
            return 0.0, 0.0
        (t0, c0, s0), (t1, c1, s1) = self._counts[0], self._counts[-1]
        span = max(t1 - t0, 1e-9)
        return (c1 - c0) / span, (s1 - s0) / span

    def _workers(self) -> tuple[WorkerSnapshot, ...]:
        out = []
        for beat in self._beats:
            for w in beat.get("workers", ()):
                state = w.get("state", "idle")
                out.append(WorkerSnapshot(
                    id=self._id(w["id"]), name=w["id"].rpartition("/")[2],
                    state=WorkerState(state) if state in WorkerState._value2member_map_
                    else WorkerState.IDLE,
                    item_repr=w.get("item"), priority=w.get("priority"),
                    busy_for=float(w.get("busy_for") or 0.0), attempt=int(w.get("attempt") or 0),
                    done=int(w.get("done") or 0), failed=int(w.get("failed") or 0),
                    retried=int(w.get("retried") or 0), throughput=0.0, host=beat["host"],
                ))  # fmt: skip
        return tuple(out)

    def _hosts(self) -> tuple[HostSnapshot, ...]:
        now = self.clock()
        live = {beat["host"]: beat for beat in self._beats}
        hosts = []
        for host in sorted(set(live) | set(self._holders) | set(self._seen)):
            holder = self._holders.get(host)
            leased = holder.leased if holder is not None else 0
            if host in live:
                beat = live[host]
                hosts.append(HostSnapshot(host, beat.get("role", ""), True,
                                          len(beat.get("workers", ())), leased))
                continue
            seen_at, beat = self._seen.get(host, (now, {}))
            if holder is None and now - seen_at > LOST_LINGER:
                continue
            back_in = max(0.0, holder.latest) if holder is not None else None
            hosts.append(HostSnapshot(host, beat.get("role", ""), False,
                                      len(beat.get("workers", ())), leased, back_in))
        return tuple(hosts)

    def _alerts(self) -> tuple[Alert, ...]:
        now = self.clock()
        out = [dataclasses.replace(a, id=self._id(f"here#{a.id}")) for a in self.watchdog.alerts]
        for beat in self._beats:
            for a in beat.get("alerts", ()):
                key = str(a["id"])
                started, resolved = self._alert_times.get(key, (now, None))
                if not a.get("active") and resolved is None:
                    resolved = now
                self._alert_times[key] = (started, resolved)
                kind = a.get("kind", "")
                out.append(Alert(
                    id=self._id(key),
                    kind=AlertKind(kind) if kind in AlertKind._value2member_map_
                    else AlertKind.LOOP_BLOCKED,
                    started_at=started, message=f"{beat['host']}: {a.get('message', '')}",
                    resolved_at=None if a.get("active") else resolved,
                ))  # fmt: skip
        out.sort(key=lambda alert: (alert.resolved_at is not None, -alert.started_at))
        return tuple(out)

    def snapshot(self) -> EngineSnapshot:
        stats = self.view.stats()
        now, wall = self.clock(), time.time()
        completion, submission = self._rates()
        accounting = Accounting(
            stats.submitted, stats.completed, stats.dead_lettered, stats.evicted,
            stats.rejected, queued=stats.depth, in_flight=stats.leased,
            retry_scheduled=stats.retry_scheduled,
        ) if hasattr(stats, "leased") else Accounting()  # fmt: skip
        pool = PoolSnapshot(
            workers=self._workers(), phase=ShutdownPhase.RUNNING, phases=(), paused=False,
            accounting=accounting, completion_rate=completion, retries=(),
            dead_letters=self._dead, last_drain_time=None, hosts=self._hosts(),
            taken_at=now, wall_time=wall,
        )  # fmt: skip
        watchdog = dataclasses.replace(self.watchdog.snapshot(stats), alerts=self._alerts())
        return EngineSnapshot(
            at=now - self._started, scenario=f"shared queue {self.target.name}", seed=0,
            queue=dataclasses.replace(stats, taken_at=now, wall_time=wall),
            top=self.view.top(TOP_ENTRIES), pool=pool, watchdog=watchdog,
            process=ProcessStats(0.0, 0), producers_paused=False, submitted_rate=submission,
            started_at=self._started, taken_at=now, wall_time=wall,
        )  # fmt: skip
