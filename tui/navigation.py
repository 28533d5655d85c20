"""Moving around the tables: `/` filters the focused one, `S` sorts it, Enter opens a row.

A mixin of HeapwatchApp, kept apart from the layout and the lifecycle. The filter is one
Input under the panels, shown while it is being typed in; the panel's title says which filter
and sort are on once it closes. Filters narrow only what a table shows: the summary's count
of alerts reads the snapshot, never a table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.widgets import Input

from tui.export import alert_text, export_text, stamp
from tui.screens.alert_detail import AlertScreen
from tui.screens.item_detail import ItemScreen
from tui.screens.worker_detail import WorkerScreen
from tui.widgets.alert_table import AlertTable
from tui.widgets.heap_table import HeapTable
from tui.widgets.live_table import LiveTable
from tui.widgets.worker_table import WorkerTable

FILTER_PROMPTS = {
    "heap": "filter the heap: a priority (the engine's top of it) or text",
    "workers": "filter the workers: a state (busy, idle...) or text in the item",
    "alerts": "filter the alerts: a kind (starvation, loop-blocked...) or text",
}


class TableNavigation:
    """`action_*` and handlers for the filter, the sort and the detail screens."""

    engine: Any
    snapshot: Any
    focused: Any
    part: Any
    toast: Any
    watch: Any
    set_class: Any
    has_class: Any
    clear_notifications: Any
    push_screen: Any
    _main: Any

    _filter_target: LiveTable | None = None
    _base_titles: dict[str, str]

    def setup_navigation(self) -> None:
        """After the panels have their titles: follow each table's filter and sort, hand the
        heap a way to ask for one priority's top, and focus the first table."""
        self._base_titles = {}
        tables = list(self._main.query(LiveTable))
        for table in tables:
            self.watch(table, "filter_text", self._retitler(table), init=False)
            self.watch(table, "sort_by", self._retitler(table), init=False)
        self.part(HeapTable).fetch_top = self._fetch_top
        if tables:
            tables[0].focus()

    def _fetch_top(self, k: int, priority: float) -> Any:
        top = getattr(self.engine, "top", None)
        if top is None:
            # A source that cannot say: the heap narrows the entries its snapshot carries.
            return [entry for entry in self.snapshot.top if entry.priority == priority]
        return top(k, priority=priority)

    def _retitler(self, table: LiveTable) -> Callable[[], None]:
        return lambda: self._retitle(table)

    def _retitle(self, table: LiveTable) -> None:
        panel = table.parent
        if panel is None or panel.id is None:
            return
        base = self._base_titles.setdefault(panel.id, str(panel.border_title or ""))
        parts = [base]
        if table.filter_text.strip():
            parts.append(f"filter /{table.filter_text.strip()}")
        if table.sort_label:
            parts.append(table.sort_label)
        panel.border_title = " · ".join(parts)

    def _focused_table(self) -> LiveTable | None:
        focused = self.focused
        return focused if isinstance(focused, LiveTable) else None

    # ------------------------------------------------------------------ filter

    def action_filter(self) -> None:
        """Filter the focused table (on the heap a number: that priority); escape clears."""
        table = self._focused_table()
        if table is None:
            self.toast("focus a table first (tab), then / filters it", severity="warning")
            return
        self._filter_target = table
        field = self.part(Input)
        field.placeholder = FILTER_PROMPTS.get(table.id or "", "filter: text in any column")
        field.value = table.filter_text
        self.set_class(True, "-filtering")
        field.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter" and self._filter_target is not None:
            self._filter_target.filter_text = event.value

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            self._close_filter(clear=False)

    def _close_filter(self, *, clear: bool) -> None:
        target = self._filter_target
        self.set_class(False, "-filtering")
        if target is not None:
            if clear:
                target.filter_text = ""
            target.focus()

    def clear_filter(self) -> bool:
        """Escape's second step: close the filter being typed, or clear the focused table's;
        False when there was none."""
        if self.has_class("-filtering"):
            self._close_filter(clear=True)
            return True
        table = self._focused_table()
        if table is not None and table.filter_text:
            table.filter_text = ""
            return True
        return False

    # ------------------------------------------------------------------ sort

    def action_sort(self) -> None:
        """Sort the focused table by its next column, then the other way (or click one)."""
        table = self._focused_table()
        if table is None:
            self.toast("focus a table first (tab), then S sorts it", severity="warning")
            return
        table.cycle_sort()

    # ------------------------------------------------------------------ details

    def on_live_table_row_selected(self, event: LiveTable.RowSelected) -> None:
        table, screen = event.table, None
        if isinstance(table, AlertTable) and event.key.isdigit():
            alert = table.alert(int(event.key))
            screen = AlertScreen(alert) if alert is not None else None
        elif isinstance(table, WorkerTable) and self.snapshot is not None:
            worker = next((w for w in self.snapshot.pool.workers if str(w.id) == event.key),
                          None)
            screen = WorkerScreen(worker) if worker is not None else None
        elif isinstance(table, HeapTable):
            entry = table.entries.get(event.key)
            screen = ItemScreen(entry, self._fetch_top) if entry is not None else None
        if screen is not None:
            self.clear_notifications()
            self.push_screen(screen)

    def action_export_alerts(self) -> None:
        """Save every alert with its stacks to a file (in the browser: a download)."""
        alerts = self.snapshot.watchdog.alerts if self.snapshot is not None else ()
        if not alerts:
            self.toast("no alerts to save")
            return
        text = "".join(alert_text(alert) + "\n" for alert in alerts)
        try:
            said = export_text(self, f"heapwatch-alerts-{stamp()}", text)
        except OSError as error:
            self.toast(f"could not save the alerts: {error}", severity="error")
            return
        self.toast(f"{len(alerts)} alert{'s' if len(alerts) != 1 else ''} {said}")
