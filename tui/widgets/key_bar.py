"""KeyBar: the footer, from the key table: the keys that fit, essentials first, disabled ones dim.

Textual's Footer shows every binding and cuts the line where the terminal ends; at 80x24 that
cut `x m f s` off. This bar drops the keys that are not essential when the line is too narrow,
so that the ones a newcomer needs (and `?`, which lists the rest) always show.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tui.keys import KEYS, Key

GAP = "  "
DROP_FIRST = ("big_burst", "remove_worker", "add_worker", "cancel_worker", "toggle_maximize")
"""The keys that leave a narrow footer first (then the other non-essential ones, from the
right): `x` and `m` are part of the demo's story, the rest have a sibling key or the help."""


def footer_line(keys: tuple[Key, ...], state: Callable[[str], bool | None], width: int, *,
                key_style: str = "bold", off_style: str = "dim") -> Text:
    """The keys as 'k Label' pairs in table order; `state(action)` is check_action's answer
    (True: works, None: disabled, shown dim, False: not shown). When the line is too long
    the non-essential keys go first, then the disabled essential ones."""
    shown = [key for key in keys if key.show and state(key.action) is not False]

    def length(chosen: list[Key]) -> int:
        return sum(len(k.shown_as) + 1 + len(k.label) for k in chosen) + len(GAP) * max(
            len(chosen) - 1, 0)

    # Popped from the end: the others from the right, then the DROP_FIRST keys in order.
    optional = [key for key in shown if not key.essential and key.action not in DROP_FIRST]
    optional += [key for action in reversed(DROP_FIRST) for key in shown if key.action == action]
    # Then the disabled essentials: after a stop the keys that still work matter most.
    optional = [key for key in shown if key.essential and state(key.action) is not True
                ] + optional
    while length(shown) > width and optional:
        shown.remove(optional.pop())
    line = Text(no_wrap=True, overflow="ellipsis", end="")
    for n, key in enumerate(shown):
        if n:
            line.append(GAP)
        on = state(key.action) is True
        line.append(key.shown_as, key_style if on else off_style)
        line.append(f" {key.label}", "" if on else off_style)
    return line


class KeyBar(Widget):
    """The footer. `refresh()` it when what the keys can do changes."""

    DEFAULT_CSS = """
    KeyBar {
        height: 1;
        padding: 0 1;
        background: $footer-background;
        color: $footer-description-foreground;
    }
    KeyBar > .key-bar--key { color: $footer-key-foreground; text-style: bold; }
    """

    COMPONENT_CLASSES = {"key-bar--key"}

    essentials_only: reactive[bool] = reactive(False)
    """Show only the essential keys (the paged layout of a small terminal)."""

    def render(self) -> Text:
        keys = tuple(key for key in KEYS if key.essential or not self.essentials_only)

        def state(action: str) -> bool | None:
            return self.app.check_action(action, ())

        key_style = self.get_component_rich_style("key-bar--key")
        return footer_line(keys, state, max(self.content_region.width, 10),
                           key_style=str(key_style) or "bold")
