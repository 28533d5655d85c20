"""Headless runs: the engine without the dashboard, for CI, servers and scripts.

On a terminal, a rich live summary on stderr; otherwise one plain line a second, such as
`t=3.0s depth=120 done=4500 rate=1500/s alerts=1 ...`, plus one line per alert. The run ends
gracefully at `duration` or on SIGINT, SIGTERM or SIGHUP (a second signal cuts the drain
short). After SIGHUP the terminal is gone: output is dropped, the drain goes on.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from engine.runtime import Engine
from engine.signals import (
    COMMAND_SIGNALS,
    TwoStageSignals,
    cut_drain_short,
    drop_terminal_output,
)
from engine.snapshots import Alert, EngineSnapshot, ShutdownReport

__all__ = ["plain_line", "run_headless", "summary_table"]



def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}ms"


def plain_line(snapshot: EngineSnapshot) -> str:
    """One line of figures for logs: `t=3.0s depth=120 done=4500 rate=1500/s alerts=1 ...`."""
    queue, pool = snapshot.queue, snapshot.pool
    a = pool.accounting
    active = sum(1 for alert in snapshot.watchdog.alerts if alert.active)
    phase = "" if pool.phase == "running" else f" phase={pool.phase}"
    return (
        f"t={snapshot.at:.1f}s depth={queue.depth} done={a.completed} "
        f"rate={pool.completion_rate:.0f}/s submitted={a.submitted} "
        f"in={snapshot.submitted_rate:.0f}/s retry={a.retry_scheduled} dead={a.dead_lettered} "
        f"dropped={a.evicted + a.rejected} workers={pool.busy_workers}/{pool.live_workers} "
        f"wait_p99={_ms(queue.wait_p99)} alerts={active} lost={a.lost}{phase}"
    )


def summary_table(snapshot: EngineSnapshot) -> Group:
    """The live summary: totals, then one row per priority level, then the active alerts."""
    queue, pool, watchdog = snapshot.queue, snapshot.pool, snapshot.watchdog
    a = pool.accounting
    head = Text.assemble(
        ("heapwatch ", "bold"),
        f"{snapshot.scenario} (seed {snapshot.seed})  t={snapshot.at:.1f}s  ",
        (f"{pool.phase}", "bold green" if pool.phase == "running" else "bold yellow"),
    )
    totals = Text(
        f"depth {queue.depth}/{queue.maxsize or '∞'} ({queue.overflow}, aging {queue.aging_rate:g})"
        f"  in {snapshot.submitted_rate:.0f}/s  done {pool.completion_rate:.0f}/s"
        f"  workers {pool.busy_workers}/{pool.live_workers} busy\n"
        f"submitted {a.submitted}  completed {a.completed}  retrying {a.retry_scheduled}"
        f"  dead {a.dead_lettered}  evicted {a.evicted}  rejected {a.rejected}"
        f"  returned {a.returned}  lost {a.lost}  duplicated {a.duplicated}"
    )
    levels = Table(box=None, pad_edge=False, show_edge=False)
    for column in ("priority", "depth", "oldest wait", "wait p50", "wait p99"):
        levels.add_column(column, justify="right")
    for level in queue.per_priority:
        levels.add_row(
            f"{level.priority:g}",
            str(level.depth),
            _ms(level.oldest_wait),
            _ms(level.wait_p50),
            _ms(level.wait_p99),
        )
    alerts = [alert for alert in watchdog.alerts if alert.active][:5]
    lines = Text("\n".join(f"! {alert.kind}: {alert.message}" for alert in alerts), style="red")
    return Group(head, totals, levels, lines)


class _Stop:
    """What the signals do: the first asks for a graceful stop, a later one cuts the drain
    short (also when it comes before the drain has begun)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.event = asyncio.Event()
        self.hurry = False
        """True once a second signal came: the drain is cut short."""

    def first(self, sig: signal.Signals) -> None:
        if sig == signal.SIGHUP:
            drop_terminal_output()
        self.event.set()

    def again(self, sig: signal.Signals) -> None:
        if sig == signal.SIGHUP:
            drop_terminal_output()
        self.event.set()
        self.hurry = True
        cut_drain_short(self.engine.pool)

    def shutdown(self) -> asyncio.Future[ShutdownReport]:
        return asyncio.ensure_future(self.engine.shutdown(0.0 if self.hurry else None))


async def run_headless(
    engine: Engine,
    *,
    duration: float | None = None,
    refresh_hz: float = 4.0,
    stream: TextIO | None = None,
    live: bool | None = None,
    signals: TwoStageSignals | None = None,
    on_started: Callable[[Engine], list[str]] | None = None,
) -> ShutdownReport:
    """Run `engine` until `duration` seconds or a signal, showing a summary; shut down; report.

    `live`: a rich live summary (default: when `stream` is a terminal), else plain lines.
    `signals`: the command's (already catching, see `TwoStageSignals.catch_early`); default:
    SIGINT, SIGTERM and SIGHUP from now on. They are wired before the engine starts.
    `on_started(engine)` is called once it runs (`--monitor`, `--record`); its lines are said.
    """
    stream = stream if stream is not None else sys.stderr
    console = Console(file=stream)
    if live is None:
        live = console.is_terminal
    stop = _Stop(engine)
    signals = signals if signals is not None else TwoStageSignals(COMMAND_SIGNALS)
    signals.install(stop.first, stop.again)
    _quiet_engine_logs(console if live else None)
    try:
        await engine.start()
        if engine.metrics_url:
            _say(console, f"metrics at {engine.metrics_url}")
        for line in on_started(engine) if on_started is not None else ():
            _say(console, line)
        if live:
            return await _run_live(engine, console, stop, duration, refresh_hz)
        return await _run_plain(engine, console, stop, duration)
    finally:
        signals.remove()


async def _wait(stop: _Stop, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.event.wait(), timeout=max(seconds, 0.0))
    except TimeoutError:
        pass


def _time_left(engine: Engine, duration: float | None) -> float:
    return float("inf") if duration is None else duration - engine.elapsed


async def _run_plain(
    engine: Engine, console: Console, stop: _Stop, duration: float | None
) -> ShutdownReport:
    seen: set[int] = set()

    def emit() -> None:
        snapshot = engine.snapshot()
        for alert in snapshot.watchdog.alerts:
            if alert.id not in seen and alert.active:
                seen.add(alert.id)
                _say(console, _alert_line(snapshot.at, alert))
        _say(console, plain_line(snapshot))

    next_line = 1.0
    while not stop.event.is_set():
        left = _time_left(engine, duration)
        if left <= 0:
            break
        await _wait(stop, min(left, next_line - engine.elapsed))
        if engine.elapsed >= next_line:
            emit()
            next_line += 1.0
    _say(
        console,
        f"t={engine.elapsed:.1f}s shutting down gracefully"
        f" (drain up to {engine.scenario.pool.drain_timeout:g}s)",
    )
    shutdown = stop.shutdown()
    while not shutdown.done():  # one line a second during the drain too
        await asyncio.wait([shutdown], timeout=1.0)
        if not shutdown.done():
            emit()
    emit()
    return shutdown.result()


async def _run_live(
    engine: Engine, console: Console, stop: _Stop, duration: float | None, refresh_hz: float
) -> ShutdownReport:
    with Live(console=console, auto_refresh=False, transient=False) as live:
        while not stop.event.is_set():
            left = _time_left(engine, duration)
            if left <= 0:
                break
            live.update(summary_table(engine.snapshot()), refresh=True)
            await _wait(stop, min(left, 1 / refresh_hz))
        shutdown = stop.shutdown()
        while not shutdown.done():
            live.update(summary_table(engine.snapshot()), refresh=True)
            await asyncio.wait([shutdown], timeout=1 / refresh_hz)
        live.update(summary_table(engine.snapshot()), refresh=True)
        return shutdown.result()


def _alert_line(at: float, alert: Alert) -> str:
    culprit = f" culprit={alert.culprit}" if alert.culprit else ""
    return f"t={at:.1f}s ALERT {alert.kind}: {alert.message}{culprit}"


def _say(console: Console, message: str) -> None:
    """One line, never wrapped or styled (log files and grep read these); dropped, not raised,
    when the stream cannot take it (its terminal closed)."""
    try:
        console.print(message, markup=False, highlight=False, soft_wrap=True)
    except (OSError, ValueError):
        pass


def _quiet_engine_logs(console: Console | None) -> None:
    """The summary shows alerts already: the engine's own log lines would repeat them (and
    tear the live display). Errors still reach stderr."""
    logger = logging.getLogger("engine")
    if logger.handlers:
        return
    if console is not None:
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=console, show_path=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("heapwatch: %(levelname)s: %(message)s"))
    handler.setLevel(logging.ERROR)
    logger.addHandler(handler)
    logger.propagate = False
