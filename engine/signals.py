"""Two-stage signal handling: the first signal asks for a graceful stop, a second cuts it short.

`TwoStageSignals` is one small state machine shared by the headless command, the dashboard and
`WorkerPool.install_signal_handlers`:

    signals = TwoStageSignals(COMMAND_SIGNALS).catch_early()   # first thing in main()
    ...
    signals.install(on_first=begin_graceful_stop, on_again=cut_the_drain_short)  # on the loop
    ...
    signals.remove()                                             # when the loop is done

`catch_early()` needs no event loop: until `install()` a signal is only recorded, and
`install()` replays what was recorded on the loop, so a signal at any moment after start is
handled, never a KeyboardInterrupt traceback or a silent death. After `remove()` signals are
recorded again (and ignored) if `catch_early()` was used, else the handlers that were there
before come back. An embedded pool keeps to `GRACEFUL_SIGNALS`: services often use SIGHUP to
reload.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import sys
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "COMMAND_SIGNALS",
    "GRACEFUL_SIGNALS",
    "TwoStageSignals",
    "cut_drain_short",
    "drop_terminal_output",
]

GRACEFUL_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)
"""What an embedded WorkerPool handles."""
COMMAND_SIGNALS: tuple[signal.Signals, ...] = (*GRACEFUL_SIGNALS, signal.SIGHUP)
"""What the `heapwatch` command handles: SIGHUP too (its terminal closed)."""

Callback = Callable[[signal.Signals], Any]


class TwoStageSignals:
    """The first of `signals` calls `on_first`, every later one `on_again`, on the loop.

    Args:
        signals: the signals to handle (default: SIGINT and SIGTERM).
    """

    def __init__(self, signals: Iterable[int] = GRACEFUL_SIGNALS) -> None:
        self.signals = tuple(signal.Signals(sig) for sig in signals)
        self.received: list[signal.Signals] = []
        """Every signal delivered to the callbacks so far, in order."""
        self._pending: list[signal.Signals] = []
        self._previous: dict[signal.Signals, Any] = {}
        self._early = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_first: Callback | None = None
        self._on_again: Callback | None = None

    @property
    def count(self) -> int:
        """Signals received so far (delivered, or caught and waiting for `install()`)."""
        return len(self.received) + len(self._pending)

    @property
    def installed(self) -> bool:
        """True while the callbacks are wired to a loop."""
        return self._loop is not None

    def catch_early(self) -> TwoStageSignals:
        """Record the signals from now on, with no loop needed (main thread only; elsewhere a
        no-op). `install()` replays them."""
        if not _main_thread():
            return self
        for sig in self.signals:
            self._previous.setdefault(sig, signal.getsignal(sig))
            signal.signal(sig, self._record)
        self._early = True
        return self

    def _record(self, signum: int, frame: object) -> None:
        self._pending.append(signal.Signals(signum))

    def install(
        self,
        on_first: Callback,
        on_again: Callback,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> bool:
        """Wire the signals to the callbacks on `loop` (default: the running one). Signals
        caught since `catch_early()` are replayed on the loop's next turns, in order. False
        when the loop cannot take signal handlers (not the main thread, not Unix)."""
        loop = loop if loop is not None else asyncio.get_running_loop()
        self._on_first, self._on_again = on_first, on_again
        added = []
        try:
            for sig in self.signals:
                self._previous.setdefault(sig, signal.getsignal(sig))
                loop.add_signal_handler(sig, self._deliver, sig)
                added.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            for sig in added:
                loop.remove_signal_handler(sig)
            return False
        self._loop = loop
        pending, self._pending = self._pending, []
        for sig in pending:
            loop.call_soon(self._deliver, sig)
        return True

    def _deliver(self, sig: signal.Signals) -> None:
        self.received.append(sig)
        callback = self._on_first if len(self.received) == 1 else self._on_again
        if callback is not None:
            callback(sig)

    def remove(self) -> None:
        """Unwire the loop. With `catch_early()`, signals are recorded again (so one arriving
        while the command writes its files is still harmless); else the old handlers return."""
        loop, self._loop = self._loop, None
        if loop is not None and not loop.is_closed():
            for sig in self.signals:
                loop.remove_signal_handler(sig)
        if not _main_thread():
            return
        for sig, previous in self._previous.items():
            signal.signal(sig, self._record if self._early else previous)

    def restore(self) -> None:
        """Put back the handlers that were there before this object touched them."""
        self._early = False
        self.remove()
        self._previous.clear()

    def __repr__(self) -> str:
        names = ",".join(sig.name for sig in self.signals)
        state = "installed" if self.installed else "early" if self._early else "idle"
        return f"<TwoStageSignals {names} {state} received={self.count}>"


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def drop_terminal_output() -> None:
    """After SIGHUP the terminal is gone: point stdout and stderr at /dev/null where they are a
    terminal, so that what is still printed is dropped instead of failing (EIO) in the middle
    of a drain. A file or a pipe (a log) is left as it is."""
    terminals = [fd for fd in (1, 2) if _is_terminal(fd)]
    if not terminals:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    try:
        for fd in terminals:
            try:
                os.dup2(null, fd)
            except OSError:
                pass
    finally:
        os.close(null)


def _is_terminal(fd: int) -> bool:
    # A hung-up terminal may no longer pass isatty(); it is still a character device (and
    # /dev/null, also one, is harmless to replace by itself).
    try:
        return stat.S_ISCHR(os.fstat(fd).st_mode)
    except OSError:
        return False


def cut_drain_short(pool: Any, *, retry: float = 0.02) -> None:
    """Cut `pool`'s graceful shutdown short (`pool.abort()`); when its drain has not begun yet
    (the producers are still stopping), try again every `retry` seconds until it has, or the
    pool has stopped. Call on the loop."""
    if pool.abort() or str(pool.phase) == "stopped":
        return
    asyncio.get_running_loop().call_later(retry, cut_drain_short, pool)
