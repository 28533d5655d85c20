"""SummaryBar: the one line always on screen. State words first, then the source, then figures.

When the line is too narrow the figures give way first (from the right), then the source; the
state words (STOPPED, FROZEN, PAUSED, the alert count) always stay.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from rich.style import StyleType
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from engine.snapshots import EngineSnapshot, ShutdownPhase
from tui.widgets.format import count, rate, seconds

STATE, SOURCE, FIGURE = 0, 1, 2
"""What a part of the line is, in the order they give way (figures first)."""


@dataclass(frozen=True, slots=True)
class Part:
    """One piece of the line: its level, and its texts from the longest to the shortest."""

    level: int
    variants: tuple[Text, ...]


def run_state(snapshot: EngineSnapshot) -> str | None:
    """'SHUTTING DOWN', 'STOPPED' or None while running."""
    pool = snapshot.pool
    if pool.phase is ShutdownPhase.STOPPED or pool.report is not None:
        return "STOPPED"
    if pool.shutdown_started:
        return "SHUTTING DOWN"
    return None


def active_alert_kinds(snapshot: EngineSnapshot) -> Counter[str]:
    """Active alerts by kind: the count the bar shows is `sum(...)` of this, unfiltered."""
    return Counter(str(alert.kind) for alert in snapshot.watchdog.alerts if alert.active)


def summary_parts(snapshot: EngineSnapshot | None, *, frozen_for: float | None,
                  source: str = "", source_flags: tuple[str, ...] = (),
                  flag: StyleType = "bold", label: StyleType = "dim") -> list[Part]:
    """The parts of the line, state words first. `frozen_for`: seconds since `f` (None: live);
    `source` and `source_flags`: the endpoint and its state words (read-only, STALE...)."""
    def text(*pieces: str | tuple[str, StyleType]) -> Text:
        return Text.assemble(*pieces)

    parts = [Part(STATE, (text(("heapwatch", "bold")),))]
    if snapshot is None:
        parts.append(Part(STATE, (text(("starting…", label)),)))
        return parts
    state = run_state(snapshot)
    if state is not None:
        parts.append(Part(STATE, (text((state, "bold reverse")),)))
    if frozen_for is not None:
        parts.append(Part(STATE, (text((f"FROZEN {seconds(frozen_for)} ago", "bold reverse")),
                                  text(("FROZEN", "bold reverse")))))
    if snapshot.producers_paused:
        parts.append(Part(STATE, (text(("PAUSED", flag)),)))
    kinds = active_alert_kinds(snapshot)
    active = sum(kinds.values())
    if active:
        noun = f"⚠ {active} alert{'s' if active > 1 else ''}"
        by_kind = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
        parts.append(Part(STATE, (text((f"{noun}: {by_kind}", "bold red")),
                                  text((noun, "bold red")))))
    else:
        parts.append(Part(STATE, (text(("no alerts", label)),)))
    # STALE, DISCONNECTED: the state of what is shown, always kept; the source gives way first.
    states = [flag_text for flag_text in source_flags if flag_text.split(":")[0].isupper()]
    for flag_text in states:
        parts.append(Part(STATE, (text((flag_text, "bold reverse")),
                                  text((flag_text.split(":")[0], "bold reverse")))))
    where = f" at {source}" if source else f" seed {snapshot.seed}"
    parts.append(Part(SOURCE, (text(snapshot.scenario, (where, label)),
                               text(snapshot.scenario))))
    for flag_text in source_flags:
        if flag_text not in states:
            parts.append(Part(SOURCE, (text((flag_text, flag)),)))
    queue, pool = snapshot.queue, snapshot.pool
    uptime = f"up {seconds(snapshot.at)}" + (" held" if frozen_for is not None else "")
    parts += [
        Part(FIGURE, (text(uptime),)),
        Part(FIGURE, (text(("depth ", label), count(queue.depth)),)),
        Part(FIGURE, (text(("in ", label), rate(snapshot.submitted_rate), ("  out ", label),
                           rate(pool.completion_rate)),)),
        Part(FIGURE, (text(("workers ", label), f"{pool.busy_workers}/{pool.live_workers}"),)),
        Part(FIGURE, (text(("overflow ", label), queue.overflow),)),
        Part(FIGURE, (text(("aging ", label),
                           f"{queue.aging_rate:g}/s" if queue.aging_rate else "off"),)),
    ]
    return parts


def fit(parts: list[Part], width: int, gap: str = "  ") -> Text:
    """The parts joined, dropping figures from the right, then shortening, then sources."""
    chosen = [0] * len(parts)
    shown = list(range(len(parts)))

    def length() -> int:
        return sum(parts[i].variants[chosen[i]].cell_len for i in shown) + len(gap) * (
            len(shown) - 1)

    for level in (FIGURE, None, SOURCE):
        while length() > width:
            if level is None:  # shorten the longest shortenable part
                options = [i for i in shown if chosen[i] + 1 < len(parts[i].variants)]
                if not options:
                    break
                chosen[options[-1]] += 1
                continue
            droppable = [i for i in shown if parts[i].level == level]
            if not droppable:
                break
            shown.remove(droppable[-1])
    line = Text(no_wrap=True, overflow="ellipsis", end="")
    for n, index in enumerate(shown):
        if n:
            line.append(gap)
        line.append_text(parts[index].variants[chosen[index]])
    return line


class SummaryBar(Widget):
    """The state of the run, where it comes from, and its headline figures."""

    DEFAULT_CSS = """
    SummaryBar {
        height: 1;
        background: $panel;
        color: $foreground;
        padding: 0 1;
    }
    SummaryBar.-frozen {
        background: $warning 30%;
    }
    SummaryBar > .summary-bar--flag { color: $warning; text-style: bold; }
    SummaryBar > .summary-bar--label { color: $foreground-muted; }
    """

    COMPONENT_CLASSES = {"summary-bar--flag", "summary-bar--label"}

    snapshot: reactive[EngineSnapshot | None] = reactive(None)
    """The snapshot on display (bound to the app's)."""
    frozen_for: reactive[float | None] = reactive(None)
    """Seconds since the display froze (None: live); the app ticks it while frozen."""
    source: reactive[str] = reactive("")
    """Where the snapshots come from when not this process (an endpoint); '' for local."""
    source_flags: reactive[tuple[str, ...]] = reactive(())
    """The source's state words after it: 'read-only', 'control', 'STALE', 'DISCONNECTED'."""

    def watch_frozen_for(self, frozen_for: float | None) -> None:
        self.set_class(frozen_for is not None, "-frozen")

    def render(self) -> Text:
        flag = self.get_component_rich_style("summary-bar--flag")
        label = self.get_component_rich_style("summary-bar--label")
        parts = summary_parts(self.snapshot, frozen_for=self.frozen_for, source=self.source,
                              source_flags=self.source_flags, flag=flag, label=label)
        return fit(parts, max(self.content_region.width, 10) if self.is_mounted else 200)
