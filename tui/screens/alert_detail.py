"""AlertScreen: one alert in full: what, when, the culprit, the loop stack and task stacks."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from engine.snapshots import Alert, AlertKind, EngineSnapshot
from tui.export import alert_text
from tui.screens.detail import DetailScreen
from tui.widgets.format import ALERT_STYLE, priority, seconds
from tui.widgets.stack_view import StackView


def alert_facts(alert: Alert) -> RenderableType:
    """The alert's fields as a small key/value grid, the optional ones only when set."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim")
    grid.add_column()
    grid.add_row("kind", Text(str(alert.kind), style=ALERT_STYLE.get(alert.kind, "")))
    grid.add_row("state", "active" if alert.active else "resolved")
    grid.add_row("message", alert.message)
    if alert.resolved_at is not None:
        grid.add_row("lasted", seconds(alert.resolved_at - alert.started_at))
    if alert.priority is not None:
        grid.add_row("priority", priority(alert.priority))
    if alert.wait is not None:
        grid.add_row("waited", seconds(alert.wait))
    if alert.depth is not None:
        grid.add_row("depth", f"{alert.depth:,}")
    if alert.threshold is not None:  # a depth in items; an SLA or a block in seconds
        grid.add_row("threshold", f"{alert.threshold:,.0f} items" if alert.kind is AlertKind.DEPTH
                     else seconds(alert.threshold))
    if alert.culprit:
        grid.add_row("culprit", Text(alert.culprit, style="bold"))
    if alert.loop_stack:
        grid.add_row("loop stack", Group(*(Text(frame) for frame in alert.loop_stack)))
    return grid


class AlertScreen(DetailScreen):
    """Follows its alert in the app's snapshots (it may resolve while open)."""

    DEFAULT_CSS = """
    AlertScreen > Vertical {
        border: thick $error;
    }
    AlertScreen VerticalScroll {
        height: auto;
        max-height: 24;
    }
    """

    def __init__(self, alert: Alert) -> None:
        super().__init__()
        self.alert = alert

    def names(self) -> tuple[str, str]:
        return f"alert-{self.alert.id}", f"alert #{self.alert.id}: {self.alert.kind}"

    def body(self) -> ComposeResult:
        yield Static(alert_facts(self.alert), id="alert-facts", classes="detail-facts")
        with VerticalScroll():
            yield StackView(self.alert.stacks, max_frames=0, id="alert-stacks")

    def follow(self, snapshot: EngineSnapshot) -> None:
        latest = next((a for a in snapshot.watchdog.alerts if a.id == self.alert.id), None)
        if latest is None or latest == self.alert:
            return
        self.alert = latest
        self.query_one("#alert-facts", Static).update(alert_facts(latest))
        self.query_one("#alert-stacks", StackView).stacks = latest.stacks

    def detail_text(self) -> str:
        return alert_text(self.alert)
