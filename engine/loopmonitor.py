"""Catch a blocked event loop from outside it, with the stack that blocked it.

A heartbeat callback on the loop stamps when it next expects to run. A daemon thread checks that
stamp; when the heartbeat is late by more than the threshold, the loop is still stuck in whatever
held it, so the thread reads the loop thread's stack with `sys._current_frames()` right then and
names the culprit: the innermost frame that is not asyncio or selector machinery. The report goes
back to the loop with `call_soon_threadsafe`, once per block.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

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
    viewer: str | None = None
    """Set when the viewer held the loop (its own rendering, its snapshot reads, a collection
    while it rendered): the frame of the viewer's code, 'function (file:line)'."""


def _loop_callback_frames(frames: list[FrameType]) -> list[FrameType]:
    """The frames of the callback the loop is running now (those inside its Handle._run)."""
    for index in range(len(frames) - 1, -1, -1):
        code = frames[index].f_code
        if code.co_name == "_run" and code.co_filename.endswith(f"asyncio{os.sep}events.py"):
            return frames[index + 1 :]
    return frames


def viewer_frame(frames: list[FrameType], prefixes: tuple[str, ...]) -> FrameType | None:
    """The innermost frame of the viewer's code in the callback that holds the loop, if any.

    A module is the viewer's when its name is one of `prefixes` or under one ('textual' covers
    'textual.strip'). Only the current callback counts: the loop itself is run by the viewer
    (App.run), so every stack has the viewer at its root. A handler that blocks runs in a task
    step with no viewer frame in it, so it is never taken for the viewer; the engine's snapshot
    read by the viewer's timer, or a collection triggered while it renders, is.
    """
    if not prefixes:
        return None
    for frame in reversed(_loop_callback_frames(frames)):
        module = frame.f_globals.get("__name__", "")
        if any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes):
            return frame
    return None


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
        self.viewer_prefixes: tuple[str, ...] = ()
        """Module prefixes of the viewer (the dashboard): blocks it causes are `viewer` ones."""
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
            viewer = viewer_frame(frames, self.viewer_prefixes)
            block = LoopBlock(
                seq=seq,
                due_at=due,
                detected_at=now,
                late_by=late,
                culprit=format_frame(culprit) if culprit is not None else "?",
                stack=tuple(format_frame(frame) for frame in frames[-40:]),
                viewer=format_frame(viewer) if viewer is not None else None,
            )
            reported = seq
            self.blocks += 1
            try:
                loop.call_soon_threadsafe(self._deliver, block)
            except RuntimeError:  # the loop closed under us
                return
