"""Catch a blocked event loop from outside it, with the stack that blocked it.

A heartbeat callback on the loop stamps when it next expects to run. A daemon thread checks that
stamp; when the heartbeat is late by more than the threshold, the loop is still stuck in whatever
held it, so the thread reads the loop thread's stack with `sys._current_frames()` right then and
names the culprit: the innermost frame that is not asyncio or selector machinery. The report goes
back to the loop with `call_soon_threadsafe`, once per block.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from engine.latency import LatencyWindow
from engine.stacks import culprit_frame, current_thread_stack, format_frame

DEFAULT_THRESHOLD = 0.1
"""Seconds late before a heartbeat counts as a blocked loop (the issue's 100 ms)."""


@dataclass(frozen=True, slots=True)
class LoopBlock:
    """One blocked stretch of the loop, as the monitor thread caught it."""

    seq: int
    """The heartbeat that was late (one report per heartbeat, so one per block)."""
    due_at: float
    """When that heartbeat should have run: the block started no later than this."""
    detected_at: float
    late_by: float
    """Seconds late when the stack was read; the block's full length comes with the unblock."""
    culprit: str
    """'function (file:line)' of the innermost frame that is not loop machinery."""
    stack: tuple[str, ...]
    """The loop thread's stack when caught, innermost last."""


class LoopMonitor:
    """Heartbeat on the loop plus a watcher thread off it.

    `on_block(block)` runs on the loop thread as soon as the loop is free again, once per block;
    `on_unblock(lag)` runs when the late heartbeat finally fires, with the full lateness.
    Lag percentiles are the queue's (`engine.latency`: interpolated, as numpy's default).
    """

    def __init__(
        self,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        period: float | None = None,
        on_block: Callable[[LoopBlock], None] | None = None,
        on_unblock: Callable[[float], None] | None = None,
        lag_window: int = 2048,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not threshold > 0:
            raise ValueError(f"threshold must be > 0 seconds, got {threshold!r}")
        if period is not None and not period > 0:
            raise ValueError(f"period must be > 0 seconds, got {period!r}")
        if lag_window < 1:
            raise ValueError(f"lag_window must be >= 1, got {lag_window!r}")
        self.threshold = threshold
        self.period = period if period is not None else threshold / 2
        """Seconds between heartbeats."""
        self.check_interval = max(0.005, threshold / 2)
        """Seconds between the thread's checks: a block is caught within half a threshold. Each
        check takes the GIL from a busy loop, which costs more than the check (measured: a quarter
        threshold cost about 5% of queue throughput, half a threshold about 1%)."""
        self._on_block = on_block
        self._on_unblock = on_unblock
        self._clock = clock
        self._lags = LatencyWindow(lag_window)
        self._lag_max = 0.0
        self._seq = 0
        self._due = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread_id: int | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.blocks = 0
        """Blocks caught (with a stack) since start."""
        self.last_block: LoopBlock | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the heartbeat on the running loop and the watcher thread. Call on the loop."""
        if self._thread is not None:
            raise RuntimeError("LoopMonitor already started")
        self._loop = asyncio.get_running_loop()
        self._loop_thread_id = threading.get_ident()
        self._stopping.clear()
        self._due = self._clock() + self.period
        self._handle = self._loop.call_later(self.period, self._heartbeat)
        self._thread = threading.Thread(
            target=self._watch, name="heapwatch-loop-monitor", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread (joined) and the heartbeat. Safe to call twice, from any thread.

        The heartbeat's handle belongs to the loop: off the loop thread (the watchdog joins
        from a worker thread, so as not to block the loop) its cancellation is handed to the
        loop with `call_soon_threadsafe`; the heartbeat does not reschedule itself once
        stopping is set, whichever comes first.
        """
        self._stopping.set()
        loop = self._loop
        if threading.get_ident() == self._loop_thread_id:
            self._cancel_heartbeat()
        elif loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._cancel_heartbeat)
            except RuntimeError:  # closed meanwhile: nothing is left to cancel
                pass
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _cancel_heartbeat(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    # ------------------------------------------------------------------ figures

    def lag_stats(self) -> tuple[float | None, float | None, float]:
        """(p50, p99, max) of heartbeat lateness in seconds; percentiles None before a sample."""
        p50, p99 = self._lags.percentiles(50, 99)
        return p50, p99, self._lag_max

    @property
    def lag_samples(self) -> int:
        return len(self._lags)

    # ------------------------------------------------------------------ on the loop

    def _heartbeat(self) -> None:
        now = self._clock()
        lag = max(0.0, now - self._due)
        self._lags.record(lag)
        if lag > self._lag_max:
            self._lag_max = lag
        # The due time first, then the sequence: the thread reads them in the other order.
        self._due = now + self.period
        self._seq += 1
        if not self._stopping.is_set() and self._loop is not None:
            self._handle = self._loop.call_later(self.period, self._heartbeat)
        if lag > self.threshold and self._on_unblock is not None:
            self._on_unblock(lag)

    def _deliver(self, block: LoopBlock) -> None:
        self.last_block = block
        if self._on_block is not None:
            self._on_block(block)

    # ------------------------------------------------------------------ on the thread

    def _watch(self) -> None:
        reported = -1
        loop = self._loop
        assert loop is not None and self._loop_thread_id is not None
        while not self._stopping.wait(self.check_interval):
            if loop.is_closed():
                return
            if not loop.is_running():
                continue  # stopped, not blocked
            seq = self._seq
            due = self._due
            now = self._clock()
            late = now - due
            if seq == reported or late <= self.threshold or seq != self._seq:
                continue
            frames = current_thread_stack(self._loop_thread_id)
            if seq != self._seq or not frames:
                continue  # the loop moved on while we looked: that stack is not the block's
            culprit = culprit_frame(frames)
            block = LoopBlock(
                seq=seq,
                due_at=due,
                detected_at=now,
                late_by=late,
                culprit=format_frame(culprit) if culprit is not None else "?",
                stack=tuple(format_frame(frame) for frame in frames[-40:]),
            )
            reported = seq
            self.blocks += 1
            try:
                loop.call_soon_threadsafe(self._deliver, block)
            except RuntimeError:  # the loop closed under us
                return
