"""HelpScreen: every key of the dashboard, read from the key table: the actions, then the
keys that move around (tui.keys.NAVIGATION)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from tui.keys import KEYS, NAVIGATION
from tui.screens.detail import modal_frame_css

LEGEND = """\
heap root: prio is the priority an item was put with; eff its effective priority after aging
  (dim while aging is off); seq its place in arrival order; '#2' after an item: its 2nd attempt.
per priority: oldest is the wait of the oldest item still queued (amber past half the SLA, red
  past it); srv50/srv99 are the waits of items already served (a sliding window), so a level
  whose items all still wait shows '-' there.
workers: fail counts attempts that raised or timed out; gave up, those not retried (dead).
process: costs in microseconds (µs); maxsize≈ is Little's law: arrival rate x time in system.
Dim keys, here and in the footer, do nothing now (the run has stopped, or the source is
  read-only); the palette (^p) leaves them out.
Number keys 1-5 switch pages on a small terminal; z maximises the focused panel; escape closes
the topmost thing (this screen or a detail, then a filter, then a maximised panel). In a detail,
  w writes it to a file (in the browser: a download) and the stacks and tracebacks are text you
  can select; on the heap, the filter /3 asks the engine for priority 3's own top."""


def action_help(app: object, binding: Binding) -> str:
    """The first line of the action's docstring, else the binding's description."""
    method = getattr(app, f"action_{binding.action}", None)
    doc = (getattr(method, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else binding.description


class HelpScreen(ModalScreen[None]):
    """The key table (tui/keys.py) and a legend of the columns; escape or ? closes it."""

    DEFAULT_CSS = modal_frame_css("HelpScreen") + """
    HelpScreen DataTable {
        height: auto;
    }
    HelpScreen #help-intro, HelpScreen #help-outro {
        color: $foreground-muted;
    }
    """

    # `?` closes it through the app's own `?` (help toggles), and `q` quits from any screen:
    # a binding of either here would give the key a second meaning.
    BINDINGS = [Binding("escape", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Keys act on the engine; the effect shows within one refresh.",
                         id="help-intro")
            yield DataTable(cursor_type="none", show_cursor=False, id="help-keys")
            yield Static(LEGEND, id="help-outro")

    def on_mount(self) -> None:
        self.query_one(Vertical).border_title = "heapwatch keys"
        table = self.query_one("#help-keys", DataTable)
        table.add_columns("key", "what it does")
        offered = getattr(self.app, "offered", None)
        for key in KEYS:
            if offered is not None and not offered(key.action):
                continue  # never possible with this source: not listed at all
            what = action_help(self.app, key.binding())
            if self.app.check_action(key.action, ()) is not True:
                # Disabled everywhere alike: dim here as in the footer, absent from the palette.
                table.add_row(Text(key.shown_as, style="dim"),
                              Text(f"{what} (not now)", "dim"))
            else:
                table.add_row(key.shown_as, what)
        for keys, what in NAVIGATION:
            table.add_row(keys, what)
