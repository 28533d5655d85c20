"""DepthGauge: queue depth against maxsize, coloured at 90% and at full, with the overflow counts."""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from engine.snapshots import EngineSnapshot
from tui.widgets.format import count

WARN_RATIO = 0.9
"""At or above this depth ratio the gauge turns to the warning colour."""


class DepthGauge(Widget):
    """A bar of depth / maxsize plus the overflow policy, items waiting for room, evicted, rejected.

    The widget has the class `-warn` at 90% and `-full` at 100%, so the theme decides the colours.
    """

    DEFAULT_CSS = """
    DepthGauge {
        height: 3;
    }
    DepthGauge > .depth-gauge--bar { color: $success; }
    DepthGauge > .depth-gauge--empty { color: $foreground 15%; }
    DepthGauge.-warn > .depth-gauge--bar { color: $warning; }
    DepthGauge.-full > .depth-gauge--bar { color: $error; }
    DepthGauge > .depth-gauge--label { color: $foreground-muted; }
    """

    COMPONENT_CLASSES = {"depth-gauge--bar", "depth-gauge--empty", "depth-gauge--label"}

    snapshot: reactive[EngineSnapshot | None] = reactive(None)
    """The snapshot on display (bound to the app's)."""

    def watch_snapshot(self, snapshot: EngineSnapshot | None) -> None:
        ratio = snapshot.queue.depth_ratio if snapshot is not None else 0.0
        self.set_class(WARN_RATIO <= ratio < 1.0, "-warn")
        self.set_class(ratio >= 1.0, "-full")

    def render(self) -> RenderableType:
        snapshot = self.snapshot
        if snapshot is None:
            return Text("waiting for the engine…")
        queue = snapshot.queue
        bar_style = self.get_component_rich_style("depth-gauge--bar")
        empty_style = self.get_component_rich_style("depth-gauge--empty")
        label_style = self.get_component_rich_style("depth-gauge--label")
        width = max(self.size.width - 7, 4)
        bar = Text()
        if queue.maxsize:
            ratio = min(queue.depth_ratio, 1.0)
            filled = round(ratio * width)
            bar.append("█" * filled, bar_style)
            bar.append("░" * (width - filled), empty_style)
            bar.append(f" {queue.depth_ratio:>5.0%}", bar_style)
            depth = f"{count(queue.depth)} / {count(queue.maxsize)}"
        else:
            bar.append("unbounded", label_style)
            depth = count(queue.depth)
        lines = Text.assemble(
            bar, "\n",
            (depth, "bold"), ("  peak ", label_style), count(queue.peak_depth),
            ("  ", label_style), (queue.overflow, "bold"), "\n",
            # Items, not tasks: a blocked burst is one putter holding thousands of items.
            ("waiting for room ", label_style), count(snapshot.waiting_for_room),
            ("  evicted ", label_style), count(queue.evicted),
            ("  rejected ", label_style), count(queue.rejected),
            no_wrap=True, overflow="ellipsis",
        )
        return lines
