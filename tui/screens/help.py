"""HelpScreen: every key of the dashboard, read from the app's BINDINGS."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static


def action_help(app: object, binding: Binding) -> str:
    """The first line of the action's docstring, else the binding's description."""
    method = getattr(app, f"action_{binding.action}", None)
    doc = (getattr(method, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else binding.description


class HelpScreen(ModalScreen[None]):
    """A table of the app's bindings; any of escape, q or ? closes it."""

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > Vertical {
        width: 84;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    HelpScreen DataTable {
        height: auto;
    }
    HelpScreen #help-intro, HelpScreen #help-outro {
        color: $foreground-muted;
    }
    """

    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close", key_display="?"),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Keys act on the engine; the effect shows within one refresh.",
                         id="help-intro")
            yield DataTable(cursor_type="none", show_cursor=False, id="help-keys")
            yield Static("Enter on an alert opens its stacks. Escape closes this.",
                         id="help-outro")

    def on_mount(self) -> None:
        self.query_one(Vertical).border_title = "heapwatch keys"
        table = self.query_one("#help-keys", DataTable)
        table.add_columns("key", "what it does")
        for binding in self.app.BINDINGS:
            if isinstance(binding, Binding):
                table.add_row(binding.key_display or binding.key, action_help(self.app, binding))
