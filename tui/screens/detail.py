"""DetailScreen: the frame of every drill-down (a worker, a queued item, an alert).

A modal that follows the app's snapshots while it is open (`follow` runs on each one), closes
on escape and writes what it shows to a file on `w`. The result of `w` is said on the
screen's own last line, not in a toast: toasts never cover a modal.
"""

from __future__ import annotations

from rich.console import RenderableType
from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static, TextArea

from engine.snapshots import EngineSnapshot
from tui.export import export_text, stamp


def modal_frame_css(screen: str, *, width: int = 100) -> str:
    """The CSS of a modal's centred, bordered frame (its one Vertical child)."""
    return f"""
    {screen} {{
        align: center middle;
    }}
    {screen} > Vertical {{
        width: {width};
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }}
    """


def facts(rows: list[tuple[str, RenderableType]]) -> Table:
    """(label, value) rows as a small key/value grid."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim")
    grid.add_column()
    for label, value in rows:
        grid.add_row(label, value)
    return grid


def selectable(text: str, id: str) -> TextArea:
    """Read-only text a person can select and copy (stacks, tracebacks)."""
    area = TextArea(text, read_only=True, show_line_numbers=False, soft_wrap=False, id=id,
                    classes="detail-text")
    area.cursor_blink = False
    return area


class DetailScreen(ModalScreen[None]):
    """Subclasses compose their parts inside `body()` and keep them current in `follow`."""

    DEFAULT_CSS = modal_frame_css("DetailScreen", width=110) + """
    DetailScreen .detail-facts {
        height: auto;
        margin-bottom: 1;
    }
    DetailScreen .detail-heading {
        color: $text-accent;
        text-style: bold;
    }
    DetailScreen .detail-text, DetailScreen .detail-text:focus {
        height: auto;
        max-height: 14;
        border: none;
        padding: 0;
    }
    DetailScreen .detail-text:focus {
        background: $boost;
    }
    DetailScreen #detail-said {
        color: $foreground-muted;
        height: auto;
    }
    """

    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("w", "export", "Save to a file"),
    ]

    AUTO_FOCUS = ""
    """Nothing focused on opening: a focused text would take q, escape's peers, as its own;
    tab reaches the texts for keyboard selection, a mouse selects in them at any time."""

    def compose(self) -> ComposeResult:
        with Vertical():
            yield from self.body()
            yield Static("", id="detail-said")

    def body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        frame = self.query_one(Vertical)
        frame.border_title = self.names()[1]
        frame.border_subtitle = "escape closes · w saves to a file"
        self.watch(self.app, "snapshot", self._follow_snapshot, init=False)

    def _follow_snapshot(self, snapshot: EngineSnapshot | None) -> None:
        if snapshot is not None:
            self.follow(snapshot)
            self.query_one(Vertical).border_title = self.names()[1]

    def names(self) -> tuple[str, str]:
        """(the start of the file name `w` writes, the frame's title), both as of now."""
        raise NotImplementedError

    def follow(self, snapshot: EngineSnapshot) -> None:
        """Show the latest state of the thing in `snapshot`."""

    def detail_text(self) -> str:
        """What `w` writes: everything the screen shows, as plain text."""
        raise NotImplementedError

    def action_export(self) -> None:
        """Write the open detail to a file (in the browser: a download) and say where."""
        said = self.query_one("#detail-said", Static)
        try:
            said.update(export_text(self.app, f"heapwatch-{self.names()[0]}-{stamp()}",
                                    self.detail_text()))
        except OSError as error:
            said.update(f"could not save: {error}")
