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
        text-wrap: nowrap;
        text-overflow: ellipsis;
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

        hosts = snapshot.pool.hosts
        if hosts:  # a shared queue: many processes, each with its own cpu, memory and loop
            row("hosts", f"{len(hosts)} process{'' if len(hosts) == 1 else 'es'} on the queue",
                ("  (cpu, memory and loop are each one's own)", "dim"))
        else:
            row("cpu", f"{snapshot.process.cpu_percent:.0f}%  ", ("rss ", "dim"),
                size(snapshot.process.rss_bytes))
            lag_p99 = watchdog.loop_lag_p99
            row("loop lag", f"p50 {seconds(watchdog.loop_lag_p50)} ",
                (f"p99 {seconds(lag_p99)}", "bold red" if lag_p99 and lag_p99 > 0.1 else ""),
                f" max {seconds(watchdog.loop_lag_max)}")
        ui = f"  ui {micros(self.refresh_cost)}" if self.refresh_cost is not None else ""
        row("cost", f"watchdog {micros(watchdog.sample_cost)}", (ui, ""))
        stalls = watchdog.viewer_stalls
        # The dashboard's own stalls slow the shared loop too: said here, never as an alert
        # (the event log names what held the loop each time).
        last = (watchdog.last_viewer_stall or "").split(" in ")[0]
        row("viewer", (f"{stalls} stall{'' if stalls == 1 else 's'}", "yellow" if stalls else ""),
            f", last {last}" if stalls and last else "")
        raised = [(kind, n) for kind, n in watchdog.alerts_raised if n]
        if raised:
            row("raised", ", ".join(f"{n} {kind}" for kind, n in raised))
        sizing = watchdog.sizing
        if sizing is not None:
            # The current maxsize is on the depth gauge, beside this.
            row("maxsize≈", (f"{sizing.suggested_maxsize:,}", "bold"), " (Little's law)")
            row("", (f"{sizing.arrival_rate:.0f}/s x {seconds(sizing.time_in_system)} in system"
                     f" x {sizing.headroom:g}", "dim"))
        memory = watchdog.memory
        if memory is not None:
            row("memory", f"{memory.bytes_per_item:.0f} B/item",
                (f" +{memory.payload_bytes_per_item:.0f} B payload", "dim"))
            row("", f"≈{size(memory.bytes_per_item * memory.depth)} at depth {memory.depth:,}")
            for site in memory.top_sites[:1]:
                row("", (f"{size(site.size):>9} {site.where}", "dim"))
        else:
            row("memory", ("not measured yet (m)", "dim"))
        # A tall panel (a big terminal) has room for the queue's own waits as well.
        room = self.parent.size.height if isinstance(self.parent, Widget) else 0
        queue = snapshot.queue
        if len(lines.plain.splitlines()) < room:
            row("put wait", f"p50 {seconds(queue.put_block_p50)} p99 {seconds(queue.put_block_p99)}",
                (f"  ({queue.blocked_putters:,} blocked)", "dim"))
        if len(lines.plain.splitlines()) < room:
            row("get wait", f"p50 {seconds(queue.get_wait_p50)} p99 {seconds(queue.get_wait_p99)}",
                (f"  ({queue.blocked_getters:,} idle)", "dim"))
        # Lines come and go (the sizing advice, a memory profile): a new count needs a layout.
        height = len(lines.plain.splitlines())
        if height != self._lines:
            self._lines = height
            self.call_after_refresh(self.refresh, layout=True)
        return lines
