"""HistoryPanel: trends of depth, completions/s and p99 wait, from ring buffers."""

from __future__ import annotations

from collections import deque

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Label

from engine.snapshots import EngineSnapshot
from tui.widgets.format import count, rate, seconds
from tui.widgets.trend import Trend

HISTORY = 120
"""Samples kept per series (one per slow refresh: at the app's SLOW_HZ, one every 3 s, the last
6 minutes)."""


class HistoryPanel(Vertical):
    """Three labelled trend lines; each sample is one snapshot (one refresh)."""

    DEFAULT_CSS = """
    HistoryPanel {
        height: 1fr;
    }
    HistoryPanel > Trend {
        height: 1fr;
    }
    HistoryPanel > Label {
        width: 1fr;
        height: 1;
        color: $foreground-muted;
    }
    """

    snapshot: reactive[EngineSnapshot | None] = reactive(None, repaint=False)
    """The snapshot the trends take a sample of (bound to the app's slow one)."""
    live: reactive[EngineSnapshot | None] = reactive(None, repaint=False)
    """The snapshot the labels read (bound to the app's every-refresh one): a label's number
    is the header's number, not one from up to a slow period ago."""

    def __init__(self, *, history: int = HISTORY, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.depths: deque[float] = deque(maxlen=history)
        self.completion_rates: deque[float] = deque(maxlen=history)
        self.wait_p99s: deque[float] = deque(maxlen=history)
        self._last_at: float | None = None

    def compose(self) -> ComposeResult:
        yield Label("depth", id="depth-label")
        yield Trend(id="depth-history")
        yield Label("done/s", id="rate-label")
        yield Trend(id="rate-history")
        yield Label("p99 wait", id="wait-label")
        yield Trend(id="wait-history")

    def reset(self) -> None:
        """Forget the history (a new run starts from nothing)."""
        for series in (self.depths, self.completion_rates, self.wait_p99s):
            series.clear()
        self._last_at = None

    def watch_snapshot(self, snapshot: EngineSnapshot | None) -> None:
        if snapshot is None or snapshot.at == self._last_at:
            return
        self._last_at = snapshot.at
        self.depths.append(float(snapshot.queue.depth))
        self.completion_rates.append(snapshot.pool.completion_rate)
        self.wait_p99s.append(snapshot.queue.wait_p99 or 0.0)
        self.query_one("#depth-history", Trend).samples = tuple(self.depths)
        self.query_one("#rate-history", Trend).samples = tuple(self.completion_rates)
        self.query_one("#wait-history", Trend).samples = tuple(self.wait_p99s)

    def watch_live(self, snapshot: EngineSnapshot | None) -> None:
        if snapshot is None:
            return
        queue = snapshot.queue
        # Each label is one fixed line: new text needs a repaint, not a layout of the screen.
        self.query_one("#depth-label", Label).update(
            f"depth {count(queue.depth)}  (peak {count(queue.peak_depth)})", layout=False)
        self.query_one("#rate-label", Label).update(
            f"done {rate(snapshot.pool.completion_rate)}  in {rate(snapshot.submitted_rate)}",
            layout=False)
        self.query_one("#wait-label", Label).update(
            f"wait p50 {seconds(queue.wait_p50)}  p99 {seconds(queue.wait_p99)}", layout=False)
