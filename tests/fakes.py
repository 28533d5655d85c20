"""ScriptedEngine: the Engine API over a small, deterministic state, for UI tests.

It is not a model of the engine (the real one is tested with the real app in test_app.py): it
returns EngineSnapshot objects built from the real dataclasses, changes them the way each
Engine method would, and records every call. Snapshot tests use it with a fixed clock so that
nothing on screen depends on the wall clock.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from engine.snapshots import (
    Accounting,
    Alert,
    AlertKind,
    AllocationSite,
    BurstResult,
    Capability,
    EngineSnapshot,
    Event,
    EventKind,
    HeapEntry,
    MemoryProfile,
    PhaseTiming,
    PoolSnapshot,
    PriorityStats,
    ProcessStats,
    QueueStats,
    RetrySnapshot,
    ShutdownPhase,
    ShutdownReport,
    SizingAdvice,
    StackGroup,
    TaskRole,
    WatchdogSnapshot,
    WorkerSnapshot,
    WorkerState,
)

CLOCK_NOW = 1_000.0
"""What `fixed_clock()` always returns: the scripted engine started at CLOCK_NOW - AT."""
AT = 12.5
"""Seconds since the scripted engine started."""
OVERFLOWS = ("block", "reject", "evict-lowest")


def fixed_clock() -> float:
    """A clock that never moves: snapshots of the UI come out identical every run."""
    return CLOCK_NOW


PRODUCER_STACK = StackGroup(
    role=TaskRole.PRODUCER_BLOCKED,
    count=12,
    frames=(
        "produce (engine/load.py:88)",
        "submit (engine/pool.py:141)",
        "put (engine/queue.py:212)",
    ),
    task_names=("producer-1", "producer-2", "producer-3"),
)
WORKER_STACK = StackGroup(
    role=TaskRole.WORKER,
    count=3,
    frames=("_run (engine/pool.py:260)", "handle (engine/load.py:131)", "sleep (asyncio/tasks.py:665)"),
    task_names=("worker-1", "worker-2", "worker-4"),
)


def many_alerts(active: int, resolved: int) -> tuple[Alert, ...]:
    """`active` starvation alerts and `resolved` depth alerts, one a second, oldest first."""
    start = CLOCK_NOW - AT
    alerts = [Alert(id=n + 1, kind=AlertKind.DEPTH, started_at=start + n * 0.01,
                    message="depth over 90%", resolved_at=start + n * 0.01 + 0.5)
              for n in range(resolved)]
    alerts += [Alert(id=resolved + n + 1, kind=AlertKind.STARVATION,
                     started_at=start + 1 + n * 0.01, message="starving", priority=9, wait=3.0,
                     threshold=2.0) for n in range(active)]
    return tuple(alerts)


def scripted_alerts() -> tuple[Alert, ...]:
    """An active starvation alert with stacks, an active loop-block, a resolved depth alert."""
    start = CLOCK_NOW - AT
    return (
        Alert(
            id=3, kind=AlertKind.STARVATION, started_at=start + 9.0,
            message="priority 9 waited 3.50s (SLA 2.00s) behind 640 higher-priority items",
            priority=9, wait=3.5, threshold=2.0,
            stacks=(PRODUCER_STACK, WORKER_STACK),
        ),
        Alert(
            id=2, kind=AlertKind.LOOP_BLOCKED, started_at=start + 7.0,
            message="event loop blocked for 520ms",
            wait=0.52, threshold=0.1,
            culprit="blocking_handler (engine/load.py:142)",
            loop_stack=("_run (engine/pool.py:260)", "blocking_handler (engine/load.py:142)",
                        "sleep (time)"),
            stacks=(WORKER_STACK,),
        ),
        Alert(
            id=1, kind=AlertKind.DEPTH, started_at=start + 2.0,
            message="queue depth 930 is over 90% of maxsize 1,000", depth=930, threshold=900.0,
            resolved_at=start + 4.25,
        ),
    )


class ScriptedEngine:
    """The `Engine` API on scripted state. `calls` records (method, args) in order."""

    def __init__(self, *, workers: int = 4, depth: int = 640, maxsize: int = 1_000,
                 alerts: bool = True, fail: set[str] | None = None) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.running = False
        self.shutting_down = False
        self.depth = depth
        self.maxsize = maxsize
        self.worker_ids = list(range(1, workers + 1))
        self.cancelled: list[int] = []
        self.paused = False
        self.aging_rate = 0.0
        self.overflow = "block"
        self.block_next = 0.0
        self.frozen_at = AT
        self.with_alerts = alerts
        self.read_only = False
        self.alert_list: tuple[Alert, ...] | None = None
        """When set, the alerts every snapshot carries (instead of `scripted_alerts()`)."""
        self.fail = fail or set()
        """Method names that raise RuntimeError (to test that errors stay in the UI)."""
        self.memory: MemoryProfile | None = None
        self.report: ShutdownReport | None = None
        self.events: list[str] = ["scenario demo started (seed 7)"]

    @property
    def capabilities(self) -> frozenset[Capability]:
        """As the real Engine's: everything while running, nothing once stopped; a read-only
        source (`read_only = True`) only ever reads."""
        if self.read_only:
            return frozenset()
        if self.running:
            return frozenset(Capability) - {Capability.RESTART}
        return frozenset({Capability.RESTART}) if self.report is not None else frozenset()

    @property
    def actions(self) -> list[tuple[str, tuple[Any, ...]]]:
        """The recorded calls other than snapshot()."""
        return [call for call in self.calls if call[0] != "snapshot"]

    def _record(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))
        if name in self.fail:
            raise RuntimeError(f"scripted failure in {name}")

    # ---------------------------------------------------------------- Engine API

    async def start(self) -> None:
        self._record("start")
        self.running = True

    def snapshot(self) -> EngineSnapshot:
        self._record("snapshot")
        return build_snapshot(self)

    def burst(self, size: int) -> BurstResult:
        self._record("burst", size)
        self.depth += size
        self.events.append(f"burst of {size}")
        return BurstResult(requested=size, accepted=size, waiting=0, rejected=0, evicted=0)

    def flood_low(self, size: int) -> BurstResult:
        self._record("flood_low", size)
        self.depth += size
        self.events.append(f"flood of {size} at priority 9")
        return BurstResult(requested=size, accepted=size, waiting=0, rejected=0, evicted=0,
                           priority=9)

    def cancel_worker(self, worker_id: int | None) -> int | None:
        self._record("cancel_worker", worker_id)
        target = worker_id if worker_id is not None else self.worker_ids[0]
        self.cancelled.append(target)
        return target

    def add_worker(self) -> int:
        self._record("add_worker")
        self.worker_ids.append(max(self.worker_ids, default=0) + 1)
        return self.worker_ids[-1]

    def remove_worker(self) -> int | None:
        self._record("remove_worker")
        return self.worker_ids.pop() if self.worker_ids else None

    def toggle_producers(self) -> bool:
        self._record("toggle_producers")
        self.paused = not self.paused
        return self.paused

    def toggle_aging(self) -> float:
        self._record("toggle_aging")
        self.aging_rate = 0.0 if self.aging_rate else 0.5
        return self.aging_rate

    def cycle_overflow(self) -> str:
        self._record("cycle_overflow")
        self.overflow = OVERFLOWS[(OVERFLOWS.index(self.overflow) + 1) % len(OVERFLOWS)]
        return self.overflow

    def block_loop_once(self, seconds: float = 0.5) -> None:
        self._record("block_loop_once", seconds)
        self.block_next = seconds

    def capture_stacks(self) -> tuple[StackGroup, ...]:
        self._record("capture_stacks")
        return ()

    async def memory_profile(self) -> MemoryProfile:
        self._record("memory_profile")
        self.memory = MemoryProfile(
            at=CLOCK_NOW, depth=self.depth, bytes_per_item=72.0, payload_bytes_per_item=49.0,
            top_sites=(AllocationSite("engine/queue.py:201", 46_080, 640),),
        )
        return self.memory

    async def shutdown(self, drain_timeout: float | None = None) -> ShutdownReport:
        self._record("shutdown", drain_timeout)
        self.shutting_down = True
        self.report = ShutdownReport(
            phases=scripted_phases(),
            accounting=scripted_accounting(self, drained=True),
            returned=(),
            drain_time=1.75,
            deadline_hit=False,
        )
        self.depth = 0
        self.running = False
        return self.report

    def report_dict(self) -> dict[str, Any]:
        return {"scenario": "demo"}


def scripted_phases() -> tuple[PhaseTiming, ...]:
    start = CLOCK_NOW - 1.75
    return (
        PhaseTiming(ShutdownPhase.STOPPING_INTAKE, start, 0.01),
        PhaseTiming(ShutdownPhase.DRAINING, start + 0.01, 1.62),
        PhaseTiming(ShutdownPhase.CANCELLING, start + 1.63, 0.12),
        PhaseTiming(ShutdownPhase.STOPPED, start + 1.75, 0.0),
    )


def scripted_accounting(engine: ScriptedEngine, *, drained: bool = False) -> Accounting:
    busy = sum(1 for wid in engine.worker_ids if wid % 3 != 0)
    if drained:
        return Accounting(submitted=5_000 + engine.depth, completed=5_000 + engine.depth - 10,
                          dead_lettered=4, rejected=6)
    return Accounting(submitted=5_000 + engine.depth + busy + 2, completed=4_990 - 2,
                      dead_lettered=4, rejected=6, queued=engine.depth, in_flight=busy,
                      retry_scheduled=2)


WORKER_ERROR = "TimeoutError('handler took longer than 2.0s')"
WORKER_TRACEBACK = """Traceback (most recent call last):
  File "engine/pool.py", line 312, in _run_job
    await asyncio.wait_for(handler(item), timeout)
  File "engine/load.py", line 64, in handle
    await asyncio.sleep(latency)
TimeoutError: handler took longer than 2.0s"""


def scripted_workers(engine: ScriptedEngine) -> tuple[WorkerSnapshot, ...]:
    workers = []
    for wid in engine.worker_ids:
        if wid in engine.cancelled:
            state = WorkerState.CANCELLING
        elif engine.paused:
            state = WorkerState.PAUSED
        else:
            state = (WorkerState.BUSY, WorkerState.BUSY, WorkerState.BACKOFF)[wid % 3]
        busy = state is WorkerState.BUSY
        backoff = ()
        if state is WorkerState.BACKOFF:
            backoff = (RetrySnapshot(item_repr=f"job-{wid}07", priority=3, attempt=2, due_in=0.8,
                                     worker_id=wid, last_error="TimeoutError()"),)
        workers.append(WorkerSnapshot(
            id=wid, name=f"worker-{wid}", state=state,
            item_repr=f"job-{wid * 101}" if busy else None, priority=wid % 4 if busy else None,
            busy_for=0.05 * wid if busy else 0.0, attempt=1 + (wid == 2),
            done=1_200 + 37 * wid, failed=wid % 3, retried=wid // 2, throughput=40.0 + wid,
            backoff=backoff,
            history=((WorkerState.IDLE, CLOCK_NOW - 5.0), (state, CLOCK_NOW - 0.05 * wid)),
            last_error=WORKER_ERROR if wid % 3 else None,
            last_traceback=WORKER_TRACEBACK if wid % 3 else None,
        ))
    return tuple(workers)


def scripted_events(engine: ScriptedEngine) -> tuple[Event, ...]:
    """The last 50 of the engine's notes as events, seq counting from 1."""
    first = max(0, len(engine.events) - 50)
    return tuple(
        Event(seq=seq, kind=EventKind.NOTE, at=CLOCK_NOW, wall_time=0.0, message=message)
        for seq, message in enumerate(engine.events[first:], start=first + 1)
    )


def build_snapshot(engine: ScriptedEngine) -> EngineSnapshot:
    """The snapshot of the scripted engine's current state (same state: equal snapshot)."""
    depth = min(engine.depth, engine.maxsize) if engine.overflow != "block" else engine.depth
    levels = (0, 3, 5, 9)
    shares = (0.05, 0.15, 0.3, 0.5)
    per_priority = tuple(
        PriorityStats(priority=level, depth=round(depth * share), oldest_wait=0.1 + level * 0.35,
                      wait_p50=0.02 + level * 0.05, wait_p99=0.2 + level * 0.3)
        for level, share in zip(levels, shares, strict=True)
    )
    top = tuple(
        HeapEntry(item=f"job-{seq}", priority=level, effective_priority=level - engine.aging_rate
                  * (0.4 + index * 0.1), seq=seq, waited=0.4 + index * 0.1)
        for index, (seq, level) in enumerate(
            [(4101, 0), (4107, 0), (3990, 3), (4002, 3), (4110, 3), (3801, 5), (3822, 5),
             (3850, 5), (3301, 9), (3307, 9)])
    )
    queue = QueueStats(
        depth=depth, maxsize=engine.maxsize, peak_depth=max(depth, 930), puts=9_000 + depth,
        gets=9_000, evicted=0, rejected=6, blocked_putters=12 if depth >= engine.maxsize else 0,
        blocked_getters=0, overflow=engine.overflow, aging_rate=engine.aging_rate,
        oldest_wait=3.25, per_priority=per_priority, wait_p50=0.12, wait_p99=2.7,
        put_block_p50=None, put_block_p99=None, get_wait_p50=0.0, get_wait_p99=0.01,
        is_shutdown=engine.shutting_down,
    )
    report = engine.report
    phase = ShutdownPhase.STOPPED if report is not None else ShutdownPhase.RUNNING
    pool = PoolSnapshot(
        workers=scripted_workers(engine), phase=phase,
        phases=report.phases if report is not None else (),
        paused=False, accounting=scripted_accounting(engine, drained=report is not None),
        completion_rate=0.0 if report else 498.0, retries=(), dead_letters=(),
        last_drain_time=report.drain_time if report else None, report=report,
    )
    alerts = engine.alert_list if engine.alert_list is not None else (
        scripted_alerts() if engine.with_alerts else ())
    watchdog = WatchdogSnapshot(
        alerts=alerts, stacks=(PRODUCER_STACK, WORKER_STACK) if engine.with_alerts else (),
        loop_lag_p50=0.0012, loop_lag_p99=0.0085, loop_lag_max=0.52, sample_cost=0.0004,
        sizing=SizingAdvice(arrival_rate=520.0, time_in_system=0.9, suggested_maxsize=468),
        memory=engine.memory, sla=2.0, sla_by_priority=((0, 0.5),),
    )
    snapshot = EngineSnapshot(
        at=engine.frozen_at, scenario="demo", seed=7, queue=queue, top=top, pool=pool,
        watchdog=watchdog, process=ProcessStats(cpu_percent=37.0, rss_bytes=84 * 1024 * 1024),
        producers_paused=engine.paused, submitted_rate=0.0 if report else 520.0,
        events=scripted_events(engine), started_at=CLOCK_NOW - AT,
        last_event_seq=len(engine.events),
    )
    return replace(snapshot)
