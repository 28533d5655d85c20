"""Immutable snapshots: the only thing the engine hands to readers (the UI, the CLI, metrics).

Every snapshot is a frozen dataclass built from plain values, so a reader can keep it,
compare it or render it without touching the live queue, pool or tasks.
Times are seconds (floats) on the engine's clock unless a field says otherwise.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

# --------------------------------------------------------------------------- queue


@dataclass(frozen=True, slots=True)
class HeapEntry:
    """One queued item as `PriorityQueue.peek()` sees it."""

    item: Any
    priority: float
    """The priority the item was put with (lower is served first)."""
    effective_priority: float
    """The priority after aging: `priority - aging_rate * waited`."""
    seq: int
    """The item's place in arrival order within its priority (FIFO among equal priorities)."""
    waited: float
    """Seconds since the item first arrived (a requeued item keeps its first arrival)."""
    item_repr: str = ""
    """What a reader shows: the payload through the `item_repr` hook (no payload on the wire)."""
    job_id: int | None = None
    """The pool's job id (None for an item put on the queue directly)."""
    attempt: int = 0
    """Attempts already made on the item (0: never started)."""
    first_arrival: float = 0.0
    """Seconds on the queue's clock when the item first arrived."""


@dataclass(frozen=True, slots=True)
class PriorityStats:
    """What one priority level looks like right now."""

    priority: float
    depth: int
    oldest_wait: float
    """Age of the oldest item waiting at this priority (0.0 when empty)."""
    wait_p50: float | None
    """Sliding-window percentiles of time waited by items got at this priority (None: no sample)."""
    wait_p99: float | None


@dataclass(frozen=True, slots=True)
class QueueStats:
    """`PriorityQueue.stats()`: a frozen record, cheap at any depth."""

    depth: int
    maxsize: int
    """Items at which the queue is full; 0 means unbounded (maxsize <= 0 or math.inf, as in
    asyncio.Queue). A float bound reports its ceiling: 2.5 is full at 3 items, so 3."""
    peak_depth: int
    puts: int
    gets: int
    evicted: int
    rejected: int
    blocked_putters: int
    blocked_getters: int
    overflow: str
    """'block', 'reject' or 'evict-lowest'."""
    aging_rate: float
    """Priority points per second of waiting (0.0: aging off)."""
    oldest_wait: float
    per_priority: tuple[PriorityStats, ...]
    """Sorted by priority, only the levels that have items or samples."""
    wait_p50: float | None
    wait_p99: float | None
    put_block_p50: float | None
    put_block_p99: float | None
    get_wait_p50: float | None
    get_wait_p99: float | None
    is_shutdown: bool = False
    requeues: int = 0
    """Items put back by `requeue_nowait`/`nack` since start (items; not counted in `puts`)."""

    @property
    def depth_ratio(self) -> float:
        """depth / maxsize, 0.0 when unbounded."""
        return self.depth / self.maxsize if self.maxsize else 0.0

    @property
    def dropped(self) -> int:
        """Items the queue refused or evicted (the Prometheus dropped_task_count)."""
        return self.evicted + self.rejected


# --------------------------------------------------------------------------- pool


class WorkerState(enum.StrEnum):
    IDLE = "idle"
    """Waiting on the queue."""
    BUSY = "busy"
    """Running the handler on an item."""
    BACKOFF = "backoff"
    """Idle, with at least one of its failed items waiting for a scheduled retry."""
    PAUSED = "paused"
    """Consumption paused by `pool.pause()`."""
    CANCELLING = "cancelling"
    """Asked to stop; its in-flight item is going back to the queue."""
    STOPPED = "stopped"
    CRASHED = "crashed"
    """The worker task itself died (not a handler failure: those are contained)."""


class ShutdownPhase(enum.StrEnum):
    RUNNING = "running"
    STOPPING_INTAKE = "stopping-intake"
    DRAINING = "draining"
    CANCELLING = "cancelling"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class RetrySnapshot:
    """A failed item waiting out its backoff before going back to the queue."""

    item_repr: str
    priority: float
    attempt: int
    """The attempt that will run next (2 for the first retry)."""
    due_in: float
    """Seconds until it is put back on the queue."""
    worker_id: int
    """The worker whose attempt failed."""
    last_error: str


@dataclass(frozen=True, slots=True)
class WorkerSnapshot:
    id: int
    name: str
    """The asyncio task name: 'worker-1', 'worker-2', ..."""
    state: WorkerState
    item_repr: str | None
    priority: float | None
    busy_for: float
    """Seconds on the current item (0.0 when not busy)."""
    attempt: int
    done: int
    failed: int
    retried: int
    throughput: float
    """Completions per second over the recent window."""
    backoff: tuple[RetrySnapshot, ...] = ()
    history: tuple[tuple[WorkerState, float], ...] = ()
    """The last few (state, since) pairs, oldest first; `since` on the engine's clock."""
    last_error: str | None = None
    """The repr of the last exception its handler raised (None: none yet)."""
    last_traceback: str | None = None
    """That exception's formatted traceback text."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    item_repr: str
    priority: float
    attempts: int
    error: str
    """The repr of the last attempt's exception."""
    at: float
    item: Any = None
    """The item itself, so a dead-letter sink can keep or replay it."""
    job_id: int = 0


@dataclass(frozen=True, slots=True)
class ReturnedItem:
    """An item still queued or in flight when a shutdown's deadline passed: returned, not lost."""

    item: Any
    priority: float
    attempts: int
    where: str
    """'queued', 'in-flight' or 'retry'."""
    abandoned: bool = False
    """In flight in a handler that would not stop within the cancel grace: still running,
    given up on (if it returns later, that is a late completion)."""
    job_id: int = 0


@dataclass(frozen=True, slots=True)
class PhaseTiming:
    phase: ShutdownPhase
    started_at: float
    duration: float | None
    """None while the phase is still running."""


@dataclass(frozen=True, slots=True)
class Accounting:
    """Every submitted item has exactly one of these fates at every moment."""

    submitted: int = 0
    completed: int = 0
    dead_lettered: int = 0
    evicted: int = 0
    rejected: int = 0
    queued: int = 0
    in_flight: int = 0
    retry_scheduled: int = 0
    returned: int = 0
    duplicated: int = 0
    """Items completed more than once (must stay 0)."""
    late_completions: int = 0
    """Handlers that returned after the pool had given up on their attempt (a timeout, a
    cancelled worker, a shutdown): their side effect ran, but the item kept the fate it already
    had. Counted apart: not a fate, not in `lost`."""

    @property
    def lost(self) -> int:
        """submitted minus every known fate: computed, so that 0 proves something."""
        return self.submitted - (
            self.completed
            + self.dead_lettered
            + self.evicted
            + self.rejected
            + self.queued
            + self.in_flight
            + self.retry_scheduled
            + self.returned
        )


@dataclass(frozen=True, slots=True)
class ShutdownReport:
    phases: tuple[PhaseTiming, ...]
    accounting: Accounting
    returned: tuple[ReturnedItem, ...]
    drain_time: float
    """Seconds from the start of the shutdown to STOPPED."""
    deadline_hit: bool


@dataclass(frozen=True, slots=True)
class PoolSnapshot:
    workers: tuple[WorkerSnapshot, ...]
    phase: ShutdownPhase
    phases: tuple[PhaseTiming, ...]
    """The phases of the shutdown under way or last run (empty before any)."""
    paused: bool
    accounting: Accounting
    completion_rate: float
    """Completions per second over the recent window."""
    retries: tuple[RetrySnapshot, ...]
    dead_letters: tuple[DeadLetter, ...]
    """The most recent dead letters (bounded)."""
    last_drain_time: float | None
    report: ShutdownReport | None = None
    """Set once a shutdown has finished."""

    @property
    def shutdown_started(self) -> bool:
        """A shutdown is under way or has finished."""
        return self.phase is not ShutdownPhase.RUNNING or bool(self.phases)

    @property
    def busy_workers(self) -> int:
        return sum(1 for worker in self.workers if worker.state is WorkerState.BUSY)

    @property
    def live_workers(self) -> int:
        """Workers still running (a stopped or crashed one lingers in `workers` for a while)."""
        return sum(
            1 for worker in self.workers
            if worker.state not in (WorkerState.STOPPED, WorkerState.CRASHED)
        )


# --------------------------------------------------------------------------- watchdog


class AlertKind(enum.StrEnum):
    STARVATION = "starvation"
    LOOP_BLOCKED = "loop-blocked"
    DEPTH = "depth"
    WORKER_CRASHED = "worker-crashed"


class TaskRole(enum.StrEnum):
    WORKER = "worker"
    PRODUCER_BLOCKED = "producer-blocked"
    """Waiting in put() on a full queue."""
    GETTER_WAITING = "getter-waiting"
    """Waiting in get() on an empty queue."""
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class StackGroup:
    """Tasks blocked in the same place, read as one entry with a count."""

    role: TaskRole
    count: int
    frames: tuple[str, ...]
    """Innermost last, each 'function (file:line)'."""
    task_names: tuple[str, ...]
    """A few of the task names in the group (bounded)."""
    awaited_by: tuple[str, ...] = ()
    """Python 3.14+: names of the tasks awaiting these ones (asyncio.capture_call_graph)."""


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    kind: AlertKind
    started_at: float
    message: str
    """One line a person reads: what, where, how bad."""
    priority: float | None = None
    wait: float | None = None
    depth: int | None = None
    threshold: float | None = None
    culprit: str | None = None
    """For LOOP_BLOCKED: the function that held the loop, 'function (file:line)'."""
    stacks: tuple[StackGroup, ...] = ()
    loop_stack: tuple[str, ...] = ()
    """For LOOP_BLOCKED: the loop thread's Python stack when it was caught, innermost last."""
    resolved_at: float | None = None
    peak_wait: float | None = None
    """The worst wait (or, for LOOP_BLOCKED, the full block length) seen while it was active."""

    @property
    def active(self) -> bool:
        return self.resolved_at is None


@dataclass(frozen=True, slots=True)
class AllocationSite:
    where: str
    size: int
    count: int


@dataclass(frozen=True, slots=True)
class MemoryProfile:
    at: float
    depth: int
    bytes_per_item: float
    """Queue overhead per queued item, payload excluded."""
    payload_bytes_per_item: float
    top_sites: tuple[AllocationSite, ...]
    sample_items: int = 0
    """Items put into a scratch queue of the live queue's class to measure the figures."""
    estimated_queue_bytes: int = 0
    """bytes_per_item x depth: the live queue's own overhead, payloads excluded."""
    duration: float = 0.0
    """Seconds the measurement held the loop."""


@dataclass(frozen=True, slots=True)
class SizingAdvice:
    """Little's law: items in the system = arrival rate x time in system."""

    arrival_rate: float
    time_in_system: float
    suggested_maxsize: int
    window: float = 0.0
    """Seconds of history the rates were measured over."""
    wait_p50: float | None = None
    """Median time an item waited in the queue (part of time_in_system)."""
    service_time: float | None = None
    """Handler time per item: mean busy workers / completion rate (None without a pool)."""
    completion_rate: float | None = None
    headroom: float = 1.0
    """Multiplier on arrival_rate x time_in_system, so that bursts above the mean fit."""
    current_maxsize: int = 0

    @property
    def explanation(self) -> str:
        """The arithmetic, e.g. 'arrival 120.0/s x time in system 0.250 s x headroom 2 = 60'."""
        return (
            f"arrival {self.arrival_rate:.1f}/s x time in system {self.time_in_system:.3f} s"
            f" x headroom {self.headroom:g} = {self.suggested_maxsize}"
        )


@dataclass(frozen=True, slots=True)
class WatchdogSnapshot:
    alerts: tuple[Alert, ...]
    """Active alerts first, then the recent resolved ones (bounded)."""
    stacks: tuple[StackGroup, ...]
    """The last capture of blocked tasks."""
    loop_lag_p50: float | None
    loop_lag_p99: float | None
    loop_lag_max: float
    sample_cost: float
    """Seconds the last sample took on the loop."""
    sizing: SizingAdvice | None
    memory: MemoryProfile | None = None
    sla: float | None = None
    """The default wait SLA in seconds (the watchdog's `sla`); None when unknown."""
    sla_by_priority: tuple[tuple[float, float], ...] = ()
    alerts_raised: tuple[tuple[AlertKind, int], ...] = ()
    """(kind, alerts raised since start) for every kind: a counter, unlike the bounded list."""
    """(priority, SLA seconds) pairs for the levels with their own SLA."""


# --------------------------------------------------------------------------- capabilities


class Capability(enum.StrEnum):
    """An action a source of snapshots can carry out now. The dashboard disables the rest.

    A live in-process engine has them all while it runs; a stopped one keeps only RESTART;
    a read-only remote source has none of the control ones.
    """

    BURST = "burst"
    FLOOD = "flood"
    CANCEL_WORKER = "cancel-worker"
    ADD_WORKER = "add-worker"
    REMOVE_WORKER = "remove-worker"
    PAUSE_PRODUCERS = "pause-producers"
    PAUSE_GETTING = "pause-getting"
    AGING = "aging"
    OVERFLOW = "overflow"
    BLOCK_LOOP = "block-loop"
    STACKS = "stacks"
    MEMORY = "memory"
    SHUTDOWN = "shutdown"
    RESTART = "restart"


# --------------------------------------------------------------------------- events


class EventKind(enum.StrEnum):
    """What an `Event` tells. Readers switch on this, never on the message text."""

    ALERT_RAISED = "alert-raised"
    ALERT_RESOLVED = "alert-resolved"
    WORKER_ADDED = "worker-added"
    WORKER_REMOVED = "worker-removed"
    WORKER_CANCELLED = "worker-cancelled"
    """A worker was cancelled (by a key, the scenario or from outside); its item went back."""
    WORKER_REPLACED = "worker-replaced"
    """A worker died and the pool started another in its place."""
    WORKER_DIED = "worker-died"
    """A worker died and was not replaced (the replacement limit was reached, or shutdown)."""
    BURST = "burst"
    """A burst or flood ran: `Event.burst` says what became of its items."""
    DEAD_LETTER = "dead-letter"
    LATE_COMPLETION = "late-completion"
    """A handler that was given up on (timed out, abandoned) returned later: counted apart."""
    POLICY_CHANGED = "policy-changed"
    """Overflow policy, aging rate, pause/resume of producers or of getting."""
    SHUTDOWN_PHASE = "shutdown-phase"
    VIEWER_STALL = "viewer-stall"
    """The loop was held by the viewer (the dashboard's own rendering), not by the engine."""
    NOTE = "note"
    """Anything else a person should read (a key's effect, start, a capture)."""
    ERROR = "error"
    """An engine error that did not stop the run."""


@dataclass(frozen=True, slots=True)
class BurstResult:
    """What became of a burst's (or a flood's) items, counted right after it ran."""

    requested: int
    accepted: int
    """Taken by the queue at once."""
    waiting: int
    """Waiting for room (the 'block' policy): they land as workers free slots."""
    rejected: int
    """Refused under 'reject'."""
    evicted: int
    """Items the burst pushed out under 'evict-lowest' (queued ones or its own)."""
    priority: float | None = None
    """The one priority of a flood; None for mixed priorities."""

    @property
    def text(self) -> str:
        """'500 submitted now, 200 waiting for room, 3 evicted'."""
        parts = [f"{self.accepted} submitted now"]
        if self.waiting:
            parts.append(f"{self.waiting} waiting for room")
        if self.rejected:
            parts.append(f"{self.rejected} rejected")
        if self.evicted:
            parts.append(f"{self.evicted} evicted")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Event:
    """One discrete thing that happened, as `engine.events.EventLog` recorded it."""

    seq: int
    """1, 2, 3...: monotonically increasing per engine; a reader keeps the last it saw."""
    kind: EventKind
    at: float
    """Seconds on the engine's clock."""
    wall_time: float
    """Seconds since the epoch (time.time()) when it was recorded."""
    message: str
    """One line a person reads, written once, by the engine."""
    worker_id: int | None = None
    alert_id: int | None = None
    job_id: int | None = None
    burst: BurstResult | None = None
    phase: str | None = None
    """For SHUTDOWN_PHASE: the `ShutdownPhase` value entered."""


# --------------------------------------------------------------------------- whole engine


@dataclass(frozen=True, slots=True)
class ProcessStats:
    cpu_percent: float
    rss_bytes: int


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    """Everything the dashboard shows at one instant."""

    at: float
    """Seconds since the engine started (it stops counting when the engine has stopped)."""
    scenario: str
    seed: int
    queue: QueueStats
    top: tuple[HeapEntry, ...]
    pool: PoolSnapshot
    watchdog: WatchdogSnapshot
    process: ProcessStats
    producers_paused: bool
    submitted_rate: float = 0.0
    """Items submitted per second over the recent window."""
    events: tuple[str, ...] = field(default=())
    """Recent one-line notices (key actions, engine errors), newest last."""
    started_at: float = 0.0
    """The engine's clock when it started: alert times minus this are times into the run."""
