"""KeyedTable: a DataTable synced from keyed rows, updated in place (never cleared)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from rich.text import Text
from textual.widgets import DataTable

Cell = str | Text
Row = tuple[Cell, ...]


class KeyedTable(DataTable[Cell]):
    """A DataTable whose rows are identified by stable keys.

    `sync()` diffs the wanted rows against what is on screen: it removes rows that went away,
    adds new ones, updates only the cells that changed and re-sorts only when the order
    changed. A refresh therefore costs in proportion to what changed, not to the table.
    """

    DEFAULT_CSS = """
    KeyedTable {
        height: 1fr;
        scrollbar-size-vertical: 1;
    }
    """

    COLUMNS: tuple[tuple[str, str], ...] = ()
    """(column key, label) pairs, in display order."""
    KEY_COLUMN: str = ""
    """The column whose text is unique per row (used to keep the display order)."""

    def __init__(self, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes, cursor_type="row",
                         zebra_stripes=False)
        self._shown: dict[str, Row] = {}
        self._order: list[str] = []

    def on_mount(self) -> None:
        for key, label in self.COLUMNS:
            self.add_column(label, key=key)

    @property
    def shown_keys(self) -> list[str]:
        """Row keys in display order."""
        return list(self._order)

    def sync(self, rows: Sequence[tuple[Hashable, Row]]) -> None:
        """Make the table show exactly `rows` ((key, cells) pairs, in display order)."""
        wanted = {str(key): cells for key, cells in rows}
        order = list(wanted)
        for key in [key for key in self._shown if key not in wanted]:
            self.remove_row(key)
            del self._shown[key]
        column_keys = [column for column, _ in self.COLUMNS]
        for key, cells in wanted.items():
            old = self._shown.get(key)
            if old is None:
                self.add_row(*cells, key=key)
            elif old != cells:
                for column, before, after in zip(column_keys, old, cells, strict=True):
                    if before != after:
                        self.update_cell(key, column, after, update_width=True)
            self._shown[key] = cells
        if order != self._order or len(order) != self.row_count:
            self._sort_like(order, wanted)
        self._order = order

    def _sort_like(self, order: list[str], wanted: dict[str, Row]) -> None:
        # DataTable.sort hands the key function cell values, not row keys, so rank rows by the
        # text of KEY_COLUMN, which every subclass keeps unique per row.
        index = [column for column, _ in self.COLUMNS].index(self.KEY_COLUMN)
        rank = {str(wanted[key][index]): position for position, key in enumerate(order)}
        if [str(row.key.value) for row in self.ordered_rows] != order:
            self.sort(self.KEY_COLUMN, key=lambda cell: rank.get(str(cell), len(rank)))

    def selected_key(self) -> str | None:
        """The key of the row under the cursor, if any."""
        if not self.row_count:
            return None
        row = self.ordered_rows[min(self.cursor_row, self.row_count - 1)]
        return str(row.key.value)
