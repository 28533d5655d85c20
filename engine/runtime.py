"""`Engine`: one scenario's queue, pool, watchdog and producers, on the running event loop.

The dashboard and the headless command both drive an Engine the same way: `await start()`,
read `snapshot()` on a timer, call the live controls (`burst`, `cancel_worker`, ...), then
`await shutdown()` and `report()`. The Engine never owns the loop: it runs on Textual's in the
app and on `asyncio.run`'s headless.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psutil

from engine.events import EventLog
from engine.load import LoadGenerator, SimulatedHandler
from engine.pool import WorkerPool
from engine.queue import Overflow, PriorityQueue
from engine.report import build_report, spill_records
from engine.reprs import ItemRepr
from engine.scenario import Scenario
from engine.snapshots import (
    Alert,
    BurstResult,
    Capability,
    EngineSnapshot,
    Event,
    EventKind,
    HeapEntry,
    MemoryProfile,
    ProcessStats,
    ShutdownReport,
    StackGroup,
    Stamped,
    TaskRole,
)
from engine.watchdog import Watchdog

__all__ = ["Engine"]

_log = logging.getLogger(__name__)

_OVERFLOW_CYCLE = (Overflow.BLOCK, Overflow.REJECT, Overflow.EVICT_LOWEST)
DEFAULT_AGING_RATE = 1.0
"""Priority points per second `toggle_aging()` turns on when the scenario has no rate."""
TOP_ENTRIES = 20
"""Heap entries a snapshot carries (the dashboard's heap view)."""
ALERTS_KEPT = 1000
"""Alerts the report lists (the oldest fall out of a very long run)."""
EVENTS_IN_SNAPSHOT = 50
"""Recent events a snapshot carries; a reader that polls slower sees a gap in `seq`."""
WHILE_SHUTTING_DOWN = frozenset({Capability.STACKS, Capability.MEMORY})
"""A shutdown under way can still be looked at, not steered."""
SHARED_CAPABILITIES = frozenset(Capability) - {
    Capability.AGING, Capability.OVERFLOW, Capability.MEMORY, Capability.RESTART,
}  # fmt: skip
"""On a shared queue the stored settings are every process's, and its items are not in memory."""

_S = TypeVar("_S", bound=Stamped)


ENGINE_TASK_PREFIXES = ("producer-", "heapwatch-")


def _stamped(record: _S, taken_at: float, wall_time: float) -> _S:
    """`record` with the reading's time, unless its builder already stamped it."""
    if record.taken_at or record.wall_time:
        return record
    return dataclasses.replace(record, taken_at=taken_at, wall_time=wall_time)


def _is_engine_task(task: asyncio.Task[Any], role: TaskRole) -> bool:
    """Stacks worth showing: the queue's workers, putters and getters, and our own tasks; the
    event loop's other tasks (the dashboard's, when it runs) are not the queue's story."""
    return role is not TaskRole.OTHER or task.get_name().startswith(ENGINE_TASK_PREFIXES)


class Engine:
    """Runs a `Scenario`: a PriorityQueue, a WorkerPool with the simulated handler, a Watchdog
    and the scenario's producers, all on the running loop.

    Args:
        scenario: what to run (already validated: see `engine.scenario.load_scenario`).
        clock: seconds, monotonic; shared by every part. Leave as default unless testing.
        metrics_port: serve Prometheus metrics on this port (None: no server).
        item_repr: `item_repr(payload) -> str`, how every payload is shown in snapshots
            (through `engine.reprs.describe`); passed to the queue and the pool when they take
            it. None: `repr`.
        shared: run on a queue shared through Redis (`engine.shared.SharedRun`), in its role:
            a producer runs no workers, a worker no producers.

    `events` is the engine's `EventLog`: every part emits there, and `snapshot().events` carries
    the recent ones.
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        clock: Callable[[], float] = time.monotonic,
        metrics_port: int | None = None,
        item_repr: ItemRepr | None = None,
        shared: Any = None,
    ) -> None:
        self.scenario = scenario
        self.shared = shared
        self.clock = clock
        self.metrics_port = metrics_port
        self.item_repr = item_repr
        self.events = EventLog(clock=clock)
        """Every event of the run, in order (created first: the parts emit from the start)."""
        q, p, w = scenario.queue, scenario.pool, scenario.watchdog
        self.queue: Any = PriorityQueue(
            q.maxsize,
            overflow=q.overflow,
            aging_rate=q.aging,
            clock=clock,
            item_repr=item_repr,
        ) if shared is None else shared.queue  # fmt: skip
        # The watchdog and the snapshots read a shared queue through a view refreshed in the
        # background (engine/shared.py): a tick never waits on the network.
        self._watched = self.queue if shared is None else shared.view
        self.handler = SimulatedHandler(
            scenario.handler, seed=scenario.seed, max_attempts=p.max_attempts
        )
        self.pool = WorkerPool(
            self.queue,
            self.handler,
            workers=p.workers if shared is None or shared.consumes else 0,
            max_attempts=p.max_attempts,
            backoff_base=p.backoff_base,
            backoff_cap=p.backoff_cap,
            timeout=p.timeout,
            on_dead_letter=None,
            on_crash=self._on_crash,
            clock=clock,
            rng=random.Random(f"{scenario.seed}:backoff"),
            events=self.events,
            item_repr=item_repr,
        )
        self.watchdog = Watchdog(
            self._watched,
            self.pool,
            interval=w.interval,
            sla=w.sla_ms / 1000,
            sla_by_priority={prio: ms / 1000 for prio, ms in w.sla_ms_by_priority},
            loop_block_ms=w.loop_block_ms or None,
            clock=clock,
            on_alert=self._on_alert,
            keep_task=_is_engine_task,
            events=self.events,
        )
        self.load = LoadGenerator(
            scenario.producers,
            self.pool,
            self.queue,
            seed=scenario.seed,
            clock=clock,
            on_burst=self._on_scheduled_burst,
            on_error=self._error,
        )
        self._aging_rate_on = q.aging or DEFAULT_AGING_RATE
        self._alerts: dict[int, Alert] = {}
        self._process = psutil.Process(os.getpid())
        self._started_at: float | None = None
        self._stopped_at: float | None = None
        self._shutdown_began: float | None = None
        self._shutdown_task: asyncio.Task[ShutdownReport] | None = None
        self._scheduler: asyncio.Task[None] | None = None
        self._metrics: Any = None
        self.cancelled_workers = 0
        """Workers cancelled (by a key or by the scenario's `cancel_every`)."""

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        """True from `start()` until a shutdown begins."""
        return self._started_at is not None and self._shutdown_began is None

    @property
    def shutting_down(self) -> bool:
        """True from the start of a shutdown until it has finished."""
        return self._shutdown_began is not None and self._stopped_at is None

    async def start(self) -> None:
        """Start the workers, the watchdog, the producers (and the metrics server)."""
        if self._started_at is not None:
            raise RuntimeError("the engine was already started")
        if self.metrics_port is not None:
            # Bind first: a port in use fails the start before any work begins.
            from engine.metrics import serve_metrics

            self._metrics = serve_metrics(self.metrics_port, engine=self)
        self._started_at = self.clock()
        await self.pool.start()
        if self.shared is not None:  # after the pool: its first heartbeat lists the workers
            await self.shared.start(self.pool, self.watchdog)
        await self.watchdog.start()
        if self.shared is None or self.shared.produces:
            await self.load.start()
        if self.scenario.pool.cancel_every > 0:
            self._scheduler = asyncio.get_running_loop().create_task(
                self._cancel_on_schedule(self.scenario.pool.cancel_every),
                name="heapwatch-scheduled-cancel",
            )
        self._note(f"started scenario {self.scenario.name!r} (seed {self.scenario.seed})")

    async def _cancel_on_schedule(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            if not self.running:
                return
            cancelled = self.pool.busiest_worker()
            if cancelled is None or not self.pool.cancel_worker(cancelled):
                continue
            self.cancelled_workers += 1
            self.pool.add_worker()
            # The pool's own events say which worker went and which came: this, after them
            # (the cancel has to succeed first), says why, naming the worker it explains.
            self._note(f"worker-{cancelled}'s cancel was the one scheduled every {every:g} s"
                       " ([pool] cancel_every)", worker_id=cancelled)

    async def shutdown(self, drain_timeout: float | None = None) -> ShutdownReport:
        """Stop the producers, then shut the pool down gracefully and stop the watchdog.

        `drain_timeout` defaults to the scenario's `[pool] drain_timeout`. Nothing is lost:
        what the drain could not finish is in the report's `returned`. A second call waits for
        the first one's report.
        """
        if self._shutdown_task is None:
            if self._started_at is None:
                raise RuntimeError("the engine was never started")
            if drain_timeout is None:
                drain_timeout = self.scenario.pool.drain_timeout
            self._shutdown_began = self.clock()
            self._shutdown_task = asyncio.ensure_future(self._shutdown(drain_timeout))
        return await asyncio.shield(self._shutdown_task)

    async def _shutdown(self, drain_timeout: float) -> ShutdownReport:
        self._note(f"graceful shutdown: stopping intake, draining up to {drain_timeout:g} s")
        if self._scheduler is not None:
            self._scheduler.cancel()
        await self.load.stop()
        try:
            report = await self.pool.shutdown(drain_timeout)
        finally:
            self.watchdog.sample()  # the queue is empty now: its alerts resolve, not hang on
            await self.watchdog.stop()
            if self.shared is not None:
                await self.shared.stop()
            await self._close_metrics()
            self._stopped_at = self.clock()
        a = report.accounting
        self._note(
            f"stopped in {report.drain_time:.2f} s: {a.completed} completed,"
            f" {a.returned} returned, {a.lost} lost"
        )
        return report

    @property
    def metrics_url(self) -> str | None:
        """Where the Prometheus metrics are served (None: not served)."""
        return None if self._metrics is None else self._metrics.url

    async def _close_metrics(self) -> None:
        server, self._metrics = self._metrics, None
        if server is not None:
            try:
                await asyncio.to_thread(server.close)
            except Exception as error:  # closing is best effort at exit
                _log.exception("metrics server did not close")
                self._error(f"metrics server did not close: {type(error).__name__}: {error}")

    # ------------------------------------------------------------------ reading

    @property
    def elapsed(self) -> float:
        """Seconds since start (until the end of the shutdown)."""
        if self._started_at is None:
            return 0.0
        end = self._stopped_at if self._stopped_at is not None else self.clock()
        return end - self._started_at

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What the engine can do now: everything while it runs, only RESTART once it has
        stopped, nothing but STACKS and MEMORY while it shuts down (nothing before start)."""
        if self.running and self.shared is not None:
            return SHARED_CAPABILITIES
        if self.running:
            return frozenset(Capability)
        if self.shutting_down:
            return WHILE_SHUTTING_DOWN
        if self._stopped_at is not None:
            return frozenset({Capability.RESTART})
        return frozenset()

    def snapshot(self) -> EngineSnapshot:
        """Everything the dashboard shows, frozen, now: one `queue.stats()` for all of it."""
        now = self.clock()
        wall = time.time()
        try:
            with self._process.oneshot():
                process = ProcessStats(
                    cpu_percent=self._process.cpu_percent(None),
                    rss_bytes=self._process.memory_info().rss,
                )
        except psutil.Error:
            process = ProcessStats(cpu_percent=0.0, rss_bytes=0)
        stats = self._watched.stats()
        return EngineSnapshot(
            at=self.elapsed,
            scenario=self.scenario.name,
            seed=self.scenario.seed,
            queue=_stamped(stats, now, wall),
            top=self.top(TOP_ENTRIES),
            pool=_stamped(self.pool.snapshot(), now, wall),
            watchdog=self.watchdog.snapshot(stats),
            process=process,
            producers_paused=self.load.paused,
            waiting_for_room=self.load.waiting_for_room,
            submitted_rate=self.load.meter.rate(now),
            events=self.events.recent(EVENTS_IN_SNAPSHOT),
            started_at=self._started_at if self._started_at is not None else now,
            last_event_seq=self.events.last_seq,
            capabilities=self.capabilities,
            taken_at=now,
            wall_time=wall,
        )

    def _emit(self, kind: EventKind, message: str, **fields: Any) -> Event:
        _log.log(logging.ERROR if kind is EventKind.ERROR else logging.INFO, "%s", message)
        return self.events.emit(kind, message, **fields)

    def _note(self, message: str, **fields: Any) -> Event:
        return self._emit(EventKind.NOTE, message, **fields)

    def _error(self, message: str) -> None:
        self._emit(EventKind.ERROR, message)

    def _on_scheduled_burst(self, producer: str, result: BurstResult) -> None:
        self._emit(
            EventKind.BURST,
            f"scheduled burst of {result.requested:,} ({producer}): {result.text}",
            burst=result,
        )

    def _on_alert(self, alert: Alert) -> None:
        self._alerts[alert.id] = alert
        if len(self._alerts) > ALERTS_KEPT:
            del self._alerts[next(iter(self._alerts))]

    def _on_crash(self, worker_id: int, error: BaseException) -> None:
        self.watchdog.report_crash(worker_id, error)
        self._emit(
            EventKind.ERROR,
            f"worker-{worker_id} crashed: {type(error).__name__}: {error}",
            worker_id=worker_id,
        )

    # ------------------------------------------------------------------ live controls

    def burst(self, size: int) -> BurstResult:
        """Submit `size` items of mixed priorities now; what became of them (under 'block' the
        ones with no room wait for it, as clients would; under 'reject' they are refused)."""
        result = self.load.burst(size)
        self._emit(EventKind.BURST, f"burst of {size:,}: {result.text}", burst=result)
        return result

    def flood_low(self, size: int) -> BurstResult:
        """Submit `size` items at the lowest priority the producers use; what became of them."""
        lowest = self.load.lowest
        result = self.load.burst(size, priorities=((lowest, 1.0),))
        self._emit(
            EventKind.BURST, f"flood of {size:,} at priority {lowest:g}: {result.text}", burst=result
        )
        return result

    def cancel_worker(self, worker_id: int | None = None) -> int | None:
        """Cancel a worker (None: the busiest); its item goes back to the queue. Its id, or None."""
        if worker_id is None:
            worker_id = self.pool.busiest_worker()
            if worker_id is None:
                return None
        if not self.pool.cancel_worker(worker_id):
            return None
        self.cancelled_workers += 1
        return worker_id

    def add_worker(self) -> int:
        """Start one more worker; its id."""
        return self.pool.add_worker()

    def remove_worker(self) -> int | None:
        """Stop a worker gracefully (an idle one if any); its id, or None."""
        return self.pool.remove_worker()

    def toggle_producers(self) -> bool:
        """Pause or resume the producers; True when now paused."""
        if self.load.paused:
            self.load.resume()
        else:
            self.load.pause()
        self._emit(
            EventKind.POLICY_CHANGED, "producers paused" if self.load.paused else "producers resumed"
        )
        return self.load.paused

    def toggle_aging(self) -> float:
        """Turn aging off, or on at the scenario's rate (1.0/s if it has none); the new rate."""
        rate = 0.0 if self.queue.aging_rate else self._aging_rate_on
        self.queue.aging_rate = rate
        self._emit(
            EventKind.POLICY_CHANGED, f"aging on: {rate:g} priority points/s" if rate else "aging off"
        )
        return rate

    def cycle_overflow(self) -> str:
        """block -> reject -> evict-lowest -> block; the new policy."""
        index = _OVERFLOW_CYCLE.index(Overflow(self.queue.overflow))
        policy = _OVERFLOW_CYCLE[(index + 1) % len(_OVERFLOW_CYCLE)]
        self.queue.overflow = policy
        self._emit(EventKind.POLICY_CHANGED, f"overflow policy: {policy.value}")
        return policy.value

    def block_loop_once(self, seconds: float = 0.5) -> None:
        """Make the next handler call block the event loop for `seconds` (time.sleep)."""
        if not (isinstance(seconds, int | float) and 0 < seconds <= 10):
            raise ValueError(f"seconds must be between 0 and 10, not {seconds!r}")
        self.handler.block_next = float(seconds)
        self._note(f"the next job blocks the loop for {seconds:g} s")

    def top(self, k: int, priority: float | None = None) -> tuple[HeapEntry, ...]:
        """The best `k` queued entries, of one `priority` if given (the queue's own top k: no
        scan of the queue), each job unwrapped as in the snapshot's `top`; on a shared queue,
        as the view last read them from Redis."""
        if self.shared is not None:
            return self.shared.view.top(k, priority)
        return self.pool.top(k, priority)

    def capture_stacks(self) -> tuple[StackGroup, ...]:
        """Capture the blocked-task stacks now (the next snapshot carries them)."""
        groups = self.watchdog.capture_stacks()
        self._note(f"captured stacks: {sum(g.count for g in groups)} tasks in {len(groups)} groups")
        return groups

    async def memory_profile(self) -> MemoryProfile:
        """Bytes per queued item and the top allocation sites (holds the loop briefly)."""
        profile = await self.watchdog.memory_profile()
        self._note(
            f"memory profile: {profile.bytes_per_item:.0f} B/item of queue overhead,"
            f" {profile.payload_bytes_per_item:.0f} B/item of payload at depth {profile.depth}"
        )
        return profile

    # ------------------------------------------------------------------ the report

    def report(self) -> dict[str, Any]:
        """The run's JSON report: counts, identity, throughput, waits, alerts, shutdown
        (built by `engine.report.build_report`; encode it with `engine.report.to_json`)."""
        report = build_report(
            scenario=self.scenario,
            accounting=self.pool.accounting(),
            shutdown=self.pool.report,
            queue=self._watched.stats(),
            elapsed=self.elapsed,
            origin=self._started_at or 0.0,
            alerts=self._alerts.values(),
            submitted_by_priority=self.load.submitted_by_priority,
            handler={
                "calls": self.handler.calls,
                "failures": self.handler.failures,
                "hangs": self.handler.hangs,
                "blocks": self.handler.blocks,
            },
            cancelled_workers=self.cancelled_workers,
            alerts_raised=self.watchdog.alerts_raised(),
            overflow=str(self.queue.overflow),
            aging=self.queue.aging_rate,
        )
        if self.shared is not None:  # this process's deliveries above; the queue's here
            report["shared_queue"] = self.shared.report(self.pool)
        return report

    def returned_items(self) -> list[dict[str, Any]]:
        """What the shutdown handed back, one dict per item (the `--spill` lines)."""
        return spill_records(self.pool.report)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped" if self._stopped_at else "idle"
        return f"<Engine {self.scenario.name!r} {state} {self.pool!r}>"
