"""HeapTable: the top of the heap, best first."""

from __future__ import annotations

from collections.abc import Callable, Sequence

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

    fetch_top: Callable[[int, float], Sequence[HeapEntry]] | None = None
    """Asks the source for the best k entries of one priority (None: the source cannot, and a
    priority filter narrows the entries the snapshot carries)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.entries: dict[str, HeapEntry] = {}
        """The entry of each row key on display."""

    @property
    def filter_priority(self) -> float | None:
        """The priority the filter names (a number alone), else None."""
        try:
            return float(self.filter_text.strip())
        except ValueError:
            return None

    def watch_snapshot(self, snapshot: EngineSnapshot | None) -> None:
        if snapshot is None:
            return
        entries: Sequence[HeapEntry] = snapshot.top
        wanted = self.filter_priority
        if wanted is not None and self.fetch_top is not None:
            # The engine's own top k of that level: the queue is never scanned.
            try:
                entries = self.fetch_top(max(len(snapshot.top), 1), wanted)
            except Exception as error:  # a source that refuses: the filter still narrows
                self.log.warning(f"top of priority {wanted:g}: {error!r}")
        aging = snapshot.queue.aging_rate > 0
        self.entries = {str(rank): entry for rank, entry in enumerate(entries, start=1)}
        self.sync([(rank, heap_row(entry, aging)) for rank, entry in self.entries.items()])

    def row_matches(self, key: str, cells: Row, text: str) -> bool:
        wanted = self.filter_priority
        if wanted is not None:
            return self.entries[key].priority == wanted
        return super().row_matches(key, cells, text)

    def watch_filter_text(self) -> None:
        self.watch_snapshot(self.snapshot)

    @property
    def selected_entry(self) -> HeapEntry | None:
        """The entry under the cursor, if any."""
        key = self.selected_key()
        return self.entries.get(key) if key is not None else None
