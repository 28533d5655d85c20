"""AlertTable: the watchdog's alerts. Active ones first, newest first; resolved ones after.

The table shows only as many rows as fit: when more alerts are active than that, the last
row says "+N more active"; the resolved ones that do not fit collapse into one "+N older
resolved" row. Nothing an alert needs is ever scrolled out of view.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from rich.text import Text
from textual.reactive import reactive

from engine.snapshots import Alert, AlertKind, EngineSnapshot
from tui.widgets.format import ALERT_STYLE, priority, seconds
from tui.widgets.live_table import LiveTable, Row

MORE_ACTIVE = "more-active"
OLDER = "older-resolved"
"""Row keys of the two summary rows (alert ids are numbers, so these never collide)."""


def short_frame(frame: str) -> str:
    """'fn (engine/load.py:64)' as 'fn (load.py:64)': the file's name is enough in a row."""
    name, _, where = frame.partition(" (")
    return f"{name} ({os.path.basename(where)}" if where else frame


def alert_detail(alert: Alert) -> str:
    """What a row says about the alert, short enough for a row (the full message: enter)."""
    if alert.kind is AlertKind.STARVATION and alert.priority is not None:
        waited = alert.peak_wait if alert.peak_wait is not None else alert.wait
        sla = f" > SLA {seconds(alert.threshold)}" if alert.threshold is not None else ""
        return f"priority {priority(alert.priority)} waited {seconds(waited)}{sla}"
    if alert.kind is AlertKind.DEPTH and alert.depth is not None:
        over = f" > {alert.threshold:,.0f}" if alert.threshold is not None else ""  # items
        return f"depth {alert.depth:,}{over}"
    if alert.kind is AlertKind.LOOP_BLOCKED and alert.culprit:
        return f"in {short_frame(alert.culprit)}"
    return alert.message


def alert_row(alert: Alert, epoch: float, now: float) -> Row:
    """Cells of one alert: `epoch` is the engine clock at engine start, `now` the clock now."""
    end = alert.resolved_at if alert.resolved_at is not None else now
    active = alert.active
    state = Text("ACTIVE", style="bold red") if active else Text("resolved", style="dim")
    return (
        str(alert.id),
        Text(str(alert.kind), style=ALERT_STYLE.get(alert.kind, "") if active else "dim"),
        f"t+{seconds(alert.started_at - epoch)}",
        seconds(end - alert.started_at),
        state,
        alert_detail(alert) if active else Text(alert_detail(alert), style="dim"),
    )


def ordered(alerts: Sequence[Alert]) -> tuple[list[Alert], list[Alert]]:
    """(active, resolved), each newest first."""
    newest = sorted(alerts, key=lambda alert: (alert.started_at, alert.id), reverse=True)
    return [a for a in newest if a.active], [a for a in newest if not a.active]


def fitted(alerts: Sequence[Alert], rows: int) -> tuple[list[Alert], int, int]:
    """The alerts to show in `rows` rows, and how many active and resolved ones are left out
    (each left-out group takes one of the rows, to say so; resolved ones are not counted
    while active ones overflow)."""
    active, resolved = ordered(alerts)
    rows = max(rows, 1)
    if len(active) > rows:
        # No room for any resolved one, nor for a row saying so: "+N more active" is the news.
        return active[: rows - 1], len(active) - (rows - 1), 0
    room = rows - len(active)
    if len(resolved) > room:
        keep = max(room - 1, 0)
        return active + resolved[:keep], 0, len(resolved) - keep
    return active + resolved, 0, 0


def alert_matches(alert: Alert, text: str) -> bool:
    """True when `text` (lower case) is in the alert's kind, message or row detail."""
    return any(text in part.lower()
               for part in (str(alert.kind), alert.message, alert_detail(alert)))


class AlertTable(LiveTable):
    """Starvation, loop-blocked, depth and crash alerts. Enter on a row opens its stacks."""

    PINNED = frozenset({MORE_ACTIVE, OLDER})

    COLUMNS = (
        ("id", "#"),
        ("kind", "kind"),
        ("at", "at"),
        ("duration", "for"),
        ("state", "state"),
        ("detail", "what"),
    )

    snapshot: reactive[EngineSnapshot | None] = reactive(None, repaint=False)
    """The snapshot on display (bound to the app's); the watcher repaints only what changed."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, id: str | None = None,
                 classes: str | None = None) -> None:
        """`clock` must be the engine's clock (leave as default unless testing)."""
        super().__init__(id=id, classes=classes)
        self._clock = clock
        self.hidden_active = 0
        """Active alerts left out for want of rows (the '+N more active' row)."""

    @property
    def fitting_rows(self) -> int:
        """Rows of alerts that fit under the header (8 before the first layout)."""
        return self.size.height - 1 if self.size.height > 1 else 8

    def watch_snapshot(self, snapshot: EngineSnapshot | None) -> None:
        if snapshot is not None:
            self._show(snapshot)

    def on_resize(self) -> None:
        if self.snapshot is not None:
            self._show(self.snapshot)

    def _show(self, snapshot: EngineSnapshot) -> None:
        now = getattr(snapshot, "taken_at", None) or self._clock()
        alerts = snapshot.watchdog.alerts
        text = self.filter_text.strip().lower()
        if text:
            # Filtered before fitting, so a match never hides behind "+N older".
            alerts = tuple(alert for alert in alerts if alert_matches(alert, text))
        shown, more_active, older = fitted(alerts, self.fitting_rows)
        rows: list[tuple[Any, Row]] = [
            (alert.id, alert_row(alert, snapshot.started_at, now)) for alert in shown]
        if more_active:
            # In the last column: a long word in `kind` would widen it for every row.
            rows.append((MORE_ACTIVE, ("", "", "", "", Text("ACTIVE", style="bold red"),
                                       Text(f"+{more_active} more active", "bold red"))))
        if older:
            rows.append((OLDER, ("", "", "", "", "", Text(f"+{older} older resolved", "dim"))))
        self.hidden_active = more_active
        self.sync(rows)

    def row_matches(self, key: str, cells: Row, text: str) -> bool:
        return True  # _show filtered the alerts themselves

    def watch_filter_text(self) -> None:
        if self.snapshot is not None:
            self._show(self.snapshot)

    def alert(self, alert_id: int) -> Alert | None:
        """The alert with this id in the snapshot on display."""
        if self.snapshot is None:
            return None
        return next((a for a in self.snapshot.watchdog.alerts if a.id == alert_id), None)

    @property
    def selected_alert(self) -> Alert | None:
        """The highlighted alert, if any (None on a summary row)."""
        key = self.selected_key()
        return self.alert(int(key)) if key is not None and key.isdigit() else None
