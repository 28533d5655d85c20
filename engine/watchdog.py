"""The watchdog: starvation, a full queue, crashed workers and a blocked loop, with the evidence.

Every `interval` seconds `sample()` reads the oldest wait of every priority level (not only the
heap root: starvation happens to the items below it) and compares it with that level's SLA. An
alert is raised once when a threshold is crossed, carries the grouped task stacks of that moment,
and is resolved when the wait falls back below the threshold (with a little hysteresis, so a wait
hovering at the line does not flap). A `LoopMonitor` thread catches a blocked loop from outside
it. Everything a reader needs comes out of `snapshot()` as frozen dataclasses.

A sample costs O(priority levels), whatever the depth: it never walks the heap.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from engine.checks import check_count, check_ratio
from engine.events import EventLog
from engine.loopmonitor import LoopBlock, LoopMonitor
from engine.memory import measure_memory
from engine.snapshots import (
    Alert,
    AlertKind,
    EventKind,
    MemoryProfile,
    QueueStats,
    SizingAdvice,
    StackGroup,
    TaskRole,
    WatchdogSnapshot,
    WorkerState,
)
from engine.stacks import capture_task_stacks

__all__ = ["Watchdog"]

_log = logging.getLogger(__name__)

HYSTERESIS = 0.9
"""An alert resolves when its measure falls below this fraction of the threshold."""

AlertKey = tuple[AlertKind, Any]


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0, not {value!r}")
    return float(value)


def _fmt_seconds(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def _fmt_priority(priority: float) -> str:
    return f"{priority:g}"


class Watchdog:
    """Watches a `PriorityQueue` (and optionally a `WorkerPool`) and raises structured alerts.

    Args:
        queue: the queue to watch (`depth_by_priority()`, `oldest_wait(p)`, `qsize()`,
            `maxsize`, `puts`, and `stats()` once per `snapshot()` for the sizing advice).
        pool: the worker pool, for crashed workers and the service time in sizing advice.
        interval: seconds between samples.
        sla: the longest wait, in seconds, an item of any priority may see before an alert.
        sla_by_priority: per-priority SLAs that override `sla`.
        loop_block_ms: a heartbeat this late (ms) means a blocked loop; None or 0 turns the
            loop monitor off.
        depth_ratio: a DEPTH alert when depth > depth_ratio x maxsize (bounded queues only).
        clock: seconds, monotonic; the loop monitor's heartbeat reads it too, so a clock moved
            by hand needs `loop_block_ms=None`. Leave as default unless testing.
        on_alert: called on the loop with every alert raised and again when it is resolved.
        history: resolved alerts kept (the active ones are always kept).
        sizing_window: seconds of samples the sizing advice is measured over.
        sizing_headroom: multiplier on Little's law's mean occupancy for the suggested maxsize.
        keep_task: `keep_task(task, role)` narrows every stack capture (default: all tasks).
        events: where ALERT_RAISED, ALERT_RESOLVED (with `alert_id`) and the watchdog's own
            errors (ERROR) are emitted (None: nowhere).
    """

    def __init__(
        self,
        queue: Any,
        pool: Any = None,
        *,
        interval: float = 0.5,
        sla: float = 2.0,
        sla_by_priority: Mapping[float, float] | None = None,
        loop_block_ms: float | None = 100,
        depth_ratio: float = 0.9,
        clock: Callable[[], float] = time.monotonic,
        on_alert: Callable[[Alert], None] | None = None,
        history: int = 50,
        sizing_window: float = 10.0,
        sizing_headroom: float = 2.0,
        keep_task: Callable[[asyncio.Task[Any], TaskRole], bool] | None = None,
        events: EventLog | None = None,
    ) -> None:
        self.interval = _positive("interval", interval)
        self.sla = _positive("sla", sla)
        by_priority = dict(sla_by_priority or {})
        for priority, threshold in by_priority.items():
            if isinstance(priority, bool) or not isinstance(priority, int | float):
                raise TypeError(f"sla_by_priority keys must be priorities, not {priority!r}")
            _positive(f"sla_by_priority[{priority!r}]", threshold)
        self.sla_by_priority: dict[float, float] = {
            p: float(threshold) for p, threshold in by_priority.items()
        }
        if loop_block_ms is not None and loop_block_ms != 0:
            _positive("loop_block_ms", loop_block_ms)
        self.loop_block_ms = loop_block_ms or None
        self.depth_ratio = check_ratio("depth_ratio", depth_ratio)
        check_count("history", history, 0)
        self.sizing_window = _positive("sizing_window", sizing_window)
        self.sizing_headroom = _positive("sizing_headroom", sizing_headroom)
        self.queue = queue
        self.pool = pool
        self.on_alert = on_alert
        self.keep_task = keep_task
        self.events = events
        """Where alerts raised and resolved are told as `Event`s (None: nowhere)."""
        self._clock = clock
        self._active: dict[AlertKey, Alert] = {}
        self._resolved: deque[Alert] = deque(maxlen=history)
        self._next_id = 1
        self._raised = dict.fromkeys(AlertKind, 0)
        self._stacks: tuple[StackGroup, ...] = ()
        self._sample_cost = 0.0
        self._samples = 0
        self._rates: deque[tuple[float, int, int, float]] = deque()
        """(time, puts, busy workers, completion rate) per sample, for the sizing advice."""
        self._sizing: SizingAdvice | None = None
        self._memory: MemoryProfile | None = None
        self._task: asyncio.Task[None] | None = None
        self._viewer_stalls = 0
        self._last_viewer_stall: str | None = None
        self._monitor: LoopMonitor | None = None
        if self.loop_block_ms is not None:
            self._monitor = LoopMonitor(
                threshold=self.loop_block_ms / 1000,
                on_block=self._on_loop_block,
                on_unblock=self._on_loop_unblock,
                clock=clock,  # so a block's due time is in the alerts' time base
            )

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start sampling (and the loop monitor thread) on the running loop."""
        if self._task is not None:
            raise RuntimeError("Watchdog already started")
        if self._monitor is not None:
            self._monitor.start()
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="heapwatch-watchdog"
        )

    async def stop(self) -> None:
        """Stop sampling and join the monitor thread. Alerts and figures stay readable."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # our caller is being cancelled, not just the sampling task
        if self._monitor is not None and self._monitor.running:
            await asyncio.to_thread(self._monitor.stop)

    async def __aenter__(self) -> Watchdog:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.sample()
            except Exception as error:  # a watchdog that dies silently is worse than a noisy one
                _log.exception("watchdog sample failed")
                if self.events is not None:
                    self.events.emit(
                        EventKind.ERROR, f"watchdog sample failed: {type(error).__name__}: {error}"
                    )

    # ------------------------------------------------------------------ sampling

    def threshold_for(self, priority: float) -> float:
        """The SLA of one priority level, in seconds."""
        return self.sla_by_priority.get(priority, self.sla)

    def sample(self) -> None:
        """One check of every priority level, the depth, the workers and the rates. On the loop."""
        started = time.perf_counter()
        now = self._clock()
        queue = self.queue
        depths = queue.depth_by_priority()
        total = queue.qsize()
        self._check_starvation(now, depths, total)
        self._check_depth(now, total, queue.maxsize)
        pool_snapshot = self.pool.snapshot() if self.pool is not None else None
        if pool_snapshot is not None:
            self._check_workers(now, pool_snapshot)
        if (AlertKind.LOOP_BLOCKED, None) in self._active:
            # Running this sample means the loop is free again: the block is over.
            self._end_loop_block(now)
        lease_alert = self._active.get((AlertKind.LOOP_BLOCKED, "lease"))
        if lease_alert is not None and now - lease_alert.started_at > 2 * (lease_alert.threshold or 0):
            self._resolve((AlertKind.LOOP_BLOCKED, "lease"), now)  # a lease later, it is settled
        self._record_rates(now, pool_snapshot)
        self._samples += 1
        self._sample_cost = time.perf_counter() - started

    def _crossed(self, key: AlertKey, now: float, measure: float, limit: float) -> bool:
        """True when `measure` has just crossed `limit` (the caller raises the alert). An active
        alert resolves below the hysteresis line, and meanwhile its `peak_wait` keeps the worst
        measure seen."""
        alert = self._active.get(key)
        if alert is None:
            return measure > limit
        if measure < limit * HYSTERESIS:
            self._resolve(key, now)
        elif measure > (alert.peak_wait or 0.0):
            self._active[key] = dataclasses.replace(alert, peak_wait=float(measure))
        return False

    def _check_starvation(self, now: float, depths: dict[float, int], total: int) -> None:
        for priority, depth in depths.items():
            key = (AlertKind.STARVATION, priority)
            wait = self.queue.oldest_wait(priority)
            threshold = self.threshold_for(priority)
            if self._crossed(key, now, wait, threshold):
                self._raise(
                    key,
                    kind=AlertKind.STARVATION,
                    started_at=now,
                    message=(
                        f"priority {_fmt_priority(priority)} starving: oldest item waited "
                        f"{_fmt_seconds(wait)} (SLA {_fmt_seconds(threshold)}), "
                        f"{depth:,} queued at this priority, {total:,} in all"
                    ),
                    priority=priority,
                    wait=wait,
                    depth=depth,
                    threshold=threshold,
                    stacks=self.capture_stacks(),
                )
        # A level that emptied is no longer starving.
        for key in [k for k in self._active if k[0] is AlertKind.STARVATION]:
            if key[1] not in depths:
                self._resolve(key, now)

    def _check_depth(self, now: float, depth: int, maxsize: float) -> None:
        key = (AlertKind.DEPTH, None)
        if not 0 < maxsize < math.inf:
            if key in self._active:
                self._resolve(key, now)
            return
        limit = self.depth_ratio * maxsize
        # For DEPTH the peak (`peak_wait`) records the deepest the queue got while it lasted.
        if self._crossed(key, now, depth, limit):
            size = f"{int(maxsize):,}" if maxsize == int(maxsize) else f"{maxsize:g}"  # or 2.5
            self._raise(
                key,
                kind=AlertKind.DEPTH,
                started_at=now,
                message=f"queue depth {depth:,} is over {self.depth_ratio:.0%} of maxsize {size}",
                depth=depth,
                threshold=limit,
                wait=self.queue.oldest_wait(),
                stacks=self.capture_stacks(),  # the producers it blocks, the workers behind
            )

    def _check_workers(self, now: float, pool_snapshot: Any) -> None:
        crashed = {
            worker.id: worker
            for worker in pool_snapshot.workers
            if worker.state == WorkerState.CRASHED
        }
        for worker_id, worker in crashed.items():
            key = (AlertKind.WORKER_CRASHED, worker_id)
            if key not in self._active:
                self._raise(
                    key,
                    kind=AlertKind.WORKER_CRASHED,
                    started_at=now,
                    message=f"{worker.name} crashed after {worker.done} items",
                )
        for key in [k for k in self._active if k[0] is AlertKind.WORKER_CRASHED]:
            if key[1] not in crashed:
                self._resolve(key, now)

    def report_crash(self, worker_id: int, error: BaseException) -> Alert | None:
        """Raise WORKER_CRASHED now: wire it to `WorkerPool(on_crash=...)`.

        A crash by KeyboardInterrupt or SystemExit leaves the loop right after, before any
        sample could see the CRASHED state, so the pool's callback is the reliable path.
        Returns the alert, or None if one is already active for that worker.
        """
        key = (AlertKind.WORKER_CRASHED, worker_id)
        if key in self._active:
            return None
        return self._raise(
            key,
            kind=AlertKind.WORKER_CRASHED,
            started_at=self._clock(),
            message=f"worker-{worker_id} crashed: {error!r}",
        )

    def _record_rates(self, now: float, pool_snapshot: Any) -> None:
        puts = self.queue.puts  # not stats(): that sorts every latency window, every sample
        busy = 0.0
        completion = 0.0
        if pool_snapshot is not None:
            busy = sum(1 for worker in pool_snapshot.workers if worker.state == WorkerState.BUSY)
            completion = pool_snapshot.completion_rate
        rates = self._rates
        rates.append((now, puts, busy, completion))
        while len(rates) > 2 and now - rates[1][0] >= self.sizing_window:
            rates.popleft()

    # ------------------------------------------------------------------ alerts

    def _raise(self, key: AlertKey, **fields: Any) -> Alert:
        alert = Alert(id=self._next_id, **fields)
        if alert.wait is not None and alert.kind is not AlertKind.DEPTH:
            alert = dataclasses.replace(alert, peak_wait=alert.wait)
        self._next_id += 1
        self._active[key] = alert
        self._raised[alert.kind] += 1
        _log.warning("alert %d %s: %s", alert.id, alert.kind, alert.message)
        if self.events is not None:
            self.events.emit(EventKind.ALERT_RAISED, alert.message, alert_id=alert.id)
        self._notify(alert)
        return alert

    def _resolve(self, key: AlertKey, now: float, **fields: Any) -> Alert | None:
        alert = self._active.pop(key, None)
        if alert is None:
            return None
        alert = dataclasses.replace(alert, resolved_at=now, **fields)
        self._resolved.appendleft(alert)
        if self.events is not None:
            self.events.emit(
                EventKind.ALERT_RESOLVED,
                f"resolved after {_fmt_seconds(now - alert.started_at)}: {alert.message}",
                alert_id=alert.id,
            )
        self._notify(alert)
        return alert

    def _notify(self, alert: Alert) -> None:
        if self.on_alert is None:
            return
        try:
            self.on_alert(alert)
        except Exception:  # a broken subscriber must not stop the watchdog
            _log.exception("on_alert callback failed for alert %d", alert.id)

    @property
    def alerts(self) -> tuple[Alert, ...]:
        """Active alerts (oldest first), then the recent resolved ones (newest first)."""
        active = sorted(self._active.values(), key=lambda alert: alert.id)
        return (*active, *self._resolved)

    @property
    def active_alerts(self) -> tuple[Alert, ...]:
        return tuple(sorted(self._active.values(), key=lambda alert: alert.id))

    def alerts_raised(self) -> dict[AlertKind, int]:
        """Alerts raised since start, by kind (a counter: resolved ones still count)."""
        return dict(self._raised)

    # ------------------------------------------------------------------ loop blocks

    @property
    def viewer_prefixes(self) -> tuple[str, ...]:
        """Module prefixes of the viewer (a dashboard on the same loop). A block it causes is a
        viewer stall: counted and logged as VIEWER_STALL, not raised as LOOP_BLOCKED."""
        return self._monitor.viewer_prefixes if self._monitor is not None else ()

    @viewer_prefixes.setter
    def viewer_prefixes(self, prefixes: tuple[str, ...]) -> None:
        if self._monitor is not None:
            self._monitor.viewer_prefixes = tuple(prefixes)

    def _on_loop_block(self, block: LoopBlock) -> None:
        if block.viewer is not None:
            self._viewer_stalls += 1
            self._last_viewer_stall = f"{_fmt_seconds(block.late_by)}+ in {block.culprit}"
            if self.events is not None:
                self.events.emit(EventKind.VIEWER_STALL,
                                 f"viewer stall: the dashboard held the loop"
                                 f" {self._last_viewer_stall}")
            return
        key = (AlertKind.LOOP_BLOCKED, None)
        now = self._clock()
        self._resolve(key, now)  # a new block means the previous one is over
        threshold = (self.loop_block_ms or 0) / 1000
        self._raise(
            key,
            kind=AlertKind.LOOP_BLOCKED,
            # The block began no later than the heartbeat's due time; the thread only saw it
            # a threshold later, and the alert reaches the loop only once the block is over.
            started_at=block.due_at,
            message=(
                f"event loop blocked for {_fmt_seconds(block.late_by)}+ in {block.culprit}"
            ),
            wait=block.late_by,
            threshold=threshold,
            culprit=block.culprit,
            loop_stack=block.stack,
        )

    def _on_loop_unblock(self, lag: float) -> None:
        self._end_loop_block(self._clock(), lag)
        lease = getattr(self.queue, "lease", None)  # a queue with leases (engine.shared)
        if lease and lag > lease / 2:
            self._redelivery_possible(lag, lease)

    def _redelivery_possible(self, lag: float, lease: float) -> None:
        """A loop held past half the lease may have missed its extends: another process may
        be handling the same item now."""
        key = (AlertKind.LOOP_BLOCKED, "lease")
        now = self._clock()
        self._resolve(key, now)
        culprit = self._resolved[0].culprit if self._resolved else None
        self._raise(
            key,
            kind=AlertKind.LOOP_BLOCKED,
            started_at=now,
            message=(
                f"event loop blocked for {_fmt_seconds(lag)} in {culprit or 'a handler'}, over"
                f" half the {_fmt_seconds(lease)} lease: redelivery possible"
            ),
            wait=lag,
            threshold=lease / 2,
            culprit=culprit,
        )

    def _end_loop_block(self, now: float, lag: float | None = None) -> None:
        """Resolve the LOOP_BLOCKED alert with the full lateness (if measured) and task stacks.

        The monitor thread reads only the loop's own stack; the tasks can be read only on the
        loop, so once, now that the block is over: where each stands right after it.
        """
        key = (AlertKind.LOOP_BLOCKED, None)
        alert = self._active.get(key)
        if alert is None:
            return
        fields: dict[str, Any] = {"stacks": alert.stacks or self.capture_stacks()}
        if lag is not None:
            fields["peak_wait"] = max(lag, alert.wait or 0.0)
            fields["message"] = f"event loop blocked for {_fmt_seconds(lag)} in {alert.culprit}"
        self._resolve(key, now, **fields)

    # ------------------------------------------------------------------ evidence on demand

    def capture_stacks(self) -> tuple[StackGroup, ...]:
        """Group every pending task by role and stack, now. On the loop; kept for snapshot()."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return ()  # sampled from synchronous code: there are no tasks to read
        self._stacks = capture_task_stacks(loop, keep=self.keep_task)
        return self._stacks

    async def memory_profile(
        self, *, sample_items: int = 1000, stats: QueueStats | None = None
    ) -> MemoryProfile:
        """Bytes per queued item (queue overhead and payload apart) and the top allocation
        sites, kept for `snapshot()`: see `engine.memory.measure_memory`. `stats`: the queue's
        stats already taken (None: read the depth and levels from the queue)."""
        self._memory = await measure_memory(
            self.queue, sample_items=sample_items, clock=self._clock, stats=stats
        )
        return self._memory

    # ------------------------------------------------------------------ sizing

    def sizing_advice(self, stats: QueueStats | None = None) -> SizingAdvice | None:
        """Little's law over the last `sizing_window` seconds; None until there is traffic.

        `stats`: the queue's stats already taken for this reading (None: take them now).
        """
        if len(self._rates) < 2:
            return None
        first, last = self._rates[0], self._rates[-1]
        window = last[0] - first[0]
        if window <= 0:
            return None
        arrival_rate = (last[1] - first[1]) / window
        if arrival_rate <= 0:
            return None
        if stats is None:
            stats = self.queue.stats()
        wait_p50 = stats.wait_p50 if stats.wait_p50 is not None else stats.oldest_wait
        service_time = None
        completion_rate = None
        if self.pool is not None:
            samples = list(self._rates)
            mean_busy = sum(sample[2] for sample in samples) / len(samples)
            completion_rate = sum(sample[3] for sample in samples) / len(samples)
            if completion_rate > 0:
                # Little's law on the workers themselves: busy = completion rate x service time.
                service_time = mean_busy / completion_rate
        time_in_system = wait_p50 + (service_time or 0.0)
        suggested = max(1, math.ceil(arrival_rate * time_in_system * self.sizing_headroom))
        return SizingAdvice(
            arrival_rate=arrival_rate,
            time_in_system=time_in_system,
            suggested_maxsize=suggested,
            window=window,
            wait_p50=wait_p50,
            service_time=service_time,
            completion_rate=completion_rate,
            headroom=self.sizing_headroom,
            current_maxsize=stats.maxsize,
        )

    # ------------------------------------------------------------------ reading

    def snapshot(self, stats: QueueStats | None = None) -> WatchdogSnapshot:
        """Alerts, the last stacks, loop lag, sample cost, sizing and memory, frozen.

        `stats`: the queue's stats the caller already took for the same reading, so that one
        reading costs one `queue.stats()` (None: the sizing advice takes them if it needs them).
        """
        if self._monitor is not None:
            lag_p50, lag_p99, lag_max = self._monitor.lag_stats()
        else:
            lag_p50, lag_p99, lag_max = None, None, 0.0
        return WatchdogSnapshot(
            alerts=self.alerts,
            stacks=self._stacks,
            loop_lag_p50=lag_p50,
            loop_lag_p99=lag_p99,
            loop_lag_max=lag_max,
            sample_cost=self._sample_cost,
            sizing=self.sizing_advice(stats),
            memory=self._memory,
            sla=self.sla,
            sla_by_priority=tuple(sorted(self.sla_by_priority.items())),
            alerts_raised=tuple(self._raised.items()),
            viewer_stalls=self._viewer_stalls,
            last_viewer_stall=self._last_viewer_stall,
            taken_at=self._clock(),
            wall_time=time.time(),
        )
