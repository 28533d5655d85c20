"""SummaryBar: the one line that is always on screen: what runs, how fast, what is toggled."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from engine.snapshots import EngineSnapshot, ShutdownPhase
from tui.widgets.format import count, rate, seconds


class SummaryBar(Widget):
    """Scenario, uptime, depth, rates, workers, overflow, aging, producers, alerts, FROZEN."""

    DEFAULT_CSS = """
    SummaryBar {
        height: 1;
        background: $panel;
        color: $foreground;
        padding: 0 1;
    }
    SummaryBar > .summary-bar--flag { color: $warning; text-style: bold; }
    SummaryBar > .summary-bar--label { color: $foreground-muted; }
    """

    COMPONENT_CLASSES = {"summary-bar--flag", "summary-bar--label"}

    snapshot: reactive[EngineSnapshot | None] = reactive(None)
    """The snapshot on display (bound to the app's)."""
    frozen: reactive[bool] = reactive(False)
    """True while the display is frozen (`f`)."""

    def render(self) -> Text:
        flag = self.get_component_rich_style("summary-bar--flag")
        label = self.get_component_rich_style("summary-bar--label")
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append("heapwatch", "bold")
        snapshot = self.snapshot
        if snapshot is None:
            line.append("  starting…", label)
            return line
        queue, pool = snapshot.queue, snapshot.pool
        active = sum(1 for alert in snapshot.watchdog.alerts if alert.active)
        line.append(f" {snapshot.scenario}", label)
        line.append(f" seed {snapshot.seed}", label)
        line.append(f"  up {seconds(snapshot.at)}  ")
        line.append("depth ", label)
        line.append(count(queue.depth))
        line.append("  in ", label)
        line.append(rate(snapshot.submitted_rate))
        line.append(" out ", label)
        line.append(rate(pool.completion_rate))
        line.append("  workers ", label)
        line.append(f"{pool.busy_workers}/{pool.live_workers}")
        line.append("  overflow ", label)
        line.append(queue.overflow)
        line.append("  aging ", label)
        line.append(f"{queue.aging_rate:g}/s" if queue.aging_rate else "off")
        if active:
            line.append(f"  ⚠ {active} alert{'s' if active > 1 else ''}", "bold red")
        if snapshot.producers_paused:
            line.append("  PRODUCERS PAUSED", flag)
        if pool.phase is not ShutdownPhase.RUNNING:
            line.append(f"  SHUTDOWN {pool.phase}", flag)
        if self.frozen:
            line.append("  FROZEN", flag)
        return line
