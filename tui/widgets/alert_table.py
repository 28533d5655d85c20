"""AlertTable: the watchdog's alerts, active first, keyed by alert id."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.text import Text
from textual.reactive import reactive

from engine.snapshots import Alert, EngineSnapshot
from tui.widgets.format import ALERT_STYLE, seconds, shorten
from tui.widgets.live_table import LiveTable, Row


def alert_row(alert: Alert, epoch: float, now: float) -> Row:
    """Cells of one alert: `epoch` is the engine clock at engine start, `now` the clock now."""
    end = alert.resolved_at if alert.resolved_at is not None else now
    state = Text("resolved", style="dim") if not alert.active else Text("ACTIVE", style="bold red")
    detail = alert.culprit or alert.message
    return (
        str(alert.id),
        Text(str(alert.kind), style=ALERT_STYLE.get(alert.kind, "") if alert.active else "dim"),
        f"t+{seconds(alert.started_at - epoch)}",
        seconds(end - alert.started_at),
        state,
        shorten(detail, 60),
    )


class AlertTable(LiveTable):
    """Starvation, loop-blocked, depth and crash alerts. Enter on a row opens its stacks."""

    COLUMNS = (
        ("id", "#"),
        ("kind", "kind"),
        ("at", "at"),
        ("duration", "for"),
        ("state", "state"),
        ("detail", "culprit / message"),
    )

    snapshot: reactive[EngineSnapshot | None] = reactive(None, repaint=False)
    """The snapshot on display (bound to the app's); the watcher repaints only what changed."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, id: str | None = None,
                 classes: str | None = None) -> None:
        """`clock` must be the engine's clock (leave as default unless testing)."""
        super().__init__(id=id, classes=classes)
        self._clock = clock

    def watch_snapshot(self, snapshot: EngineSnapshot | None) -> None:
        if snapshot is None:
            return
        now = self._clock()
        self.sync([(alert.id, alert_row(alert, snapshot.started_at, now))
                   for alert in snapshot.watchdog.alerts])

    def alert(self, alert_id: int) -> Alert | None:
        """The alert with this id in the snapshot on display."""
        if self.snapshot is None:
            return None
        return next((a for a in self.snapshot.watchdog.alerts if a.id == alert_id), None)

    @property
    def selected_alert(self) -> Alert | None:
        """The highlighted alert, if any."""
        key = self.selected_key()
        return self.alert(int(key)) if key is not None else None
