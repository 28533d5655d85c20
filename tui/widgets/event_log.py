"""EventLog: the engine's recent one-line notices, appended as they arrive."""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Log

from engine.snapshots import EngineSnapshot


def new_events(before: tuple[str, ...], after: tuple[str, ...]) -> tuple[str, ...]:
    """The events in `after` that `before` did not show.

    Both are bounded windows, newest last, so the new ones follow the longest suffix of
    `before` that `after` starts with.
    """
    for overlap in range(min(len(before), len(after)), 0, -1):
        if before[-overlap:] == after[:overlap]:
            return after[overlap:]
    return after


class EventLog(Log):
    """Appends `snapshot.events` that it has not shown yet."""

    DEFAULT_CSS = """
    EventLog {
        height: 1fr;
        scrollbar-size-vertical: 1;
    }
    """

    snapshot: reactive[EngineSnapshot | None] = reactive(None, repaint=False)
    """The snapshot on display (bound to the app's); the watcher repaints only what changed."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(max_lines=500, id=id, classes=classes)
        self._seen: tuple[str, ...] = ()

    def watch_snapshot(self, snapshot: EngineSnapshot | None) -> None:
        if snapshot is None or snapshot.events == self._seen:
            return
        fresh = new_events(self._seen, snapshot.events)
        self._seen = snapshot.events
        if fresh:
            self.write_lines(fresh)
