"""Trend: a one-line sparkline of the most recent samples, one cell per sample."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

BARS = "▁▂▃▄▅▆▇█"


def trend_line(samples: Sequence[float], width: int) -> str:
    """The last `width` samples as bar characters scaled from 0 to their maximum."""
    shown = list(samples)[-width:] if width > 0 else []
    peak = max(shown, default=0.0)
    if peak <= 0:
        return BARS[0] * len(shown)
    top = len(BARS) - 1
    return "".join(BARS[min(top, max(0, round(value / peak * top)))] for value in shown)


def trend_rows(samples: Sequence[float], width: int, height: int) -> list[str]:
    """The last `width` samples as a bar chart `height` lines tall, top line first."""
    if height <= 1:
        return [trend_line(samples, width)]
    shown = list(samples)[-width:] if width > 0 else []
    peak = max(shown, default=0.0)
    steps = len(BARS)
    # Each sample in eighths of a line; the bottom line always shows at least the lowest bar.
    levels = [max(1, round(value / peak * height * steps)) if peak > 0 else 1 for value in shown]
    rows = []
    for line in range(height - 1, -1, -1):
        floor = line * steps
        rows.append("".join(
            "█" if level >= floor + steps else BARS[level - floor - 1] if level > floor else " "
            for level in levels))
    return rows


class Trend(Widget):
    """Like Textual's Sparkline, but one sample per cell in one style, so that repainting it
    on every refresh costs next to nothing (Sparkline blends a colour per bar)."""

    DEFAULT_CSS = """
    Trend {
        height: 1;
        min-height: 1;
        color: $accent;
    }
    """

    samples: reactive[tuple[float, ...]] = reactive(())
    """The samples on display, oldest first."""

    def render(self) -> Text:
        rows = trend_rows(self.samples, self.size.width, self.size.height)
        return Text("\n".join(rows), no_wrap=True)
