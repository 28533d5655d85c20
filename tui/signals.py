"""The dashboard's signals: SIGTERM, SIGINT and SIGHUP quit it gracefully, as `q` does.

The first signal runs the app's quit (drain up to the drain timeout, then exit 0, and the
command writes the report and the spill); a second cuts the drain short. After SIGHUP the
terminal is gone, so what the app still draws goes to /dev/null. The command hands its own
`TwoStageSignals` (catching since its first line) to the app as `app.signals`; without one the
app catches from its mount on.
"""

from __future__ import annotations

import signal
from typing import Any

from engine.signals import (
    COMMAND_SIGNALS,
    TwoStageSignals,
    cut_drain_short,
    drop_terminal_output,
)

__all__ = ["watch_signals"]


def watch_signals(app: Any) -> TwoStageSignals:
    """Wire the signals to `app` on its running loop (call from on_mount); `remove()` the
    result on unmount."""
    signals: TwoStageSignals = getattr(app, "signals", None) or TwoStageSignals(COMMAND_SIGNALS)

    def first(sig: signal.Signals) -> None:
        if sig == signal.SIGHUP:
            drop_terminal_output()
        app.action_quit()

    def again(sig: signal.Signals) -> None:
        if sig == signal.SIGHUP:
            drop_terminal_output()
        pool = getattr(app.engine, "pool", None)
        if pool is not None:
            cut_drain_short(pool)

    signals.install(first, again)
    return signals
