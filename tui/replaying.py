"""The replay keys (space, `,` `.`, `[` `]`) and the scrubber that shows where a replay is.

A mixin of HeapwatchApp. The keys need Capability.REPLAY, which only a ReplaySource offers, so
they show (footer, help, palette) in a replay and nowhere else.
"""

from __future__ import annotations

from typing import Any

from tui.widgets.scrubber import Scrubber


class ReplayActions:
    """`action_replay_*` and `update_scrubber`."""

    engine: Any
    part: Any
    toast: Any
    _call: Any

    def update_scrubber(self) -> None:
        """Show the replay's position (nothing to do for other sources)."""
        source = self.engine
        if not hasattr(source, "alert_marks"):
            return
        scrubber = self.part(Scrubber)
        scrubber.frames = len(source.frames)
        scrubber.marks = source.alert_marks
        scrubber.position = source.position
        scrubber.playing = source.playing
        scrubber.elapsed = source.elapsed
        scrubber.duration = source.duration

    def action_replay_toggle(self) -> None:
        """Pause the replay, or play it on (from the start once it has ended)."""
        self._call("replay", self.engine.toggle)
        self.update_scrubber()

    def action_replay_back(self) -> None:
        """Step one frame back (pauses)."""
        self._call("replay", self.engine.step, -1)
        self.update_scrubber()

    def action_replay_forward(self) -> None:
        """Step one frame on (pauses)."""
        self._call("replay", self.engine.step, 1)
        self.update_scrubber()

    def action_replay_previous_alert(self) -> None:
        """Jump back to the previous alert (or stale loop)."""
        self._jump(-1)

    def action_replay_next_alert(self) -> None:
        """Jump to the next alert (or stale loop)."""
        self._jump(1)

    def _jump(self, direction: int) -> None:
        if self._call("replay", self.engine.jump_to_alert, direction) is False:
            self.toast(f"no {'later' if direction > 0 else 'earlier'} alert in the recording",
                       severity="warning")
        self.update_scrubber()
