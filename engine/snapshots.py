"""Immutable snapshots: the only thing the engine hands to readers (the UI, the CLI, metrics).

Every snapshot is a frozen dataclass built from plain values, so a reader can keep it,
compare it or render it without touching the live queue, pool or tasks.
Units: times and durations are seconds (floats); a time (`*_at`, `since`, `first_arrival`) is on
the engine's monotonic clock unless it says otherwise (`wall_time` is time.time()); counts are
items since start; rates are per second. Every top-level snapshot carries `taken_at` (engine
clock) and `wall_time` (epoch seconds) of the instant it was taken, so a reader needs no clock
beside it and a remote reader can show its age.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any, TypeVar

# Events and the watchdog's measurements live in their own modules; they are part of this contract.
from engine.events import BurstResult as BurstResult
from engine.events import Event as Event
from engine.events import EventKind as EventKind
from engine.evidence import AllocationSite as AllocationSite
from engine.evidence import MemoryProfile, SizingAdvice


@dataclass(frozen=True, slots=True, kw_only=True)
class Stamped:
    """When a snapshot was taken (keyword-only, after a subclass's own fields)."""

    taken_at: float = 0.0
    """Seconds on the engine's (the queue's) clock (0.0: its builder did not say)."""
    wall_time: float = 0.0
    """Seconds since the epoch, time.time() (0.0: its builder did not say)."""


_T = TypeVar("_T")


def without_payloads(value: _T) -> _T:
    """A copy of a snapshot (or a tuple of them) with every `item` field, at any depth, None.

    The reprs (`item_repr`, made by the `item_repr` hook) stay: a reader keeps what it shows
    and no payload object crosses a wire or a process. What holds no payload is shared, not
    copied.
    """
    if isinstance(value, tuple):
        stripped = tuple(without_payloads(member) for member in value)
        changed = any(new is not old for new, old in zip(stripped, value, strict=True))
        return stripped if changed else value  # type: ignore[return-value]
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return value
    changes = {}
    for spec in dataclasses.fields(value):
        current = getattr(value, spec.name)
        new = None if spec.name == "item" else without_payloads(current)
        if new is not current:
            changes[spec.name] = new
    return dataclasses.replace(value, **changes) if changes else value


# --------------------------------------------------------------------------- queue


@dataclass(frozen=True, slots=True)
class HeapEntry:
    """One queued item as `PriorityQueue.peek()` sees it."""

    item: Any
    """The payload as queued (the pool's `Job` on the queue; `pool.top()` and
    `top(unwrap=True)` unwrap it). None on the wire."""
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
    """The level (lower is served first)."""
    depth: int
    """Items queued at this level."""
    oldest_wait: float
    """Seconds the oldest item at this level has waited (0.0 when empty)."""
    wait_p50: float | None
    """Seconds waited by the items got at this level: the p50/p99 of a sliding window (None: no
    sample); so for every `*_p50`/`*_p99` pair below."""
    wait_p99: float | None


@dataclass(frozen=True, slots=True)
class QueueStats(Stamped):
    """`PriorityQueue.stats()`: a frozen record, cheap at any depth."""

    depth: int
    """Items queued now."""
    maxsize: int
    """Items at which the queue is full; 0 means unbounded (maxsize <= 0 or math.inf, as in
    asyncio.Queue). A float bound reports its ceiling: 2.5 is full at 3 items, so 3."""
    peak_depth: int
    """The deepest the queue has been since start, in items."""
    puts: int
    """Items put since start."""
    gets: int
    """Items got since start."""
    evicted: int
    """Items the 'evict-lowest' policy pushed out since start."""
    rejected: int
    """Items the 'reject' policy refused since start."""
    blocked_putters: int
    """Tasks waiting in put() for room now."""
    blocked_getters: int
    """Tasks waiting in get() for an item now."""
    overflow: str
    """'block', 'reject' or 'evict-lowest'."""
    aging_rate: float
    """Priority points per second of waiting (0.0: aging off)."""
    oldest_wait: float
    """Seconds the oldest queued item has waited (0.0 when empty)."""
    per_priority: tuple[PriorityStats, ...]
    """Sorted by priority, only the levels that have items or samples."""
    wait_p50: float | None
    """Seconds from put to get over recent gets (None: no sample)."""
    wait_p99: float | None
    put_block_p50: float | None
    """Seconds a put() waited for room over recent puts."""
    put_block_p99: float | None
    get_wait_p50: float | None
    """Seconds a get() waited for an item over recent gets."""
    get_wait_p99: float | None
    is_shutdown: bool = False
    """`shutdown()` was called: no more puts."""
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
    """Removed or finished: it lingers in snapshots for `retired_linger` seconds."""
    CRASHED = "crashed"
    """The worker task itself died (not a handler failure: those are contained)."""


class ShutdownPhase(enum.StrEnum):
    RUNNING = "running"
    """No shutdown has started."""
    STOPPING_INTAKE = "stopping-intake"
    """The queue is shut down: no more puts or submits."""
    DRAINING = "draining"
    """The workers finish what is queued, until the drain timeout."""
    CANCELLING = "cancelling"
    """The drain ended with work left (its deadline passed, or it was cut short): the
    workers are cancelled."""
    STOPPED = "stopped"
    """Every item has its fate; what was left is in the report's `returned`."""


@dataclass(frozen=True, slots=True)
class RetrySnapshot:
    """A failed item waiting out its backoff before going back to the queue."""

    item_repr: str
    """The payload through the `item_repr` hook."""
    priority: float
    """The priority it goes back to the queue with."""
    attempt: int
    """The attempt that will run next (2 for the first retry)."""
    due_in: float
    """Seconds until it is put back on the queue."""
    worker_id: int
    """The worker whose attempt failed."""
    last_error: str
    """The repr of the failed attempt's exception."""


@dataclass(frozen=True, slots=True)
class WorkerSnapshot:
    id: int
    """1, 2, 3...: never reused within a pool."""
    name: str
    """The asyncio task name: 'worker-1', 'worker-2', ..."""
    state: WorkerState
    """What it does now."""
    item_repr: str | None
    """The current item through the `item_repr` hook (None when not busy)."""
    priority: float | None
    """The current item's priority (None when not busy)."""
    busy_for: float
    """Seconds on the current item (0.0 when not busy)."""
    attempt: int
    """The current item's attempt number (1: first try; 0 when not busy)."""
    done: int
    """Items this worker completed."""
    failed: int
    """Attempts of this worker that raised or timed out."""
    retried: int
    """Of those, attempts that were scheduled for a retry."""
    throughput: float
    """Completions per second over the recent window."""
    backoff: tuple[RetrySnapshot, ...] = ()
    """Its failed items waiting out their backoff (bounded, as `PoolSnapshot.retries`)."""
    history: tuple[tuple[WorkerState, float], ...] = ()
    """The last few (state, since) pairs, oldest first; `since` on the engine's clock."""
    last_error: str | None = None
    """The repr of the last exception its handler raised (None: none yet)."""
    last_traceback: str | None = None
    """That exception's formatted traceback text."""
    host: str = ""
    """The process it runs in, 'HOST:PID', on a shared queue ('' in a pool of this process)."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    item_repr: str
    """The payload through the `item_repr` hook."""
    priority: float
    """The priority it was submitted with."""
    attempts: int
    """Attempts made, all failed."""
    error: str
    """The repr of the last attempt's exception."""
    at: float
    """Seconds on the engine's clock when it was dead-lettered."""
    item: Any = None
    """The item itself, so a dead-letter sink can keep or replay it (None on the wire)."""
    job_id: int = 0
    """The pool's job id (`Event.job_id` of its DEAD_LETTER event)."""


@dataclass(frozen=True, slots=True)
class ReturnedItem:
    """An item still queued or in flight when a shutdown's deadline passed: returned, not lost."""

    item: Any
    """The payload itself (None on the wire)."""
    priority: float
    """The priority it was submitted with: resubmit it at this one."""
    attempts: int
    """Attempts made on it so far."""
    where: str
    """'queued', 'in-flight' or 'retry'."""
    abandoned: bool = False
    """In flight in a handler that would not stop within the cancel grace: still running,
    given up on (if it returns later, that is a late completion)."""
    job_id: int = 0
    """The pool's job id."""


@dataclass(frozen=True, slots=True)
class PhaseTiming:
    phase: ShutdownPhase
    """The phase entered."""
    started_at: float
    """Seconds on the engine's clock."""
    duration: float | None
    """None while the phase is still running."""
    limit: float | None = None
    """Seconds the phase may last at most (the drain timeout, the cancel grace), None: no
    limit; with `started_at` it gives the seconds left, which the dashboard counts down."""


@dataclass(frozen=True, slots=True)
class Accounting:
    """Every submitted item has exactly one of these fates at every moment (counts of items)."""

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
    """Every phase the shutdown went through, in order, with its timing."""
    accounting: Accounting
    """The fates when it stopped (what was left counted as `returned`)."""
    returned: tuple[ReturnedItem, ...]
    """What the deadline cut off: handed back, not lost."""
    drain_time: float
    """Seconds from the start of the shutdown to STOPPED."""
    deadline_hit: bool
    """The drain did not finish everything (its timeout passed, or it was cut short)."""
    cut_short: bool = False
    """`abort()` ended the drain before its timeout (a second signal, a second `q`)."""


@dataclass(frozen=True, slots=True)
class HostSnapshot:
    """One process on a shared queue, as its heartbeat (or its silence) shows it."""

    host: str
    """'HOST:PID'."""
    role: str
    """'producer', 'worker' or 'all' ('' for a host known only by the leases it holds)."""
    live: bool
    """Its heartbeat is fresh; False: it expired (the process died or lost Redis)."""
    workers: int
    leased: int
    """Items leased under its name and not yet settled."""
    back_in: float | None = None
    """For a lost host: seconds until the last of its leases runs out and its items go back
    to the queue (0.0: at the next reap; None: it holds none)."""


@dataclass(frozen=True, slots=True)
class PoolSnapshot(Stamped):
    workers: tuple[WorkerSnapshot, ...]
    """Live workers by id, then the recently stopped and the last crashed ones."""
    phase: ShutdownPhase
    """RUNNING, or the shutdown's current phase."""
    phases: tuple[PhaseTiming, ...]
    """The phases of the shutdown under way or last run (empty before any)."""
    paused: bool
    """Consumption paused (`pool.pause()`)."""
    accounting: Accounting
    """Every submitted item's fate now."""
    completion_rate: float
    """Completions per second over the recent window."""
    retries: tuple[RetrySnapshot, ...]
    """Failed items waiting out their backoff, soonest first (bounded)."""
    dead_letters: tuple[DeadLetter, ...]
    """The most recent dead letters (bounded)."""
    last_drain_time: float | None
    """Seconds the last shutdown's drain took (None before any)."""
    report: ShutdownReport | None = None
    """Set once a shutdown has finished."""
    hosts: tuple[HostSnapshot, ...] = ()
    """On a shared queue seen from a dashboard: every process, live or lost, by name (the
    workers carry their `host`). Empty for a pool of this process."""

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
    """A priority level's oldest item has waited past its SLA."""
    LOOP_BLOCKED = "loop-blocked"
    """The event loop was held longer than `loop_block_ms`."""
    DEPTH = "depth"
    """The queue is deeper than `depth_ratio` of its maxsize."""
    WORKER_CRASHED = "worker-crashed"
    """A worker task died (not a handler failure)."""


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
    """What the tasks are to the queue."""
    count: int
    """Tasks in the group."""
    frames: tuple[str, ...]
    """Innermost last, each 'function (file:line)'."""
    task_names: tuple[str, ...]
    """A few of the task names in the group (bounded)."""
    awaited_by: tuple[str, ...] = ()
    """Python 3.14+: names of the tasks awaiting these ones (asyncio.capture_call_graph)."""


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    """1, 2, 3...: per watchdog; `Event.alert_id` refers to it."""
    kind: AlertKind
    """What is wrong; says which of the optional fields below are set."""
    started_at: float
    """Seconds on the engine's clock (LOOP_BLOCKED: the late heartbeat's due time)."""
    message: str
    """One line a person reads: what, where, how bad."""
    priority: float | None = None
    """STARVATION: the starving level."""
    wait: float | None = None
    """Seconds: the oldest wait (STARVATION, DEPTH) or the lateness when caught (LOOP_BLOCKED)."""
    depth: int | None = None
    """Items queued (at the level, for STARVATION) when raised."""
    threshold: float | None = None
    """What was crossed: the SLA in seconds, the depth in items, or the block in seconds."""
    culprit: str | None = None
    """For LOOP_BLOCKED: the function that held the loop, 'function (file:line)'."""
    stacks: tuple[StackGroup, ...] = ()
    """The grouped task stacks of the moment it was raised (LOOP_BLOCKED: right after)."""
    loop_stack: tuple[str, ...] = ()
    """For LOOP_BLOCKED: the loop thread's Python stack when it was caught, innermost last."""
    resolved_at: float | None = None
    """Seconds on the engine's clock (None while active)."""
    peak_wait: float | None = None
    """Seconds: the worst wait (LOOP_BLOCKED: the full block) while active; DEPTH: peak items."""

    @property
    def active(self) -> bool:
        return self.resolved_at is None


@dataclass(frozen=True, slots=True)
class WatchdogSnapshot(Stamped):
    alerts: tuple[Alert, ...]
    """Active alerts first, then the recent resolved ones (bounded)."""
    stacks: tuple[StackGroup, ...]
    """The last capture of blocked tasks."""
    loop_lag_p50: float | None
    """Seconds a loop heartbeat ran late, p50/p99 of the recent window (None: no monitor)."""
    loop_lag_p99: float | None
    loop_lag_max: float
    """Seconds: the latest a heartbeat has run since start."""
    sample_cost: float
    """Seconds the last sample took on the loop."""
    sizing: SizingAdvice | None
    """None until there is traffic."""
    memory: MemoryProfile | None = None
    """The last memory profile taken (None before any)."""
    sla: float | None = None
    """The default wait SLA in seconds (the watchdog's `sla`); None when unknown."""
    sla_by_priority: tuple[tuple[float, float], ...] = ()
    """(priority, SLA seconds) pairs for the levels with their own SLA."""
    alerts_raised: tuple[tuple[AlertKind, int], ...] = ()
    """(kind, alerts raised since start) for every kind: a counter, unlike the bounded list."""
    viewer_stalls: int = 0
    """Loop blocks the viewer caused (its rendering, its reads): not raised as alerts."""
    last_viewer_stall: str | None = None


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
    REPLAY = "replay"
    """Play, pause, step and jump through a recording (only a replay offers it)."""


# --------------------------------------------------------------------------- whole engine


@dataclass(frozen=True, slots=True)
class ProcessStats:
    cpu_percent: float
    """Percent of one core since the previous reading (psutil)."""
    rss_bytes: int
    """Resident set size in bytes."""


@dataclass(frozen=True, slots=True)
class EngineSnapshot(Stamped):
    """Everything the dashboard shows at one instant."""

    at: float
    """Seconds since the engine started (it stops counting when the engine has stopped)."""
    scenario: str
    """The scenario's name."""
    seed: int
    queue: QueueStats
    top: tuple[HeapEntry, ...]
    """The entries served next, best first (bounded)."""
    pool: PoolSnapshot
    watchdog: WatchdogSnapshot
    process: ProcessStats
    producers_paused: bool
    waiting_for_room: int = 0
    """Items (not tasks) the producers and bursts hold because a full queue has no room."""
    submitted_rate: float = 0.0
    """Items submitted per second over the recent window."""
    events: tuple[Event, ...] = ()
    """The recent events (bounded), newest last: a reader shows those with a seq above the
    last one it saw (`last_event_seq` says whether any fell out of the window)."""
    started_at: float = 0.0
    """The engine's clock when it started: alert times minus this are times into the run."""
    last_event_seq: int = 0
    """The seq of the newest event (0 before any)."""
    capabilities: frozenset[Capability] = frozenset()
    """What the engine can do now: the actions a reader may offer."""

    def wire_safe(self) -> EngineSnapshot:
        """This snapshot with no payload object in it (see `without_payloads`)."""
        return without_payloads(self)
