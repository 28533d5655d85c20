"""ProcessPanel: CPU, RSS and loop lag of the process, the UI's own cost, memory profile."""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from engine.snapshots import EngineSnapshot
from tui.widgets.format import micros, seconds, size


class ProcessPanel(Widget):
    """Key/value lines; the loop lag p99 turns red past 100 ms. Costs are in microseconds:
    a watchdog sample costs tens of them, which milliseconds would round to 0."""

    DEFAULT_CSS = """
    ProcessPanel {
        height: auto;
    }
    """

    snapshot: reactive[EngineSnapshot | None] = reactive(None)
    """The snapshot on display (bound to the app's)."""
    _lines = 0
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

        row("cpu", f"{snapshot.process.cpu_percent:.0f}%  ", ("rss ", "dim"),
            size(snapshot.process.rss_bytes))
        lag_p99 = watchdog.loop_lag_p99
        row("loop lag", f"p50 {seconds(watchdog.loop_lag_p50)} ",
            (f"p99 {seconds(lag_p99)}", "bold red" if lag_p99 and lag_p99 > 0.1 else ""),
            f" max {seconds(watchdog.loop_lag_max)}")
        row("watchdog", f"{micros(watchdog.sample_cost)}/sample")
        if self.refresh_cost is not None:
            row("ui", f"{micros(self.refresh_cost)}/refresh")
        stalls = watchdog.viewer_stalls
        last = watchdog.last_viewer_stall
        # The dashboard's own stalls slow the shared loop too: said here, never as an alert.
        row("viewer", (f"{stalls} stall{'' if stalls == 1 else 's'}", "yellow" if stalls else ""),
            f"  last {last}" if last else " (the dashboard held the loop)" if stalls else "")
        raised = [(kind, n) for kind, n in watchdog.alerts_raised if n]
        if raised:
            row("raised", ", ".join(f"{n} {kind}" for kind, n in raised))
        sizing = watchdog.sizing
        if sizing is not None:
            row("maxsize≈", (f"{sizing.suggested_maxsize:,}", "bold"),
                f" (Little's law; now {sizing.current_maxsize or 'unbounded'})"
                if sizing.current_maxsize else " (Little's law)")
            row("", (f"{sizing.arrival_rate:.0f}/s x {seconds(sizing.time_in_system)}"
                     f" in system x {sizing.headroom:g}", "dim"))
        memory = watchdog.memory
        if memory is not None:
            row("memory", f"{memory.bytes_per_item:.0f} B/item",
                (f" +{memory.payload_bytes_per_item:.0f} B payload", "dim"),
                f"  ≈{size(memory.bytes_per_item * memory.depth)} at depth {memory.depth:,}")
            for site in memory.top_sites[:2]:
                row("", (f"{site.where} {size(site.size)}", "dim"))
        else:
            row("memory", ("not measured yet (m)", "dim"))
        # Lines come and go (the sizing advice, a memory profile): a new count needs a layout.
        height = len(lines.plain.splitlines())
        if height != self._lines:
            self._lines = height
            self.call_after_refresh(self.refresh, layout=True)
        return lines
