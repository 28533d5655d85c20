"""Scrubber: one line under the panels of a replay: playing or paused, where, and the alerts.

    ▶ 0:12 / 1:30  frame 61/450  ━━━━━━━━━━━━●──────!─────!────────────

The bar is the whole recording; `●` is the frame on display and `!` the frames where an alert
is raised or the loop went stale (`[` and `]` jump between them).
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget


def clock_time(seconds: float) -> str:
    """'0:07', '12:30', '1:02:03'."""
    whole = max(int(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def scrubber_line(position: int, frames: int, marks: tuple[int, ...], *, playing: bool,
                  elapsed: float, duration: float, width: int,
                  styles: tuple[str, str, str] = ("bold", "dim", "bold red")) -> Text:
    """The line for a recording of `frames` frames shown at `position` (0-based), `marks` the
    frame indexes of alerts; `styles`: the head and played part, the rest, the marks."""
    played_style, rest_style, mark_style = styles
    head = (f"{'▶' if playing else '‖'} {clock_time(elapsed)} / {clock_time(duration)}  "
            f"frame {position + 1}/{frames}  ")
    line = Text(head, no_wrap=True, overflow="crop", end="")
    cells = width - len(head)
    if cells < 5:
        return line
    last = max(frames - 1, 1)

    def cell(index: int) -> int:
        return min(round(index / last * (cells - 1)), cells - 1)

    at = cell(position)
    marked = {cell(mark) for mark in marks}
    for n in range(cells):
        if n == at:
            line.append("●", played_style)
        elif n in marked:
            line.append("!", mark_style)
        else:
            line.append("━" if n < at else "─", played_style if n < at else rest_style)
    return line


class Scrubber(Widget):
    """Where a replay is. The app sets the reactives from its ReplaySource on every refresh."""

    DEFAULT_CSS = """
    Scrubber {
        height: 1;
        padding: 0 1;
        background: $boost;
    }
    Scrubber > .scrubber--played { color: $accent; text-style: bold; }
    Scrubber > .scrubber--rest { color: $foreground-muted; }
    Scrubber > .scrubber--mark { color: $error; text-style: bold; }
    """

    COMPONENT_CLASSES = {"scrubber--played", "scrubber--rest", "scrubber--mark"}

    position: reactive[int] = reactive(0)
    """The frame on display (0-based)."""
    frames: reactive[int] = reactive(1)
    """Frames in the recording."""
    marks: reactive[tuple[int, ...]] = reactive(())
    """Frames where an alert is raised or the loop goes stale."""
    playing: reactive[bool] = reactive(False)
    """True while playing, False while paused."""
    elapsed: reactive[float] = reactive(0.0)
    """Seconds into the recording (the service's time) at `position`."""
    duration: reactive[float] = reactive(0.0)
    """Seconds from the first frame to the last."""

    def render(self) -> Text:
        styles = tuple(str(self.get_component_rich_style(f"scrubber--{part}"))
                       for part in ("played", "rest", "mark"))
        return scrubber_line(self.position, self.frames, self.marks, playing=self.playing,
                             elapsed=self.elapsed, duration=self.duration,
                             width=max(self.content_region.width, 10),
                             styles=styles)  # type: ignore[arg-type]
