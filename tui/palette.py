"""The command palette, safe against keys mashed faster than it can follow.

Two failures of Textual's palette (8.2), each of which ended the dashboard with status 1 when
keys were mashed in tmux: OptionList's page-up/page-down raise KeyError when the list has
options but no lines yet (a terminal under 5 rows, or a page key right after the results
change), and a second Enter or Esc queued before the palette closed dismisses it again, which
raises ScreenStackError. Here a page key that comes too early, and a second dismissal, do
nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from functools import partial
from typing import Any

from textual.await_complete import AwaitComplete
from textual.binding import Binding
from textual.command import CommandList, CommandPalette, DiscoveryHit, Hit, Hits, Provider
from textual.content import Content

from tui.keys import KEY_BY_ACTION, PALETTE

__all__ = ["HeapwatchCommands", "SafeCommandPalette"]


class HeapwatchCommands(Provider):
    """Every heapwatch action as "group: Name" with its key, read from the key table; listed
    with nothing typed, and only those the source can carry out now."""

    def _entries(self) -> Iterator[tuple[str, str, str]]:
        """(name, key, action) of the actions that work now."""
        app = self.app
        for group, name, action in PALETTE:
            if app.check_action(action, ()) is True:
                yield f"{group}: {name}", KEY_BY_ACTION[action].shown_as, action

    def _help(self, action: str) -> str | None:
        method = getattr(self.app, f"action_{action}", None)
        doc = (getattr(method, "__doc__", None) or "").strip()
        return doc.splitlines()[0] if doc else None

    def _command(self, action: str) -> Any:
        return partial(self.app.run_action, action)

    async def discover(self) -> Hits:
        for name, key, action in self._entries():
            yield DiscoveryHit(Content.assemble(name, ("  " + key, "dim")),
                               self._command(action), text=name, help=self._help(action))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, key, action in self._entries():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, Content.assemble(matcher.highlight(name), ("  " + key, "dim")),
                          self._command(action), text=name, help=self._help(action))


class SafeCommandPalette(CommandPalette):
    """Textual's CommandPalette with page keys that cannot crash the app."""

    BINDINGS = [
        Binding("pagedown", "page(1)", "Next page", show=False),
        Binding("pageup", "page(-1)", "Previous page", show=False),
    ]

    def action_page(self, direction: int) -> None:
        """Move the highlight one page down (1) or up (-1), if the list is laid out yet."""
        commands = self.query_one(CommandList)
        try:
            if direction > 0:
                commands.action_page_down()
            else:
                commands.action_page_up()
        except (KeyError, IndexError):  # no lines yet: the next layout makes them
            pass

    def dismiss(self, result: Any = None) -> AwaitComplete:
        """Close the palette; a second call, once it is closed, does nothing."""
        if self.app.screen is not self:
            return AwaitComplete(asyncio.sleep(0))
        return super().dismiss(result)
