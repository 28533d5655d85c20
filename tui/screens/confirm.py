"""ConfirmScreen: a yes/no question before a key does something that cannot be undone."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class ConfirmScreen(ModalScreen[bool]):
    """Asks `question`; dismissed with True for y or Enter, False for n or Esc.

    Used by `s` (a graceful shutdown ends the run: the engine's, or a remote service's).
    """

    DEFAULT_CSS = """
    ConfirmScreen {
        align: center middle;
    }
    ConfirmScreen > Vertical {
        width: 64;
        max-width: 100%;
        height: auto;
        border: thick $warning;
        background: $surface;
        padding: 0 1;
    }
    ConfirmScreen #confirm-keys {
        color: $foreground-muted;
        margin-top: 1;
    }
    """

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("enter", "answer(True)", "Yes", show=False),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "No", show=False),
    ]

    def __init__(self, question: str, detail: str = "") -> None:
        super().__init__()
        self.question = question
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical():
            # Text, not markup: an endpoint or a scenario name may hold brackets.
            yield Static(Text(self.question, style="bold"), id="confirm-question")
            if self.detail:
                yield Static(Text(self.detail), id="confirm-detail")
            yield Static("y or enter: yes · n or escape: no", id="confirm-keys")

    def action_answer(self, yes: bool) -> None:
        # A second key queued before the screen closed must not dismiss what is under it.
        if self.app.screen is self:
            self.dismiss(yes)
