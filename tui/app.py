"""HeapwatchApp: the live dashboard of one Engine, on Textual's own event loop.

Data flows one way: a timer reads `engine.snapshot()` (one frozen `EngineSnapshot`) into the
`snapshot` reactive and every panel is data-bound to it. Keys are BINDINGS whose actions call
Engine methods; an engine error becomes an error notification, never a crash.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical, VerticalScroll
from textual.events import Resize
from textual.reactive import reactive
from textual.widgets import Footer, Input, Tab, Tabs, TextArea

from engine.snapshots import (
    EngineSnapshot,
    MemoryProfile,
    ShutdownReport,
    StackGroup,
)
from tui.palette import SafeCommandPalette
from tui.screens.alert_detail import AlertScreen
from tui.screens.help import HelpScreen
from tui.signals import watch_signals
from tui.widgets.alert_table import AlertTable
from tui.widgets.depth_gauge import DepthGauge
from tui.widgets.event_log import EventLog
from tui.widgets.format import seconds, size
from tui.widgets.heap_table import HeapTable
from tui.widgets.history import HistoryPanel
from tui.widgets.priority_table import PriorityTable
from tui.widgets.process_panel import ProcessPanel
from tui.widgets.shutdown_panel import ShutdownPanel
from tui.widgets.stack_view import StackView
from tui.widgets.summary_bar import SummaryBar
from tui.widgets.worker_table import WorkerTable

SLOW_HZ = 2.5
"""Refreshes per second of the slow panels (heap, history, process, priorities, alerts, stacks)."""

COMPACT_BELOW = (110, 32)
"""Below this many columns or rows the panels go into pages (tabs)."""

PAGES = ("queue", "workers", "alerts", "more", "shutdown")


class EngineLike(Protocol):
    """The part of `engine.runtime.Engine` the dashboard uses."""

    running: bool
    shutting_down: bool

    async def start(self) -> None: ...
    def snapshot(self) -> EngineSnapshot: ...
    def burst(self, size: int) -> int: ...
    def flood_low(self, size: int) -> int: ...
    def cancel_worker(self, worker_id: int | None) -> int | None: ...
    def add_worker(self) -> int: ...
    def remove_worker(self) -> int | None: ...
    def toggle_producers(self) -> bool: ...
    def toggle_aging(self) -> float: ...
    def cycle_overflow(self) -> str: ...
    def block_loop_once(self, seconds: float = 0.5) -> None: ...
    def capture_stacks(self) -> tuple[StackGroup, ...]: ...
    async def memory_profile(self) -> MemoryProfile: ...
    async def shutdown(self, drain_timeout: float | None = None) -> ShutdownReport: ...


class HeapwatchApp(App[int]):
    """The dashboard. `HeapwatchApp(engine).run()` returns 0 after a graceful quit."""

    CSS_PATH = Path(__file__).with_name("app.tcss")
    """Absolute, so that subclasses defined elsewhere find it too."""
    TITLE = "heapwatch"

    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?"),
        # priority: q quits from any screen (help, alert detail); not while typing: check_action.
        Binding("q", "quit", "Quit", priority=True),
        Binding("b", "burst", "Burst"),
        Binding("B", "big_burst", "×10", key_display="B"),
        Binding("l", "flood_low", "Flood"),
        Binding("c", "cancel_worker", "Cancel"),
        Binding("plus", "add_worker", "Add", key_display="+"),
        Binding("minus", "remove_worker", "Drop", key_display="-"),
        Binding("p", "toggle_producers", "Pause"),
        Binding("a", "toggle_aging", "Aging"),
        Binding("o", "cycle_overflow", "Overflow"),
        Binding("x", "block_loop", "Block"),
        Binding("m", "memory_profile", "Mem"),
        Binding("k", "capture_stacks", "Stacks", show=False),
        Binding("f", "toggle_freeze", "Freeze"),
        Binding("s", "shutdown", "Shutdown"),
    ]

    # The app's reactives never repaint it: a repaint of the App is a repaint of the whole
    # screen. The panels bound to them repaint themselves, and only what changed.
    snapshot: reactive[EngineSnapshot | None] = reactive(None, repaint=False)
    """The snapshot on display, every refresh: the panels whose numbers move every tick."""
    slow_snapshot: reactive[EngineSnapshot | None] = reactive(None, repaint=False)
    """The same snapshots at most SLOW_HZ times a second (and right after a key), for the panels
    that read as trends or lists: repainting them at the full rate would double the UI's cost."""
    frozen: reactive[bool] = reactive(False, repaint=False)
    """True while the display is frozen (`f`): the engine keeps running, the panels hold still."""
    refresh_cost: reactive[float | None] = reactive(None, repaint=False)
    """Seconds the last refresh (snapshot + panel updates) took on the loop."""

    def __init__(
        self,
        engine: EngineLike,
        *,
        refresh_hz: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        burst_size: int = 200,
        flood_size: int = 2_000,
        compact: bool | None = None,
    ) -> None:
        """Show `engine`, reading it `refresh_hz` times a second.

        `clock` must be the engine's clock (leave as default unless testing). `compact` forces
        the paged layout on or off; None decides from the terminal size.
        """
        if not refresh_hz > 0:
            raise ValueError(f"refresh_hz must be > 0, got {refresh_hz!r}")
        for name, value in (("burst_size", burst_size), ("flood_size", flood_size)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value!r}")
        super().__init__()
        self.engine = engine
        self.refresh_hz = refresh_hz
        self.clock = clock
        self.burst_size = burst_size
        self.flood_size = flood_size
        self.forced_compact = compact
        self.refreshes = 0
        """Snapshots taken so far."""
        self._slow_every = max(1, round(refresh_hz / SLOW_HZ))
        self._refresh_slow_next = True
        self._shutdown_task: asyncio.Future[ShutdownReport] | None = None
        self._seen_alerts: set[int] = set()
        self._snapshot_error: str | None = None
        self._page = "queue"

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield SummaryBar().data_bind(HeapwatchApp.snapshot, HeapwatchApp.frozen)
        yield Tabs(*(Tab(page.capitalize(), id=page) for page in PAGES), id="pages")
        with Grid(id="panels"):
            with Vertical(id="heap-panel", classes="panel"):
                yield HeapTable(id="heap").data_bind(snapshot=HeapwatchApp.slow_snapshot)
            with Vertical(id="depth-panel", classes="panel"):
                yield DepthGauge(id="gauge").data_bind(HeapwatchApp.snapshot)
                yield HistoryPanel(id="history").data_bind(
                    snapshot=HeapwatchApp.slow_snapshot)
            with Vertical(id="side-panel", classes="panel"):
                yield ProcessPanel(id="process").data_bind(
                    HeapwatchApp.refresh_cost, snapshot=HeapwatchApp.slow_snapshot)
                yield EventLog(id="events").data_bind(
                    snapshot=HeapwatchApp.slow_snapshot)
            with Vertical(id="workers-panel", classes="panel"):
                yield WorkerTable(id="workers").data_bind(HeapwatchApp.snapshot)
            with Vertical(id="priority-panel", classes="panel"):
                yield PriorityTable(id="priorities").data_bind(
                    snapshot=HeapwatchApp.slow_snapshot)
            with VerticalScroll(id="shutdown-panel", classes="panel"):
                yield ShutdownPanel(id="shutdown", clock=self.clock).data_bind(
                    HeapwatchApp.snapshot)
            with Vertical(id="alerts-panel", classes="panel"):
                yield AlertTable(id="alerts", clock=self.clock).data_bind(
                    snapshot=HeapwatchApp.slow_snapshot)
            with VerticalScroll(id="stacks-panel", classes="panel"):
                yield StackView(id="stacks").data_bind(
                    snapshot=HeapwatchApp.slow_snapshot)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self._signals = watch_signals(self)  # first: a SIGTERM from now on quits gracefully
        titles = {
            "heap-panel": "heap root",
            "depth-panel": "depth",
            "side-panel": "process",
            "workers-panel": "workers",
            "priority-panel": "per priority",
            "shutdown-panel": "shutdown",
            "alerts-panel": "alerts (enter: stacks)",
            "stacks-panel": "blocked-task stacks",
        }
        for panel_id, title in titles.items():
            self.query_one(f"#{panel_id}").border_title = title
        self._apply_layout(self.size.width, self.size.height)
        self._set_page("queue")
        self._start_engine()

    def on_resize(self, event: Resize) -> None:
        self._apply_layout(event.size.width, event.size.height)

    def _apply_layout(self, width: int, height: int) -> None:
        compact = self.forced_compact
        if compact is None:
            compact = width < COMPACT_BELOW[0] or height < COMPACT_BELOW[1]
        self.set_class(compact, "-compact")

    @property
    def compact(self) -> bool:
        """True when the panels are paged (small terminals)."""
        return self.has_class("-compact")

    @on(Tabs.TabActivated, "#pages")
    def _page_chosen(self, event: Tabs.TabActivated) -> None:
        if event.tab.id is not None:
            self._set_page(event.tab.id)

    def _set_page(self, page: str) -> None:
        for name in PAGES:
            self.set_class(name == page, f"-page-{name}")
        self._page = page

    def _show_page(self, page: str) -> None:
        self.query_one("#pages", Tabs).active = page

    # ------------------------------------------------------------------ engine lifecycle

    @work(group="engine", exit_on_error=False)
    async def _start_engine(self) -> None:
        try:
            if not getattr(self.engine, "running", False):
                await self.engine.start()
        except Exception as error:  # the UI must survive a failing engine and say why
            self._report_error("start", error)
        self.refresh_snapshot()
        self.set_interval(1 / self.refresh_hz, self.refresh_snapshot, name="refresh")

    def refresh_snapshot(self) -> None:
        """Read one snapshot and hand it to the panels (skipped while frozen)."""
        if self.frozen:
            return
        started = self.clock()
        try:
            snapshot = self.engine.snapshot()
        except Exception as error:
            # Said once per distinct error, not on every tick while it lasts.
            if repr(error) != self._snapshot_error:
                self._snapshot_error = repr(error)
                self._report_error("snapshot", error)
            return
        self._snapshot_error = None
        self.refreshes += 1
        self.snapshot = snapshot
        if self._refresh_slow_next or self.refreshes % self._slow_every == 0:
            self._refresh_slow_next = False
            self.slow_snapshot = snapshot
        self.refresh_cost = self.clock() - started

    def watch_snapshot(self, old: EngineSnapshot | None, new: EngineSnapshot | None) -> None:
        if new is None:
            return
        if new.pool.shutdown_started and not self.has_class("-shutdown"):
            self.add_class("-shutdown")
            if self.compact:
                self._show_page("shutdown")
        for alert in new.watchdog.alerts:
            if alert.id not in self._seen_alerts:
                self._seen_alerts.add(alert.id)
                if alert.active and old is not None:
                    self.notify(alert.message, title=f"alert: {alert.kind}", severity="warning")

    async def _graceful_shutdown(self) -> ShutdownReport | None:
        """Shut the engine down once; later callers wait for the same shutdown."""
        if self._shutdown_task is None:
            self._shutdown_task = asyncio.ensure_future(self.engine.shutdown())
        try:
            return await asyncio.shield(self._shutdown_task)
        except Exception as error:
            self._report_error("shutdown", error)
            return None

    async def on_unmount(self) -> None:
        # Leaving by any road (ctrl+c, an exception) still shuts the engine down gracefully.
        if self._shutdown_task is None and getattr(self.engine, "running", False):
            await self._graceful_shutdown()
        if getattr(self, "_signals", None) is not None:
            self._signals.remove()

    def action_command_palette(self) -> None:
        # Textual's own palette can die on mashed keys (see tui/palette.py).
        if self.use_command_palette and not isinstance(self.screen, SafeCommandPalette):
            self.push_screen(SafeCommandPalette())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # While a text input has focus q is a letter (Esc leaves the input first).
        return not (action == "quit" and isinstance(self.focused, Input | TextArea))

    def _report_error(self, what: str, error: BaseException) -> None:
        self.notify(f"{what} failed: {type(error).__name__}: {error}", title="engine error",
                    severity="error", timeout=8)

    def _call(self, what: str, method: Callable[..., Any], *args: Any) -> Any:
        """Call an engine method; an error becomes a notification and the result None."""
        try:
            result = method(*args)
        except Exception as error:
            self._report_error(what, error)
            return _FAILED
        # A key's effect shows in every panel at the next refresh, slow ones included.
        self._refresh_slow_next = True
        return result

    # ------------------------------------------------------------------ actions

    def action_burst(self) -> None:
        """Submit a burst of mixed priorities."""
        self._burst(self.burst_size)

    def action_big_burst(self) -> None:
        """Submit a burst ten times bigger."""
        self._burst(self.burst_size * 10)

    def _burst(self, size: int) -> None:
        submitted = self._call("burst", self.engine.burst, size)
        if submitted is not _FAILED:
            self.notify(f"burst: {submitted:,} items submitted")

    def action_flood_low(self) -> None:
        """Flood the queue with lowest-priority items (the starvation demo)."""
        submitted = self._call("flood", self.engine.flood_low, self.flood_size)
        if submitted is not _FAILED:
            self.notify(f"flood: {submitted:,} low-priority items submitted")

    def action_cancel_worker(self) -> None:
        """Cancel the selected worker (workers table focused), else the busiest."""
        table = self.query_one(WorkerTable)
        chosen = table.selected_worker_id if table.has_focus else None
        cancelled = self._call("cancel", self.engine.cancel_worker, chosen)
        if cancelled is _FAILED:
            return
        if cancelled is None:
            self.notify("no worker to cancel", severity="warning")
        else:
            self.notify(f"worker-{cancelled} cancelled; its item goes back to the queue")

    def action_add_worker(self) -> None:
        """Add a worker to the pool."""
        added = self._call("add worker", self.engine.add_worker)
        if added is not _FAILED:
            self.notify(f"worker-{added} added")

    def action_remove_worker(self) -> None:
        """Remove a worker from the pool (it finishes its item first)."""
        removed = self._call("remove worker", self.engine.remove_worker)
        if removed is _FAILED:
            return
        if removed is None:
            self.notify("no worker left to remove", severity="warning")
        else:
            self.notify(f"worker-{removed} removed")

    def action_toggle_producers(self) -> None:
        """Pause or resume the load generator."""
        paused = self._call("pause producers", self.engine.toggle_producers)
        if paused is not _FAILED:
            self.notify("producers paused" if paused else "producers resumed")

    def action_toggle_aging(self) -> None:
        """Turn priority aging on or off."""
        rate = self._call("aging", self.engine.toggle_aging)
        if rate is not _FAILED:
            self.notify(f"aging on: {rate:g} priority points/s" if rate else "aging off")

    def action_cycle_overflow(self) -> None:
        """Cycle the overflow policy: block, reject, evict-lowest."""
        policy = self._call("overflow", self.engine.cycle_overflow)
        if policy is not _FAILED:
            self.notify(f"overflow policy: {policy}")

    def action_block_loop(self) -> None:
        """Make the next handler call block the event loop once."""
        if self._call("block loop", self.engine.block_loop_once, 0.5) is not _FAILED:
            self.notify("the next handler call blocks the loop for 500ms")

    def action_capture_stacks(self) -> None:
        """Capture the blocked-task stacks now."""
        groups = self._call("capture stacks", self.engine.capture_stacks)
        if groups is not _FAILED:
            tasks = sum(group.count for group in groups)
            self.notify(f"stacks: {tasks:,} tasks in {len(groups)} groups")

    @work(group="memory", exclusive=True, exit_on_error=False)
    async def action_memory_profile(self) -> None:
        """Take a memory profile of the queue (off the refresh path)."""
        self.notify("memory profile: measuring…", timeout=2)
        try:
            profile = await self.engine.memory_profile()
        except Exception as error:
            self._report_error("memory profile", error)
            return
        sites = "".join(f"\n{site.where}  {size(site.size)} in {site.count:,} blocks"
                        for site in profile.top_sites[:3])
        self.notify(f"memory: {profile.bytes_per_item:.0f} B/item queue overhead at depth "
                    f"{profile.depth:,} (+{size(profile.payload_bytes_per_item)} payload)"
                    f"{sites}", timeout=10)

    def action_toggle_freeze(self) -> None:
        """Freeze or thaw the display; the engine keeps running."""
        self.frozen = not self.frozen
        if not self.frozen:
            self._refresh_slow_next = True
            self.refresh_snapshot()
        self.notify("display frozen (engine still running)" if self.frozen else "display live")

    def action_shutdown(self) -> None:
        """Shut down gracefully; stay open on the drain and the report."""
        if self._shutdown_task is not None:
            self.notify("a shutdown already ran; q quits", severity="warning")
            return
        self.notify("graceful shutdown: stopping intake, draining…")
        self._refresh_slow_next = True
        self._run_shutdown()
        self.refresh_snapshot()

    @work(group="shutdown", exit_on_error=False)
    async def _run_shutdown(self) -> None:
        report = await self._graceful_shutdown()
        if report is not None:
            accounting = report.accounting
            self.notify(f"shutdown done in {seconds(report.drain_time)}: "
                        f"{accounting.completed:,} completed, {accounting.returned:,} returned, "
                        f"{accounting.lost:,} lost")
        self.refresh_snapshot()

    def action_quit(self) -> None:
        """Shut the engine down gracefully, then exit with status 0."""
        if self._shutdown_task is None:
            self.notify("quitting: graceful shutdown…")
        self._quit_after_shutdown()

    @work(group="quit", exclusive=True, exit_on_error=False)
    async def _quit_after_shutdown(self) -> None:
        # A worker, so that the panels keep showing the drain until the very end.
        await self._graceful_shutdown()
        self.exit(0)

    def action_help(self) -> None:
        """Show every key."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    @on(AlertTable.RowSelected, "#alerts")
    def _open_alert(self, event: AlertTable.RowSelected) -> None:
        alert = self.query_one(AlertTable).alert(int(event.key))
        if alert is not None:
            self.push_screen(AlertScreen(alert))


_FAILED = object()
"""What `_call` returns when the engine raised (None is a legitimate result)."""
