"""HeapTable: the top of the heap, best first, keyed by sequence number."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive

from engine.snapshots import EngineSnapshot, HeapEntry
from tui.widgets._keyed_table import KeyedTable, Row
from tui.widgets.format import priority, seconds, shorten


def heap_row(entry: HeapEntry, aging: bool) -> Row:
    """The cells of one heap entry (effective priority dimmed when aging is off)."""
    effective = Text(priority(round(entry.effective_priority, 2)),
                     style="bold" if aging else "dim")
    return (
        str(entry.seq),
        priority(entry.priority),
        effective,
        seconds(entry.waited),
        shorten(repr(entry.item), 28),
    )


class HeapTable(KeyedTable):
    """The entries at the root of the heap (`EngineSnapshot.top`), in the order they will be got."""

    COLUMNS = (
        ("seq", "seq"),
        ("priority", "prio"),
        ("effective", "eff"),
        ("waited", "waited"),
        ("item", "item"),
    )
    KEY_COLUMN = "seq"

    snapshot: reactive[EngineSnapshot | None] = reactive(None)
    """The snapshot on display (bound to the app's)."""

    def watch_snapshot(self, snapshot: EngineSnapshot | None) -> None:
        if snapshot is None:
            return
        aging = snapshot.queue.aging_rate > 0
        self.sync([(entry.seq, heap_row(entry, aging)) for entry in snapshot.top])
