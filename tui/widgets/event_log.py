"""EventLog: the run's story, one line per event: the engine's events and the viewer's own notes.

Engine events arrive in the snapshots (`Event` records with a seq: the log keeps the last seq it
showed, so each event is written once however often it is read). The app adds its own lines with
`note()`: engine errors from a key, viewer stalls.
"""

from __future__ import annotations

import textwrap
from collections import deque
from collections.abc import Iterable

from textual.reactive import reactive
from textual.widgets import Log

from engine.snapshots import EngineSnapshot, Event, EventKind

MARK = {
    EventKind.ALERT_RAISED: "⚠",
    EventKind.ALERT_RESOLVED: "✓",
    EventKind.ERROR: "✗",
    EventKind.VIEWER_STALL: "◌",
    EventKind.DEAD_LETTER: "†",
}
"""A mark at the start of the lines a person looks for first."""


def new_events(events: tuple[Event, ...], last_seen: int) -> tuple[Event, ...]:
    """The events of `events` (oldest first) with a seq above `last_seen`."""
    return tuple(event for event in events if event.seq > last_seen)


MAX_LINES = 1000
"""Lines kept (the oldest go first)."""
INDENT = " " * 11
"""Continuation lines start under the message, past the time and the mark."""


def wrapped(line: str, width: int) -> list[str]:
    """`line` cut at word boundaries to `width` columns, so that nothing needs a sideways
    scroll (a width under 30 leaves it whole: too narrow to read either way)."""
    if width < 30 or len(line) <= width:
        return [line]
    return textwrap.wrap(line, width, subsequent_indent=INDENT, break_on_hyphens=False) or [line]


def event_line(event: Event, epoch: float) -> str:
    """One event as a line: its time into the run, a mark for the ones that matter, the text."""
    at = max(event.at - epoch, 0.0)
    return f"{at:7.1f}s {MARK.get(event.kind, ' ')} {event.message}"


class EventLog(Log):
    """Appends the events of each snapshot that it has not shown yet."""

    DEFAULT_CSS = """
    EventLog {
        height: 1fr;
        scrollbar-size-vertical: 1;
        scrollbar-size-horizontal: 0;
    }
    """

    snapshot: reactive[EngineSnapshot | None] = reactive(None, repaint=False)
    """The snapshot on display (bound to the app's); the watcher repaints only what changed."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(max_lines=MAX_LINES, id=id, classes=classes)
        self.last_seq = 0
        """The seq of the newest engine event written."""
        self._said: deque[str] = deque(maxlen=MAX_LINES)
        """Every line as it was said, unwrapped: wrapped again when the width changes."""
        self._wrap_width = 0
        """The width the shown lines were wrapped to (under 30: not wrapped)."""

    def watch_snapshot(self, snapshot: EngineSnapshot | None) -> None:
        if snapshot is None or snapshot.last_event_seq <= self.last_seq:
            return
        fresh = new_events(snapshot.events, self.last_seq)
        lines = [event_line(event, snapshot.started_at) for event in fresh]
        if fresh and self.last_seq and fresh[0].seq > self.last_seq + 1:
            # The source's window moved on faster than we read it: say so, do not pretend.
            lines.insert(0, f"… {fresh[0].seq - self.last_seq - 1} events not shown")
        self.last_seq = snapshot.last_event_seq
        if lines:
            # Follow the newest line unless the reader has scrolled back to read.
            follow = not self.has_focus or self.is_vertical_scroll_end
            self._say(lines)
            if follow:
                self._follow()

    def reset(self) -> None:
        """Start over for a new source (its seqs start again at 1); the lines stay."""
        self.last_seq = 0

    def note(self, text: str, *, at: float | None = None, kind: EventKind = EventKind.NOTE) -> None:
        """Write the viewer's own line (`at`: seconds into the run, when known)."""
        when = f"{at:7.1f}s" if at is not None else " " * 8
        self._say([f"{when} {MARK.get(kind, ' ')} {text}"])
        self._follow()

    def _say(self, lines: list[str]) -> None:
        self._said.extend(lines)
        self._wrap_width = self.scrollable_content_region.width - 1
        self._write_wrapped(lines)

    def _write_wrapped(self, lines: Iterable[str]) -> None:
        self.write_lines([part for line in lines for part in wrapped(line, self._wrap_width)])

    def on_resize(self) -> None:
        """Lines written at another width (or while hidden, on another page) wrapped anew."""
        width = self.scrollable_content_region.width - 1
        if width == self._wrap_width or (width < 30 and self._wrap_width < 30) or not self._said:
            return
        follow = self.is_vertical_scroll_end
        self._wrap_width = width
        self.clear()
        self._write_wrapped(self._said)
        if follow:
            self._follow()

    def _follow(self) -> None:
        # After the next layout: the new lines' height is not known before it (Log scrolls only
        # when it was at the end already, and it is not once a layout lags behind a write).
        self.call_after_refresh(self.scroll_end, animate=False, x_axis=False)
