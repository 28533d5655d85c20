"""HeapTable: the top of the heap, best first."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive

from engine.snapshots import EngineSnapshot, HeapEntry
from tui.widgets.format import priority, seconds, shorten
from tui.widgets.live_table import LiveTable, Row


def heap_row(entry: HeapEntry, aging: bool) -> Row:
    """The cells of one heap entry (effective priority dimmed when aging is off)."""
    effective = Text(priority(round(entry.effective_priority, 2)),
                     style="bold" if aging else "dim")
    shown = entry.item_repr or repr(entry.item)
    # '#2': the item's second attempt (it failed once and was put back).
    attempt = f" #{entry.attempt + 1}" if entry.attempt else ""
    return (
        str(entry.seq),
        priority(entry.priority),
        effective,
        seconds(entry.waited),
        shorten(shown, 28) + attempt,
    )


class HeapTable(LiveTable):
    """The entries at the root of the heap (`EngineSnapshot.top`), in the order they will be got.

    Rows are keyed by position (1 is the next item out), not by sequence number: the top of a
    busy heap changes every refresh, and removing and adding rows would re-lay-out the whole
    screen each time, while updating the cells of fixed rows only repaints this table.
    """

    COLUMNS = (
        ("seq", "seq"),
        ("priority", "prio"),
        ("effective", "eff"),
        ("waited", "waited"),
        ("item", "item"),
    )

    snapshot: reactive[EngineSnapshot | None] = reactive(None, repaint=False)
    """The snapshot on display (bound to the app's); the watcher repaints only what changed."""

    def watch_snapshot(self, snapshot: EngineSnapshot | None) -> None:
        if snapshot is None:
            return
        aging = snapshot.queue.aging_rate > 0
        self.sync([(rank, heap_row(entry, aging))
                   for rank, entry in enumerate(snapshot.top, start=1)])
