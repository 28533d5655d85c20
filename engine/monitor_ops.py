"""What a monitor reads and what its clients may ask for.

`Operations` builds one `EngineSnapshot` from whatever the service gave (`queue`, `pool`,
`watchdog`, any subset, or an `engine`) and carries out requests. Read-only requests: stacks,
top(k), a memory profile (at most one every `MEMORY_EVERY` seconds). Control requests, only for
a client granted control: cancel, add and remove workers, pause and resume getting, the overflow
policy, aging, a graceful shutdown. There is deliberately no request for bursts, floods, loop
blocks, code to evaluate or objects to unpickle: the set below is the whole surface.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import math
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from engine.ledger import job_text
from engine.loopmonitor import LoopBlock, LoopMonitor
from engine.reprs import ItemRepr
from engine.snapshots import (
    Accounting,
    Alert,
    AlertKind,
    Capability,
    EngineSnapshot,
    Event,
    HeapEntry,
    PoolSnapshot,
    ProcessStats,
    QueueStats,
    ShutdownPhase,
    WatchdogSnapshot,
)
from engine.stacks import capture_task_stacks
from engine.wire import Codec, strip_payloads

__all__ = ["CONTROL_OPS", "READ_OPS", "Operations", "RequestError"]

TOP_ENTRIES = 20
EVENTS_KEPT = 50
PROCESS_EVERY = 1.0
RATE_WINDOW = 5.0
"""Seconds the arrival rate is measured over."""
MAX_TOP = 1000
MEMORY_EVERY = 10.0
"""Seconds between memory profiles: each holds the service's loop for a short stretch."""
LOOP_TIMEOUT = 2.0
MEMORY_TIMEOUT = 30.0

READ_OPS = frozenset({"stacks", "top", "memory"})
CONTROL_OPS = frozenset({"cancel_worker", "add_worker", "remove_worker", "pause", "resume",
                         "set_overflow", "set_aging", "shutdown"})
OVERFLOW_POLICIES = ("block", "reject", "evict-lowest")

OnLoop = Callable[[Callable[[], Any], float], Awaitable[Any]]


class RequestError(Exception):
    """A request refused or failed; the message is the one line the client shows."""


def _empty_queue() -> QueueStats:
    return QueueStats(depth=0, maxsize=0, peak_depth=0, puts=0, gets=0, evicted=0, rejected=0,
                      blocked_putters=0, blocked_getters=0, overflow="block", aging_rate=0.0,
                      oldest_wait=0.0, per_priority=(), wait_p50=None, wait_p99=None,
                      put_block_p50=None, put_block_p99=None, get_wait_p50=None,
                      get_wait_p99=None)


def _empty_pool() -> PoolSnapshot:
    return PoolSnapshot(workers=(), phase=ShutdownPhase.RUNNING, phases=(), paused=False,
                        accounting=Accounting(), completion_rate=0.0, retries=(),
                        dead_letters=(), last_drain_time=None)


def _optional_id(args: dict[str, Any]) -> int | None:
    worker_id = args.get("worker_id")
    if worker_id is not None and (isinstance(worker_id, bool) or not isinstance(worker_id, int)):
        raise RequestError(f"worker_id must be an integer or null, not {worker_id!r}")
    return worker_id


def _number(args: dict[str, Any], name: str, default: float | None) -> float | None:
    value = args.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or value < 0:
        raise RequestError(f"{name} must be a number >= 0, not {value!r}")
    return float(value)


class Operations:
    """The service side of every request. Snapshot and requests run on the service's loop."""

    def __init__(self, *, queue: Any = None, pool: Any = None, watchdog: Any = None,
                 engine: Any = None, item_repr: ItemRepr | None = None,
                 name: str | None = None, allow_control: bool = False, clock: Callable[[], float] = time.monotonic) -> None:
        if engine is not None and (queue, pool, watchdog) != (None, None, None):
            raise ValueError("give either engine or queue/pool/watchdog, not both")
        if engine is None and (queue, pool, watchdog) == (None, None, None):
            raise ValueError("nothing to watch: give queue, pool, watchdog (any of them) or engine")
        if engine is not None and item_repr is not None:
            raise ValueError("an engine makes its reprs with its own hook: give item_repr to "
                             "the engine, not to serve_monitor")
        self.given = (queue, pool, watchdog, engine)
        if engine is not None:
            queue, pool, watchdog = engine.queue, engine.pool, engine.watchdog
        pool = pool if pool is not None else getattr(watchdog, "pool", None)
        queue = queue if queue is not None else getattr(pool, "queue", None)
        queue = queue if queue is not None else getattr(watchdog, "queue", None)
        self.queue, self.pool, self.watchdog, self.engine = queue, pool, watchdog, engine
        self.item_repr = item_repr
        """The hook given to serve_monitor: every repr it sends is made through it, on the
        loop, over the queue's and the pool's own (None: theirs)."""
        self.name = name or f"pid {os.getpid()}"
        self.allow_control = allow_control
        self.events: Any = next((log for log in (getattr(pool, "events", None),
                                                 getattr(watchdog, "events", None))
                                 if log is not None), None)
        """The service's EventLog (the pool's or the watchdog's), for the snapshot's events."""
        self._clock = clock
        self._capabilities: frozenset[Capability] | None = None
        self._started = clock()
        self._last_memory: float | None = None
        self._shutdown: asyncio.Future[Any] | None = None
        self._alerts: collections.deque[Alert] = collections.deque(maxlen=20)
        self._alert_ids = 0
        self._process: Any = None
        self._process_read: tuple[float, ProcessStats] | None = None
        self._puts: collections.deque[tuple[float, int]] = collections.deque()
        """(time, queue.puts) over the last RATE_WINDOW s: the snapshot's arrival rate."""
        try:
            import psutil

            self._process = psutil.Process(os.getpid())
        except Exception:  # psutil missing or refused: the process panel reads zeros
            self._process = None
        self.loop_monitor: LoopMonitor | None = None
        if watchdog is None and engine is None:
            # Nobody watches the loop: the monitor brings its own, for lag and blocked alerts.
            self.loop_monitor = LoopMonitor(on_block=self._on_block, on_unblock=self._on_unblock)
            self.loop_monitor.start()

    def watches(self, queue: Any, pool: Any, watchdog: Any, engine: Any) -> bool:
        """True when every object given is the one this monitor already watches."""
        return all(new is None or new is old
                   for new, old in zip((queue, pool, watchdog, engine), self.given, strict=True))

    def close(self) -> None:
        if self.loop_monitor is not None:
            self.loop_monitor.stop()

    # ------------------------------------------------------------------ capabilities

    def capabilities(self, *, control: bool) -> set[str]:
        can = {Capability.STACKS.value}
        if self.queue is not None:
            can.add(Capability.MEMORY.value)
        if not control:
            return can
        if self.pool is not None:
            can |= {Capability.CANCEL_WORKER, Capability.ADD_WORKER, Capability.REMOVE_WORKER,
                    Capability.PAUSE_GETTING, Capability.SHUTDOWN}
        if self.queue is not None:
            can |= {Capability.OVERFLOW, Capability.AGING}
        return {str(c) for c in can}

    def _capability_set(self) -> frozenset[Capability]:
        # What the service allows does not change while it runs: made once, not every tick.
        if self._capabilities is None:
            self._capabilities = frozenset(
                Capability(c) for c in self.capabilities(control=self.allow_control))
        return self._capabilities

    # ------------------------------------------------------------------ on the service's loop

    def snapshot(self) -> EngineSnapshot:
        if self.engine is not None:
            return self.engine.snapshot()
        now = self._clock()
        queue, pool = self.queue, self.pool
        stats = queue.stats() if queue is not None else _empty_queue()
        if self.watchdog is not None:
            # One stats() per snapshot: the watchdog's sizing advice reuses it.
            watchdog = self.watchdog.snapshot(stats) if queue is not None else \
                self.watchdog.snapshot()
        else:
            watchdog = self._own_watchdog_snapshot()
        log = self.events
        return EngineSnapshot(
            at=now - self._started,
            scenario=self.name,
            seed=0,
            queue=stats,
            top=self._top(TOP_ENTRIES),
            pool=pool.snapshot(item_repr=self.item_repr) if pool is not None else _empty_pool(),
            watchdog=watchdog,
            process=self._process_stats(),
            producers_paused=False,
            submitted_rate=self._arrival_rate(now, stats.puts),
            events=self._events(log.recent(EVENTS_KEPT)) if log is not None else (),
            last_event_seq=log.last_seq if log is not None else 0,
            started_at=self._started,
            capabilities=self._capability_set(),
            taken_at=now,
            wall_time=time.time(),
        )

    def _top(self, k: int) -> tuple[HeapEntry, ...]:
        """The best `k` entries, each job unwrapped (its payload, id and attempt), through the
        service's hook, else the pool's (the queue's, with no pool)."""
        if self.pool is not None and self.pool.queue is self.queue:
            return self.pool.top(k, item_repr=self.item_repr)
        if self.queue is None:
            return ()
        return self.queue.top(k, item_repr=self.item_repr, unwrap=True)

    def _events(self, events: tuple[Event, ...]) -> tuple[Event, ...]:
        """The events, each item one names shown through the service's hook (if it has one)."""
        hook = self.item_repr
        if hook is None:
            return events
        shown = []
        for event in events:
            if event.item_repr:
                text = job_text(event.job_id or 0, event.item, hook)
                message = event.message.replace(event.item_repr, text, 1)
                event = dataclasses.replace(event, item_repr=text, message=message)
            shown.append(event)
        return tuple(shown)

    def _arrival_rate(self, now: float, puts: int) -> float:
        """Items put per second over the last RATE_WINDOW s (requeues are not arrivals)."""
        window = self._puts
        window.append((now, puts))
        while now - window[0][0] > RATE_WINDOW:
            window.popleft()
        (t0, p0), (t1, p1) = window[0], window[-1]
        return (p1 - p0) / (t1 - t0) if t1 > t0 else 0.0

    def _process_stats(self) -> ProcessStats:
        # Read once a second, not every tick: the figures move slowly and psutil is not free.
        now = time.monotonic()
        if self._process_read is not None and now - self._process_read[0] < PROCESS_EVERY:
            return self._process_read[1]
        stats = ProcessStats(cpu_percent=0.0, rss_bytes=0)
        if self._process is not None:
            try:
                with self._process.oneshot():
                    stats = ProcessStats(cpu_percent=self._process.cpu_percent(None),
                                         rss_bytes=self._process.memory_info().rss)
            except Exception:
                pass
        self._process_read = (now, stats)
        return stats

    def _own_watchdog_snapshot(self) -> WatchdogSnapshot:
        monitor = self.loop_monitor
        p50, p99, worst = monitor.lag_stats() if monitor is not None else (None, None, 0.0)
        alerts = tuple(sorted(self._alerts, key=lambda a: (not a.active, -a.id)))
        return WatchdogSnapshot(alerts=alerts, stacks=(), loop_lag_p50=p50, loop_lag_p99=p99,
                                loop_lag_max=worst, sample_cost=0.0, sizing=None)

    def _on_block(self, block: LoopBlock) -> None:
        self._alert_ids += 1
        self._alerts.append(Alert(
            id=self._alert_ids, kind=AlertKind.LOOP_BLOCKED, started_at=block.due_at,
            message=f"event loop blocked for {block.late_by * 1000:.0f} ms+ in {block.culprit}",
            wait=block.late_by, culprit=block.culprit, loop_stack=block.stack))

    def _on_unblock(self, lag: float) -> None:
        if self._alerts and self._alerts[-1].active:
            last = self._alerts.pop()
            self._alerts.append(dataclasses.replace(
                last, resolved_at=self._clock(), peak_wait=lag,
                message=f"event loop blocked for {lag * 1000:.0f} ms in {last.culprit}"))

    # ------------------------------------------------------------------ requests

    async def run(self, op: Any, args: dict[str, Any], *, control: str, on_loop: OnLoop) -> Any:
        """Carry out one request; `control` is 'granted', 'not-allowed' or 'not-asked'."""
        if op in READ_OPS:
            return await getattr(self, f"_op_{op}")(args, on_loop)
        if op not in CONTROL_OPS:
            known = ", ".join(sorted(READ_OPS | CONTROL_OPS | {"subscribe", "snapshot"}))
            raise RequestError(f"unknown request {op!r} (this monitor answers: {known})")
        if control == "not-allowed":
            raise RequestError(f"{op} refused: control is off (the service did not pass "
                               "allow_control=True to serve_monitor)")
        if control != "granted":
            raise RequestError(f"{op} refused: this client did not ask for control "
                               "(attach with --control)")
        return await self._control(op, args, on_loop)

    async def _op_stacks(self, args: dict[str, Any], on_loop: OnLoop) -> Any:
        watchdog = self.watchdog

        def capture() -> Any:
            if watchdog is not None:
                return watchdog.capture_stacks()
            return capture_task_stacks(asyncio.get_running_loop())

        return Codec.plain(await on_loop(capture, LOOP_TIMEOUT))

    async def _op_top(self, args: dict[str, Any], on_loop: OnLoop) -> Any:
        k = args.get("k", TOP_ENTRIES)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_TOP:
            raise RequestError(f"k must be an integer in 1..{MAX_TOP}, not {k!r}")
        self._need("queue")
        entries = await on_loop(lambda: self._top(k), LOOP_TIMEOUT)
        return Codec.plain(strip_payloads(tuple(entries)))

    async def _op_memory(self, args: dict[str, Any], on_loop: OnLoop) -> Any:
        queue = self._need("queue")
        now = time.monotonic()
        if self._last_memory is not None and now - self._last_memory < MEMORY_EVERY:
            raise RequestError(f"a memory profile was taken {now - self._last_memory:.1f} s ago:"
                               f" at most one every {MEMORY_EVERY:g} s")
        self._last_memory = now
        watchdog = self.watchdog
        if watchdog is None or not hasattr(watchdog, "memory_profile"):
            from engine.watchdog import Watchdog

            watchdog = Watchdog(queue, loop_block_ms=None)
        return Codec.plain(await on_loop(watchdog.memory_profile, MEMORY_TIMEOUT))

    def _need(self, what: str) -> Any:
        value = getattr(self, what)
        if value is None:
            raise RequestError(f"the service gave the monitor no {what}")
        return value

    async def _control(self, op: str, args: dict[str, Any], on_loop: OnLoop) -> Any:
        if op in ("set_overflow", "set_aging"):
            queue = self._need("queue")
            if op == "set_overflow":
                policy = args.get("policy")
                if policy not in OVERFLOW_POLICIES:
                    raise RequestError(f"policy must be one of {', '.join(OVERFLOW_POLICIES)},"
                                       f" not {policy!r}")
                await on_loop(lambda: setattr(queue, "overflow", policy), LOOP_TIMEOUT)
                return policy
            rate = _number(args, "rate", None)
            if rate is None:
                raise RequestError("set_aging needs a rate (priority points per second, >= 0)")
            await on_loop(lambda: setattr(queue, "aging_rate", rate), LOOP_TIMEOUT)
            return rate
        pool = self._need("pool")
        if op == "cancel_worker":
            worker_id = _optional_id(args)

            def cancel() -> int | None:
                chosen = worker_id if worker_id is not None else pool.busiest_worker()
                return chosen if chosen is not None and pool.cancel_worker(chosen) else None

            return await on_loop(cancel, LOOP_TIMEOUT)
        if op == "add_worker":
            return await on_loop(pool.add_worker, LOOP_TIMEOUT)
        if op == "remove_worker":
            worker_id = _optional_id(args)
            return await on_loop(lambda: pool.remove_worker(worker_id), LOOP_TIMEOUT)
        if op in ("pause", "resume"):
            await on_loop(getattr(pool, op), LOOP_TIMEOUT)
            return op == "pause"
        # shutdown: started on the service's loop; the snapshots show the drain.
        drain_timeout = _number(args, "drain_timeout", 10.0)
        if self._shutdown is not None:
            return "already started"

        def start() -> None:
            self._shutdown = asyncio.ensure_future(pool.shutdown(drain_timeout))

        await on_loop(start, LOOP_TIMEOUT)
        return "started"
