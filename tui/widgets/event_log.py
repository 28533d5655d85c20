"""EventLog: the engine's events, appended as they arrive (new ones found by `Event.seq`)."""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Log

from engine.snapshots import EngineSnapshot, Event


def new_events(events: tuple[Event, ...], last_seen: int) -> tuple[Event, ...]:
    """The events of `events` (oldest first) with a seq above `last_seen`."""
    return tuple(event for event in events if event.seq > last_seen)


class EventLog(Log):
    """Appends the messages of `snapshot.events` that it has not shown yet."""

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
        self._last_seen = 0

    def watch_snapshot(self, snapshot: EngineSnapshot | None) -> None:
        if snapshot is None or snapshot.last_event_seq <= self._last_seen:
            return
        fresh = new_events(snapshot.events, self._last_seen)
        self._last_seen = snapshot.last_event_seq
        if fresh:
            self.write_lines([event.message for event in fresh])
