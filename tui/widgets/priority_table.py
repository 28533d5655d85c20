"""PriorityTable: one row per priority level, against its wait SLA."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive

from engine.snapshots import EngineSnapshot, PriorityStats
from tui.widgets.format import count, priority, seconds
from tui.widgets.live_table import LiveTable, Row


def sla_for(snapshot: EngineSnapshot, level: float) -> float | None:
    """The wait SLA of one priority level: its own, else the watchdog's default."""
    watchdog = snapshot.watchdog
    for level_sla in watchdog.sla_by_priority:
        if level_sla[0] == level:
            return level_sla[1]
    return watchdog.sla


def priority_row(stats: PriorityStats, sla: float | None) -> Row:
    """Cells of one level: the oldest wait leads (red past the SLA, amber past half of it),
    then the SLA, then the waits of the items already served (p99 red past the SLA)."""
    oldest = stats.oldest_wait if stats.depth else None
    over = sla is not None and oldest is not None and oldest > sla
    near = sla is not None and oldest is not None and oldest > sla / 2
    p99_over = sla is not None and stats.wait_p99 is not None and stats.wait_p99 > sla
    return (
        priority(stats.priority),
        count(stats.depth),
        Text(seconds(oldest), style="bold red" if over else "yellow" if near else ""),
        seconds(sla),
        seconds(stats.wait_p50),
        Text(seconds(stats.wait_p99), style="red" if p99_over else ""),
    )


class PriorityTable(LiveTable):
    """Depth and waits per priority level; a level over its SLA is highlighted."""

    COLUMNS = (
        ("priority", "prio"),
        ("depth", "depth"),
        ("oldest", "oldest"),
        ("sla", "SLA"),
        ("p50", "srv50"),
        ("p99", "srv99"),
    )
    """srv50/srv99: the waits of the items already served (a sliding window); a level whose
    items all still wait has none, which is why `oldest` comes first."""

    snapshot: reactive[EngineSnapshot | None] = reactive(None, repaint=False)
    """The snapshot on display (bound to the app's); the watcher repaints only what changed."""

    def watch_snapshot(self, snapshot: EngineSnapshot | None) -> None:
        if snapshot is None:
            return
        self.sync([
            (stats.priority, priority_row(stats, sla_for(snapshot, stats.priority)))
            for stats in snapshot.queue.per_priority
        ])
