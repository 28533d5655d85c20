"""HintBar: one line above the footer saying what a person can do about what is happening now.

Hints come from the engine's state and the key table, and only for actions the source can carry
out now (a read-only source never hears "press a"). An engine error from a key shows here too,
for a while, instead of as a toast.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from engine.snapshots import AlertKind, Capability, EngineSnapshot
from tui.keys import key_for
from tui.widgets.format import priority
from tui.widgets.summary_bar import run_state


def hint_for(snapshot: EngineSnapshot | None, capabilities: frozenset[Capability], *,
             frozen: bool = False, quitting: bool = False, remote: bool = False) -> str:
    """The most useful hint now, or '' when there is nothing to say (`quitting`: after q;
    `remote`: the snapshots are another process's, attach or replay, which `q` only leaves)."""
    if snapshot is None:
        return ""
    if frozen:
        return f"display frozen, the engine keeps running: press {key_for('toggle_freeze')} to go live"
    if Capability.REPLAY in capabilities:
        return (f"replay: {key_for('replay_toggle')} pauses, {key_for('replay_back')}"
                f" {key_for('replay_forward')} step, {key_for('replay_previous_alert')}"
                f" {key_for('replay_next_alert')} jump between alerts, {key_for('quit')} closes")
    state = run_state(snapshot)
    if state is not None and remote:
        return (f"the service's pool is {state.lower()}: {key_for('quit')} detaches, the"
                " service goes on by itself")
    if state == "STOPPED":
        if Capability.RESTART in capabilities:
            return (f"the run has stopped: press {key_for('restart')} to run it again,"
                    f" {key_for('quit')} to quit")
        return f"the run has stopped: press {key_for('quit')} to quit"
    if state is not None:
        cut = f"{key_for('quit')} again" if quitting else f"{key_for('quit')} twice"
        return f"shutting down: draining what is queued; {cut} cuts the drain short (nothing is lost)"
    queue = snapshot.queue
    starving = [alert for alert in snapshot.watchdog.alerts
                if alert.active and alert.kind is AlertKind.STARVATION]
    if starving and not queue.aging_rate and Capability.AGING in capabilities:
        level = priority(max(alert.priority or 0 for alert in starving))
        return f"priority {level} is starving: press {key_for('toggle_aging')} to turn on aging"
    full = bool(queue.maxsize) and queue.depth >= queue.maxsize
    if full and queue.blocked_putters and queue.overflow == "block" and (
            Capability.OVERFLOW in capabilities):
        return (f"queue full, producers blocked: press {key_for('cycle_overflow')} to reject"
                " or evict instead of waiting")
    if any(alert.active and alert.kind is AlertKind.LOOP_BLOCKED
           for alert in snapshot.watchdog.alerts):
        return "the loop was blocked: select the alert and press enter for the stack that held it"
    return ""


class HintBar(Widget):
    """The hint (dim) or the last engine error (red), one line."""

    DEFAULT_CSS = """
    HintBar {
        height: 1;
        padding: 0 1;
        color: $text-accent;
        background: $boost;
    }
    HintBar.-error {
        color: $text-error;
    }
    """

    hint: reactive[str] = reactive("")
    """What the engine's state suggests now."""
    error: reactive[str] = reactive("")
    """The last engine error from a key ('' once it has been shown long enough)."""

    def watch_error(self, error: str) -> None:
        self.set_class(bool(error), "-error")

    def render(self) -> Text:
        idle = (f"press {key_for('help')} for every key,"
                f" {key_for('command_palette')} for every action by name")
        text = f"✗ {self.error}" if self.error else self.hint or idle
        return Text(text, no_wrap=True, overflow="ellipsis", end="")
