"""Where the panels go at a given terminal size: a pure function, so it is tested without an app.

The grid has four rows: (heap, depth, process), (workers, per priority), (alerts, stacks),
(event log, the whole width). The workers row is as tall as its rows need; the rest of the
height goes to the alerts and the event log, and from 160x48 up the
third column (per priority, stacks) widens too. Below 110x36 the panels go into pages.
"""

from __future__ import annotations

from dataclasses import dataclass

COMPACT_BELOW = (110, 36)
"""Below this many columns or rows the panels go into pages (tabs)."""
WIDE_FROM = (160, 48)
"""From this size up the third column and the heap grow too."""
CHROME_ROWS = 3
"""The summary bar, the hint bar and the footer."""
TOP_MIN, ALERTS_MIN, EVENTS_MIN = 12, 8, 6
"""Smallest heights (borders included) of the top row, the alerts row and the event log."""


@dataclass(frozen=True, slots=True)
class Layout:
    compact: bool
    wide: bool
    rows: tuple[int, int, int, int]
    """Heights of the top, workers, alerts and event-log rows (0s in the compact layout)."""
    columns: str
    """The grid's `grid-columns`."""


def plan(width: int, height: int, *, workers: int, levels: int,
         shutdown: bool = False) -> Layout:
    """The layout for a `width` x `height` terminal showing `workers` worker rows and `levels`
    priority levels (`shutdown`: the shutdown panel takes the per-priority cell and needs room)."""
    if width < COMPACT_BELOW[0] or height < COMPACT_BELOW[1]:
        return Layout(True, False, (0, 0, 0, 0), "1fr")
    wide = width >= WIDE_FROM[0] and height >= WIDE_FROM[1]
    room = height - CHROME_ROWS
    # Rows for the table's header and the panel's two borders.
    workers_row = max(workers, levels) + 3
    if shutdown:
        workers_row = max(workers_row, 17)
    workers_row = max(6, min(workers_row, room // 3 if wide else room // 4 + 1,
                             room - TOP_MIN - ALERTS_MIN - EVENTS_MIN))
    rest = room - workers_row
    # The top row does not grow: the depth trends would stretch to fill it, but the process
    # panel's lines do not, and its empty rows would be wasted at any height.
    top = TOP_MIN
    extra = max(rest - top - ALERTS_MIN - EVENTS_MIN, 0)
    # The event log fills with the run's story; the alerts table, with its rows collapsed,
    # rarely needs more than a quarter of what is left.
    alerts = ALERTS_MIN + (extra // 4 if wide else extra // 2)
    events = rest - top - alerts
    columns = "1fr 1fr 1fr" if wide else "1fr 1fr 42"
    return Layout(False, wide, (top, workers_row, alerts, events), columns)
