"""The dashboard's signals: SIGTERM, SIGINT and SIGHUP quit it gracefully, as `q` does.

The first signal runs the app's quit (drain up to the drain timeout, then exit 0, and the
command writes the report and the spill); a second cuts the drain short. The command hands its
own `TwoStageSignals` (catching since its first line) to the app as `app.signals`; without one
the app catches from its mount on.

After SIGHUP the terminal is gone. Output goes to /dev/null, and so does input (a hung-up
terminal may fail reads; /dev/null reads as end-of-file, which Textual's input thread skips). The kernel sends SIGCONT with the hangup: Textual's SIGCONT handler would start a
second terminal session from inside the signal handler and wedge the app, so it runs only
while the terminal is still there. And Textual's writer thread dies on the first write that
fails (EIO, between the hangup and our handler), after which the app blocks for good on its
full output queue: `hangup_safe_output()` gives the driver a stream that drops such a write.
"""

from __future__ import annotations

import os
import signal
import stat
import sys
import termios
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from engine.signals import (
    COMMAND_SIGNALS,
    TwoStageSignals,
    cut_drain_short,
    drop_terminal_output,
)

__all__ = ["DashboardSignals", "hangup_safe_output", "watch_signals"]


class DashboardSignals:
    """The app's side of the signals, from `watch_signals(app)`; `remove()` on unmount."""

    def __init__(self, app: Any, signals: TwoStageSignals) -> None:
        self.app = app
        self.signals = signals
        self.hung_up = False
        self._restore_sigcont: Callable[[], None] = lambda: None

    def install(self) -> None:
        self._restore_sigcont = self._guard_sigcont()
        self.signals.install(self._first, self._again)

    def remove(self) -> None:
        self.signals.remove()
        self._restore_sigcont()

    def _hang_up(self, sig: signal.Signals) -> None:
        if sig != signal.SIGHUP or self.hung_up:
            return
        self.hung_up = True
        drop_terminal_output()
        _drop_terminal_input()

    def _first(self, sig: signal.Signals) -> None:
        self._hang_up(sig)
        self.app.action_quit()

    def _again(self, sig: signal.Signals) -> None:
        self._hang_up(sig)
        pool = getattr(self.app.engine, "pool", None)
        if pool is not None:
            cut_drain_short(pool)

    def _guard_sigcont(self) -> Callable[[], None]:
        try:
            original = signal.getsignal(signal.SIGCONT)
        except ValueError:
            return lambda: None
        if not callable(original):
            return lambda: None

        def on_sigcont(signum: int, frame: Any) -> None:
            if not self.hung_up and _terminal_alive():
                original(signum, frame)

        try:
            signal.signal(signal.SIGCONT, on_sigcont)
        except ValueError:  # not the main thread
            return lambda: None
        return lambda: signal.signal(signal.SIGCONT, original)


def watch_signals(app: Any) -> DashboardSignals:
    """Wire SIGINT, SIGTERM and SIGHUP to `app` on its running loop (call from on_mount)."""
    signals = getattr(app, "signals", None) or TwoStageSignals(COMMAND_SIGNALS)
    watcher = DashboardSignals(app, signals)
    watcher.install()
    return watcher


def _terminal_alive() -> bool:
    try:
        termios.tcgetattr(sys.__stdin__.fileno())  # type: ignore[union-attr]
    except (termios.error, OSError, ValueError, AttributeError):
        return False
    return True


def _drop_terminal_input() -> None:
    """Put /dev/null on stdin (the hung-up terminal can fail reads with EIO)."""
    try:
        if not stat.S_ISCHR(os.fstat(0).st_mode):  # a pipe or a file: not the terminal
            return
        # /dev/null, not a pipe: a read already past its select must return, never wait.
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
    except OSError:
        pass


class _DropFailedWrites:
    """A text stream whose write or flush that fails (a hung-up terminal) is dropped."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except (OSError, ValueError):
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except (OSError, ValueError):
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def hangup_safe_output() -> Iterator[None]:
    """While inside, the terminal stream Textual's driver writes to (sys.__stderr__, read when
    `App.run()` starts the driver) drops a failed write instead of raising."""
    original = sys.__stderr__
    if original is None:
        yield
        return
    sys.__stderr__ = _DropFailedWrites(original)  # type: ignore[misc,assignment]
    try:
        yield
    finally:
        sys.__stderr__ = original  # type: ignore[misc]
