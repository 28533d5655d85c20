"""ShutdownPanel: a graceful shutdown's phases, the counts as they drain, then the report."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from engine.snapshots import Accounting, EngineSnapshot
from tui.keys import key_for
from tui.widgets.format import count, seconds


def accounting_table(accounting: Accounting) -> Table:
    """Every fate of the submitted items, and `lost` (which must read 0)."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim")
    grid.add_column(justify="right")
    grid.add_column(style="dim")
    grid.add_column(justify="right")
    rows = [
        ("submitted", accounting.submitted, "completed", accounting.completed),
        ("queued", accounting.queued, "in flight", accounting.in_flight),
        ("retrying", accounting.retry_scheduled, "dead", accounting.dead_lettered),
        ("evicted", accounting.evicted, "rejected", accounting.rejected),
        ("returned", accounting.returned, "duplicated", accounting.duplicated),
    ]
    for left, left_value, right, right_value in rows:
        grid.add_row(left, count(left_value), right, count(right_value))
    lost = accounting.lost
    grid.add_row("lost", Text(count(lost), style="bold red" if lost else "bold green"), "", "")
    return grid


class ShutdownPanel(Widget):
    """Hidden by the app until a shutdown starts; then shows it live and keeps the final report."""

    DEFAULT_CSS = """
    ShutdownPanel {
        height: auto;
    }
    """

    snapshot: reactive[EngineSnapshot | None] = reactive(None, repaint=False)
    """The snapshot on display (bound to the app's)."""
    quitting: reactive[bool] = reactive(False)
    """The app exits once the shutdown is over (`q`): the panel says how to hurry it."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, id: str | None = None,
                 classes: str | None = None) -> None:
        """`clock` must be the engine's clock (leave as default unless testing)."""
        super().__init__(id=id, classes=classes)
        self._clock = clock

    def watch_snapshot(self, snapshot: EngineSnapshot | None) -> None:
        # Before any shutdown the panel shows one fixed line: repaint only once one starts.
        if snapshot is not None and snapshot.pool.shutdown_started:
            self.refresh(layout=True)

    def render(self) -> RenderableType:
        snapshot = self.snapshot
        if snapshot is None or not snapshot.pool.shutdown_started:
            return Text("running — press s for a graceful shutdown", style="dim")
        pool = snapshot.pool
        now = self._clock()
        phases = Table.grid(padding=(0, 1))
        phases.add_column()
        phases.add_column(justify="right")
        for timing in pool.phases:
            current = timing.duration is None
            took = seconds(now - timing.started_at if current else timing.duration)
            marker = "▶" if current else "✓"
            row: list[RenderableType] = [
                Text(f"{marker} {timing.phase}", style="bold" if current else ""), took]
            if current and timing.limit is not None:
                # The deadline counting down: the phase ends by then, drained or not.
                left = max(0.0, timing.started_at + timing.limit - now)
                row.append(Text(f"{seconds(left)} left", style="bold yellow"))
            phases.add_row(*row)
        parts: list[RenderableType] = []
        report = pool.report
        if report is None:
            quit_key = key_for("quit")
            parts.append(Text(
                f"quitting once drained: {quit_key} or ctrl+c again cuts the drain short"
                if self.quitting else f"{quit_key} quits once drained; {quit_key} twice cuts"
                " the drain short", style="dim"))
        else:
            ended = (", cut short" if report.cut_short else ", deadline hit" if report.deadline_hit
                     else ", within the deadline")
            parts.append(Text.assemble(
                ("final report: ", "bold"),
                f"drained in {seconds(report.drain_time)}",
                (ended, "yellow" if report.deadline_hit else "green"),
            ))
            if report.returned:
                parts.append(Text(f"{len(report.returned)} items returned, not lost:", "dim"))
                for returned in report.returned[:3]:
                    parts.append(Text(
                        f"  {returned.item!r} p{returned.priority:g} ({returned.where})",
                        no_wrap=True, overflow="ellipsis"))
        parts += [phases, accounting_table(pool.accounting)]
        return Group(*parts)
