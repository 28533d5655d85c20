"""LiveTable: a keyed table for data that changes every refresh, drawn with the line API.

DataTable re-renders every visible cell through Rich whenever any cell changes (its render
cache is keyed by an update counter), which at 5 Hz with 64 workers costs more than the
refresh budget. A LiveTable keeps one cached Strip per row key, rebuilds only the rows whose
cells changed and repaints only their lines; the header stays put while the rows scroll.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from functools import lru_cache

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.widgets.format import sort_value

Cell = str | Text
"""What row builders return: plain text, or Text with one style over the whole cell."""
Row = tuple[Cell, ...]

GAP = 1
"""Spaces between columns (one: the tables share a 120-column screen)."""


@lru_cache(maxsize=256)
def _parse_style(style: str) -> Style:
    return Style.parse(style) if style else Style.null()


def _cell_parts(cell: Cell) -> tuple[str, Style]:
    if isinstance(cell, Text):
        style = cell.style
        return cell.plain, _parse_style(style) if isinstance(style, str) else style
    return cell, Style.null()


class LiveTable(ScrollView, can_focus=True):
    """Rows identified by stable keys, updated in place by `sync()`; a row cursor when focused.

    Subclasses set COLUMNS ((key, label) pairs) and KEY_COLUMN is not needed: rows keep the
    order `sync()` gives them.
    """

    DEFAULT_CSS = """
    LiveTable {
        height: 1fr;
        scrollbar-size-vertical: 1;
        scrollbar-size-horizontal: 0;
        overflow-x: hidden;
    }
    LiveTable > .live-table--header {
        color: $text-accent;
        text-style: bold;
    }
    LiveTable > .live-table--cursor {
        background: $block-cursor-blurred-background;
    }
    LiveTable:focus > .live-table--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: bold;
    }
    """

    COMPONENT_CLASSES = {"live-table--header", "live-table--cursor"}

    BINDINGS = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "scroll_home", "Top", show=False),
        Binding("end", "scroll_end", "Bottom", show=False),
        Binding("enter", "select_cursor", "Select", show=False),
    ]

    COLUMNS: tuple[tuple[str, str], ...] = ()
    """(column key, label) pairs, in display order."""

    cursor_row: reactive[int] = reactive(0, always_update=False)
    """Index of the highlighted row."""
    filter_text: reactive[str] = reactive("", init=False)
    """Only the rows this matches are shown ('' shows all); see `row_matches`."""
    sort_by: reactive[tuple[int, bool] | None] = reactive(None, init=False)
    """(column index, descending) the rows are sorted by; None keeps the order given."""

    PINNED: frozenset[str] = frozenset()
    """Row keys that are never filtered out nor sorted: they stay last (summary rows)."""

    class RowSelected(Message):
        """Enter (or a click) on a row."""

        def __init__(self, table: LiveTable, key: str) -> None:
            super().__init__()
            self.table = table
            """The table the row is in."""
            self.key = key
            """The row's key."""

        @property
        def control(self) -> LiveTable:
            return self.table

    def __init__(self, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._rows: dict[str, Row] = {}
        self._order: list[str] = []
        self._position: dict[str, int] = {}
        self._strips: dict[str, Strip] = {}
        self._widths = [len(label) for _, label in self.COLUMNS]
        self._given: list[tuple[str, Row]] = []
        self._column_index = {key: index for index, (key, _) in enumerate(self.COLUMNS)}

    # ------------------------------------------------------------------ data

    @property
    def row_count(self) -> int:
        """Rows in the table."""
        return len(self._order)

    @property
    def shown_keys(self) -> list[str]:
        """Row keys in display order."""
        return list(self._order)

    def get_cell(self, key: Hashable, column: str) -> str:
        """The text of one cell."""
        return _cell_parts(self._rows[str(key)][self._column_index[column]])[0]

    def selected_key(self) -> str | None:
        """The key of the row under the cursor, if any."""
        if not self._order:
            return None
        return self._order[min(self.cursor_row, len(self._order) - 1)]

    def sync(self, rows: Sequence[tuple[Hashable, Row]]) -> None:
        """Show exactly `rows` ((key, cells) pairs, in display order), repainting what changed;
        those the filter does not match are left out, and the sort orders the rest."""
        self._given = [(str(key), cells) for key, cells in rows]
        self._display(self._arranged(self._given))

    def row_matches(self, key: str, cells: Row, text: str) -> bool:
        """True when the filter `text` (lower case) is in one of the row's cells."""
        return any(text in _cell_parts(cell)[0].lower() for cell in cells)

    def _arranged(self, rows: list[tuple[str, Row]]) -> list[tuple[str, Row]]:
        pinned = [row for row in rows if row[0] in self.PINNED]
        rows = [row for row in rows if row[0] not in self.PINNED]
        text = self.filter_text.strip().lower()
        if text:
            rows = [row for row in rows if self.row_matches(row[0], row[1], text)]
        if self.sort_by is not None:
            column, descending = self.sort_by
            rows.sort(key=lambda row: sort_value(_cell_parts(row[1][column])[0]),
                      reverse=descending)
        return rows + pinned

    def watch_filter_text(self) -> None:
        self._display(self._arranged(self._given))

    def watch_sort_by(self, sort_by: tuple[int, bool] | None) -> None:
        if sort_by is not None:
            # Room in the header for the arrow, so the label is never cut.
            column = sort_by[0]
            self._widths[column] = max(self._widths[column], len(self.COLUMNS[column][1]) + 2)
        self._strips.clear()
        self._display(self._arranged(self._given))
        self.refresh()

    def cycle_sort(self, column: int | None = None) -> None:
        """Sort by the next column ascending, then descending, then the next column...,
        ending unsorted; with `column` (a header click): that column, then its other way."""
        current = self.sort_by
        if column is None:
            if current is None:
                self.sort_by = (0, False)
            elif not current[1]:
                self.sort_by = (current[0], True)
            else:
                following = current[0] + 1
                self.sort_by = (following, False) if following < len(self.COLUMNS) else None
        elif current is not None and current[0] == column:
            self.sort_by = None if current[1] else (column, True)
        else:
            self.sort_by = (column, False)

    @property
    def sort_label(self) -> str:
        """'' when unsorted, else 'sorted by on it ▼'."""
        if self.sort_by is None:
            return ""
        column, descending = self.sort_by
        return f"sorted by {self.COLUMNS[column][1]} {'▼' if descending else '▲'}"

    def _display(self, rows: Sequence[tuple[str, Row]]) -> None:
        order = [key for key, _ in rows]
        wanted = dict(zip(order, (cells for _, cells in rows), strict=True))
        widths_changed = False
        changed: list[str] = []
        for key, cells in wanted.items():
            if self._rows.get(key) == cells:
                continue
            changed.append(key)
            for index, cell in enumerate(cells):
                length = cell.cell_len if isinstance(cell, Text) else len(cell)
                if length > self._widths[index]:
                    self._widths[index] = length
                    widths_changed = True
        for key in [key for key in self._rows if key not in wanted]:
            del self._rows[key]
            self._strips.pop(key, None)
        self._rows.update((key, wanted[key]) for key in changed)
        for key in changed:
            self._strips.pop(key, None)
        selected = self.selected_key()
        if order != self._order or widths_changed:
            self._order = order
            self._position = {key: index for index, key in enumerate(order)}
            if widths_changed:
                self._strips.clear()
            # Only the height scrolls (overflow-x is hidden): a column growing needs a repaint,
            # not a new virtual size, which would lay out the whole screen again.
            self.virtual_size = Size(0, len(order) + 1)
            if selected in self._position:
                # The cursor follows its row, not its position.
                self.cursor_row = self._position[selected]
            elif self.cursor_row >= len(order):
                self.cursor_row = max(len(order) - 1, 0)
            self.refresh()
        elif changed:
            # One repaint for the visible span of changed rows; rows out of view cost nothing.
            top = int(self.scroll_offset.y)
            bottom = top + max(self.size.height - 1, 0)
            visible = [row for row in map(self._position.__getitem__, changed)
                       if top <= row < bottom]
            if visible:
                first, last = min(visible), max(visible)
                self.refresh_lines(first + 1, last - first + 1)

    # ------------------------------------------------------------------ rendering

    def _row_strip(self, cells: Row) -> Strip:
        segments = [Segment(" ")]
        for cell, width in zip(cells, self._widths, strict=True):
            text, style = _cell_parts(cell)
            segments.append(Segment(text.ljust(width), style))
            segments.append(Segment(" " * GAP))
        return Strip(segments)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if y == 0:
            header = self.get_component_rich_style("live-table--header")
            labels = tuple(label for _, label in self.COLUMNS)
            if self.sort_by is not None:
                column, descending = self.sort_by
                labels = (*labels[:column], f"{labels[column]} {'▼' if descending else '▲'}",
                          *labels[column + 1:])
            strip = self._row_strip(labels).apply_style(header)
            return strip.crop_extend(0, width, base).apply_style(base)
        index = int(self.scroll_offset.y) + y - 1
        if index >= len(self._order):
            return Strip.blank(width, base)
        key = self._order[index]
        strip = self._strips.get(key)
        if strip is None:
            strip = self._strips[key] = self._row_strip(self._rows[key])
        strip = strip.crop_extend(0, width, base).apply_style(base)
        if index == self.cursor_row and (self.has_focus or self.show_cursor_unfocused):
            strip = strip.apply_style(self.get_component_rich_style("live-table--cursor"))
        return strip

    show_cursor_unfocused = False
    """Paint the cursor row when the table does not have focus."""

    # ------------------------------------------------------------------ cursor

    def watch_cursor_row(self, old: int, new: int) -> None:
        self.refresh_line(old + 1)
        self.refresh_line(new + 1)
        self._scroll_cursor_into_view()

    def _scroll_cursor_into_view(self) -> None:
        visible = max(self.size.height - 1, 1)
        top = int(self.scroll_offset.y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False)
        elif self.cursor_row >= top + visible:
            self.scroll_to(y=self.cursor_row - visible + 1, animate=False)

    def validate_cursor_row(self, row: int) -> int:
        return max(0, min(row, len(self._order) - 1)) if self._order else 0

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def action_cursor_up(self) -> None:
        self.cursor_row -= 1

    def action_cursor_down(self) -> None:
        self.cursor_row += 1

    def action_page_up(self) -> None:
        self.cursor_row -= max(self.size.height - 1, 1)

    def action_page_down(self) -> None:
        self.cursor_row += max(self.size.height - 1, 1)

    def action_scroll_home(self) -> None:
        self.cursor_row = 0

    def action_scroll_end(self) -> None:
        self.cursor_row = len(self._order) - 1

    def action_select_cursor(self) -> None:
        key = self.selected_key()
        if key is not None:
            self.post_message(self.RowSelected(self, key))

    def column_at(self, x: int) -> int | None:
        """The index of the column under screen column `x` of the table, if any."""
        edge = 1
        for index, width in enumerate(self._widths):
            edge += width + GAP
            if x < edge:
                return index
        return None

    def on_click(self, event: events.Click) -> None:
        if event.y < 1:
            column = self.column_at(event.x)
            if column is not None:
                self.cycle_sort(column)
            return
        index = int(self.scroll_offset.y) + event.y - 1
        if index < len(self._order):
            self.cursor_row = index
            self.post_message(self.RowSelected(self, self._order[index]))
