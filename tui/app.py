"""HeapwatchApp: the live dashboard of one source of snapshots, on Textual's own event loop.

Data flows one way: a timer reads `source.snapshot()` (one frozen `EngineSnapshot`) into the
`snapshot` reactive and every panel is data-bound to it. Keys come from one table (tui/keys.py)
whose entries name the Capability they need: a key the source cannot carry out now is greyed
out, never an error. What the engine says goes to the event log; a toast is only ever the
result of the user's own key, one at a time, and never over a modal screen.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical, VerticalScroll
from textual.events import Resize
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input, Tab, Tabs, TextArea

from engine.snapshots import Capability, EngineSnapshot, EventKind, ShutdownReport
from tui.actions import SourceActions
from tui.keys import KEY_BY_ACTION, KEYS, PAGE_KEYS, allowed, use_overrides
from tui.layout import plan
from tui.navigation import TableNavigation
from tui.palette import HeapwatchCommands, SafeCommandPalette
from tui.quitting import QuitActions
from tui.replaying import ReplayActions
from tui.screens.help import HelpScreen
from tui.signals import watch_signals
from tui.source import (
    SnapshotSource,
    source_capabilities,
    source_flags,
    source_label,
    source_offers,
    why_not,
)
from tui.widgets.alert_table import AlertTable
from tui.widgets.depth_gauge import DepthGauge
from tui.widgets.event_log import EventLog
from tui.widgets.heap_table import HeapTable
from tui.widgets.hint_bar import HintBar, hint_for
from tui.widgets.history import HistoryPanel
from tui.widgets.key_bar import KeyBar
from tui.widgets.priority_table import PriorityTable
from tui.widgets.process_panel import ProcessPanel
from tui.widgets.scrubber import Scrubber
from tui.widgets.shutdown_panel import ShutdownPanel
from tui.widgets.stack_view import StackView
from tui.widgets.summary_bar import SummaryBar
from tui.widgets.worker_table import WorkerTable

DEFAULT_REFRESH_HZ = 1.0
"""Snapshots per second: the workers, gauge and summary. Faster than a person reads is noise,
and every refresh is loop time the engine does not get; a key refreshes at once anyway."""
SLOW_HZ = 1 / 3
"""Refreshes per second of the slow panels (the history's trend lines, the process panel):
trends and costs, read over seconds. What the summary's figures can be checked against follows
every refresh, so that the two always agree: the heap root, the gauge, the history's labels, the
per-priority table, the workers and the alerts; and so do the event log and the blocked-task
stacks, so that an alert, its captured stack and a replaced worker show together (each redraws
only when its part of the snapshot changed). bench_tui: refresh cost p50 8.6 -> 10.7 ms at
1,000,000 queued when the heap and the priorities moved from here; 1% of the interval."""
VIEWER_PREFIXES = ("textual", "rich", "tui")
"""The dashboard's own modules (its reads of the engine's snapshot run inside them too)."""
ERROR_SHOWN_FOR = 10.0
"""Seconds an engine error stays on the hint line."""

_W = TypeVar("_W", bound=Widget)
PAGES = ("queue", "workers", "alerts", "more", "shutdown")
EngineLike = SnapshotSource
"""The old name of the source interface (tui/source.py)."""


class Panel(Vertical):
    """A bordered panel; `z` maximises the one holding the focus."""

    ALLOW_MAXIMIZE = True


class ScrollPanel(VerticalScroll):
    ALLOW_MAXIMIZE = True


class HeapwatchApp(QuitActions, SourceActions, ReplayActions, TableNavigation, App[int]):
    """The dashboard. `HeapwatchApp(engine).run()` returns 0 after a graceful quit.

    `restart` makes a fresh source for `r` once a run has stopped (None: a local Engine gets a
    new Engine of the same scenario and seed; other sources cannot restart). `on_run_stopped`
    is called with each source once its shutdown has finished, and its run number (1, 2...),
    so the command can write each run's report and spill.
    """

    CSS_PATH = Path(__file__).with_name("app.tcss")
    """Absolute, so that subclasses defined elsewhere find it too."""
    TITLE = "heapwatch"
    ENABLE_COMMAND_PALETTE = True  # opened through SafeCommandPalette (action_command_palette)
    COMMANDS = App.COMMANDS | {HeapwatchCommands}

    BINDINGS = [key.binding() for key in KEYS] + [
        Binding("escape", "back", "Back", show=False),
        *(Binding(number, f"page({index})", show=False) for index, number in enumerate(PAGE_KEYS)),
    ]

    # The app's reactives never repaint it: a repaint of the App is a repaint of the whole
    # screen. The panels bound to them repaint themselves, and only what changed.
    snapshot: reactive[EngineSnapshot | None] = reactive(None, repaint=False)
    """The snapshot on display, every refresh: the panels whose numbers move every tick."""
    slow_snapshot: reactive[EngineSnapshot | None] = reactive(None, repaint=False)
    """The same snapshots at most SLOW_HZ times a second (and right after a key), for the panels
    read over seconds (trends, logs, stacks): at the full rate they would cost for no reader."""
    frozen: reactive[bool] = reactive(False, repaint=False)
    """True while the display is frozen (`f`): the engine keeps running, the panels hold still."""
    refresh_cost: reactive[float | None] = reactive(None, repaint=False)
    """Seconds the last refresh (snapshot + panel updates) took on the loop."""
    capabilities: reactive[frozenset[Capability]] = reactive(frozenset(), repaint=False)
    """What the keys can do now: the source's capabilities, plus RESTART when the app can."""

    def __init__(
        self,
        engine: SnapshotSource,
        *,
        refresh_hz: float = DEFAULT_REFRESH_HZ,
        clock: Callable[[], float] = time.monotonic,
        burst_size: int = 200,
        flood_size: int = 2_000,
        compact: bool | None = None,
        restart: Callable[[], SnapshotSource] | None = None,
        on_run_stopped: Callable[[SnapshotSource, int], None] | None = None,
        theme: str | None = None,
        keymap: Mapping[str, str] | None = None,
        on_theme_picked: Callable[[str], object] | None = None,
        on_started: Callable[[SnapshotSource], list[str]] | None = None,
    ) -> None:
        """Show `engine`, reading it `refresh_hz` times a second.

        `clock` must be the engine's clock (leave as default unless testing). `compact` forces
        the paged layout on or off; None decides from the terminal size. `theme` is the theme
        to open with, `keymap` the config's key overrides (binding id -> key), and
        `on_theme_picked(name)` is called when the user picks another theme (the command
        remembers it in its state file). `on_started(source)` is called once each run has
        started (`--monitor`, `--record`); the lines it returns go to the event log.
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
        self.restart_source = restart if restart is not None else _local_restart(engine)
        self.on_run_stopped = on_run_stopped
        self.run_number = 1
        """1 for the first run, 2 after the first `r`..."""
        self.refreshes = 0
        """Snapshots taken so far."""
        self.slow_refreshes = 0
        """Snapshots handed to the slow panels so far."""
        self._slow_every = max(1, round(refresh_hz / SLOW_HZ))
        self._refresh_slow_next = True
        self._shutdown_task: asyncio.Future[ShutdownReport] | None = None
        self._snapshot_error: str | None = None
        self._frozen_at: float | None = None
        self._error_until = 0.0
        self._page = "queue"
        self._shape: tuple[int, int, bool] = (0, 0, False)
        self._refreshing = False
        self._grid_applied: tuple[tuple[int, ...], str] | None = None
        self._parts: dict[type, Widget] = {}
        self._quitting = False
        """`q` (or a signal) asked to exit once the shutdown is over."""
        self._last_source_state = ""
        self._initial_theme = theme
        self.on_theme_picked = on_theme_picked
        self.on_started = on_started
        use_overrides(keymap or {})
        if keymap:
            self.set_keymap(dict(keymap))

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield SummaryBar().data_bind(HeapwatchApp.snapshot)
        yield Tabs(*(Tab(f"{n} {page.capitalize()}", id=page)
                     for n, page in zip(PAGE_KEYS, PAGES, strict=True)), id="pages")
        with Grid(id="panels"):
            with Panel(id="heap-panel", classes="panel"):
                yield HeapTable(id="heap").data_bind(HeapwatchApp.snapshot)
            with Panel(id="depth-panel", classes="panel"):
                yield DepthGauge(id="gauge").data_bind(HeapwatchApp.snapshot)
                yield HistoryPanel(id="history").data_bind(
                    snapshot=HeapwatchApp.slow_snapshot, live=HeapwatchApp.snapshot)
            with ScrollPanel(id="process-panel", classes="panel"):
                yield ProcessPanel(id="process").data_bind(
                    HeapwatchApp.refresh_cost, snapshot=HeapwatchApp.slow_snapshot)
            with Panel(id="workers-panel", classes="panel"):
                yield WorkerTable(id="workers").data_bind(HeapwatchApp.snapshot)
            with Panel(id="priority-panel", classes="panel"):
                yield PriorityTable(id="priorities").data_bind(HeapwatchApp.snapshot)
            with ScrollPanel(id="shutdown-panel", classes="panel"):
                yield ShutdownPanel(id="shutdown", clock=self.clock).data_bind(
                    HeapwatchApp.snapshot)
            with Panel(id="alerts-panel", classes="panel"):
                yield AlertTable(id="alerts", clock=self.clock).data_bind(HeapwatchApp.snapshot)
            with ScrollPanel(id="stacks-panel", classes="panel"):
                yield StackView(id="stacks").data_bind(snapshot=HeapwatchApp.snapshot)
            with Panel(id="events-panel", classes="panel"):
                yield EventLog(id="events").data_bind(snapshot=HeapwatchApp.snapshot)
        yield Input(id="filter")
        yield Scrubber(id="scrubber")
        yield HintBar(id="hint")
        yield KeyBar(id="keys")

    def on_mount(self) -> None:
        self._signals = watch_signals(self)  # first: a SIGTERM from now on quits gracefully
        if self._initial_theme is not None:
            self.theme = self._initial_theme
        # Only what the user picks from now on is remembered, not the theme it opened with.
        self.watch(self, "theme", self._theme_picked, init=False)
        titles = {
            "heap-panel": "heap root (next out first)",
            "depth-panel": "depth",
            "process-panel": "process",
            "workers-panel": "workers (c cancels the selected)",
            "priority-panel": "per priority",
            "shutdown-panel": "shutdown",
            "alerts-panel": "alerts (active first; enter: stacks)",
            "stacks-panel": "blocked-task stacks",
            "events-panel": "event log",
        }
        for panel_id, title in titles.items():
            self._main.query_one(f"#{panel_id}").border_title = title
        self.setup_navigation()
        self._show_source()
        events_note = getattr(self.engine, "events_note", None)
        if events_note:  # a source whose event log stays empty says why
            self.part(EventLog).note(events_note)
        self.set_class(hasattr(self.engine, "alert_marks"), "-replay")
        if hasattr(self.engine, "on_state"):  # a remote source says when it goes and comes back
            self.engine.on_state = self._source_state_changed
        self._apply_layout(self.size.width, self.size.height)
        self._set_page("queue")
        self.set_interval(1.0, self._tick, name="clock")
        self._start_engine()

    def on_resize(self, event: Resize) -> None:
        self._apply_layout(event.size.width, event.size.height)

    def _apply_layout(self, width: int, height: int, *, force: bool = False) -> None:
        snapshot = self.snapshot
        # A shared queue's workers table has a header row per host too.
        workers = len(snapshot.pool.workers) + len(snapshot.pool.hosts) if snapshot else 4
        levels = len(snapshot.queue.per_priority) if snapshot is not None else 4
        shutdown = self.has_class("-shutdown")
        layout = plan(width, height, workers=workers, levels=levels, shutdown=shutdown)
        compact = layout.compact if self.forced_compact is None else self.forced_compact
        self.set_class(compact, "-compact")
        self.set_class(layout.wide and not compact, "-wide")
        self.part(KeyBar).essentials_only = compact
        # Setting the grid's styles lays out the whole screen: only when the plan changes.
        applied = (layout.rows, layout.columns)
        if not compact and (force or applied != self._grid_applied):
            self._grid_applied = applied
            grid = self.part(Grid)
            grid.styles.grid_rows = " ".join(str(row) for row in layout.rows)
            grid.styles.grid_columns = layout.columns
        self._shape = (workers, levels, shutdown)

    def _relayout_if_needed(self, snapshot: EngineSnapshot) -> None:
        shape = (len(snapshot.pool.workers) + len(snapshot.pool.hosts), len(snapshot.queue.per_priority),
                 self.has_class("-shutdown"))
        if shape != self._shape:
            self._apply_layout(self.size.width, self.size.height)

    def part(self, kind: type[_W]) -> _W:
        """The dashboard's one widget of this type (found once: it outlives screen changes)."""
        found = self._parts.get(kind)
        if found is None:
            found = self._parts[kind] = self._main.query_one(kind)
        return found  # type: ignore[return-value]

    @property
    def _main(self) -> Screen[Any]:
        """The dashboard's own screen, under any modal (the app's query_one reads the top one)."""
        return self.screen_stack[0] if self.screen_stack else self.screen

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
        self.part(Tabs).active = page

    def action_page(self, index: int) -> None:
        """Switch to page `index` (the number keys, in the paged layout)."""
        if self.compact and 0 <= index < len(PAGES):
            self._show_page(PAGES[index])

    def action_toggle_maximize(self) -> None:
        """Maximise the focused panel (again, or escape: back to the grid)."""
        screen = self.screen
        if screen.maximized is not None:
            screen.minimize()
            return
        focused = screen.focused or self.part(WorkerTable)
        focused.focus()
        screen.maximize(focused)

    def action_back(self) -> None:
        """Escape: close the topmost thing: a modal closes itself; then a filter; then a
        maximised panel."""
        if self.clear_filter():
            return
        if self.screen.maximized is not None:
            self.screen.minimize()

    # ------------------------------------------------------------------ keys and capabilities

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "quit":
            # While a text input has focus q is a letter (Esc leaves the input first).
            focused = self.focused
            return not isinstance(focused, Input) and not (
                isinstance(focused, TextArea) and not focused.read_only)  # details' texts
        if action == "restart":
            # Hidden while a run goes on (and for sources that cannot restart).
            return Capability.RESTART in self.capabilities
        if action.startswith("page"):
            return self.compact
        if not self.offered(action):
            return False
        return True if allowed(action, self.capabilities) else None

    def offered(self, action: str) -> bool:
        """False for a key this source can never carry out (a burst sent to a service, a
        replay key on a live run): hidden everywhere, where a key not possible now is dimmed."""
        key = KEY_BY_ACTION.get(action)
        return key is None or key.needs is None or key.needs in source_offers(self.engine)

    async def run_action(self, action: Any, default_namespace: Any = None,
                         namespaces: Any = None) -> bool:
        """A key the source cannot carry out now says why on the hint line (then does
        nothing), instead of doing nothing silently."""
        key = KEY_BY_ACTION.get(action) if isinstance(action, str) else None
        if (key is not None and key.needs is not None and default_namespace in (None, self)
                and self.check_action(action, ()) is None):
            self.say_why(why_not(self.engine, key.needs))
            return True
        return await super().run_action(action, default_namespace, namespaces)

    def say_why(self, text: str) -> None:
        """Show `text` on the hint line for a while (as an error, without logging it)."""
        self.part(HintBar).error = text
        self._error_until = self.clock() + ERROR_SHOWN_FOR

    def watch_capabilities(self) -> None:
        self.refresh_bindings()
        if self.is_mounted:
            self.part(KeyBar).refresh()

    def _stopped(self) -> bool:
        snapshot = self.snapshot
        return snapshot is not None and snapshot.pool.report is not None

    def _update_capabilities(self, snapshot: EngineSnapshot | None) -> None:
        capabilities = source_capabilities(self.engine, snapshot)
        if self.restart_source is not None and self._stopped() and not getattr(
                self.engine, "running", False):
            capabilities |= {Capability.RESTART}
        if capabilities != self.capabilities:
            self.capabilities = capabilities
            self._show_source()

    def _show_source(self) -> None:
        """The summary's endpoint (a reconnect may find a new one) and the source's state."""
        summary = self.part(SummaryBar)
        summary.source = source_label(self.engine)
        summary.source_flags = source_flags(self.engine)

    def _source_state_changed(self, state: str) -> None:
        """A remote source went stale, away, or came back: say it in the event log."""
        if not self.is_mounted:
            return
        log, endpoint = self.part(EventLog), source_label(self.engine)
        if state == "disconnected":
            log.note(f"disconnected from {endpoint}: keeping the last snapshot, reconnecting",
                     kind=EventKind.ERROR)
        elif state == "live" and self._last_source_state == "disconnected":
            log.note(f"reconnected to {endpoint}")
            log.reset()  # a restarted service counts its events from the start again
            self.remove_class("-shutdown")
        if state != "detached":
            self._last_source_state = state
        self._show_source()
        self._update_hint()

    # ------------------------------------------------------------------ engine lifecycle

    @work(group="engine", exit_on_error=False)
    async def _start_engine(self) -> None:
        tell_viewer(self.engine)
        try:
            if not getattr(self.engine, "running", False):
                await self.engine.start()
        except Exception as error:  # the UI must survive a failing engine and say why
            self._report_error("start", error)
        self._started()
        self.refresh_snapshot()
        if not self._refreshing:
            self._refreshing = True
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
        slow = self._refresh_slow_next or self.refreshes % self._slow_every == 0
        if slow:
            self._refresh_slow_next = False
            self.slow_refreshes += 1
            self.slow_snapshot = snapshot
        self.update_scrubber()
        self._show_source()  # STALE from this very frame, not at the next tick
        self.refresh_cost = self.clock() - started

    def watch_snapshot(self, snapshot: EngineSnapshot | None) -> None:
        if snapshot is None:
            return
        if snapshot.pool.shutdown_started and not self.has_class("-shutdown"):
            self.add_class("-shutdown")
            if self.compact:
                self._show_page("shutdown")
        self._update_capabilities(snapshot)
        self._relayout_if_needed(snapshot)
        self._update_hint()

    def _update_hint(self) -> None:
        hint = self.part(HintBar)
        hint.hint = hint_for(self.snapshot, self.capabilities, frozen=self.frozen,
                             quitting=self._quitting, remote=bool(source_label(self.engine)))
        if hint.error and self.clock() >= self._error_until:
            hint.error = ""

    def _tick(self) -> None:
        """Once a second: the frozen display's age, the hint line's error expiring."""
        summary = self.part(SummaryBar)
        if self._frozen_at is not None:
            summary.frozen_for = self.clock() - self._frozen_at
        self._show_source()
        self._update_hint()

    async def on_unmount(self) -> None:
        # Leaving by any road (ctrl+c, an exception) still shuts the engine down gracefully.
        if self._shutdown_task is None and getattr(self.engine, "running", False):
            await self._graceful_shutdown()
        if getattr(self, "_signals", None) is not None:
            self._signals.remove()

    def action_command_palette(self) -> None:
        """List every action by name and key (type to narrow the list)."""
        # Textual's own palette can die on mashed keys (see tui/palette.py).
        if self.use_command_palette and not isinstance(self.screen, SafeCommandPalette):
            self.push_screen(SafeCommandPalette())

    def _report_error(self, what: str, error: BaseException) -> None:
        """An engine error goes to the event log and the hint line, never to a toast."""
        text = f"{what} failed: {type(error).__name__}: {error}"
        at = self.snapshot.at if self.snapshot is not None else None
        if self.is_mounted:
            self.part(EventLog).note(text, at=at, kind=EventKind.ERROR)
            self.part(HintBar).error = text
        self._error_until = self.clock() + ERROR_SHOWN_FOR

    def action_toggle_freeze(self) -> None:
        """Freeze or thaw the display; the engine keeps running."""
        self.frozen = not self.frozen
        self._frozen_at = self.clock() if self.frozen else None
        self.set_class(self.frozen, "-frozen")
        self.part(SummaryBar).frozen_for = 0.0 if self.frozen else None
        if not self.frozen:
            self._refresh_slow_next = True
            self.refresh_snapshot()
        self._update_hint()

    @work(group="restart", exclusive=True, exit_on_error=False)
    async def action_restart(self) -> None:
        """Run again: a fresh engine, same scenario and seed (once the run has stopped)."""
        if self.restart_source is None or not self._stopped():
            return
        try:
            source = self.restart_source()
        except Exception as error:
            self._report_error("restart", error)
            return
        self.engine = source
        tell_viewer(source)
        self.run_number += 1
        self._shutdown_task = None
        self.remove_class("-shutdown")
        for widget in (self.part(HistoryPanel), self.part(EventLog)):
            widget.reset()
        self.part(EventLog).note(f"── run {self.run_number}: a fresh engine, same scenario"
                                      " and seed ──")
        if self.compact:
            self._show_page("queue")
        try:
            await source.start()
        except Exception as error:
            self._report_error("restart", error)
        self._started()
        self._refresh_slow_next = True
        self.refresh_snapshot()
        self.toast(f"run {self.run_number} started")

    def _started(self) -> None:
        if self.on_started is None or not getattr(self.engine, "running", False):
            return
        try:
            said = self.on_started(self.engine)
        except Exception as error:  # a monitor or recording that cannot start is said
            self._report_error("monitor/record", error)
        else:
            for line in said:
                self.part(EventLog).note(line)

    def _theme_picked(self, name: str) -> None:
        if self.on_theme_picked is not None:
            self.on_theme_picked(name)

    def action_help(self) -> None:
        """Show every key and what the columns mean (again: close it)."""
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
        else:
            self.clear_notifications()
            self.push_screen(HelpScreen())


def tell_viewer(source: Any) -> None:
    """Tell a local source's watchdog which modules are the dashboard's, so that the loop
    blocks the dashboard itself causes are viewer stalls, not the engine's alerts."""
    watchdog = getattr(source, "watchdog", None)
    if watchdog is not None and hasattr(watchdog, "viewer_prefixes"):
        watchdog.viewer_prefixes = VIEWER_PREFIXES


def _local_restart(source: Any) -> Callable[[], SnapshotSource] | None:
    """For a local `Engine`: a new Engine of the same scenario, seed, clock and metrics port."""
    from engine.runtime import Engine

    if not isinstance(source, Engine):
        return None

    def fresh() -> SnapshotSource:
        return Engine(source.scenario, clock=source.clock, metrics_port=source.metrics_port)

    return fresh
