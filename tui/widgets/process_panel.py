"""ProcessPanel: CPU, RSS and loop lag of the process, the UI's own cost, memory profile."""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from engine.snapshots import EngineSnapshot
from tui.widgets.format import seconds, size


class ProcessPanel(Widget):
    """Key/value lines; the loop lag p99 turns red past 100 ms."""

    DEFAULT_CSS = """
    ProcessPanel {
        height: auto;
    }
    """

    snapshot: reactive[EngineSnapshot | None] = reactive(None)
    """The snapshot on display (bound to the app's)."""
    refresh_cost: reactive[float | None] = reactive(None, repaint=False)
    """Seconds the dashboard's last refresh took on the loop (shown at the next repaint)."""

    def render(self) -> RenderableType:
        snapshot = self.snapshot
        if snapshot is None:
            return Text("")
        watchdog = snapshot.watchdog
        # Plain lines of Text, not a Rich table: this repaints on every refresh.
        lines = Text(no_wrap=True, overflow="ellipsis")

        def row(label: str, *value: str | tuple[str, str]) -> None:
            if lines:
                lines.append("\n")
            lines.append(f"{label:<9}", "dim")
            lines.append_text(Text.assemble(*value))

        row("cpu", f"{snapshot.process.cpu_percent:.0f}%")
        row("rss", size(snapshot.process.rss_bytes))
        lag_p99 = watchdog.loop_lag_p99
        row("loop lag", f"p50 {seconds(watchdog.loop_lag_p50)} ",
            (f"p99 {seconds(lag_p99)}", "bold red" if lag_p99 and lag_p99 > 0.1 else ""),
            f" max {seconds(watchdog.loop_lag_max)}")
        row("watchdog", f"{seconds(watchdog.sample_cost)}/sample")
        if self.refresh_cost is not None:
            row("ui", f"{seconds(self.refresh_cost)}/refresh")
        if watchdog.sizing is not None:
            row("maxsize≈", f"{watchdog.sizing.suggested_maxsize:,} (Little's law)")
        memory = watchdog.memory
        if memory is not None:
            row("memory", f"{memory.bytes_per_item:.0f} B/item"
                f" +{memory.payload_bytes_per_item:.0f} payload")
        return lines
