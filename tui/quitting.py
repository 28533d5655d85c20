"""Quitting and shutting down: `q`, ctrl+c, `s` and the signals, one path for all of them.

A mixin of HeapwatchApp, kept apart from the layout. `q` starts the graceful shutdown at once
(the shutdown panel counts the drain down) and exits when it is over; a second `q`, ctrl+c or
signal cuts the drain short: what is left is returned, and spilled by the command, never lost.
Once the run has stopped `q` exits at once. `s` asks first (the same question for a service
reached with `attach --control`), then stops the run and stays open on the report. A source
that is another process (attach, replay) is only detached: its service keeps running.
"""

from __future__ import annotations

import asyncio
from typing import Any

from textual import work

from engine.signals import cut_drain_short
from engine.snapshots import ShutdownReport
from tui.actions import _FAILED
from tui.keys import key_for
from tui.screens.confirm import ConfirmScreen
from tui.source import SnapshotSource, source_label
from tui.widgets.format import seconds
from tui.widgets.shutdown_panel import ShutdownPanel


class QuitActions:
    """`action_quit`, `action_interrupt`, `action_shutdown` and the shutdown they share."""

    engine: Any
    run_number: int
    on_run_stopped: Any
    _shutdown_task: asyncio.Future[ShutdownReport] | None
    _quitting: bool
    _refresh_slow_next: bool

    # Provided by HeapwatchApp / SourceActions / textual.App.
    screen: Any
    part: Any
    toast: Any
    exit: Any
    push_screen: Any
    copy_to_clipboard: Any
    call_after_refresh: Any
    refresh_snapshot: Any
    _call: Any
    _report_error: Any

    def _start_shutdown(self) -> asyncio.Future[ShutdownReport]:
        """The shutdown, started now if it has not been (on the loop, so that a second `q`
        pressed right after the first already finds it under way)."""
        if self._shutdown_task is None:
            self._shutdown_task = asyncio.ensure_future(self._shutdown_run(self.engine))
        return self._shutdown_task

    async def _graceful_shutdown(self) -> ShutdownReport | None:
        """Shut the engine down once; later callers wait for the same shutdown."""
        task = self._start_shutdown()
        try:
            return await asyncio.shield(task)
        except Exception as error:
            self._report_error("shutdown", error)
            return None

    async def _shutdown_run(self, source: SnapshotSource) -> ShutdownReport:
        report = await source.shutdown()
        if self.on_run_stopped is not None:
            try:
                self.on_run_stopped(source, self.run_number)
            except Exception as error:  # a report that cannot be written is said, not fatal
                self._report_error("writing the run's report", error)
        return report


    def action_shutdown(self) -> None:
        """Shut down gracefully, once confirmed; stay open on the drain and the report."""
        if self._shutdown_task is not None or isinstance(self.screen, ConfirmScreen):
            return
        request = getattr(self.engine, "request_shutdown", None)
        if request is not None:  # a service's pool, through its monitor (attach --control)
            question = f"Shut down the service at {source_label(self.engine)}?"
            detail = ("Its pool stops taking work and drains; what is left is returned, not"
                      " lost. This view stays attached.")
        else:
            question = "Shut down gracefully?"
            detail = (f"Intake stops and the queue drains{self._drain_text()}; what is left is"
                      " returned, not lost. The dashboard stays open on the report.")
        self.push_screen(ConfirmScreen(question, detail), self._shutdown_confirmed)

    def _shutdown_confirmed(self, yes: bool | None) -> None:
        if not yes:
            self.toast("no shutdown: the run goes on")
        elif getattr(self.engine, "request_shutdown", None) is not None:
            if self._call("shutdown", self.engine.request_shutdown) is _FAILED:
                return  # the error is on the hint line
            self.toast("asked the service to shut down gracefully")
        elif self._shutdown_task is None:
            self.toast("graceful shutdown: stopping intake, draining…")
            self._begin_shutdown()

    def _begin_shutdown(self) -> None:
        self._refresh_slow_next = True
        self._start_shutdown()
        self._run_shutdown()
        self.call_after_refresh(self.refresh_snapshot)

    def _drain_text(self) -> str:
        """' for up to N s' when the source says how long its drain may take."""
        scenario = getattr(self.engine, "scenario", None)
        timeout = getattr(getattr(scenario, "pool", None), "drain_timeout", None)
        return f" for up to {timeout:g} s" if isinstance(timeout, int | float) else ""

    @work(group="shutdown", exit_on_error=False)
    async def _run_shutdown(self) -> None:
        report = await self._graceful_shutdown()
        if report is not None:
            accounting = report.accounting
            ended = "cut short" if report.cut_short else "done"
            self.toast(f"shutdown {ended} after {seconds(report.drain_time)}: "
                       f"{accounting.completed:,} completed, {accounting.returned:,} returned, "
                       f"{accounting.lost:,} lost")
        self._refresh_slow_next = True
        self.refresh_snapshot()


    def action_quit(self) -> None:
        """Quit: a graceful shutdown first (q again cuts its drain short), then exit 0."""
        task = self._shutdown_task
        draining = task is not None and not task.done()
        if self._quitting and draining:
            self.cut_short()
            return
        self._quitting = True
        self.part(ShutdownPanel).quitting = True
        again = key_for("quit")
        if source_label(self.engine):
            self.toast("detaching: the service keeps running" if hasattr(self.engine, "detach")
                       else "closing the recording")
        elif draining:
            self.toast(f"quitting once the drain ends; {again} again cuts it short")
        elif task is None and getattr(self.engine, "running", False):
            self.toast(f"quitting: draining{self._drain_text()}; {again} again cuts it short")
            self._start_shutdown()
            self._refresh_slow_next = True
            self.call_after_refresh(self.refresh_snapshot)
        self._quit_after_shutdown()

    def request_quit(self) -> None:
        """Quit gracefully unless already quitting (`--duration` ending: not a second `q`)."""
        if not self._quitting:
            self.action_quit()

    def cut_short(self) -> None:
        """Cut the drain under way short: what is left is returned (and spilled), not lost."""
        pool = getattr(self.engine, "pool", None)
        if pool is not None:
            cut_drain_short(pool)
        self.toast("cutting the drain short: what is left is returned, not lost")

    def action_interrupt(self) -> None:
        """ctrl+c: copy the selected text; with nothing selected, quit as q does."""
        selected = self.screen.get_selected_text()
        if selected:
            self.copy_to_clipboard(selected)
            self.toast(f"copied {len(selected):,} characters")
            return
        self.action_quit()

    @work(group="quit", exclusive=True, exit_on_error=False)
    async def _quit_after_shutdown(self) -> None:
        # A worker, so that the panels keep showing the drain until the very end.
        if getattr(self.engine, "running", False) or self._shutdown_task is not None:
            await self._graceful_shutdown()
        self.exit(0)

