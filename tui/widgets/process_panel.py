"""ProcessPanel: CPU, RSS and loop lag of the process, the UI's own cost, memory profile."""

from __future__ import annotations

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from engine.snapshots import EngineSnapshot, MemoryProfile
from tui.widgets.format import seconds, size


class ProcessPanel(Widget):
    """A key/value grid; the loop lag turns red past 100 ms."""

    DEFAULT_CSS = """
    ProcessPanel {
        height: auto;
    }
    """

    snapshot: reactive[EngineSnapshot | None] = reactive(None)
    """The snapshot on display (bound to the app's)."""
    refresh_cost: reactive[float | None] = reactive(None)
    """Seconds the dashboard's last refresh took on the loop."""
    memory: reactive[MemoryProfile | None] = reactive(None)
    """The last memory profile (`m`), when the snapshot does not carry one."""

    def render(self) -> RenderableType:
        snapshot = self.snapshot
        if snapshot is None:
            return Text("")
        watchdog = snapshot.watchdog
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="dim")
        grid.add_column()
        grid.add_row("cpu", f"{snapshot.process.cpu_percent:.0f}%")
        grid.add_row("rss", size(snapshot.process.rss_bytes))
        lag_p99 = watchdog.loop_lag_p99
        grid.add_row("loop lag", Text.assemble(
            f"p50 {seconds(watchdog.loop_lag_p50)} ",
            (f"p99 {seconds(lag_p99)}", "bold red" if lag_p99 and lag_p99 > 0.1 else ""),
        ))
        grid.add_row("lag max", seconds(watchdog.loop_lag_max))
        grid.add_row("watchdog", f"{seconds(watchdog.sample_cost)}/sample")
        if self.refresh_cost is not None:
            grid.add_row("ui", f"{seconds(self.refresh_cost)}/refresh")
        if watchdog.sizing is not None:
            grid.add_row("maxsize≈", f"{watchdog.sizing.suggested_maxsize:,} (Little)")
        memory = watchdog.memory or self.memory
        if memory is not None:
            grid.add_row("memory", f"{memory.bytes_per_item:.0f} B/item"
                          f" +{memory.payload_bytes_per_item:.0f} payload")
            if memory.top_sites:
                site = memory.top_sites[0]
                grid.add_row("top site", Text(f"{site.where} {size(site.size)}",
                                              no_wrap=True, overflow="ellipsis"))
        return grid
