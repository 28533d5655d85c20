"""The key table: every key of the dashboard once, with the Capability it needs.

The app's BINDINGS, the footer, the help screen, the hint bar and the check that greys out a
key the source cannot carry out now all read this one list, so a key cannot be offered in one
place and refused in another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from textual.binding import Binding

from engine.snapshots import Capability


@dataclass(frozen=True, slots=True)
class Key:
    """One key of the dashboard."""

    action: str
    """The `action_*` name it runs (also its id in the table)."""
    key: str
    """Textual's key name ('plus', 'question_mark', 'B')."""
    label: str
    """The footer's word for it."""
    needs: Capability | None = None
    """What the source must be able to do now for the key to work (None: always works)."""
    essential: bool = False
    """Kept in the footer of a small terminal (80x24), where the others leave it."""
    show: bool = True
    """In the footer at all (the help screen lists every key)."""
    display: str | None = None
    """How the footer and the help write the key, when not the key's name."""
    priority: bool = False
    """Checked before the focused screen's own bindings (q quits from any screen)."""

    @property
    def shown_as(self) -> str:
        return _overrides.get(self.action) or self.display or self.key

    def binding(self) -> Binding:
        return Binding(self.key, self.action, self.label, show=self.show,
                       key_display=self.display, priority=self.priority, id=self.action)


KEYS: tuple[Key, ...] = (
    Key("help", "question_mark", "Help", essential=True, display="?"),
    # Not essential: a small footer has no room, and the hint line names it there.
    Key("command_palette", "ctrl+p", "Palette", display="^p", priority=True),
    Key("quit", "q", "Quit", essential=True, priority=True),
    Key("interrupt", "ctrl+c", "Copy/Quit", show=False, display="^c"),
    Key("burst", "b", "Burst", Capability.BURST, essential=True),
    Key("big_burst", "B", "×10", Capability.BURST, display="B"),
    Key("flood_low", "l", "Flood", Capability.FLOOD, essential=True),
    Key("cancel_worker", "c", "Cancel", Capability.CANCEL_WORKER),
    Key("add_worker", "plus", "Add", Capability.ADD_WORKER, display="+"),
    Key("remove_worker", "minus", "Drop", Capability.REMOVE_WORKER, display="-"),
    Key("toggle_producers", "p", "Pause", Capability.PAUSE_PRODUCERS, essential=True),
    Key("toggle_getting", "P", "Pause getting", Capability.PAUSE_GETTING, essential=True),
    Key("toggle_aging", "a", "Aging", Capability.AGING, essential=True),
    Key("cycle_overflow", "o", "Policy", Capability.OVERFLOW, essential=True),
    Key("block_loop", "x", "Block", Capability.BLOCK_LOOP),
    Key("memory_profile", "m", "Mem", Capability.MEMORY),
    Key("capture_stacks", "t", "Stacks", Capability.STACKS, show=False),
    Key("toggle_freeze", "f", "Freeze", essential=True),
    Key("toggle_maximize", "z", "Zoom"),
    Key("shutdown", "s", "Stop", Capability.SHUTDOWN, essential=True),
    Key("restart", "r", "Restart", Capability.RESTART, essential=True),
    Key("replay_toggle", "space", "Play/Pause", Capability.REPLAY, essential=True,
        display="space"),
    Key("replay_back", "comma", "Back", Capability.REPLAY, display=","),
    Key("replay_forward", "full_stop", "Step", Capability.REPLAY, display="."),
    Key("replay_previous_alert", "left_square_bracket", "Prev alert", Capability.REPLAY,
        essential=True, display="["),
    Key("replay_next_alert", "right_square_bracket", "Next alert", Capability.REPLAY,
        essential=True, display="]"),
    Key("filter", "slash", "Filter", show=False, display="/"),
    Key("sort", "S", "Sort", show=False),
    Key("export_alerts", "W", "Save alerts", show=False),
)

KEY_BY_ACTION = {key.action: key for key in KEYS}

_overrides: dict[str, str] = {}
"""The config's `[keys]` (binding id -> key) of the running app, so that the footer, the help
and the hints write the keys the user actually types (tui.app sets it; Textual's keymap does
the rebinding itself)."""


def use_overrides(keymap: Mapping[str, str]) -> None:
    """Show the keys of `keymap` (binding id -> key) in place of the table's own."""
    _overrides.clear()
    _overrides.update(keymap)


PALETTE: tuple[tuple[str, str, str], ...] = (
    ("queue", "Burst", "burst"),
    ("queue", "Burst ×10", "big_burst"),
    ("queue", "Flood low priority", "flood_low"),
    ("queue", "Pause producers", "toggle_producers"),
    ("queue", "Aging on/off", "toggle_aging"),
    ("queue", "Overflow policy", "cycle_overflow"),
    ("workers", "Cancel", "cancel_worker"),
    ("workers", "Add", "add_worker"),
    ("workers", "Remove", "remove_worker"),
    ("workers", "Pause / resume getting", "toggle_getting"),
    ("diagnose", "Block the loop once", "block_loop"),
    ("diagnose", "Memory profile", "memory_profile"),
    ("diagnose", "Capture stacks", "capture_stacks"),
    ("diagnose", "Save every alert to a file", "export_alerts"),
    ("view", "Freeze", "toggle_freeze"),
    ("view", "Zoom the focused panel", "toggle_maximize"),
    ("view", "Filter the focused table", "filter"),
    ("view", "Sort the focused table", "sort"),
    ("view", "Help", "help"),
    ("replay", "Play / pause", "replay_toggle"),
    ("replay", "Step back one frame", "replay_back"),
    ("replay", "Step on one frame", "replay_forward"),
    ("replay", "Previous alert", "replay_previous_alert"),
    ("replay", "Next alert", "replay_next_alert"),
    ("run", "Stop (graceful shutdown)", "shutdown"),
    ("run", "Restart", "restart"),
    ("run", "Quit", "quit"),
)
"""The palette's entries, "group: Name" and the action, each action of KEYS but the palette."""

NAVIGATION: tuple[tuple[str, str], ...] = (
    ("tab / shift+tab", "focus the next / previous table (its border lights up)"),
    ("↑ ↓  j k", "move the cursor in the focused table (pgup/pgdn, home/end: further)"),
    ("enter / click", "open the row's detail (a worker, a queued item, an alert)"),
    ("escape", "close the topmost thing: a detail or this screen, a filter, a zoomed panel"),
    ("^q", "quit, as q does"),
)
"""Keys the tables and Textual itself bind (not the app's actions): for the help screen."""

PAGE_KEYS = ("1", "2", "3", "4", "5")
"""Number keys that switch pages in the paged layout (not in the footer: the tabs show them)."""

FIXED_KEYS: dict[str, str] = {
    "escape": "escape (back)", "ctrl+p": "the command palette", "ctrl+q": "quit at once",
    "tab": "the next panel", "shift+tab": "the previous panel",
    **{number: f"page {number}" for number in PAGE_KEYS},
}
"""Keys outside the table that the config's `[keys]` may not give to a binding."""


def key_for(action: str) -> str:
    """How a person types the key of `action` ('a', '+', '?')."""
    return KEY_BY_ACTION[action].shown_as


def allowed(action: str, capabilities: frozenset[Capability]) -> bool:
    """True when `action` needs nothing, or a capability the source has now."""
    key = KEY_BY_ACTION.get(action)
    return key is None or key.needs is None or key.needs in capabilities
