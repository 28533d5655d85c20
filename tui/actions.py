"""The control keys' actions: each calls one source method and toasts what it did.

A mixin of HeapwatchApp, kept apart from the layout and the lifecycle. A toast is only ever
the result of the user's own key, one at a time (a newer replaces an older), never over a
modal screen; what the source raises goes to the event log and the hint line instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual import work
from textual.screen import ModalScreen

from engine.snapshots import BurstResult
from tui.keys import key_for
from tui.widgets.format import size
from tui.widgets.worker_table import WorkerTable

_FAILED = object()
"""What `_call` returns when the source raised (None is a legitimate result)."""


class SourceActions:
    """`action_*` for the keys that act on the source (tui/keys.py names them)."""

    engine: Any
    burst_size: int
    flood_size: int
    _refresh_slow_next: bool

    # Provided by HeapwatchApp / textual.App.
    screen: Any
    part: Any
    notify: Any
    clear_notifications: Any
    call_after_refresh: Any
    refresh_snapshot: Any
    _report_error: Any

    def toast(self, message: str, *, severity: str = "information", timeout: float = 4) -> None:
        """Tell the user what their key did: one toast at a time, never over a modal."""
        if isinstance(self.screen, ModalScreen):
            return
        self.clear_notifications()
        self.notify(message, severity=severity, timeout=timeout)  # type: ignore[arg-type]

    def _call(self, what: str, method: Callable[..., Any], *args: Any) -> Any:
        """Call a source method; an error goes to the event log and the result is _FAILED."""
        try:
            result = method(*args)
        except Exception as error:
            self._report_error(what, error)
            return _FAILED
        # A key's effect shows in every panel at once, slow ones included, not a second later.
        self._refresh_slow_next = True
        self.call_after_refresh(self.refresh_snapshot)
        return result

    def action_burst(self) -> None:
        """Submit a burst of mixed priorities."""
        self._burst("burst", self.engine.burst, self.burst_size)

    def action_big_burst(self) -> None:
        """Submit a burst ten times bigger."""
        self._burst("burst", self.engine.burst, self.burst_size * 10)

    def action_flood_low(self) -> None:
        """Flood the queue with lowest-priority items (the starvation demo)."""
        self._burst("flood", self.engine.flood_low, self.flood_size)

    def _burst(self, what: str, method: Callable[[int], Any], size: int) -> None:
        result = self._call(what, method, size)
        if result is _FAILED:
            return
        if isinstance(result, BurstResult):
            self.toast(f"{what} of {result.requested:,}: {result.text}")
        else:  # a source that only says how many the queue took at once
            waiting = size - result
            self.toast(f"{what} of {size:,}: {result:,} submitted now"
                       + (f", {waiting:,} waiting for room or refused" if waiting else ""))

    def action_cancel_worker(self) -> None:
        """Cancel the selected worker (workers table focused), else the busiest."""
        table = self.part(WorkerTable)
        chosen = table.selected_worker_id if table.has_focus else None
        cancelled = self._call("cancel", self.engine.cancel_worker, chosen)
        if cancelled is _FAILED:
            return
        if cancelled is None:
            self.toast("no worker to cancel", severity="warning")
        else:
            # Cancelling shrinks the pool (no replacement): say so, and how to grow it back.
            self.toast(f"worker-{cancelled} cancelled; its item goes back to the queue. The pool"
                       f" is one worker smaller: {key_for('add_worker')} adds one")

    def action_add_worker(self) -> None:
        """Add a worker to the pool."""
        added = self._call("add worker", self.engine.add_worker)
        if added is not _FAILED:
            self.toast(f"worker-{added} added")

    def action_remove_worker(self) -> None:
        """Remove a worker from the pool (it finishes its item first)."""
        removed = self._call("remove worker", self.engine.remove_worker)
        if removed is _FAILED:
            return
        if removed is None:
            self.toast("no worker left to remove", severity="warning")
        else:
            self.toast(f"worker-{removed} removed after its current item")

    def action_toggle_producers(self) -> None:
        """Pause or resume the load generator."""
        paused = self._call("pause producers", self.engine.toggle_producers)
        if paused is not _FAILED:
            self.toast("producers paused" if paused else "producers resumed")

    def action_toggle_getting(self) -> None:
        """Pause or resume the service's workers getting from its queue (attach --control)."""
        pausing = self._call("pause getting", self.engine.toggle_getting)
        if pausing is not _FAILED:
            self.toast("asked the service to pause getting" if pausing
                       else "asked the service to resume getting")

    def action_toggle_aging(self) -> None:
        """Turn priority aging on or off."""
        rate = self._call("aging", self.engine.toggle_aging)
        if rate is not _FAILED:
            self.toast(f"aging on: {rate:g} priority points/s" if rate else "aging off")

    def action_cycle_overflow(self) -> None:
        """Cycle the overflow policy: block, reject, evict-lowest."""
        policy = self._call("overflow", self.engine.cycle_overflow)
        if policy is not _FAILED:
            self.toast(f"overflow policy: {policy}")

    def action_block_loop(self) -> None:
        """Make the next handler call block the event loop once."""
        if self._call("block loop", self.engine.block_loop_once, 0.5) is not _FAILED:
            self.toast("the next handler call blocks the loop for 500ms")

    def action_capture_stacks(self) -> None:
        """Capture the blocked-task stacks now."""
        groups = self._call("capture stacks", self.engine.capture_stacks)
        if groups is not _FAILED:
            tasks = sum(group.count for group in groups)
            self.toast(f"stacks: {tasks:,} tasks in {len(groups)} groups")

    @work(group="memory", exclusive=True, exit_on_error=False)
    async def action_memory_profile(self) -> None:
        """Take a memory profile of the queue (it shows in the process panel)."""
        try:
            profile = await self.engine.memory_profile()
        except Exception as error:
            self._report_error("memory profile", error)
            return
        self._refresh_slow_next = True
        self.toast(f"memory: {profile.bytes_per_item:.0f} B/item at depth {profile.depth:,}"
                   f" (+{size(profile.payload_bytes_per_item)} payload); see the process panel")
