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


class Trend(Widget):
    """Like Textual's Sparkline, but one sample per cell in one style, so that repainting it
    on every refresh costs next to nothing (Sparkline blends a colour per bar)."""

    DEFAULT_CSS = """
    Trend {
        height: 1;
        color: $accent;
    }
    """

    samples: reactive[tuple[float, ...]] = reactive(())
    """The samples on display, oldest first."""

    def render(self) -> Text:
        return Text(trend_line(self.samples, self.size.width), no_wrap=True)
